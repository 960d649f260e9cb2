"""The sweep runner's bookkeeping: overrides, run folders, skipping finished runs, the tables."""

import csv
import json
import os

import pytest

from configs import default
from configs import tiny
from experiments import benchmark


def fake_result(group, seed, fid, recognition):
  return {"group": group, "seed": seed, "train_wall_seconds": 60.0 * (seed + 1), "steps": 10,
          "metrics": {"fid": fid, "kid": 0.01, "precision": 0.8, "recall": 0.7,
                      "recognition_accuracy": recognition, "classes_covered": 10},
          "real_data_floor": {"fid": 0.02, "kid": 0.0, "precision": 0.9, "recall": 0.9,
                              "recognition_accuracy": 0.92, "classes_covered": 10}}


def test_report_gives_mean_and_sample_std_over_seeds_sorted_by_fid(tmp_path):
  results = [fake_result("hinge", 0, 2.0, 0.8), fake_result("hinge", 1, 4.0, 0.9),
             fake_result("non_saturating", 0, 1.0, 0.85), fake_result("non_saturating", 1, 1.0, 0.85)]
  markdown = benchmark.write_report(str(tmp_path), results, "cmd")
  rows = [line for line in markdown.splitlines() if line.startswith("| ") and "group" not in line]
  assert rows[0].startswith("| non_saturating | 2 | 1.000 +- 0.000 |")   # lower FID first
  # hinge: mean 3, sample std of (2, 4) = sqrt(2) = 1.414; recognition mean 0.85, std 0.0707.
  assert rows[1].startswith("| hinge | 2 | 3.000 +- 1.414 |")
  assert "0.850 +- 0.071" in rows[1]
  assert rows[1].endswith("| 1.5 |")                                     # mean of 1 and 2 minutes
  assert rows[2].startswith("| real-data floor (train vs test) | - | 0.020 |")
  with open(tmp_path / "results.csv", encoding="utf-8") as f:
    table = list(csv.DictReader(f))
  assert [r["group"] for r in table] == ["hinge", "hinge", "non_saturating", "non_saturating"]
  assert float(table[1]["fid"]) == 4.0


def test_overrides_apply_and_unknown_keys_fail():
  config = default.apply_overrides(tiny.get_config(), {"group": "x", "loss.name": "hinge", "seed": 3,
                                                         "reg.gp_weight": 10.0})
  assert (config.loss.name, config.seed, config.reg.gp_weight) == ("hinge", 3, 10.0)
  with pytest.raises(ValueError, match="Override 'loss.nmae' is not a config key"):
    default.apply_overrides(tiny.get_config(), {"group": "x", "loss.nmae": "hinge"})


def test_finished_runs_are_not_retrained(tmp_path):
  overrides = {"group": "hinge", "seed": 0}
  directory = benchmark.run_dir(str(tmp_path), overrides)
  assert directory == os.path.join(str(tmp_path), "hinge", "seed_0")
  os.makedirs(directory)
  with open(os.path.join(directory, "result.json"), "w", encoding="utf-8") as f:
    json.dump(fake_result("hinge", 0, 1.5, 0.9), f)
  # A config that would fail to train: the finished result is returned without touching it.
  config = tiny.get_config()
  config.data.dir = str(tmp_path / "missing")
  assert benchmark.run_one(config, overrides, directory, "no_classifier", 10)["metrics"]["fid"] == 1.5


def test_inception_evaluation_of_a_finished_run_has_its_own_record_and_tables(tmp_path, monkeypatch):
  """A finished (domain-evaluated) run is evaluated again in Inception space without retraining;
  the record and tables get their own names, the table says which space and reference split."""
  overrides = {"group": "hinge", "seed": 0}
  directory = benchmark.run_dir(str(tmp_path), overrides)
  os.makedirs(directory)
  with open(os.path.join(directory, "result.json"), "w", encoding="utf-8") as f:
    json.dump(fake_result("hinge", 0, 1.5, 0.9), f)
  config = tiny.get_config()
  calls = []
  monkeypatch.setattr(benchmark.train, "train_and_evaluate",
                      lambda config, workdir: type("State", (), {"step": config.train.steps})())
  def fake_evaluate(workdir, classifier_dir, **kwargs):
    calls.append(kwargs)
    return {"model": {"fid": 30.0}, "real_data_floor": {"fid": 2.0}, "computed_with": {"protocol": "x"}}
  monkeypatch.setattr(benchmark.evaluate, "evaluate_run", fake_evaluate)
  result = benchmark.run_one(config, overrides, directory, "no_classifier", 10, "inception", "test")
  assert calls == [{"num_samples": 10, "seed": 0, "features": "inception", "reference_split": "test"}]
  assert result["metrics"]["fid"] == 30.0
  assert json.load(open(os.path.join(directory, "result_inception.json")))["metrics"]["fid"] == 30.0
  assert json.load(open(os.path.join(directory, "result.json")))["metrics"]["fid"] == 1.5   # untouched
  markdown = benchmark.write_report(str(tmp_path), [result], "cmd", "inception", "test")
  assert "inception features, reference split test" in markdown
  assert "| real-data floor (train subset vs test) | - | 2.000 |" in markdown
  assert sorted(f for f in os.listdir(tmp_path) if f.startswith("results")) == [
      "results_inception.csv", "results_inception.json", "results_inception.md"]


def test_losses_sweep_file_has_every_loss_and_three_seeds():
  module, arg = benchmark.load_sweep(os.path.join(os.path.dirname(__file__), "..", "configs", "sweeps", "losses.py"))
  sweep = module.get_sweep(arg)
  from gan.losses import adversarial
  assert sorted({s["group"] for s in sweep}) == sorted(adversarial.LOSSES)
  assert all(sorted(s["seed"] for s in sweep if s["group"] == g) == [0, 1, 2] for g in adversarial.LOSSES)
  base = module.get_base_config(arg)
  from gan import train
  for overrides in sweep:
    train.check_config(default.apply_overrides(base, overrides))


def test_losses_sweep_budgets_by_argument():
  path = os.path.join(os.path.dirname(__file__), "..", "configs", "sweeps", "losses.py")
  def steps_of(spec):
    module, arg = benchmark.load_sweep(spec)
    return module.get_base_config(arg).train.steps
  steps = {arg: steps_of(f"{path}:{arg}" if arg else path) for arg in ("", "short", "full")}
  assert steps == {"": 800, "short": 200, "full": 9000}
  module, _ = benchmark.load_sweep(path)
  with pytest.raises(ValueError, match="short"):
    module.get_base_config("shrt")


def test_recipe_sweep_stages_budget_every_run_and_keep_the_baselines():
  path = os.path.join(os.path.dirname(__file__), "..", "configs", "sweeps", "recipes.py")
  from gan import train
  module, _ = benchmark.load_sweep(path)
  screen = module.get_sweep("screen")
  assert {s["group"] for s in screen} == set(module.CANDIDATES) and {s["seed"] for s in screen} == {0}
  final = module.get_sweep("final=ns_diffaug")
  assert [(s["group"], s["seed"]) for s in final] == [
      ("textbook", 0), ("textbook", 1), ("default", 0), ("default", 1), ("ns_diffaug", 0), ("ns_diffaug", 1)]
  for arg, minutes in (("screen", 5.0), ("final=ttur", 20.0)):
    base = module.get_base_config(arg)
    assert base.train.time_budget_minutes == minutes and base.train.steps >= 100_000
    for overrides in module.get_sweep(arg):
      config = default.apply_overrides(base, overrides)
      train.check_config(config)
  textbook = default.apply_overrides(module.get_base_config("screen"), screen[0])
  assert (textbook.train.ema_decay, textbook.loss.name, textbook.optimizer.b1) == (0.0, "non_saturating", 0.5)
  with pytest.raises(ValueError, match="Unknown recipe group"):
    module.get_sweep("final=nope")
  with pytest.raises(ValueError, match="screen"):
    module.get_base_config("scren")
