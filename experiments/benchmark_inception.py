"""Inception feature throughput: the Flax port against the original TorchScript model run by PyTorch.

  pip install torch==2.13.0    # only for the PyTorch side of this benchmark
  python -m experiments.benchmark_inception --batch 50 --rounds 3 --batches 4

Both sides get the same uint8 images (Fashion-MNIST-sized 32x32 grayscale or 64x64 RGB, random) and
do the same work per batch, timed from host uint8 to host features: float conversion, NVIDIA
bilinear resize to 299 (StyleGAN's protocol), (x - 128) / 128, InceptionV3 to pool3. PyTorch runs
the export as shipped (torch.jit.load, eval, no_grad, torch.set_num_threads(cores)); JAX runs
gan.metrics.inception under one jit. Runs alternate (JAX, PyTorch, JAX, ...) so both see the same
machine state; the first batch of each side (compilation / warm-up) is timed separately.
Writes experiments/results/inception_throughput_<cpu>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

from gan import host_memory
from gan import provenance
from gan import weights


def jax_side(images: np.ndarray):
  import jax
  from gan.metrics import inception
  model, variables = inception.load_fid_inception()
  forward = jax.jit(lambda v, x: model.apply(v, inception.preprocess(x.astype("float32") / 127.5 - 1.0)))
  return lambda batch: np.asarray(forward(variables, batch))


def torch_side(images: np.ndarray, threads: int):
  import torch
  from experiments.inception_reference import nv_bilinear
  torch.set_num_threads(threads)
  with tempfile.TemporaryDirectory() as tmp:
    model = torch.jit.load(str(weights.download_source_file("inception", tmp)), map_location="cpu").eval()

  def run(batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
      x = torch.from_numpy(batch).permute(0, 3, 1, 2).to(torch.float32)
      if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
      return model((nv_bilinear(x) - 128) / 128).numpy()
  return run


def time_side(run, batches: list[np.ndarray]) -> float:
  """Images per second over `batches`."""
  start = time.perf_counter()
  for batch in batches:
    run(batch)
  return sum(len(b) for b in batches) / (time.perf_counter() - start)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=50)
  parser.add_argument("--batches", type=int, default=4, help="timed batches per run")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--shape", default="32,32,1", help="H,W,C of the uint8 input images")
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  start_time = time.time()
  shape = tuple(int(v) for v in args.shape.split(","))
  rng = np.random.default_rng(0)
  batches = [rng.integers(0, 256, (args.batch, *shape), dtype=np.uint8) for _ in range(args.batches)]
  threads = os.cpu_count() or 1
  sides = {"jax": jax_side(batches[0]), "pytorch": torch_side(batches[0], threads)}
  first, agreement = {}, None
  outputs = {}
  for name, run in sides.items():
    t = time.perf_counter()
    outputs[name] = run(batches[0])
    first[name] = time.perf_counter() - t
  agreement = float(np.abs(outputs["jax"] - outputs["pytorch"]).max() / np.abs(outputs["pytorch"]).max())
  rates = {name: [] for name in sides}
  for r in range(args.rounds):
    for name, run in sides.items():
      rates[name].append(time_side(run, batches))
    print(f"round {r}: " + ", ".join(f"{n} {v[-1]:.2f} img/s" for n, v in rates.items()), flush=True)
  result = {
      "cpu": provenance.cpu_model(), "cores": threads, "batch": args.batch, "image_shape": shape,
      "images_per_run": args.batch * args.batches,
      "first_batch_seconds": first, "images_per_second": rates,
      "median_images_per_second": {n: statistics.median(v) for n, v in rates.items()},
      "jax_over_pytorch": statistics.median(rates["jax"]) / statistics.median(rates["pytorch"]),
      "max_feature_difference_relative": agreement,
      "provenance": provenance.finish(provenance.record(start_time=start_time)),
  }
  import torch
  result["torch_version"] = torch.__version__
  print(json.dumps({k: v for k, v in result.items() if k != "provenance"}, indent=1))
  tag = "xeon" if "Xeon" in result["cpu"] else "epyc" if "EPYC" in result["cpu"] else "cpu"
  out = args.out or f"experiments/results/inception_throughput_{tag}_{'x'.join(map(str, shape))}.json"
  with open(out, "w") as f:
    json.dump(result, f, indent=1)
  print(f"Wrote {out}")


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # a process setting: applied by the program, not on import
  main()
