"""Train-step throughput of a config: images/s of the real jitted step (D + G update), after compile.

  python experiments/benchmark_throughput.py --config configs/dcgan_fashion_mnist.py \
      --batch_sizes 64,256 --steps 50 --repeats 3

Data: random images of the config's shape, already on the devices (this measures the step; the
input pipeline has its own benchmark, benchmark_pipeline.py). Prints a markdown table and writes
experiments/results/throughput_<config>.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan import train  # pylint: disable=g-import-not-at-top

_CONFIG = config_flags.DEFINE_config_file("config", "configs/dcgan_fashion_mnist.py", "Config to time.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["64", "256"], "Global batch sizes.")
_STEPS = flags.DEFINE_integer("steps", 50, "Timed steps per repeat.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats (median, min and max are reported).")
_OUT = flags.DEFINE_string("out", "", "JSON path (default experiments/results/throughput_<config>.json).")


def time_config(config, batch_size: int, steps: int, repeats: int) -> dict:
  config = config.copy_and_resolve_references()
  config.train.batch_size = batch_size
  mesh = train.make_mesh()
  _, state, train_step = train.create_state_and_step(config, mesh)
  size, channels = config.data.image_size, config.data.channels
  rng = np.random.default_rng(0)
  batch = jax.device_put(
      {"image": rng.uniform(-1, 1, (batch_size, size, size, channels)).astype(np.float32),
       "label": rng.integers(0, config.data.num_classes, batch_size).astype(np.int32)},
      NamedSharding(mesh, P("data")))
  start = time.perf_counter()
  state, metrics = train_step(state, batch)
  jax.block_until_ready(metrics)
  compile_seconds = time.perf_counter() - start
  per_repeat = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
      state, metrics = train_step(state, batch)
    jax.block_until_ready((state, metrics))
    per_repeat.append((time.perf_counter() - start) / steps)
  ms = [1e3 * t for t in per_repeat]
  return {
      "batch_size": batch_size,
      "images_per_s_median": batch_size / statistics.median(per_repeat),
      "images_per_s_min": batch_size / max(per_repeat),
      "images_per_s_max": batch_size / min(per_repeat),
      "ms_per_step_median": statistics.median(ms),
      "compile_and_first_step_s": compile_seconds,
      "compiles": train_step._cache_size(),  # pylint: disable=protected-access
  }


def main(argv):
  del argv
  config = _CONFIG.value
  results = [time_config(config, int(b), _STEPS.value, _REPEATS.value) for b in _BATCH_SIZES.value]
  name = os.path.splitext(os.path.basename(config_flags.get_config_filename(flags.FLAGS["config"])))[0]
  record = {
      "config": name, "model": config.model.name, "image_size": config.data.image_size,
      "channels": config.data.channels, "devices": jax.device_count(),
      "device_kind": jax.devices()[0].device_kind, "jax": jax.__version__,
      "cpu_count": os.cpu_count(), "platform": platform.platform(), "steps": _STEPS.value,
      "repeats": _REPEATS.value, "results": results,
  }
  print(f"\n{name} ({config.model.name}, {config.data.image_size}x{config.data.image_size}x"
        f"{config.data.channels}) on {jax.device_count()} x {jax.devices()[0].device_kind}\n")
  print("| batch | images/s (median) | min | max | ms/step | compile + 1st step (s) |")
  print("|---:|---:|---:|---:|---:|---:|")
  for r in results:
    print(f"| {r['batch_size']} | {r['images_per_s_median']:.0f} | {r['images_per_s_min']:.0f} | "
          f"{r['images_per_s_max']:.0f} | {r['ms_per_step_median']:.1f} | {r['compile_and_first_step_s']:.1f} |")
  out = _OUT.value or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"throughput_{name}.json")
  os.makedirs(os.path.dirname(out), exist_ok=True)
  with open(out, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
  print(f"\nWrote {out}")


if __name__ == "__main__":
  app.run(main)
