"""Train-step throughput of a config: images/s of the real jitted step (D + G update), after compile.

  python experiments/benchmark_throughput.py --config configs/dcgan_fashion_mnist.py \
      --batch_sizes 64,256 --steps 50 --repeats 3
  # the same step data-parallel over 4 forced host devices (they share the same cores):
  XLA_FLAGS=--xla_force_host_platform_device_count=4 python experiments/benchmark_throughput.py ...

Data: random images of the config's shape, already on the devices (this measures the step; the
input pipeline has its own benchmark, benchmark_pipeline.py). Reports images/s and ms/step (median,
min, max over repeats), XLA's cost_analysis() FLOPs per step, achieved GFLOP/s and the fraction of
the device's peak, compile time, XLA's buffer sizes and the process's peak memory. Prints a markdown
table and writes experiments/results/throughput_<config>[_<n>dev].json.

Peak FLOP/s: on CPU the formula cores x GHz x FMA units x fp32 lanes x 2 (lanes 16 with AVX-512, 8
with AVX2; --fma_units, default 2); on GPUs a table of dense bf16 / fp32 peaks by device kind.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan import host_memory  # pylint: disable=g-import-not-at-top
from gan import input_pipeline  # pylint: disable=g-import-not-at-top
from gan import provenance  # pylint: disable=g-import-not-at-top
from gan import runs
from gan.tasks import generation

_CONFIG = config_flags.DEFINE_config_file("config", "configs/dcgan_fashion_mnist.py", "Config to time.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["64", "256"], "Global batch sizes.")
_STEPS = flags.DEFINE_integer("steps", 50, "Timed steps per repeat.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Repeats (median, min and max are reported).")
_OUT = flags.DEFINE_string("out", "", "JSON path (default experiments/results/throughput_<config>.json).")
_FMA_UNITS = flags.DEFINE_integer("fma_units", 2, "FMA units per core, for the CPU peak formula.")

# Dense peak TFLOP/s (bf16 tensor cores, fp32 non-tensor) by a substring of jax's device_kind.
GPU_PEAK_TFLOPS = {
    "H100": (989.0, 67.0), "A100": (312.0, 19.5), "L40S": (362.0, 91.6), "L4": (121.0, 30.3),
    "A10G": (70.0, 31.2), "A10": (125.0, 31.2), "RTX 4090": (165.2, 82.6), "RTX 3090": (71.0, 35.6),
    "V100": (125.0, 15.7), "T4": (65.0, 8.1),
}


def cpu_peak_gflops(fma_units: int) -> tuple[float, str]:
  """fp32 peak of this process's CPU cores by the formula in the module docstring, and the formula."""
  cores = len(os.sched_getaffinity(0))
  ghz, lanes = 0.0, 4
  with open("/proc/cpuinfo", encoding="utf-8") as f:
    info = f.read()
  for line in info.splitlines():
    if line.startswith("cpu MHz") and not ghz:
      ghz = float(line.split(":")[1]) / 1e3
  flags_line = next((l for l in info.splitlines() if l.startswith("flags")), "")
  lanes = 16 if " avx512f" in flags_line else 8 if " avx2" in flags_line else 4
  peak = cores * ghz * fma_units * lanes * 2
  return peak, f"{cores} cores x {ghz:.2f} GHz x {fma_units} FMA x {lanes} lanes x 2 = {peak:.0f} GFLOP/s"


def device_peak_gflops(compute_dtype: str) -> tuple[float, str]:
  device = jax.devices()[0]
  if device.platform == "cpu":
    return cpu_peak_gflops(_FMA_UNITS.value)
  for name, (bf16, fp32) in GPU_PEAK_TFLOPS.items():
    if name in device.device_kind:
      peak = 1e3 * (bf16 if compute_dtype == "bfloat16" else fp32)
      return peak * jax.device_count(), f"{device.device_kind}: {peak:.0f} GFLOP/s ({compute_dtype}) per device"
  return float("nan"), f"unknown peak for {device.device_kind}"


def peak_memory_bytes() -> int:
  """GPU: the devices' peak bytes in use; CPU: the process's peak resident set (ru_maxrss)."""
  stats = [d.memory_stats() or {} for d in jax.local_devices()]
  if all("peak_bytes_in_use" in s for s in stats):
    return sum(s["peak_bytes_in_use"] for s in stats)
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def time_config(config, batch_size: int, steps: int, repeats: int) -> dict:
  config = config.copy_and_resolve_references()
  config.train.batch_size = batch_size
  mesh = runs.make_mesh()
  _, state, train_step = generation.create_state_and_step(config, mesh)
  # Random data through the real pipeline, so the batch has the step's exact structure.
  batch = input_pipeline.random_device_batch(config, mesh)
  start = time.perf_counter()
  compiled = train_step.lower(state, batch).compile()
  compile_seconds = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  # cost_analysis counts one device's program; the step runs it on every device.
  flops = float(cost.get("flops", float("nan"))) * jax.device_count()
  memory = compiled.memory_analysis()
  state, metrics = train_step(state, batch)
  jax.block_until_ready(metrics)
  per_repeat = []
  faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
      state, metrics = train_step(state, batch)
    jax.block_until_ready((state, metrics))
    per_repeat.append((time.perf_counter() - start) / steps)
  # Minor page faults per step: memory the allocator returned to the kernel and touched again
  # (gan/host_memory.py); independent of other load on the machine, unlike the times.
  faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / (repeats * steps)
  ms = [1e3 * t for t in per_repeat]
  peak, peak_formula = device_peak_gflops(config.model.get("dtype", "float32"))
  gflops = flops / statistics.median(per_repeat) / 1e9
  return {
      "batch_size": batch_size,
      "images_per_s_median": batch_size / statistics.median(per_repeat),
      "images_per_s_min": batch_size / max(per_repeat),
      "images_per_s_max": batch_size / min(per_repeat),
      "ms_per_step_median": statistics.median(ms),
      "compile_s": compile_seconds,
      "compiles": train_step._cache_size(),  # pylint: disable=protected-access
      "flops_per_step": flops,
      "gflops_per_s": gflops,
      "peak_gflops_per_s": peak,
      "peak_formula": peak_formula,
      "fraction_of_peak": gflops / peak,
      "xla_temp_bytes": getattr(memory, "temp_size_in_bytes", None),
      "xla_argument_bytes": getattr(memory, "argument_size_in_bytes", None),
      "peak_memory_bytes": peak_memory_bytes(),
      "minor_page_faults_per_step": faults,
  }


def main(argv):
  del argv
  config = _CONFIG.value
  start_time = time.time()
  results = [time_config(config, int(b), _STEPS.value, _REPEATS.value) for b in _BATCH_SIZES.value]
  name = os.path.splitext(os.path.basename(config_flags.get_config_filename(flags.FLAGS["config"])))[0]
  record = {
      "config": name, "model": config.model.name, "image_size": config.data.image_size,
      "channels": config.data.channels, "devices": jax.device_count(),
      "device_kind": jax.devices()[0].device_kind, "jax": jax.__version__,
      "cpu_count": os.cpu_count(), "platform": platform.platform(), "steps": _STEPS.value,
      "repeats": _REPEATS.value, "results": results,
      "provenance": provenance.finish(provenance.record(config=config, start_time=start_time)),
  }
  print(f"\n{name} ({config.model.name}, {config.data.image_size}x{config.data.image_size}x"
        f"{config.data.channels}) on {jax.device_count()} x {jax.devices()[0].device_kind}\n")
  print("| batch | images/s (median) | min | max | ms/step | GFLOP/step | GFLOP/s | % of peak | compile (s) "
        "| XLA temp (MiB) | peak memory (MiB) | page faults / step |")
  print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  for r in results:
    print(f"| {r['batch_size']} | {r['images_per_s_median']:.0f} | {r['images_per_s_min']:.0f} | "
          f"{r['images_per_s_max']:.0f} | {r['ms_per_step_median']:.1f} | {r['flops_per_step'] / 1e9:.2f} | "
          f"{r['gflops_per_s']:.0f} | {100 * r['fraction_of_peak']:.0f} | {r['compile_s']:.1f} | "
          f"{(r['xla_temp_bytes'] or 0) / 2**20:.0f} | {r['peak_memory_bytes'] / 2**20:.0f} | "
          f"{r['minor_page_faults_per_step']:.0f} |")
  print(f"\nPeak: {results[0]['peak_formula']}; compiles per batch size: {[r['compiles'] for r in results]}")
  suffix = f"_{jax.device_count()}dev" if jax.device_count() > 1 else ""
  out = _OUT.value or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"throughput_{name}{suffix}.json")
  os.makedirs(os.path.dirname(out), exist_ok=True)
  with open(out, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
  print(f"\nWrote {out}")


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # a process setting: applied by the program, not on import
  app.run(main)
