"""train_and_evaluate: devices -> data -> models -> restore or init -> train loop.

The loop runs one jit-compiled `train_step` per step with the state donated, data-parallel over
every device (the batch is sharded along a 1-D "data" mesh axis; parameters are replicated).
Metrics stay on the device and are fetched every `train.log_every` steps (and before every
checkpoint, so a non-finite loss is caught before it can be saved).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from typing import Any, Iterator

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from clu import periodic_actions
from jax.sharding import NamedSharding, PartitionSpec as P

from gan import augment
from gan import checkpointing
from gan import conditioning
from gan import data
from gan import evaluate
from gan import input_pipeline
from gan import models
from gan import sampling
from gan import state as state_lib
from gan import steps
from gan import writers
from gan.losses import adversarial


class ConfigError(ValueError):
  """A config value is invalid; the message names the key and a valid alternative."""


class NonFiniteLossError(FloatingPointError):
  """A loss became NaN/inf; the run stops without saving so the last good checkpoint stays intact."""


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError with a clear message for values that would fail deep inside training."""
  t = config.train
  problems = []
  if t.batch_size <= 0:
    problems.append(f"train.batch_size must be positive, got {t.batch_size}.")
  if t.steps < 0:
    problems.append(f"train.steps must be >= 0, got {t.steps}.")
  for key in ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints"):
    if t[key] <= 0:
      problems.append(f"train.{key} must be positive, got {t[key]}.")
  if config.eval.every < 0:
    problems.append(f"eval.every must be >= 0 (0 = no evaluation), got {config.eval.every}.")
  if not 0.0 <= t.ema_decay < 1.0:
    problems.append(f"train.ema_decay must be in [0, 1), got {t.ema_decay}.")
  if config.model.name not in models.ARCHITECTURES:
    problems.append(f"Unknown model.name {config.model.name!r}; valid names: {sorted(models.ARCHITECTURES)}.")
  if config.loss.name not in adversarial.LOSSES:
    problems.append(f"Unknown loss.name {config.loss.name!r}; valid names: {sorted(adversarial.LOSSES)}.")
  if config.model.g_conditioning not in ("embedding", "cbn"):
    problems.append(f"Unknown model.g_conditioning {config.model.g_conditioning!r}; valid: 'embedding', 'cbn'.")
  if config.model.d_norm not in ("batch", "none"):
    problems.append(f"Unknown model.d_norm {config.model.d_norm!r}; valid: 'batch', 'none'.")
  if config.model.dtype not in models.DTYPES:
    problems.append(f"Unknown model.dtype {config.model.dtype!r}; valid: {sorted(models.DTYPES)}.")
  if not isinstance(config.loss.d_steps, int) or config.loss.d_steps < 1:
    problems.append(f"loss.d_steps must be an int >= 1, got {config.loss.d_steps!r}.")
  for key in ("r1_gamma", "gp_weight"):
    if config.reg[key] < 0:
      problems.append(f"reg.{key} must be >= 0 (0 = off), got {config.reg[key]}.")
  if config.reg.r1_every < 1:
    problems.append(f"reg.r1_every must be >= 1, got {config.reg.r1_every}.")
  unknown_ops = [op for op in config.reg.diff_augment.split(",") if op.strip() and op.strip() not in augment.POLICIES]
  if unknown_ops:
    problems.append(f"Unknown reg.diff_augment ops {unknown_ops}; valid: a comma list of {sorted(augment.POLICIES)}.")
  if config.data.condition not in conditioning.CONDITIONS:
    problems.append(f"Unknown data.condition {config.data.condition!r}; valid: {list(conditioning.CONDITIONS)}.")
  elif (config.data.condition == "none") != (config.model.cond_dim == 0):
    problems.append(f"data.condition={config.data.condition!r} needs model.cond_dim "
                    f"{'= 0' if config.data.condition == 'none' else '> 0 (the size of the condition vector)'}, "
                    f"got {config.model.cond_dim}.")
  if t.batch_size > 0 and t.batch_size % jax.device_count():
    problems.append(f"train.batch_size ({t.batch_size}) must be divisible by the number of devices "
                    f"({jax.device_count()}): use e.g. --config.train.batch_size="
                    f"{max(1, t.batch_size // jax.device_count()) * jax.device_count()}.")
  if problems:
    raise ConfigError("Invalid config:\n  " + "\n  ".join(problems))


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
  """SIGTERM / SIGINT set an event so the loop can checkpoint and exit cleanly (main thread only)."""
  stop = threading.Event()
  if threading.current_thread() is not threading.main_thread():
    yield stop
    return
  def handler(signum, frame):
    del frame
    logging.warning("Received signal %d: saving a checkpoint and stopping.", signum)
    stop.set()
  previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    yield stop
  finally:
    for s, h in previous.items():
      signal.signal(s, h)


def _first_non_finite(history: list[dict[str, np.ndarray]], first_step: int) -> tuple[int, str] | None:
  for offset, metrics in enumerate(history):
    for name, value in metrics.items():
      if not np.all(np.isfinite(value)):
        return first_step + offset, name
  return None


def make_mesh() -> jax.sharding.Mesh:
  """A 1-D data-parallel mesh ("data") over all devices of all processes.

  Auto axes: XLA propagates shardings from the inputs (the "explicit" default would need every
  op to state its output sharding).
  """
  return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def create_state_and_step(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh):
  """(generator, initial GanState replicated on `mesh`, jitted train_step(state, batch)).

  The step takes the state replicated and the batch sharded along "data"; the state is donated.
  """
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P("data"))
  generator, discriminator = models.build(config)
  g_tx, d_tx = state_lib.make_optimizers(config)
  init = jax.jit(lambda: state_lib.init_state(config, generator, discriminator, g_tx, d_tx),
                 out_shardings=replicated)
  train_step = jax.jit(steps.make_train_step(config, generator, discriminator, g_tx, d_tx, batch_sharding),
                       in_shardings=(replicated, batch_sharding), out_shardings=(replicated, replicated),
                       donate_argnums=(0,))
  return generator, init(), train_step


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> state_lib.GanState:
  """Trains `config` in `workdir`, resuming from its latest checkpoint. Returns the final state."""
  check_config(config)
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  is_main = jax.process_index() == 0

  # --- Devices.
  mesh = make_mesh()
  batch_sharding = NamedSharding(mesh, P("data"))

  # --- Data.
  dataset = data.load_dataset(config.data)
  if config.model.conditional and len(dataset.class_names) != config.data.num_classes:
    raise ConfigError(f"data.num_classes is {config.data.num_classes} but {config.data.dir} has "
                     f"{len(dataset.class_names)} classes {list(dataset.class_names)}: set "
                     f"--config.data.num_classes={len(dataset.class_names)}.")

  conditions = conditioning.dataset_conditions(config, dataset)   # (N, cond_dim) float32 or None
  pool = None
  if conditions is not None:
    if conditions.shape[1] != config.model.cond_dim:
      raise ConfigError(f"data.condition={config.data.condition!r} gives {conditions.shape[1]}-d vectors: set "
                        f"--config.model.cond_dim={conditions.shape[1]}.")
    pool = sampling.ConditionPool(dataset.labels, conditions)
    if is_main:
      conditioning.save_pool(workdir, dataset.labels, conditions)

  # --- Models, state, step.
  generator, state, train_step = create_state_and_step(config, mesh)

  # --- Restore or start.
  manager = checkpointing.make_manager(workdir, config.train.keep_checkpoints)
  signature = checkpointing.shape_signature(config)
  restored = checkpointing.restore_latest(manager, state, signature)
  if restored is not None:
    state, meta = restored
    logging.info("Resumed from %s at step %d.", manager.directory, meta["step"])
  start_step = int(state.step)
  if is_main:
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
      f.write(config.to_json_best_effort(indent=2))

  # --- Sampling at fixed noise.
  grid_key, stats_key = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.seed), 1))
  grid_z, grid_labels = sampling.grid_inputs(grid_key, config.model.z_dim, generator.num_classes,
                                             config.sample.grid_rows, config.sample.grid_columns)
  grid_cond = None
  if pool is not None:   # conditions of real examples, one per grid cell
    grid_labels, grid_cond = sampling.draw_conditions(grid_key, len(grid_z), generator.num_classes, pool)
  sample_fn = jax.jit(lambda params, stats: sampling.generate(
      generator, params, stats, grid_z, grid_labels, stats_key, config.sample.standing_stats_batch, grid_cond,
      pool))

  def write_samples(step: int) -> None:
    grid = sampling.make_grid(sampling.to_uint8(sample_fn(state.ema_g_params, state.g_batch_stats)),
                              config.sample.grid_columns)
    if is_main:
      sampling.save_png(os.path.join(workdir, "samples", f"step_{step:06d}.png"), grid)
    writer.write_images(step, {"samples": grid[None]})

  # --- Loop.
  writer = writers.create_writer(workdir, is_main)
  total_steps = config.train.steps
  progress = periodic_actions.ReportProgress(num_train_steps=total_steps, writer=writer,
                                             every_steps=config.train.log_every)
  batches = input_pipeline.prefetch_to_mesh(
      input_pipeline.batches(dataset, global_batch_size=config.train.batch_size, seed=config.seed,
                             random_flip=config.data.random_flip, start_step=start_step,
                             process_index=jax.process_index(), process_count=jax.process_count(),
                             conditions=conditions, batches_per_step=config.loss.d_steps),
      batch_sharding, size=config.data.prefetch)
  history: list[dict[str, jax.Array]] = []
  last_saved = manager.latest_step()
  run_info = {"signature": signature, "class_names": list(dataset.class_names),
              "config": json.loads(config.to_json_best_effort())}   # saved with every checkpoint

  # --- Evaluation with the domain classifier; the best checkpoint by FID is kept apart.
  evaluate_state = evaluate.make_training_evaluator(config, generator, pool)
  best_manager = checkpointing.make_manager(workdir, 1, folder="best_checkpoint")
  best_fid = (checkpointing.latest_meta(best_manager) or {}).get("fid", float("inf"))

  def run_evaluation(step: int) -> None:
    nonlocal best_fid
    results = evaluate_state(state)
    writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
    if results["fid"] < best_fid:
      best_fid = results["fid"]
      checkpointing.save(best_manager, state, {"step": step, "fid": best_fid, **run_info})

  def flush_metrics(step: int) -> None:
    fetched = jax.device_get(history)
    first = step - len(fetched) + 1
    history.clear()
    bad = _first_non_finite(fetched, first)
    if bad is not None:
      bad_step, name = bad
      where = (f"the last good checkpoint is step {last_saved} in {manager.directory}; rerun the same "
               "command to resume from it" if last_saved is not None else "no checkpoint was saved yet")
      raise NonFiniteLossError(
          f"Non-finite {name} at step {bad_step}: training stopped without saving ({where}). "
          "Try a lower learning rate (--config.optimizer.d_lr / g_lr) or another loss.")
    means = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
    writer.write_scalars(step, means)

  logging.info("Training %s for %d steps from step %d on %d device(s), global batch %d.",
               config.model.name, total_steps, start_step, jax.device_count(), config.train.batch_size)
  with stop_on_signals() as stop:
    for step in range(start_step + 1, total_steps + 1):
      with jax.profiler.StepTraceAnnotation("train", step_num=step):
        state, metrics = train_step(state, next(batches))
      history.append(metrics)
      stopping = stop.is_set()  # read once: a signal arriving later is handled at the next step
      last = step == total_steps or stopping
      save_now = last or step % config.train.checkpoint_every == 0
      evaluate_now = (evaluate_state is not None and not stopping
                      and (step == total_steps or step % config.eval.every == 0))
      if save_now or evaluate_now or step % config.train.log_every == 0:
        # Waits for the device: NaNs are caught before anything is saved, and the host stays at
        # most log_every steps ahead.
        flush_metrics(step)
      progress(step)            # after the wait, so steps/s measures compute, not dispatch
      if last or step % config.train.sample_every == 0:
        write_samples(step)
      if evaluate_now:
        run_evaluation(step)
      if save_now:
        checkpointing.save(manager, state, {"step": step, "data_position": step * config.loss.d_steps, **run_info})
        last_saved = step
      if stopping:
        logging.warning("Stopped at step %d after a signal; rerun the same command to resume.", step)
        break
  batches.close()
  # Fixed shapes: the step compiles once per run; more means something recompiles every so often.
  compiles = train_step._cache_size()  # pylint: disable=protected-access
  writer.write_scalars(int(state.step), {"train_step_compilations": compiles})
  if compiles > 1:
    logging.warning("train_step compiled %d times in this run (expected 1): an input changed shape, "
                    "dtype or sharding.", compiles)
  for m in (manager, best_manager):
    m.wait_until_finished()
    m.close()
  writer.flush()
  writer.close()
  return state
