"""The domain classifier (train, save, load) and gan.evaluate on a tiny run."""

import json
import os

import numpy as np
import pytest

from configs import classifier_fashion_mnist
from configs import tiny
from gan import data
from gan import evaluate
from gan import train
from gan import writers
from gan.metrics import classifier
from gan.metrics import train_classifier


def with_split(data_config, split):
  config = data_config.copy_and_resolve_references()
  config.split = split
  return config


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
  config = classifier_fashion_mnist.get_config()
  config.data.dir = bars_dir
  config.data.random_flip = False
  config.model.width = 8
  config.train.batch_size = 64
  config.train.steps = 60
  config.train.log_every = 30
  workdir = str(tmp_path_factory.mktemp("classifier"))
  return workdir, config, train_classifier.train_and_evaluate(config, workdir)


@pytest.mark.slow
def test_classifier_learns_saves_and_loads(trained_classifier):
  workdir, config, meta = trained_classifier
  assert meta["test_accuracy"] >= 0.9, meta["test_accuracy"]
  assert meta["class_names"][7] == "Sneaker"
  model, variables, loaded_meta = train_classifier.load(workdir)
  assert loaded_meta["test_accuracy"] == meta["test_accuracy"]
  test_set = data.load_dataset(with_split(config.data, "test"))
  assert train_classifier.evaluate(model, variables, test_set) == meta["test_accuracy"]
  logits, features = train_classifier.predict(model, variables,
                                              train_classifier.to_model_input(test_set.images[:5]))
  assert logits.shape == (5, 10) and features.shape == (5, classifier.FEATURE_DIM)
  assert np.all(features >= 0)                       # ReLU features


def test_load_without_checkpoint_says_how_to_train(tmp_path):
  with pytest.raises(FileNotFoundError, match="gan.metrics.train_classifier"):
    train_classifier.load(str(tmp_path))


@pytest.mark.slow
def test_evaluate_tiny_run(tmp_path, bars_dir, trained_classifier):
  classifier_dir = trained_classifier[0]
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
  assert floor["classification_accuracy_score"] == trained_classifier[2]["test_accuracy"]
  # Real features are cached once per split and reused (same numbers on a second evaluation).
  cached = sorted(os.listdir(os.path.join(classifier_dir, "reference_features")))
  assert len(cached) == 2 and all("-domain-32px" in name for name in cached)
  again = evaluate.evaluate_run(workdir, classifier_dir, num_samples=200)["model"]
  assert again == {k: v for k, v in model.items() if k != "classification_accuracy_score"}
  assert "| fid |" in evaluate.format_table(record)


@pytest.mark.slow
def test_perceptual_distance_in_domain_features(trained_classifier, bars_dir):
  workdir, config, _ = trained_classifier
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
  monkeypatch.setattr(evaluate.train_classifier, "load", lambda d: (None, None, meta))
  rgb = ml_collections.ConfigDict({"channels": 3, "name": "products_photo"})
  with pytest.raises(ValueError, match="trained on 1-channel fashion_mnist images, but the run generates "
                                       "3-channel products_photo images: pass --classifier"):
    evaluate.check_classifier_matches(str(tmp_path), rgb)
  evaluate.check_classifier_matches(str(tmp_path), ml_collections.ConfigDict({"channels": 1, "name": "x"}))
