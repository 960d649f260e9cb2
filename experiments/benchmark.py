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

`--features inception` evaluates (and tabulates) in InceptionV3 space instead (gan.evaluate; needs
`python -m gan.weights fetch inception`), e.g. with `--reference test` as Lucic et al. 2018: the
record is result_inception.json beside result.json (finished runs are not retrained, only
evaluated) and the tables results_inception.{csv,md,json}.

Provenance (gan/provenance.py): each result.json holds the run's full config, git revision, package
versions, seed, devices and wall time under "provenance"; the sweep process writes its own record to
<workdir>/provenance.json (provenance_shard_<i>_of_<n>.json / provenance_index_<k>.json when sharded).
"""

from __future__ import annotations

import collections
import csv
import importlib.util
import json
import os
import statistics
import sys
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import default as default_config  # pylint: disable=g-import-not-at-top
from gan import host_memory  # pylint: disable=g-import-not-at-top
from gan import evaluate  # pylint: disable=g-import-not-at-top
from gan import provenance  # pylint: disable=g-import-not-at-top
from gan import train  # pylint: disable=g-import-not-at-top
from gan.metrics import evaluation

_SWEEP = flags.DEFINE_string("sweep", None, "Sweep file, optionally with an argument: path.py[:arg].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder of the sweep (one sub-folder per run).")
_CLASSIFIER = flags.DEFINE_string("classifier", "runs/classifier_fashion_mnist", "Domain classifier run.")
_SHARD = flags.DEFINE_integer("shard", 0, "Run only runs i with i % num_shards == shard.")
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 1, "Number of machines / processes sharing the sweep.")
_INDEX = flags.DEFINE_integer("index", -1, "Run only this run index (>= 0).")
_REPORT_ONLY = flags.DEFINE_boolean("report_only", False, "Only tabulate finished runs.")
_FEATURES = flags.DEFINE_enum("features", "domain", sorted(evaluation.FEATURE_NETWORKS),
                              "Feature network of the evaluation (gan.evaluate).")
_REFERENCE = flags.DEFINE_enum("reference", "train", ["train", "test"], "Real split the samples are compared with.")
_EVAL_SAMPLES = flags.DEFINE_integer("eval_samples", 0, "Generated images per run's evaluation (0 = the sweep "
                                     "file's EVAL_SAMPLES). Fewer samples bias FID upwards: compare only runs "
                                     "(and floors) evaluated with the same count.")


def suffix(features: str) -> str:
  """File-name suffix of a feature network's records and tables ("" for the domain classifier)."""
  return "" if features == "domain" else f"_{features}"

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


def run_one(base_config, overrides: dict[str, Any], directory: str, classifier_dir: str,
            eval_samples: int, features: str = "domain", reference: str = "train") -> dict[str, Any]:
  """Trains (or resumes) and evaluates one run; returns its result record (also in
  result<suffix(features)>.json)."""
  result_path = os.path.join(directory, f"result{suffix(features)}.json")
  if os.path.exists(result_path):
    with open(result_path, encoding="utf-8") as f:
      return json.load(f)
  config = default_config.apply_overrides(base_config, overrides)
  os.makedirs(directory, exist_ok=True)
  attempt_start = time.time()
  # Wall time accumulates over interrupted attempts.
  timing_path = os.path.join(directory, "wall_seconds.json")
  previous = json.load(open(timing_path, encoding="utf-8"))["train"] if os.path.exists(timing_path) else 0.0
  start = time.perf_counter()
  state = train.train_and_evaluate(config, directory)
  train_seconds = previous + time.perf_counter() - start
  with open(timing_path, "w", encoding="utf-8") as f:
    json.dump({"train": train_seconds}, f)
  # Finished: train.steps reached, or train.time_budget_minutes used up (then fewer steps).
  record_path = os.path.join(directory, provenance.RUN_RECORD)
  finished = (provenance.read(record_path).get("status") == "finished" if os.path.exists(record_path)
              else int(state.step) >= config.train.steps)
  if not finished:   # stopped by a signal: resume later, record nothing
    raise SystemExit(f"Run {directory} stopped at step {int(state.step)}; rerun the sweep to resume it.")
  start = time.perf_counter()
  record = evaluate.evaluate_run(directory, classifier_dir, num_samples=eval_samples, seed=0,
                                 features=features, reference_split=reference)
  result = {
      "group": overrides["group"], "seed": overrides["seed"], "overrides": overrides,
      "train_wall_seconds": train_seconds, "eval_wall_seconds": time.perf_counter() - start,
      "steps": int(state.step), "metrics": record["model"], "real_data_floor": record["real_data_floor"],
      # Config, git revision, packages, seed, devices; wall_seconds: this (last) attempt, train + eval.
      "provenance": provenance.finish(provenance.record(
          config=config, seed=overrides["seed"], start_time=attempt_start,
          extra={"overrides": overrides, "eval_samples": eval_samples, "classifier": classifier_dir,
                 "features": features, "reference": reference,
                 "computed_with": record["computed_with"]})),
  }
  with open(result_path, "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2)
  return result


def sweep_record_name(shard: int, num_shards: int, index: int) -> str:
  """File of this process's sweep provenance: machines sharing a sweep must not overwrite each other's."""
  if index >= 0:
    return f"provenance_index_{index}.json"
  return "provenance.json" if num_shards == 1 else f"provenance_shard_{shard}_of_{num_shards}.json"


def mean_std(values: list[float]) -> str:
  if not values:
    return "-"
  if len(values) == 1:
    return f"{values[0]:.3f}"
  return f"{statistics.mean(values):.3f} +- {statistics.stdev(values):.3f}"


def write_report(workdir: str, results: list[dict[str, Any]], command: str, features: str = "domain",
                 reference: str = "train") -> str:
  """results<suffix>.csv, .json and .md in `workdir`; returns the markdown."""
  name = f"results{suffix(features)}"
  with open(os.path.join(workdir, f"{name}.csv"), "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["group", "seed", *METRICS, "train_wall_seconds", "steps"])
    for r in results:
      writer.writerow([r["group"], r["seed"], *[r["metrics"].get(k, "") for k in METRICS],
                       f"{r['train_wall_seconds']:.1f}", r["steps"]])
  with open(os.path.join(workdir, f"{name}.json"), "w", encoding="utf-8") as f:
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
    floor_name = "train vs test" if reference == "train" else "train subset vs test"
    lines.append(f"| real-data floor ({floor_name}) | - | {' | '.join(cells)} | - |")
  space = "domain features" if features == "domain" else f"{features} features, reference split {reference}"
  lines += ["", f"Mean +- sample std over seeds; groups sorted by mean FID ({space}, lower is better)."]
  revisions = collections.Counter(
      r["provenance"]["git"]["revision"][:12] + (" (modified)" if r["provenance"]["git"]["dirty"] else "")
      for r in results if "provenance" in r)
  if revisions:
    lines.append("Code: " + ", ".join(f"{rev} ({n} runs)" for rev, n in sorted(revisions.items())) +
                 "; each run's result.json holds its full provenance (config, packages, devices).")
  markdown = "\n".join(lines) + "\n"
  with open(os.path.join(workdir, f"{name}.md"), "w", encoding="utf-8") as f:
    f.write(markdown)
  return markdown


def main(argv):
  del argv
  if not _SWEEP.value or not _WORKDIR.value:
    raise app.UsageError("--sweep and --workdir are required.")
  if not 0 <= _SHARD.value < _NUM_SHARDS.value:
    raise app.UsageError(f"--shard must be in [0, --num_shards={_NUM_SHARDS.value}), got {_SHARD.value}.")
  module, arg = load_sweep(_SWEEP.value)
  eval_samples = _EVAL_SAMPLES.value or module.EVAL_SAMPLES
  base_config, sweep = module.get_base_config(arg), module.get_sweep(arg)
  train.check_config(base_config)
  for overrides in sweep:   # every run's config is checked before the first one trains
    train.check_config(default_config.apply_overrides(base_config, overrides))
  selected = ([_INDEX.value] if _INDEX.value >= 0
              else [i for i in range(len(sweep)) if i % _NUM_SHARDS.value == _SHARD.value])
  os.makedirs(_WORKDIR.value, exist_ok=True)
  sweep_start = time.time()
  if not _REPORT_ONLY.value:
    for i in selected:
      overrides = sweep[i]
      logging.info("Sweep run %d / %d: %s", i + 1, len(sweep), overrides)
      run_one(base_config, overrides, run_dir(_WORKDIR.value, overrides), _CLASSIFIER.value,
              eval_samples, _FEATURES.value, _REFERENCE.value)
  finished = []
  for overrides in sweep:
    path = os.path.join(run_dir(_WORKDIR.value, overrides), f"result{suffix(_FEATURES.value)}.json")
    if os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        finished.append(json.load(f))
  command = f"python -m experiments.benchmark --sweep {_SWEEP.value} --workdir {_WORKDIR.value}"
  if _FEATURES.value != "domain":
    command += f" --features {_FEATURES.value} --reference {_REFERENCE.value}"
  if _EVAL_SAMPLES.value:
    command += f" --eval_samples {_EVAL_SAMPLES.value}"
  if not _REPORT_ONLY.value:
    path = os.path.join(_WORKDIR.value, sweep_record_name(_SHARD.value, _NUM_SHARDS.value, _INDEX.value))
    provenance.write(path, provenance.finish(provenance.record(
        config=base_config, start_time=sweep_start,
        extra={"sweep": _SWEEP.value, "num_runs": len(sweep), "runs_selected": selected,
               "runs_finished": len(finished), "eval_samples": eval_samples,
               "classifier": _CLASSIFIER.value, "features": _FEATURES.value, "reference": _REFERENCE.value})))
  print(write_report(_WORKDIR.value, finished, command, _FEATURES.value, _REFERENCE.value))
  print(f"{len(finished)} / {len(sweep)} runs finished; tables in "
        f"{_WORKDIR.value}/results{suffix(_FEATURES.value)}.md")


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # a process setting: applied by the program, not on import
  app.run(main)
