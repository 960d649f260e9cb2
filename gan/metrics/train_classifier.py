"""Trains the domain classifier of a dataset and saves it with Orbax.

  python -m gan.metrics.train_classifier --config configs/classifier_fashion_mnist.py \
      --workdir runs/classifier_fashion_mnist

Writes workdir/checkpoints/<step> (params, batch-norm statistics and a JSON item with the test
accuracy, class names and config) and logs train loss / test accuracy through the CLU writers.
`load(workdir)` returns the trained classifier for the metrics.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec as P
from ml_collections import config_flags

from gan import data
from gan import input_pipeline
from gan import train as gan_train
from gan import writers
from gan.metrics.classifier import Classifier


@flax.struct.dataclass
class ClassifierState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: optax.OptState
  rng: jax.Array


def make_model(config: ml_collections.ConfigDict) -> Classifier:
  return Classifier(num_classes=config.data.num_classes, width=config.model.width,
                    dropout=config.model.dropout)


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  schedule = optax.cosine_decay_schedule(config.train.learning_rate, config.train.steps)
  return optax.adamw(schedule, weight_decay=config.train.weight_decay)


def train_step(model: Classifier, tx: optax.GradientTransformation, state: ClassifierState,
               batch: dict[str, jax.Array]) -> tuple[ClassifierState, dict[str, jax.Array]]:
  """One cross-entropy step; batch = {"image": (B, S, S, C) in [-1, 1], "label": (B,) int}."""
  dropout_key = jax.random.fold_in(state.rng, state.step)

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


def predict(model: Classifier, variables: Any, images: np.ndarray, batch_size: int = 1000
            ) -> tuple[np.ndarray, np.ndarray]:
  """(logits (N, classes), features (N, 128)) of uint8-scaled-to-[-1, 1] float images, batched."""
  apply = jax.jit(functools.partial(model.apply, train=False))
  outputs = [jax.device_get(apply(variables, jnp.asarray(images[i:i + batch_size])))
             for i in range(0, len(images), batch_size)]
  return np.concatenate([o[0] for o in outputs]), np.concatenate([o[1] for o in outputs])


def to_model_input(images: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1], the input pipeline's scaling."""
  return images.astype(np.float32) / 127.5 - 1.0


def evaluate(model: Classifier, variables: Any, dataset: data.Dataset) -> float:
  logits, _ = predict(model, variables, to_model_input(dataset.images))
  return float(np.mean(np.argmax(logits, -1) == dataset.labels))


def fit(config: ml_collections.ConfigDict, train_set: data.Dataset, writer) -> tuple[Classifier, Any]:
  """Trains a classifier on `train_set` for config.train.steps; returns (model, variables)."""
  mesh = gan_train.make_mesh()
  replicated, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  model, tx = make_model(config), make_optimizer(config)

  def init():
    key, dropout_key = jax.random.split(jax.random.PRNGKey(config.seed))
    size, channels = config.data.image_size, config.data.channels
    variables = model.init(key, jnp.zeros((2, size, size, channels)), train=False)
    return ClassifierState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                           batch_stats=variables["batch_stats"], opt_state=tx.init(variables["params"]),
                           rng=dropout_key)

  state = jax.jit(init, out_shardings=replicated)()
  step_fn = jax.jit(functools.partial(train_step, model, tx), in_shardings=(replicated, batch_sharding),
                    out_shardings=(replicated, replicated), donate_argnums=(0,))
  batches = input_pipeline.prefetch_to_mesh(
      input_pipeline.batches(train_set, global_batch_size=config.train.batch_size, seed=config.seed,
                             random_flip=config.data.random_flip, process_index=jax.process_index(),
                             process_count=jax.process_count()), batch_sharding)
  history = []
  for step in range(1, config.train.steps + 1):
    state, metrics = step_fn(state, next(batches))
    history.append(metrics)
    if step % config.train.log_every == 0 or step == config.train.steps:
      fetched = jax.device_get(history)
      history.clear()
      writer.write_scalars(step, {f"train_{k}": float(np.mean([m[k] for m in fetched])) for k in fetched[0]})
  batches.close()
  return model, {"params": state.params, "batch_stats": state.batch_stats}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains, evaluates on the test split, saves; returns the saved metadata (incl. test_accuracy)."""
  os.makedirs(workdir, exist_ok=True)
  train_set = data.load_dataset(config.data)
  test_set = data.load_dataset(ml_collections.ConfigDict({**config.data.to_dict(), "split": data.held_out_split(config.data),
                                                          "max_examples": config.eval_examples}))
  writer = writers.create_writer(workdir, jax.process_index() == 0)
  model, variables = fit(config, train_set, writer)
  accuracy = evaluate(model, variables, test_set)
  writer.write_scalars(config.train.steps, {"test_accuracy": accuracy})
  writer.flush()
  logging.info("Test accuracy on %d images: %.4f", len(test_set), accuracy)
  meta = {"test_accuracy": accuracy, "test_examples": len(test_set), "steps": config.train.steps,
          "class_names": list(train_set.class_names), "config": json.loads(config.to_json_best_effort())}
  with ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints")) as manager:
    manager.save(config.train.steps, args=ocp.args.Composite(
        variables=ocp.args.StandardSave(variables), meta=ocp.args.JsonSave(meta)), force=True)
    manager.wait_until_finished()
  return meta


def load(workdir: str) -> tuple[Classifier, Any, dict[str, Any]]:
  """(model, variables, meta) of a trained classifier in `workdir`."""
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"No classifier checkpoint in {workdir}. Train one with: python -m "
                            "gan.metrics.train_classifier --config configs/classifier_fashion_mnist.py "
                            f"--workdir {workdir}")
  with ocp.CheckpointManager(directory, item_handlers={"variables": ocp.StandardCheckpointHandler(),
                                                       "meta": ocp.JsonCheckpointHandler()}) as manager:
    step = manager.latest_step()
    meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    config = ml_collections.ConfigDict(meta["config"])
    model = make_model(config)
    size, channels = config.data.image_size, config.data.channels
    # Shapes only: an eager init compiles ~70 XLA programs (~15 s of CPU on 2 cores) for values
    # the restore overwrites anyway.
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device), jax.eval_shape(
        functools.partial(model.init, train=False), jax.random.PRNGKey(0), jnp.zeros((1, size, size, channels))))
    variables = manager.restore(step, args=ocp.args.Composite(
        variables=ocp.args.StandardRestore(target))).variables
  return model, variables, meta


def define_flags() -> None:
  """Command-line flags, defined only when run as a program (the module is also a library)."""
  config_flags.DEFINE_config_file("config", None, "Classifier config (configs/classifier_*.py).")
  flags.DEFINE_string("workdir", None, "Where to save the classifier.")


def main(argv):
  del argv
  try:
    meta = train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
  except data.DataError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print(f"Test accuracy: {meta['test_accuracy']:.4f} on {meta['test_examples']} images")


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
