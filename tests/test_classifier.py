"""The domain classifier learns an easy synthetic task, saves with Orbax and loads back exactly."""

import numpy as np
import pytest

from configs import classifier_fashion_mnist
from gan import data
from gan.metrics import classifier
from gan.metrics import train_classifier


@pytest.mark.slow
def test_train_save_load_classifier(tmp_path, write_idx):
  # Class c: a bright horizontal bar at rows 2c..2c+3, on noise. Any working CNN separates these.
  rng = np.random.default_rng(0)
  for split, n in (("train", 512), ("test", 200)):
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
      images[i, 2 * c + 2:2 * c + 5, 3:25] = 240
    write_idx(tmp_path, images, labels, split=split)
  config = classifier_fashion_mnist.get_config()
  config.data.dir = str(tmp_path)
  config.model.width = 8
  config.train.batch_size = 64
  config.train.steps = 60
  config.train.log_every = 30
  config.data.random_flip = False
  meta = train_classifier.train_and_evaluate(config, str(tmp_path / "clf"))
  assert meta["test_accuracy"] >= 0.9, meta["test_accuracy"]
  assert meta["class_names"][7] == "Sneaker"

  model, variables, loaded_meta = train_classifier.load(str(tmp_path / "clf"))
  assert loaded_meta["test_accuracy"] == meta["test_accuracy"]
  test_set = data.load_dataset(_with_split(config.data, "test"))
  assert train_classifier.evaluate(model, variables, test_set) == meta["test_accuracy"]
  logits, features = train_classifier.predict(model, variables, train_classifier.to_model_input(test_set.images[:5]))
  assert logits.shape == (5, 10) and features.shape == (5, classifier.FEATURE_DIM)
  assert np.all(features >= 0)                       # ReLU features


def _with_split(data_config, split):
  config = data_config.copy_and_resolve_references()
  config.split = split
  return config


def test_load_without_checkpoint_says_how_to_train(tmp_path):
  with pytest.raises(FileNotFoundError, match="gan.metrics.train_classifier"):
    train_classifier.load(str(tmp_path))
