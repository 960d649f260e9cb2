"""Continuous condition vectors for a dataset: measured attributes or caption embeddings.

`data.condition` picks the kind (model.cond_dim must be its size):
  "attributes": gan.attributes.attribute_vectors of each image (brightness, size, shape, colour...),
                in [0, 1]; a user profile is such a vector (e.g. brightness 0.8, a red colour point).
  "text":       the caption of each image (class name + measured attributes, gan.attributes.captions)
                embedded by a text encoder trained contrastively beforehand (gan.text), loaded from
                data.text_encoder_dir. Train one with

    python -m gan.conditioning --config configs/text_dcgan_fashion_mnist.py \
        --workdir runs/text_encoder_fashion_mnist
"""

from __future__ import annotations

import json
import os
from typing import Optional

import ml_collections
import numpy as np

from gan import attributes
from gan import data
from gan import sampling
from gan import text

CONDITIONS = ("none", "attributes", "text")


class ConditionError(ValueError):
  """A condition cannot be computed (e.g. no trained text encoder); the message says how to fix it."""


def dataset_captions(dataset: data.Dataset, reference: Optional[data.Dataset] = None) -> list[str]:
  """One caption per image of `dataset`: measured attributes + class name, e.g. "a dark ankle boot".

  Size and shape words use the quantiles of `reference` (default: the dataset itself) so captions of
  another split use the training split's thresholds.
  """
  measurements = attributes.measure(dataset.images)
  reference_measurements = None if reference is None else attributes.measure(reference.images)
  return attributes.captions(measurements, dataset.labels, dataset.class_names,
                             channels=dataset.images.shape[-1], reference=reference_measurements)


def load_text_conditioner(directory: str) -> text.TextConditioner:
  if not directory or not os.path.isdir(directory):
    raise ConditionError(
        f"data.condition='text' needs a trained text encoder in data.text_encoder_dir, got {directory!r}. "
        "Train one with: python -m gan.conditioning --config <your config> --workdir <dir>, then pass "
        "--config.data.text_encoder_dir=<dir>.")
  return text.load(directory)


def dataset_conditions(config: ml_collections.ConfigDict, dataset: data.Dataset) -> Optional[np.ndarray]:
  """(N, cond_dim) float32 condition vectors for `dataset` under config.data.condition, or None."""
  kind = config.data.get("condition", "none")
  if kind not in CONDITIONS:
    raise ConditionError(f"Unknown data.condition {kind!r}; valid: {list(CONDITIONS)}.")
  if kind == "none":
    return None
  if kind == "attributes":
    return attributes.attribute_vectors(attributes.measure(dataset.images))
  conditioner = load_text_conditioner(config.data.text_encoder_dir)
  captions = dataset_captions(dataset)
  unique, inverse = np.unique(np.asarray(captions), return_inverse=True)
  return conditioner.embed(list(unique))[inverse]


POOL_FILE = "conditions.npz"


def save_pool(workdir: str, labels: np.ndarray, cond: np.ndarray) -> None:
  """Keeps the training data's (label, condition) rows with the run, for sampling and evaluation."""
  np.savez(os.path.join(workdir, POOL_FILE), labels=np.asarray(labels, np.int32), cond=np.asarray(cond, np.float32))


def load_pool(workdir: str) -> sampling.ConditionPool:
  path = os.path.join(workdir, POOL_FILE)
  if not os.path.exists(path):
    raise ConditionError(f"{path} is missing: it is written when a continuous-conditioned run starts "
                         "training; rerun training in this workdir to recreate it.")
  with np.load(path) as f:
    return sampling.ConditionPool(f["labels"], f["cond"])


def main(argv):
  """Trains the text encoder for a config's dataset and reports caption retrieval on the test split."""
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  config = flags.FLAGS.config
  workdir = flags.FLAGS.workdir
  dataset = data.load_dataset(config.data)
  captions = dataset_captions(dataset)
  conditioner = text.train_text_encoder(captions, dataset.images, embed_dim=config.model.cond_dim,
                                        steps=flags.FLAGS.steps, seed=config.seed)
  text.save(conditioner, workdir)
  test_config = config.data.copy_and_resolve_references()
  test_config.split = data.held_out_split(config.data)
  report = {"train_examples": len(dataset), "distinct_captions": len(set(captions)),
            "train_retrieval_accuracy": text.retrieval_accuracy(conditioner, captions[:2000], dataset.images[:2000])}
  try:
    test = data.load_dataset(test_config)
    report["test_retrieval_accuracy"] = text.retrieval_accuracy(
        conditioner, dataset_captions(test, reference=dataset), test.images)
  except (data.DataError, text.UnknownWordError) as e:
    report["test_retrieval_accuracy"] = f"not measured: {e}"
  with open(os.path.join(workdir, "report.json"), "w", encoding="utf-8") as f:
    json.dump(report, f, indent=2)
  print(json.dumps(report, indent=2))


if __name__ == "__main__":
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file("config", None, "Config whose data (and model.cond_dim) to use.")
  flags.DEFINE_string("workdir", None, "Where to save the text encoder.")
  flags.DEFINE_integer("steps", 2000, "Contrastive training steps.")
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
