"""Input pipeline throughput: host batches, and batches prefetched onto the local device mesh.

  python experiments/benchmark_pipeline.py [--data_dir ../shared/data/fashion_mnist] \
      [--batch_size 64 256] [--steps 500]

Loads the Fashion-MNIST training split at 32x32x1 (random data of the same shape when the IDX
files are absent, and says so), then measures images/s of
  host: `input_pipeline.batches` (gather, random flip, scaling to [-1, 1]);
  mesh: the same through `input_pipeline.prefetch_to_mesh` onto all local devices, waiting
        until every batch is on its devices.
A DCGAN train step consumes ~400 images/s on these machines (DESIGN.md), so the pipeline
should deliver well over 10x that. Prints a markdown table and writes
experiments/results/pipeline_throughput.json.
"""

import argparse
import itertools
import json
import os
from pathlib import Path
import platform
import sys
import time

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # Run as a script from a plain checkout (no pip install).

import jax  # pylint: disable=g-import-not-at-top
from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top
import ml_collections  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from gan import host_memory  # pylint: disable=g-import-not-at-top
from gan import data  # pylint: disable=g-import-not-at-top
from gan import input_pipeline  # pylint: disable=g-import-not-at-top
from gan import provenance  # pylint: disable=g-import-not-at-top

TRAIN_STEP_IMAGES_PER_S = 400  # DCGAN 32x32 step on 2 CPU cores (DESIGN.md).


def load(data_dir: Path, image_size: int) -> tuple[data.Dataset, str, float]:
  """Returns (dataset, description, load seconds)."""
  config = ml_collections.ConfigDict(dict(
      source="idx", name="fashion_mnist", dir=str(data_dir), split="train",
      image_size=image_size, channels=1, resize="pad", max_examples=0))
  start = time.perf_counter()
  try:
    dataset = data.load_dataset(config)
    return dataset, f"Fashion-MNIST train from {data_dir}", time.perf_counter() - start
  except data.DataError as e:
    print(f"Real data not available ({str(e).split('. ')[0]}): using random data of the "
          "same shape.")
  rng = np.random.default_rng(0)
  dataset = data.Dataset(rng.integers(0, 256, (60000, image_size, image_size, 1), np.uint8),
                         rng.integers(0, 10, 60000, dtype=np.int32), data.FASHION_MNIST_CLASSES)
  return dataset, "synthetic random uint8 (real data absent)", time.perf_counter() - start


def images_per_second(iterator, batch_size: int, steps: int, warmup: int = 5) -> float:
  for batch in itertools.islice(iterator, warmup):
    jax.block_until_ready(batch)
  start = time.perf_counter()
  for batch in itertools.islice(iterator, steps):
    jax.block_until_ready(batch)  # No-op for numpy; waits for the transfer for jax.Arrays.
  return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
  default_dir = Path(os.environ.get("PRODUCTGAN_DATA_DIR", REPO.parent / "shared" / "data"))
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", type=Path, default=default_dir / "fashion_mnist")
  parser.add_argument("--batch_size", type=int, nargs="+", default=[64, 256])
  parser.add_argument("--steps", type=int, default=500)
  parser.add_argument("--image_size", type=int, default=32)
  parser.add_argument("--no_flip", dest="random_flip", action="store_false",
                      help="disable random flips (on by default: the slower path)")
  parser.add_argument("--out", type=Path,
                      default=REPO / "experiments" / "results" / "pipeline_throughput.json")
  args = parser.parse_args()
  start_time = time.time()

  dataset, description, load_seconds = load(args.data_dir, args.image_size)
  print(f"{description}: {dataset.images.shape} uint8 in {load_seconds:.2f} s")
  sharding = NamedSharding(jax.make_mesh((jax.device_count(),), ("data",)), P("data"))
  rows = []
  for batch_size in args.batch_size:
    kwargs = dict(global_batch_size=batch_size, seed=0, random_flip=args.random_flip)
    host = images_per_second(input_pipeline.batches(dataset, **kwargs), batch_size, args.steps)
    on_mesh = input_pipeline.prefetch_to_mesh(input_pipeline.batches(dataset, **kwargs), sharding)
    mesh = images_per_second(on_mesh, batch_size, args.steps)
    on_mesh.close()
    rows.append(dict(batch_size=batch_size, host_images_per_s=round(host),
                     mesh_images_per_s=round(mesh),
                     mesh_vs_train_step=round(mesh / TRAIN_STEP_IMAGES_PER_S, 1)))

  result = dict(
      dataset=description, num_examples=len(dataset), image_shape=list(dataset.images.shape[1:]),
      random_flip=args.random_flip, steps=args.steps, load_seconds=round(load_seconds, 3),
      devices=[str(d) for d in jax.devices()], jax_version=jax.__version__,
      cpu_count=os.cpu_count(), python=platform.python_version(),
      date=time.strftime("%Y-%m-%d %H:%M:%S"), results=rows,
      provenance=provenance.finish(provenance.record(config=vars(args), seed=0, start_time=start_time)))
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(result, indent=2) + "\n")

  print(f"\n{len(dataset)} examples {tuple(dataset.images.shape[1:])}, load {load_seconds:.2f} s, "
        f"{jax.device_count()} device(s), random_flip={args.random_flip}, {args.steps} steps\n")
  print("| batch | host batches (img/s) | prefetch_to_mesh (img/s) | x train step (400 img/s) |")
  print("| ---: | ---: | ---: | ---: |")
  for r in rows:
    print(f"| {r['batch_size']} | {r['host_images_per_s']:,} | {r['mesh_images_per_s']:,} | "
          f"{r['mesh_vs_train_step']} |")
  print(f"\nWrote {args.out}")


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # a process setting: applied by the program, not on import
  main()
