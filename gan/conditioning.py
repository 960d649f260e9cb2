"""Continuous condition vectors for a dataset: measured attributes or caption embeddings.

`data.condition` picks the kind (model.cond_dim must be its size):
  "attributes": gan.attributes.attribute_vectors of each image (brightness, size, shape, colour...),
                in [0, 1]; a user profile is such a vector (e.g. brightness 0.8, a red colour point).
  "text":       the caption of each image (class name + measured attributes, gan.attributes.captions)
                embedded by a text encoder trained contrastively beforehand (task "text_encoder",
                gan/tasks/text_encoder.py), loaded from the run in data.text_encoder_dir. Train one with

    python -m gan.main --config configs/text_encoder_fashion_mnist.py --workdir runs/text_encoder_fashion_mnist
"""

from __future__ import annotations

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


def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with data.condition / model.cond_dim (one message per problem)."""
  condition = config.data.get("condition", "none")
  if condition not in CONDITIONS:
    return [f"Unknown data.condition {condition!r}; valid: {list(CONDITIONS)}."]
  if (condition == "none") != (config.model.cond_dim == 0):
    return [f"data.condition={condition!r} needs model.cond_dim "
            f"{'= 0' if condition == 'none' else '> 0 (the size of the condition vector)'}, "
            f"got {config.model.cond_dim}."]
  return []


def load_text_conditioner(directory: str) -> text.TextConditioner:
  """The text encoder run in `directory` (text.load); ConditionError saying how to train one if absent."""
  if not directory or not os.path.isdir(directory):
    raise ConditionError(
        f"data.condition='text' needs a trained text encoder in data.text_encoder_dir, got {directory!r}. "
        f"Train one with: {text.TRAIN_COMMAND.format(workdir='<dir>')} (a config of your data: "
        "task 'text_encoder', model.embed_dim = your model.cond_dim), then pass "
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


if __name__ == "__main__":
  # The former training command: the text encoder is a task of the shared loop now.
  raise SystemExit("error: python -m gan.conditioning no longer trains the text encoder; run "
                   + text.TRAIN_COMMAND.format(workdir="runs/text_encoder_fashion_mnist"))
