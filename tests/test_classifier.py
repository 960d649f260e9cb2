"""The domain classifier as a task of the shared loop (train, stop and resume, load) and gan.evaluate
on a tiny run."""

import json
import os
from pathlib import Path
import re
import shutil
import signal

import jax
import numpy as np
import pytest

from conftest import assert_states_equal
from conftest import launch_command
from conftest import wait_for
from configs import classifier_fashion_mnist
from configs import default
from configs import tiny
from gan import checkpointing
from gan import data
from gan import evaluate
from gan import runs
from gan import tasks
from gan import train
from gan import writers
from gan.metrics import classifier
from gan.metrics import train_classifier
from gan.metrics import evaluation
from gan.tasks import classifier as classifier_task

REPO = Path(__file__).resolve().parents[1]
# The tiny classifier of these tests, as --config.* overrides of configs/classifier_fashion_mnist.py
# (the subprocess test passes the same values on the command line).
TINY = {"data.random_flip": False, "model.width": 8, "train.batch_size": 64, "train.steps": 60,
        "train.log_every": 30, "train.checkpoint_every": 30, "eval.every": 30}


def with_split(data_config, split):
  config = data_config.copy_and_resolve_references()
  config.split = split
  return config


def tiny_config(data_dir, **overrides):
  return default.apply_overrides(classifier_fashion_mnist.get_config(),
                                 {"data.dir": data_dir, **TINY, **overrides})


@pytest.fixture(scope="module")
def bars_dir(tmp_path_factory, write_idx):
  """Class c: a bright horizontal bar at rows 2c+2..2c+4 on noise; any working CNN separates them."""
  folder = tmp_path_factory.mktemp("bars")
  rng = np.random.default_rng(0)
  for split, n in (("train", 512), ("test", 200)):
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
      images[i, 2 * c + 2:2 * c + 5, 3:25] = 240
    write_idx(folder, images, labels, split=split)
  return str(folder)


@pytest.fixture(scope="module")
def trained_classifier(tmp_path_factory, bars_dir):
  """60 uninterrupted steps of the tiny classifier: (workdir, config, final state, load's meta)."""
  config = tiny_config(bars_dir)
  workdir = str(tmp_path_factory.mktemp("classifier"))
  state = train.train_and_evaluate(config, workdir)
  return workdir, config, state, train_classifier.load(workdir)[2]


@pytest.mark.slow
def test_classifier_learns_saves_and_loads(trained_classifier):
  workdir, config, state, meta = trained_classifier
  assert meta["test_accuracy"] >= 0.9, meta["test_accuracy"]   # chance: 0.1
  assert meta["test_examples"] == 200 and meta["step"] == 60
  assert meta["class_names"][7] == "Sneaker" and meta["config"]["task"] == "classifier"
  model, variables, _ = train_classifier.load(workdir)
  assert_states_equal(variables, train_classifier.variables_of(state))
  test_set = data.load_dataset(with_split(config.data, "test"))
  assert train_classifier.evaluate(model, variables, test_set) == meta["test_accuracy"]
  logits, features = train_classifier.predict(model, variables,
                                              train_classifier.to_model_input(test_set.images[:5]))
  assert logits.shape == (5, 10) and features.shape == (5, classifier.FEATURE_DIM)
  assert np.all(features >= 0)                       # ReLU features
  # Evaluated at steps 30 and 60 (eval.every, the end); the best by test error is kept apart.
  evals = [r for r in writers.read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "eval/test_accuracy" in r]
  assert [r["step"] for r in evals] == [30, 60]
  assert evals[-1]["eval/test_accuracy"] == meta["test_accuracy"]
  np.testing.assert_allclose(evals[-1]["eval/test_error"], 1 - meta["test_accuracy"])
  assert os.listdir(os.path.join(workdir, "best_checkpoint")) == [
      str(min(evals, key=lambda r: r["eval/test_error"])["step"])]
  # Any run opens the same way.
  restored_config, restored, _ = tasks.restore(workdir)
  assert restored_config.task == "classifier"
  assert_states_equal(restored, state)


def launch_alias(args, log_path):
  """The former command `python -m gan.metrics.train_classifier ARGS` (an alias of gan.main)."""
  return launch_command("gan.metrics.train_classifier", args, log_path)


@pytest.mark.slow
def test_sigterm_mid_run_then_resume_ends_with_the_uninterrupted_weights(trained_classifier, bars_dir, tmp_path):
  """SIGTERM to the training program mid-run: it saves the current step and exits 0; training again
  resumes there (same batches, same dropout keys) and ends with exactly the uninterrupted weights."""
  _, config, uninterrupted, meta = trained_classifier
  workdir = tmp_path / "run"
  overrides = {**TINY, "data.dir": bars_dir, "train.log_every": 2}
  proc = launch_alias(["--config", "configs/classifier_fashion_mnist.py", "--workdir", str(workdir),
                       *[f"--config.{k}={v}" for k, v in overrides.items()]], tmp_path / "run.log")
  wait_for(lambda: (workdir / "metrics.jsonl").exists()
           and any("loss" in r for r in writers.read_jsonl(workdir / "metrics.jsonl")))
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=300) == 0, (tmp_path / "run.log").read_text()[-3000:]
  log = (tmp_path / "run.log").read_text()
  stopped = int(re.search(r"Stopped at step (\d+) after a signal", log).group(1))
  assert 2 <= stopped < 60 and str(stopped) in os.listdir(workdir / "checkpoints")
  with pytest.raises(runs.RunError, match=f"stopped at step {stopped} of 60 before its test accuracy"):
    train_classifier.load(str(workdir))
  state = train.train_and_evaluate(default.apply_overrides(config, {"train.log_every": 2}), str(workdir))
  assert int(state.step) == 60
  assert_states_equal(state, uninterrupted)
  assert train_classifier.load(str(workdir))[2]["test_accuracy"] == meta["test_accuracy"]


def test_checkpoint_of_another_width_is_refused(trained_classifier, bars_dir, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained_classifier[0], workdir)
  with pytest.raises(checkpointing.CheckpointMismatchError, match="model.width: checkpoint 8 vs config 16"):
    train.train_and_evaluate(tiny_config(bars_dir, **{"model.width": 16, "train.steps": 90}), str(workdir))
  assert sorted(os.listdir(workdir / "checkpoints")) == ["30", "60"]


def test_load_without_a_run_says_how_to_train(tmp_path):
  with pytest.raises(runs.RunError, match="No classifier checkpoint in .*Train one with: python -m gan.main "
                                          "--config configs/classifier_fashion_mnist.py"):
    train_classifier.load(str(tmp_path))
  os.makedirs(tmp_path / "checkpoints" / "3000")       # the layout of the former private trainer
  with pytest.raises(runs.RunError, match="saved by an older version"):
    train_classifier.load(str(tmp_path))


@pytest.mark.parametrize("override,message", [
    ({"eval.every": 0}, "eval.every must be > 0 for task 'classifier'"),
    ({"model.dropout": 1.0}, r"model.dropout must be in \[0, 1\), got 1.0"),
    ({"optimizer.lr": 0.0}, "optimizer.lr must be positive, got 0.0"),
])
def test_bad_classifier_config_values(override, message):
  with pytest.raises(runs.ConfigError, match=message):
    train.check_config(default.apply_overrides(classifier_fashion_mnist.get_config(), override))


@pytest.mark.slow
def test_fit_in_memory_is_the_task_step_over_the_task_batches(trained_classifier):
  """`fit` (the trainer of the classification accuracy score) gives exactly the shared loop's weights."""
  _, config, state, _ = trained_classifier
  model, variables = classifier_task.fit(config, data.load_dataset(config.data))
  assert model == train_classifier.make_model(config)
  assert_states_equal(variables, train_classifier.variables_of(state))


@pytest.mark.slow
def test_evaluate_tiny_run(tmp_path, bars_dir, trained_classifier):
  classifier_dir, _, _, classifier_meta = trained_classifier
  config = tiny.get_config()
  config.data.dir = bars_dir
  config.model.conditional = True
  config.eval.every = 2
  config.eval.num_samples = 100
  config.eval.classifier_dir = classifier_dir
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  # In-training evaluation: eval/* scalars at steps 2 and 4, best checkpoint by FID kept apart.
  evals = [r for r in writers.read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "eval/fid" in r]
  assert [r["step"] for r in evals] == [2, 4]
  best_step = min(evals, key=lambda r: r["eval/fid"])["step"]
  assert os.listdir(os.path.join(workdir, "best_checkpoint")) == [str(best_step)]
  record = evaluate.evaluate_run(workdir, classifier_dir, num_samples=200, cas_samples=256, cas_steps=10)
  model, floor = record["model"], record["real_data_floor"]
  assert record == json.load(open(os.path.join(workdir, "metrics.json")))
  # 4 steps of a tiny GAN are far from the data; train vs test of the same data is close.
  assert model["fid"] > floor["fid"] >= 0
  assert 0 <= model["recognition_accuracy"] <= 1 and floor["recognition_accuracy"] >= 0.9
  assert 0 <= model["precision"] <= 1 and 0 <= floor["recall"] <= 1
  assert 1 <= model["classes_covered"] <= 10
  # CAS: a classifier trained on 256 generated images only, tested on real; the floor is the
  # domain classifier's own test accuracy (trained on real data).
  assert 0 <= model["classification_accuracy_score"] <= 1
  assert floor["classification_accuracy_score"] == classifier_meta["test_accuracy"]
  # Real features are cached once per split and reused (same numbers on a second evaluation).
  cached = sorted(os.listdir(os.path.join(classifier_dir, "reference_features")))
  assert len(cached) == 2 and all("-domain-32px" in name for name in cached)
  again = evaluate.evaluate_run(workdir, classifier_dir, num_samples=200)["model"]
  assert again == {k: v for k, v in model.items() if k != "classification_accuracy_score"}
  assert "| fid |" in evaluate.format_table(record)


@pytest.mark.slow
def test_perceptual_distance_in_domain_features(trained_classifier, bars_dir):
  workdir, config, _, _ = trained_classifier
  model, variables, _ = train_classifier.load(workdir)
  test_set = data.load_dataset(with_split(config.data, "test"))
  x = train_classifier.to_model_input(test_set.images[:8])
  rng = np.random.default_rng(0)
  small = np.clip(x + 0.1 * rng.normal(size=x.shape), -1, 1).astype(np.float32)
  large = np.clip(x + 0.6 * rng.normal(size=x.shape), -1, 1).astype(np.float32)
  d = lambda a, b: np.asarray(classifier.perceptual_distance(model, variables, a, b))
  np.testing.assert_allclose(d(x, x), 0.0, atol=1e-6)
  np.testing.assert_allclose(d(x, small), d(small, x), rtol=1e-5)          # symmetric
  assert np.all(d(x, small) > 0) and np.all(d(x, large) > d(x, small))     # grows with the damage
  # Unit-normalised channel vectors: each stage's squared distance is at most 4, so the mean is too.
  assert np.all(d(x, -x) <= 4.0 + 1e-5)


def test_evaluate_refuses_a_classifier_of_other_channels(tmp_path, monkeypatch):
  import ml_collections
  os.makedirs(tmp_path / "checkpoints")
  meta = {"config": {"data": {"channels": 1, "name": "fashion_mnist"}}}
  monkeypatch.setattr(evaluation.train_classifier, "load", lambda d: (None, None, meta))
  rgb = ml_collections.ConfigDict({"channels": 3, "name": "products_photo"})
  with pytest.raises(ValueError, match="trained on 1-channel fashion_mnist images, but the run generates "
                                       "3-channel products_photo images: pass --classifier"):
    evaluation.check_classifier_matches(str(tmp_path), rgb)
  evaluation.check_classifier_matches(str(tmp_path), ml_collections.ConfigDict({"channels": 1, "name": "x"}))
