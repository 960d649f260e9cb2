"""The domain classifier's training state and step, prediction, and loading a trained one.

It is trained by the shared loop (gan/train.py) as task "classifier" (gan/tasks/classifier.py):

  python -m gan.main --config configs/classifier_fashion_mnist.py --workdir runs/classifier_fashion_mnist

(`python -m gan.metrics.train_classifier` with the same flags is an alias of that command.) The run
resumes after a stop like every run; its test accuracy on the held-out split is evaluated every
eval.every steps and at the end, and saved with the checkpoints. `load(workdir)` returns the trained
classifier for the metrics (gan/metrics/evaluation.py, gan/evaluate.py, gan/editing/).

This module sits below gan/tasks/ (the metrics import it, and the GAN task imports the metrics): the
task wiring (data, evaluator, in-memory `fit`) lives in gan/tasks/classifier.py.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gan import data
from gan import runs
from gan.metrics.classifier import Classifier

TRAIN_COMMAND = "python -m gan.main --config configs/classifier_fashion_mnist.py --workdir {workdir}"


@flax.struct.dataclass
class ClassifierState:
  """No PRNG key: the dropout key of step s derives from config.seed (`train_step`), so a checkpoint
  holds the same arrays whatever jax's PRNG implementation."""
  step: jax.Array           # () int32, train steps done
  params: Any
  batch_stats: Any
  opt_state: optax.OptState


def make_model(config: ml_collections.ConfigDict) -> Classifier:
  return Classifier(num_classes=config.data.num_classes, width=config.model.width,
                    dropout=config.model.dropout)


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW, learning rate optimizer.lr with cosine decay to 0 over train.steps."""
  schedule = optax.cosine_decay_schedule(config.optimizer.lr, config.train.steps)
  return optax.adamw(schedule, weight_decay=config.optimizer.weight_decay)


def _keys(config: ml_collections.ConfigDict) -> tuple[jax.Array, jax.Array]:
  """(parameter init key, dropout key) of config.seed."""
  return tuple(jax.random.split(jax.random.PRNGKey(config.seed)))


def init_state(config: ml_collections.ConfigDict, model: Classifier, tx: optax.GradientTransformation
               ) -> ClassifierState:
  init_key, _ = _keys(config)
  size, channels = config.data.image_size, config.data.channels
  variables = model.init(init_key, jnp.zeros((2, size, size, channels)), train=False)
  return ClassifierState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                         batch_stats=variables["batch_stats"], opt_state=tx.init(variables["params"]))


def abstract_state(config: ml_collections.ConfigDict) -> ClassifierState:
  """The ClassifierState's shapes and dtypes (jax.ShapeDtypeStruct leaves), without computing anything."""
  return jax.eval_shape(lambda: init_state(config, make_model(config), make_optimizer(config)))


def shape_signature(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config values that fix the parameter shapes (named one by one: a restored run's config is
  merged over configs/default.py, whose GAN model keys mean nothing here)."""
  return {"model.width": config.model.width, "data.image_size": config.data.image_size,
          "data.channels": config.data.channels, "data.num_classes": config.data.num_classes}


def train_step(model: Classifier, tx: optax.GradientTransformation, config: ml_collections.ConfigDict,
               state: ClassifierState, batch: dict[str, jax.Array]) -> tuple[ClassifierState, dict[str, jax.Array]]:
  """One cross-entropy step; batch = {"image": (B, S, S, C) in [-1, 1], "label": (B,) int}."""
  dropout_key = jax.random.fold_in(_keys(config)[1], state.step)

  def loss_fn(params):
    (logits, _), updates = model.apply({"params": params, "batch_stats": state.batch_stats}, batch["image"],
                                       train=True, mutable=["batch_stats"], rngs={"dropout": dropout_key})
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
    return loss, (updates["batch_stats"], logits)

  (loss, (batch_stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                            batch_stats=batch_stats, opt_state=opt_state)
  return new_state, {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"])}


def variables_of(state: ClassifierState) -> dict[str, Any]:
  """What `Classifier.apply` takes for inference."""
  return {"params": state.params, "batch_stats": state.batch_stats}


def predict(model: Classifier, variables: Any, images: np.ndarray, batch_size: int = 1000
            ) -> tuple[np.ndarray, np.ndarray]:
  """(logits (N, classes), features (N, 128)) of uint8-scaled-to-[-1, 1] float images, batched."""
  apply = _jitted_apply(model)
  outputs = [jax.device_get(apply(variables, jnp.asarray(images[i:i + batch_size])))
             for i in range(0, len(images), batch_size)]
  return np.concatenate([o[0] for o in outputs]), np.concatenate([o[1] for o in outputs])


@functools.lru_cache(maxsize=4)
def _jitted_apply(model: Classifier):
  # One compiled program per model (and batch shape) across calls: evaluation runs every eval.every steps.
  return jax.jit(functools.partial(model.apply, train=False))


def to_model_input(images: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1], the input pipeline's scaling."""
  return np.asarray(images, np.float32) / np.float32(127.5) - np.float32(1)


def evaluate(model: Classifier, variables: Any, dataset: data.Dataset) -> float:
  """Accuracy of the classifier on `dataset`, in [0, 1]."""
  logits, _ = predict(model, variables, to_model_input(dataset.images))
  return float(np.mean(np.argmax(logits, -1) == dataset.labels))


def load(workdir: str) -> tuple[Classifier, Any, dict[str, Any]]:
  """(model, variables, meta) of the trained classifier in `workdir` (its latest checkpoint).

  meta: "test_accuracy" (of these weights, on meta["test_examples"] held-out images), "class_names",
  "config" (the run's), "step".

  Raises:
    runs.RunError: not a classifier run (or one saved by the old trainer), no checkpoint yet, or
      not evaluated at its latest step (stopped early: rerun the training command to finish it).
    checkpointing.CheckpointMismatchError / CheckpointCorruptError: see gan/checkpointing.py.
  """
  command = TRAIN_COMMAND.format(workdir=workdir)
  if not os.path.exists(os.path.join(workdir, "config.json")):
    if os.path.isdir(os.path.join(workdir, "checkpoints")):
      raise runs.RunError(f"{workdir} holds a classifier saved by an older version (no config.json): "
                          f"retrain it with {command}")
    raise runs.RunError(f"No classifier checkpoint in {workdir}. Train one with: {command}")
  config = runs.load_config(workdir)
  if runs.task_of(config) != "classifier":
    raise runs.RunError(f"{workdir} is a {runs.task_of(config)!r} run, not a domain classifier (task "
                        f"'classifier'); train one with {command}")
  state, meta = runs.restore_checkpoint(workdir, runs.on_one_device(abstract_state(config)),
                                        shape_signature(config), config.train.keep_checkpoints,
                                        train_command=TRAIN_COMMAND)
  results = meta.get("eval", {})
  if results.get("step") != meta["step"] or "test_accuracy" not in results:
    raise runs.RunError(f"The classifier in {workdir} stopped at step {meta['step']} of "
                        f"{config.train.steps} before its test accuracy was measured: rerun the command "
                        f"that trained it (python -m gan.main --config <its config> --workdir {workdir}; "
                        f"the values are in {workdir}/config.json) to finish it.")
  meta = {**meta, "test_accuracy": results["test_accuracy"], "test_examples": results.get("test_examples")}
  return make_model(config), variables_of(state), meta


if __name__ == "__main__":
  # The former command, kept as an alias: exactly `python -m gan.main` with the same flags (the
  # classifier configs set config.task = "classifier").
  import runpy  # pylint: disable=g-import-not-at-top
  runpy.run_module("gan.main", run_name="__main__", alter_sys=True)
