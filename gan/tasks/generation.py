"""Generation: a GAN from noise (gan/steps.py), optionally conditioned on classes, text or attributes.

config.task = "generation" (the default). The state is a GanState (gan/state.py); batches are
{"image", "label"[, "cond"]} from gan/input_pipeline.py, `loss.d_steps` of them per step (WGAN-GP's
critic iterations). Sample grids: the EMA generator at fixed noise (and fixed real conditions);
evaluation: FID etc. of the EMA generator in config.eval.features space (gan/metrics/evaluation.py).

  config, generator, state, meta = generation.load("runs/dcgan")     # a trained run, in a notebook
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Optional

from absl import logging
import jax
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from gan import conditioning
from gan import data
from gan import finetune
from gan import input_pipeline
from gan import models
from gan import runs
from gan import sampling
from gan import state as state_lib
from gan import steps
from gan.metrics import evaluation
from gan.tasks import common

TRAIN_COMMAND = "python -m gan.main --config configs/dcgan_fashion_mnist.py --workdir {workdir}"


def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """The problems of every key a generation run reads, each from the module that reads it."""
  return (models.config_problems(config) + state_lib.config_problems(config) + steps.config_problems(config)
          + conditioning.config_problems(config))


def shape_signature(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config values that determine parameter shapes; a checkpoint must match them to be restored."""
  return {
      **{f"model.{key}": value for key, value in sorted(config.model.to_dict().items())},
      "data.image_size": config.data.image_size,
      "data.channels": config.data.channels,
      "data.num_classes": config.data.num_classes,
  }


def abstract_state(config: ml_collections.ConfigDict) -> state_lib.GanState:
  """The GanState's shapes and dtypes (jax.ShapeDtypeStruct leaves), without computing anything."""
  generator, discriminator = models.build(config)
  g_tx, d_tx = state_lib.make_optimizers(config)
  return jax.eval_shape(lambda: state_lib.init_state(config, generator, discriminator, g_tx, d_tx))


# What a fine-tuned run takes from its parent (train.init_from): the networks, not their optimizers.
INIT_FROM_FIELDS = ("g_params", "g_batch_stats", "d_params", "d_batch_stats", "ema_g_params")
# The config keys a parent must share: otherwise its weights describe another network (refused).
INIT_FROM_SAME = ("task", "model.name", "model.g_width", "model.d_width", "model.generator",
                  "model.discriminator", "data.image_size", "data.channels")


def initialize_from(config: ml_collections.ConfigDict, state: state_lib.GanState, init_from: str
                    ) -> tuple[state_lib.GanState, dict[str, Any]]:
  """`state` (freshly initialised, on the mesh) with G, D and EMA weights of the run `init_from`
  ("<workdir>[:<step>]", gan/finetune.py); arrays whose shapes differ keep their initialisation.

  Returns:
    (state, record): record = {"workdir", "step", "reinitialised", "unused"} for provenance.
  Raises:
    finetune.InitFromError: no such run, no (complete / readable) checkpoint or step, or a parent of
      another architecture, resolution or channel count. The parent is only read.
  """
  parent_dir, _ = finetune.parse(init_from)
  try:
    parent_config = runs.load_config(parent_dir)
  except runs.RunError as e:
    raise finetune.InitFromError(f"train.init_from={init_from!r} is not a run to start from: {e}") from None
  if differing := finetune.incompatibilities(config, parent_config, INIT_FROM_SAME):
    raise finetune.InitFromError(
        f"train.init_from={init_from!r} is a run of another architecture, resolution or channel count, so "
        f"its weights do not fit this model ({'; '.join(differing)}). Fine-tune from a run with the same "
        f"{', '.join(INIT_FROM_SAME)}, or train this config from scratch (without --config.train.init_from).")
  parent_dir, step = finetune.resolve(init_from, parent_config)
  parent_state, _ = finetune.restore_parent(parent_dir, step, runs.on_one_device(abstract_state(parent_config)),
                                            shape_signature(parent_config), parent_config.train.keep_checkpoints)
  state, reinitialised, unused = finetune.transplant(state, parent_state, INIT_FROM_FIELDS)
  finetune.log_transplant(parent_dir, step, reinitialised, unused)
  return state, {"workdir": os.path.abspath(parent_dir), "step": step, "reinitialised": reinitialised,
                 "unused": unused}


def create_state_and_step(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh):
  """(generator, initial GanState replicated on `mesh`, jitted train_step(state, batch)).

  The step takes the state replicated and the batch sharded along "data"; the state is donated.
  """
  generator, discriminator = models.build(config)
  g_tx, d_tx = state_lib.make_optimizers(config)
  batch_sharding = NamedSharding(mesh, P("data"))
  state, train_step = common.replicated_state_and_step(
      mesh, lambda: state_lib.init_state(config, generator, discriminator, g_tx, d_tx),
      steps.make_train_step(config, generator, discriminator, g_tx, d_tx, batch_sharding))
  return generator, state, train_step


def make_training_evaluator(config: ml_collections.ConfigDict, generator,
                            pool: Optional[sampling.ConditionPool] = None
                            ) -> Optional[Callable[[Any], dict[str, float]]]:
  """fn(state) -> metrics of the EMA generator for the train loop, or None when evaluation is off.

  config.eval.features picks the network: "domain" (off, with a warning saying how to enable it,
  when there is no trained domain classifier in config.eval.classifier_dir) or "inception"
  (StyleGAN's protocol against the training split; missing weights are an error naming the fetch
  command). Off when config.eval.every is 0.
  """
  if not config.eval.every:
    return None
  features = config.eval.get("features", "domain")
  if features not in evaluation.FEATURE_NETWORKS:
    raise ValueError(f"Unknown config.eval.features {features!r}; valid: {sorted(evaluation.FEATURE_NETWORKS)}.")
  classifier_dir = config.eval.classifier_dir
  if features == "domain" and not os.path.isdir(os.path.join(classifier_dir, "checkpoints")):
    logging.warning("In-training evaluation is off: no domain classifier in %r. Train one with "
                    "python -m gan.main --config configs/classifier_fashion_mnist.py "
                    "--workdir %s (or set --config.eval.every=0 to silence this).", classifier_dir, classifier_dir)
    return None
  net = evaluation.make_feature_network(features, config.data, classifier_dir)
  real = evaluation.real_features(net, config.data, "train", config.eval.get("num_reference", 0))
  sampler = evaluation.make_feature_sampler(generator, net, config.model.z_dim, config.eval.num_samples)

  def evaluate_state(state) -> dict[str, float]:
    fake = evaluation.sample_features(sampler, generator, state.ema_g_params, state.g_batch_stats, net.variables,
                           num_samples=config.eval.num_samples, seed=config.eval.seed, z_dim=config.model.z_dim,
                           standing_stats_batch=config.sample.standing_stats_batch, pool=pool)
    return evaluation.compare(real, fake, net, config.eval.seed, fake["labels"])

  return evaluate_state


def setup(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, workdir: str, is_main: bool
          ) -> common.Task:
  """Data, conditions, models, state and step, fixed-noise sample grids of the EMA generator, and
  the evaluator."""
  dataset = data.load_dataset(config.data)
  if config.model.conditional and len(dataset.class_names) != config.data.num_classes:
    raise runs.ConfigError(f"data.num_classes is {config.data.num_classes} but {config.data.dir} has "
                           f"{len(dataset.class_names)} classes {list(dataset.class_names)}: set "
                           f"--config.data.num_classes={len(dataset.class_names)}.")

  conditions = conditioning.dataset_conditions(config, dataset)   # (N, cond_dim) float32 or None
  pool = None
  if conditions is not None:
    if conditions.shape[1] != config.model.cond_dim:
      raise runs.ConfigError(f"data.condition={config.data.condition!r} gives {conditions.shape[1]}-d vectors: "
                             f"set --config.model.cond_dim={conditions.shape[1]}.")
    pool = sampling.ConditionPool(dataset.labels, conditions)
    if is_main:
      conditioning.save_pool(workdir, dataset.labels, conditions)

  generator, state, train_step = create_state_and_step(config, mesh)

  # Sampling at fixed noise.
  grid_key, stats_key = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.seed), 1))
  grid_z, grid_labels = sampling.grid_inputs(grid_key, config.model.z_dim, generator.num_classes,
                                             config.sample.grid_rows, config.sample.grid_columns)
  grid_cond = None
  if pool is not None:   # conditions of real examples, one per grid cell
    grid_labels, grid_cond = sampling.draw_conditions(grid_key, len(grid_z), generator.num_classes, pool)
  sample_fn = jax.jit(lambda params, stats: sampling.generate(
      generator, params, stats, grid_z, grid_labels, stats_key, config.sample.standing_stats_batch, grid_cond,
      pool))

  def sample_grid(state) -> np.ndarray:
    return sampling.make_grid(sampling.to_uint8(sample_fn(state.ema_g_params, state.g_batch_stats)),
                              config.sample.grid_columns)

  def batches(start_step: int) -> Iterator[dict[str, np.ndarray]]:
    return input_pipeline.batches(dataset, global_batch_size=config.train.batch_size, seed=config.seed,
                                  random_flip=config.data.random_flip, start_step=start_step,
                                  process_index=jax.process_index(), process_count=jax.process_count(),
                                  conditions=conditions, batches_per_step=config.loss.d_steps)

  return common.Task(state, train_step, batches, sample_grid, make_training_evaluator(config, generator, pool),
                     shape_signature(config), tuple(dataset.class_names), config.loss.d_steps,
                     description=config.model.name)


def load(workdir: str):
  """(config, generator, state, meta) of a generation run's latest checkpoint (single device).

  Raises:
    runs.RunError: not a run, not a generation run, or no checkpoint yet.
  """
  config = runs.load_config(workdir)
  if runs.task_of(config) != "generation":
    raise runs.RunError(f"{workdir} is a {runs.task_of(config)!r} run, not a GAN from noise (task "
                        "'generation'); open it with gan.tasks.restore or its task module.")
  generator, _ = models.build(config)
  state, meta = runs.restore_checkpoint(workdir, runs.on_one_device(abstract_state(config)),
                                        shape_signature(config), config.train.keep_checkpoints,
                                        train_command=TRAIN_COMMAND)
  return config, generator, state, meta
