"""Time to compute FID on N generated samples with the domain classifier, and the real-data floor.

  python experiments/benchmark_fid.py --workdir runs/dcgan --classifier runs/classifier_fashion_mnist \
      [--num_samples 10000]

Times, separately: real-data features (first run: computed; later runs: read from the cache),
sample generation + feature extraction (compile included, then a second warm call), and the
metrics (FID alone; all of FID, KID, precision/recall/density/coverage, IS, histograms).
Prints a markdown table and writes experiments/results/fid_benchmark.json (with its provenance:
the run's config, git revision, package versions, seed, devices, wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top

from gan import host_memory  # pylint: disable=g-import-not-at-top
from gan import provenance  # pylint: disable=g-import-not-at-top
from gan.metrics import fid  # pylint: disable=g-import-not-at-top
from gan.tasks import generation
from gan.metrics import evaluation


def timed(fn):
  start = time.perf_counter()
  result = fn()
  return result, time.perf_counter() - start


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default="runs/dcgan")
  parser.add_argument("--classifier", default="runs/classifier_fashion_mnist")
  parser.add_argument("--num_samples", type=int, default=10_000)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  start_time = time.time()

  net = evaluation.domain_network(args.classifier)
  config, generator, state, meta = generation.load(args.workdir)
  real_train, t_real_train = timed(lambda: evaluation.real_features(net, config.data, "train"))
  real_test, t_real_test = timed(lambda: evaluation.real_features(net, config.data, "test"))
  sampler = evaluation.make_feature_sampler(generator, net, config.model.z_dim)

  def generate():
    return evaluation.sample_features(sampler, generator, state.ema_g_params, state.g_batch_stats, net.variables,
                                    num_samples=args.num_samples, seed=args.seed, z_dim=config.model.z_dim,
                                    standing_stats_batch=config.sample.standing_stats_batch)

  _, t_generate_cold = timed(generate)
  fake, t_generate_warm = timed(generate)

  fid_value, t_fid = timed(lambda: fid.fid_from_features(real_train["features"], fake["features"]))
  metrics, t_all = timed(lambda: evaluation.compare(real_train, fake, net, args.seed, fake["labels"]))
  floor_fake = {k: v[:args.num_samples] for k, v in real_test.items()}
  floor, t_floor = timed(lambda: evaluation.compare(real_train, floor_fake, net, args.seed, floor_fake["labels"]))

  record = {
      "workdir": args.workdir, "step": meta["step"], "num_samples": args.num_samples,
      "features": net.description, "device": jax.devices()[0].device_kind, "devices": jax.device_count(),
      "seconds": {
          "real_train_features": t_real_train, "real_test_features": t_real_test,
          "generate_and_extract_cold": t_generate_cold, "generate_and_extract_warm": t_generate_warm,
          "fid_from_features": t_fid, "all_metrics_from_features": t_all,
          "fid_total_warm": t_generate_warm + t_fid, "fid_total_cold": t_generate_cold + t_fid,
      },
      "fid": fid_value, "metrics": metrics, "real_data_floor": floor,
      "provenance": provenance.finish(provenance.record(config=config, seed=args.seed, start_time=start_time)),
  }
  s = record["seconds"]
  print(f"\nFID on {args.num_samples} samples of {args.workdir} (step {meta['step']}), {net.description}\n")
  print("| what | seconds |\n|---|---:|")
  for name, value in s.items():
    print(f"| {name} | {value:.2f} |")
  print("\n| metric | model | real-data floor (train vs test) |\n|---|---:|---:|")
  for name, value in metrics.items():
    print(f"| {name} | {value:.4g} | {floor.get(name, float('nan')):.4g} |")
  out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fid_benchmark.json")
  os.makedirs(os.path.dirname(out), exist_ok=True)
  with open(out, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
  print(f"\nWrote {out}")


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # a process setting: applied by the program, not on import
  main()
