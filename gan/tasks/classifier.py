"""Classifier: the domain classifier (gan/metrics/classifier.py) of a dataset's classes.

config.task = "classifier" (configs/classifier_*.py). The state is a ClassifierState
(gan/metrics/train_classifier.py: parameters, batch-norm statistics, AdamW state); the
step is one cross-entropy update on {"image", "label"} batches of the training split from
gan/input_pipeline.py. Evaluation: accuracy on the held-out split (test; val for the product photos)
as {"test_accuracy", "test_error", "test_examples"}; it is saved with every later checkpoint, and the
checkpoint of lowest test_error is kept in best_checkpoint/. No sample grids.

  python -m gan.main --config configs/classifier_fashion_mnist.py --workdir runs/classifier_fashion_mnist
  model, variables, meta = classifier.load("runs/classifier_fashion_mnist")   # meta["test_accuracy"]
  model, variables = classifier.fit(config, dataset)   # in memory, e.g. on generated images (CAS)
"""

from __future__ import annotations

import functools
from typing import Any, Iterator, Optional

import jax
import ml_collections
import numpy as np

from gan import data
from gan import input_pipeline
from gan import runs
from gan.metrics import train_classifier
from gan.metrics.classifier import Classifier
from gan.tasks import common
from gan.tasks import in_memory

TRAIN_COMMAND = train_classifier.TRAIN_COMMAND
abstract_state = train_classifier.abstract_state
shape_signature = train_classifier.shape_signature
load = train_classifier.load


def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with the keys the classifier reads (model, optimizer, eval, data.num_classes)."""
  problems = []
  if not isinstance(config.model.width, int) or config.model.width < 1:
    problems.append(f"model.width must be an int >= 1, got {config.model.width!r}.")
  if not 0.0 <= config.model.dropout < 1.0:
    problems.append(f"model.dropout must be in [0, 1), got {config.model.dropout}.")
  if config.optimizer.lr <= 0:
    problems.append(f"optimizer.lr must be positive, got {config.optimizer.lr}.")
  if config.optimizer.weight_decay < 0:
    problems.append(f"optimizer.weight_decay must be >= 0, got {config.optimizer.weight_decay}.")
  if config.data.num_classes < 2:
    problems.append(f"data.num_classes must be >= 2, got {config.data.num_classes}.")
  if config.eval.every <= 0:
    problems.append(f"eval.every must be > 0 for task 'classifier' (its test accuracy is saved with it "
                    f"and read by the metrics), got {config.eval.every}: e.g. --config.eval.every=1000.")
  if config.eval.num_examples < 0:
    problems.append(f"eval.num_examples must be >= 0 (0 = the whole held-out split), got "
                    f"{config.eval.num_examples}.")
  return problems


def make_task(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, train_set: data.Dataset,
              test_set: Optional[data.Dataset]) -> common.Task:
  """The task of training on `train_set`, evaluated on `test_set` (None: no evaluation)."""
  if len(train_set.class_names) != config.data.num_classes:
    raise runs.ConfigError(f"data.num_classes is {config.data.num_classes} but the training data has "
                           f"{len(train_set.class_names)} classes {list(train_set.class_names)}: set "
                           f"--config.data.num_classes={len(train_set.class_names)}.")
  model, tx = train_classifier.make_model(config), train_classifier.make_optimizer(config)
  state, train_step = common.replicated_state_and_step(
      mesh, lambda: train_classifier.init_state(config, model, tx),
      functools.partial(train_classifier.train_step, model, tx, config))

  def batches(start_step: int) -> Iterator[dict[str, np.ndarray]]:
    return input_pipeline.batches(train_set, global_batch_size=config.train.batch_size, seed=config.seed,
                                  random_flip=config.data.random_flip, start_step=start_step,
                                  process_index=jax.process_index(), process_count=jax.process_count())

  def evaluate(state: train_classifier.ClassifierState) -> dict[str, float]:
    accuracy = train_classifier.evaluate(model, train_classifier.variables_of(state), test_set)
    return {"test_accuracy": accuracy, "test_error": 1.0 - accuracy, "test_examples": len(test_set)}

  return common.Task(state, train_step, batches, None, evaluate if test_set is not None else None,
                     shape_signature(config), tuple(train_set.class_names), 1,
                     description="domain classifier", best_metric="test_error")


def setup(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, workdir: str, is_main: bool
          ) -> common.Task:
  """The training split, the held-out split (config.eval.num_examples of it), state and step."""
  del workdir, is_main
  return make_task(config, mesh, data.load_dataset(config.data),
                   data.held_out_dataset(config.data, config.eval.num_examples))


def fit(config: ml_collections.ConfigDict, train_set: data.Dataset, writer: Optional[Any] = None
        ) -> tuple[Classifier, Any]:
  """(model, variables) of a classifier trained on `train_set` for config.train.steps in memory
  (no workdir), with the task's own state, step and batches; metrics go to `writer` (CLU) if given."""
  mesh = runs.make_mesh()
  state = in_memory.train(make_task(config, mesh, train_set, None), mesh, config.train.steps,
                          log_every=config.train.log_every, writer=writer)
  return train_classifier.make_model(config), train_classifier.variables_of(state)
