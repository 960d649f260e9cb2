"""Runs a sweep (e.g. losses x architectures x regularizers x seeds) and tabulates it.

  python -m experiments.benchmark --sweep configs/sweeps/losses.py --workdir runs/sweep_losses
  python -m experiments.benchmark --sweep configs/sweeps/losses.py:full --workdir runs/sweep_full \
      --shard 3 --num_shards 8       # machine 3 of 8 runs runs 3, 11, 19, ...
  python -m experiments.benchmark --sweep configs/sweeps/losses.py --workdir runs/sweep_losses --report_only

A sweep file defines get_base_config(arg), get_sweep(arg) -> [overrides, ...] (dotted config keys
plus "group", the name of what is compared, and "seed") and EVAL_SAMPLES. Each run trains in
<workdir>/<group>/seed_<seed> through the normal train loop (so an interrupted run resumes from its
checkpoint), is evaluated with the domain classifier, and writes result.json there; finished runs
are skipped. The runner then writes <workdir>/results.csv (one row per run), results.md (mean +- std
over seeds per group, with the real-data floor and wall time) and results.json.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import default as default_config  # pylint: disable=g-import-not-at-top
from gan import evaluate  # pylint: disable=g-import-not-at-top
from gan import train  # pylint: disable=g-import-not-at-top

_SWEEP = flags.DEFINE_string("sweep", None, "Sweep file, optionally with an argument: path.py[:arg].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder of the sweep (one sub-folder per run).")
_CLASSIFIER = flags.DEFINE_string("classifier", "runs/classifier_fashion_mnist", "Domain classifier run.")
_SHARD = flags.DEFINE_integer("shard", 0, "Run only runs i with i % num_shards == shard.")
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 1, "Number of machines / processes sharing the sweep.")
_INDEX = flags.DEFINE_integer("index", -1, "Run only this run index (>= 0).")
_REPORT_ONLY = flags.DEFINE_boolean("report_only", False, "Only tabulate finished runs.")

# Columns of the tables: metric key in the evaluation record -> header.
METRICS = {"fid": "FID", "kid": "KID", "precision": "precision", "recall": "recall",
           "recognition_accuracy": "recognition acc.", "classes_covered": "classes covered"}


def load_sweep(spec: str):
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise app.UsageError(f"--sweep {path!r} is not a file (e.g. configs/sweeps/losses.py).")
  module_spec = importlib.util.spec_from_file_location("sweep", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module, arg


def run_dir(workdir: str, overrides: dict[str, Any]) -> str:
  return os.path.join(workdir, str(overrides["group"]), f"seed_{overrides['seed']}")


def git_revision() -> str:
  try:
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                          cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def run_one(base_config, overrides: dict[str, Any], directory: str, classifier_dir: str,
            eval_samples: int) -> dict[str, Any]:
  """Trains (or resumes) and evaluates one run; returns its result record (also in result.json)."""
  result_path = os.path.join(directory, "result.json")
  if os.path.exists(result_path):
    with open(result_path, encoding="utf-8") as f:
      return json.load(f)
  config = default_config.apply_overrides(base_config, overrides)
  os.makedirs(directory, exist_ok=True)
  # Wall time accumulates over interrupted attempts.
  timing_path = os.path.join(directory, "wall_seconds.json")
  previous = json.load(open(timing_path, encoding="utf-8"))["train"] if os.path.exists(timing_path) else 0.0
  start = time.perf_counter()
  state = train.train_and_evaluate(config, directory)
  train_seconds = previous + time.perf_counter() - start
  with open(timing_path, "w", encoding="utf-8") as f:
    json.dump({"train": train_seconds}, f)
  if int(state.step) < config.train.steps:   # stopped by a signal: resume later, record nothing
    raise SystemExit(f"Run {directory} stopped at step {int(state.step)}; rerun the sweep to resume it.")
  start = time.perf_counter()
  record = evaluate.evaluate_run(directory, classifier_dir, num_samples=eval_samples, seed=0)
  result = {
      "group": overrides["group"], "seed": overrides["seed"], "overrides": overrides,
      "train_wall_seconds": train_seconds, "eval_wall_seconds": time.perf_counter() - start,
      "steps": config.train.steps, "metrics": record["model"], "real_data_floor": record["real_data_floor"],
      "git_revision": git_revision(), "device_kind": jax.devices()[0].device_kind,
      "device_count": jax.device_count(), "platform": platform.platform(), "jax": jax.__version__,
  }
  with open(result_path, "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2)
  return result


def mean_std(values: list[float]) -> str:
  if not values:
    return "-"
  if len(values) == 1:
    return f"{values[0]:.3f}"
  return f"{statistics.mean(values):.3f} +- {statistics.stdev(values):.3f}"


def write_report(workdir: str, results: list[dict[str, Any]], command: str) -> str:
  """results.csv, results.json and results.md in `workdir`; returns the markdown."""
  with open(os.path.join(workdir, "results.csv"), "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["group", "seed", *METRICS, "train_wall_seconds", "steps"])
    for r in results:
      writer.writerow([r["group"], r["seed"], *[r["metrics"].get(k, "") for k in METRICS],
                       f"{r['train_wall_seconds']:.1f}", r["steps"]])
  with open(os.path.join(workdir, "results.json"), "w", encoding="utf-8") as f:
    json.dump(results, f, indent=2)
  groups: dict[str, list[dict[str, Any]]] = {}
  for r in results:
    groups.setdefault(r["group"], []).append(r)
  lines = [f"Command: `{command}`", "",
           f"| group | seeds | {' | '.join(METRICS.values())} | train wall (min, mean) |",
           "|---|---:|" + "---:|" * (len(METRICS) + 1)]
  ranked = sorted(groups.items(), key=lambda kv: statistics.mean(r["metrics"]["fid"] for r in kv[1]))
  for group, runs in ranked:
    cells = [mean_std([r["metrics"][k] for r in runs if k in r["metrics"]]) for k in METRICS]
    wall = statistics.mean(r["train_wall_seconds"] for r in runs) / 60
    lines.append(f"| {group} | {len(runs)} | {' | '.join(cells)} | {wall:.1f} |")
  if results:
    floor = results[0]["real_data_floor"]
    cells = [f"{floor[k]:.3f}" if k in floor else "-" for k in METRICS]
    lines.append(f"| real-data floor (train vs test) | - | {' | '.join(cells)} | - |")
  lines += ["", "Mean +- sample std over seeds; groups sorted by mean FID (domain features, lower is better)."]
  markdown = "\n".join(lines) + "\n"
  with open(os.path.join(workdir, "results.md"), "w", encoding="utf-8") as f:
    f.write(markdown)
  return markdown


def main(argv):
  del argv
  if not _SWEEP.value or not _WORKDIR.value:
    raise app.UsageError("--sweep and --workdir are required.")
  if not 0 <= _SHARD.value < _NUM_SHARDS.value:
    raise app.UsageError(f"--shard must be in [0, --num_shards={_NUM_SHARDS.value}), got {_SHARD.value}.")
  module, arg = load_sweep(_SWEEP.value)
  base_config, sweep = module.get_base_config(arg), module.get_sweep(arg)
  train.check_config(base_config)
  for overrides in sweep:   # every run's config is checked before the first one trains
    train.check_config(default_config.apply_overrides(base_config, overrides))
  selected = ([_INDEX.value] if _INDEX.value >= 0
              else [i for i in range(len(sweep)) if i % _NUM_SHARDS.value == _SHARD.value])
  os.makedirs(_WORKDIR.value, exist_ok=True)
  if not _REPORT_ONLY.value:
    for i in selected:
      overrides = sweep[i]
      logging.info("Sweep run %d / %d: %s", i + 1, len(sweep), overrides)
      run_one(base_config, overrides, run_dir(_WORKDIR.value, overrides), _CLASSIFIER.value,
              module.EVAL_SAMPLES)
  finished = []
  for overrides in sweep:
    path = os.path.join(run_dir(_WORKDIR.value, overrides), "result.json")
    if os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        finished.append(json.load(f))
  command = f"python -m experiments.benchmark --sweep {_SWEEP.value} --workdir {_WORKDIR.value}"
  print(write_report(_WORKDIR.value, finished, command))
  print(f"{len(finished)} / {len(sweep)} runs finished; tables in {_WORKDIR.value}/results.md")


if __name__ == "__main__":
  app.run(main)
