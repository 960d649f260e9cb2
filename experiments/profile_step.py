"""Where the train step's time goes: a per-XLA-op profile of the real jitted step of any config.

  python experiments/profile_step.py --config configs/dcgan_fashion_mnist.py --batch_size 64

Traces `--steps` steps after warm-up with jax.profiler (Perfetto trace), sums the device time of
each compiled HLO instruction, and joins it with the optimized HLO (gan/profiling.py): shape, the
JAX op it came from (metadata op_name, e.g. `transpose(jvp(Discriminator))/Conv_1/...` = a gradient
of D's second conv) and a category (convolution, dot, reduction, elementwise / copy). Prints the
top ops and the per-category totals as markdown and writes JSON (default
experiments/results/profile_<config>.json).

XLA:CPU runs independent ops concurrently, so op times can sum to more than the wall time of the
step; the report gives both (their ratio is the average number of ops in flight).
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan import host_memory  # pylint: disable=g-import-not-at-top
from gan import input_pipeline  # pylint: disable=g-import-not-at-top
from gan import profiling  # pylint: disable=g-import-not-at-top
from gan import provenance  # pylint: disable=g-import-not-at-top
from gan import runs
from gan.tasks import generation

_CONFIG = config_flags.DEFINE_config_file("config", "configs/dcgan_fashion_mnist.py", "Config to profile.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Global batch size.")
_STEPS = flags.DEFINE_integer("steps", 10, "Traced steps (after 5 warm-up steps).")
_TOP = flags.DEFINE_integer("top", 30, "How many ops to list.")
_OUT = flags.DEFINE_string("out", "", "JSON path (default experiments/results/profile_<config>.json).")


def profile(config, batch_size: int, steps: int, top: int) -> dict:
  """profiling.profile_calls of the config's real train step on random data of its structure."""
  config = config.copy_and_resolve_references()
  config.train.batch_size = batch_size
  mesh = runs.make_mesh()
  _, state, train_step = generation.create_state_and_step(config, mesh)
  return profiling.profile_calls(train_step, (state, input_pipeline.random_device_batch(config, mesh)),
                                 steps, top)


def main(argv):
  del argv
  start_time = time.time()
  config = _CONFIG.value
  result = profile(config, _BATCH_SIZE.value, _STEPS.value, _TOP.value)
  name = os.path.splitext(os.path.basename(config_flags.get_config_filename(flags.FLAGS["config"])))[0]
  print(f"\n{name}, batch {_BATCH_SIZE.value}, {jax.device_count()} x {jax.devices()[0].device_kind}: "
        f"{result['wall_ms_per_step']:.1f} ms/step wall, {result['op_ms_per_step']:.1f} ms of op time "
        f"({result['ops_in_flight']:.2f} ops in flight on average)\n")
  print("| category | ms/step | % of op time |\n|---|---:|---:|")
  for category, ms in result["by_category_ms_per_step"].items():
    print(f"| {category} | {ms:.1f} | {100 * ms / result['op_ms_per_step']:.0f} |")
  print("\n| ms/step | % | HLO op | category | shape | from |\n|---:|---:|---|---|---|---|")
  for r in result["top_ops"]:
    print(f"| {r['ms_per_step']:.2f} | {100 * r['fraction_of_op_time']:.1f} | {r['name']} | {r['category']} | "
          f"`{r['shape'].split('{')[0]}` | {r['source'].removeprefix('jit(train_step)/')[:80]} |")
  out = _OUT.value or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", f"profile_{name}.json")
  os.makedirs(os.path.dirname(out), exist_ok=True)
  record = {"config": name, "batch_size": _BATCH_SIZE.value, "steps": _STEPS.value, **result,
            "provenance": provenance.finish(provenance.record(config=config, start_time=start_time))}
  with open(out, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
  print(f"\nWrote {out}")


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # a process setting: applied by the program, not on import
  app.run(main)
