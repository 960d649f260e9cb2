"""train_and_evaluate: devices -> data -> models -> restore or init -> train loop.

The loop runs one jit-compiled `train_step` per step with the state donated, data-parallel over
every device (the batch is sharded along a 1-D "data" mesh axis; parameters are replicated).
Metrics stay on the device and are fetched every `train.log_every` steps (and before every
checkpoint, so a non-finite loss is caught before it can be saved).

`config.task` picks what is trained from TASKS: "generation" (a GAN from noise, gan/steps.py),
"pix2pix" or "cyclegan" (image translation, gan/style/translation.py). Each setup function returns
a `Task` (initial state, jitted step, batches, sample grid, evaluator); the loop is shared.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from typing import Any, Callable, Iterator, NamedTuple, Optional

from absl import logging
import jax
import ml_collections
import numpy as np
from clu import periodic_actions
from jax.sharding import NamedSharding, PartitionSpec as P

from gan import augment
from gan import checkpointing
from gan import conditioning
from gan import data
from gan import distributed
from gan import evaluate
from gan import input_pipeline
from gan import models
from gan import provenance
from gan import sampling
from gan import state as state_lib
from gan import steps
from gan import writers
from gan.losses import adversarial
from gan.models import translation as translation_models
from gan.style import translation


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
  if config.optimizer.name != "adam":   # state.make_optimizers' names (checked here: before any output)
    problems.append(f"Unknown optimizer.name {config.optimizer.name!r}; valid names: ['adam'].")
  if config.data.prefetch < 1:
    problems.append(f"data.prefetch must be >= 1 (batches kept ready on the devices), got {config.data.prefetch}.")
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
  task = config.get("task", "generation")
  if task not in TASKS:
    problems.append(f"Unknown task {task!r}; valid: {list(TASKS)}.")
  elif task != "generation":
    problems += _translation_problems(config)
  if problems:
    raise ConfigError("Invalid config:\n  " + "\n  ".join(problems))


def _translation_problems(config: ml_collections.ConfigDict) -> list[str]:
  tr, problems = config.translation, []
  for key in ("g_width", "d_width", "unet_depth", "d_layers"):
    if not isinstance(tr[key], int) or tr[key] < 1:
      problems.append(f"translation.{key} must be an int >= 1, got {tr[key]!r}.")
  for key in ("resnet_blocks", "pool_size"):
    if not isinstance(tr[key], int) or tr[key] < 0:
      problems.append(f"translation.{key} must be an int >= 0, got {tr[key]!r}.")
  for key in ("lambda_l1", "lambda_cycle", "lambda_identity"):
    if tr[key] < 0:
      problems.append(f"translation.{key} must be >= 0, got {tr[key]}.")
  if not 0.0 <= tr.dropout < 1.0:
    problems.append(f"translation.dropout must be in [0, 1), got {tr.dropout}.")
  if tr.norm not in translation_models.NORMS:
    problems.append(f"Unknown translation.norm {tr.norm!r}; valid: {list(translation_models.NORMS)}.")
  size = config.data.image_size
  if config.task == "pix2pix" and isinstance(tr.unet_depth, int) and size % 2 ** tr.unet_depth:
    problems.append(f"data.image_size {size} must be divisible by 2^translation.unet_depth = "
                    f"{2 ** tr.unet_depth}: use --config.translation.unet_depth={max(1, (size & -size).bit_length() - 1)}.")
  if config.task == "pix2pix" and config.data.get("view", "photo") != "pair":
    problems.append("task 'pix2pix' trains on edge map / photo pairs: set --config.data.view=pair "
                    "(data.source='products').")
  if config.task == "cyclegan" and size % 4:
    problems.append(f"task 'cyclegan' needs data.image_size divisible by 4, got {size}.")
  if config.task == "cyclegan" and tr.domain_a == tr.domain_b:
    problems.append(f"translation.domain_a and domain_b must be different classes, both are {tr.domain_a}.")
  if config.loss.d_steps != 1:
    problems.append(f"loss.d_steps must be 1 for task {config.task!r} (one D update per step), "
                    f"got {config.loss.d_steps}.")
  return problems


@contextlib.contextmanager
def stop_on_signals(stop: Optional[threading.Event] = None) -> Iterator[threading.Event]:
  """SIGTERM / SIGINT set an event so the loop can checkpoint and exit cleanly (main thread only).

  stop: an event to set (a caller that installed the handlers earlier, e.g. gan.main before the
  setup, passes its own so a signal during setup is not lost); default a new one. A second SIGINT
  while stopping raises KeyboardInterrupt (Ctrl-C twice: stop now, without the checkpoint).
  """
  stop = stop if stop is not None else threading.Event()
  if threading.current_thread() is not threading.main_thread():
    yield stop
    return
  def handler(signum, frame):
    del frame
    if stop.is_set() and signum == signal.SIGINT:
      raise KeyboardInterrupt
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


class Task(NamedTuple):
  """What the shared loop needs from one kind of model; built by the TASKS setup functions."""
  state: Any                                   # initial state, replicated on the mesh
  train_step: Callable[[Any, dict], tuple[Any, dict]]   # jitted; state donated, batch sharded
  batches: Callable[[int], Iterator[dict[str, np.ndarray]]]   # start_step -> this process's host batches
  sample_grid: Callable[[Any], np.ndarray]     # state -> uint8 (H, W, C) grid at fixed inputs
  evaluate: Optional[Callable[[Any], dict[str, float]]]   # state -> eval metrics (best checkpoint by
  #                                              "fid" when present); None = no evaluation
  signature: dict[str, Any]                    # config values fixing the state's shapes (checkpoints)
  class_names: tuple[str, ...]
  data_steps_per_step: int                     # data position of a checkpoint = step * this


def setup_generation(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, workdir: str,
                     is_main: bool) -> Task:
  """A GAN from noise (gan/steps.py): class / continuous conditions, fixed-noise sample grids of the
  EMA generator, FID etc. with the domain classifier."""
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

  return Task(state, train_step, batches, sample_grid, evaluate.make_training_evaluator(config, generator, pool),
              checkpointing.shape_signature(config), tuple(dataset.class_names), config.loss.d_steps)


def setup_translation(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, workdir: str,
                      is_main: bool) -> Task:
  """pix2pix (paired edges -> photo) or CycleGAN (unpaired A <-> B), gan/style/translation.py; sample
  grids of fixed held-out examples (input | output | target or translated back)."""
  del workdir, is_main
  kwargs = dict(global_batch_size=config.train.batch_size, seed=config.seed, random_flip=config.data.random_flip,
                process_index=jax.process_index(), process_count=jax.process_count())
  if config.task == "pix2pix":
    pairs = translation.load_pairs(config.data, config.data.split)
    class_names = pairs.class_names
    batches = lambda start_step: translation.pix2pix_batches(pairs, start_step=start_step, **kwargs)
  else:
    domain_a, domain_b = translation.load_domains(config.data, config.data.split, config.translation.domain_a,
                                                  config.translation.domain_b)
    class_names = domain_a.class_names
    batches = lambda start_step: translation.cyclegan_batches(domain_a, domain_b, start_step=start_step, **kwargs)
  generator, state, train_step = translation.create_state_and_step(config, mesh)
  grid = translation.make_sample_grid(config.task, generator,
                                      translation.sample_examples(config, config.sample.grid_rows))
  return Task(state, train_step, batches, lambda state: grid(state.g_params),
              evaluate.make_translation_evaluator(config, generator), translation.shape_signature(config),
              tuple(class_names), 1)


TASKS = {"generation": setup_generation, "pix2pix": setup_translation, "cyclegan": setup_translation}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       stop: Optional[threading.Event] = None) -> Any:
  """Trains `config` in `workdir`, resuming from its latest checkpoint. Returns the final state
  (a GanState, or a translation.TranslationState for the translation tasks).

  SIGTERM / SIGINT at any point (setup included) end the run cleanly: in the loop, after saving a
  checkpoint at the current step; before it, right after setup (nothing new to save). `stop`: the
  event of a caller's `stop_on_signals` (see there). Whatever ends the run, the data thread, the
  checkpoint managers and the writers are closed.
  """
  with stop_on_signals(stop) as stop, contextlib.ExitStack() as cleanup:
    return _train_and_evaluate(config, workdir, stop, cleanup)


def _close_quietly(close: Callable[[], Any], what: str) -> Callable[[], None]:
  """`close` for an ExitStack on the error path: a second error would hide the first one."""
  def call():
    try:
      close()
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("Closing %s after an error also failed: %s", what, e)
  return call


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, stop: threading.Event,
                        cleanup: contextlib.ExitStack) -> Any:
  start_time = time.time()
  check_config(config)
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  is_main = jax.process_index() == 0

  # --- Devices.
  mesh = make_mesh()
  batch_sharding = NamedSharding(mesh, P("data"))

  # --- Data, models, state, step, sample grids and evaluator of config.task.
  task_name = config.get("task", "generation")
  task = TASKS[task_name](config, mesh, workdir, is_main)
  state, train_step = task.state, task.train_step

  # --- Restore or start.
  manager = checkpointing.make_manager(workdir, config.train.keep_checkpoints, writer=True)
  cleanup.callback(_close_quietly(manager.close, "the checkpoint manager"))
  signature = task.signature
  restored = checkpointing.restore_latest(manager, state, signature, move_aside_unreadable=True)
  if restored is not None:
    state, meta = restored
    logging.info("Resumed from %s at step %d.", manager.directory, meta["step"])
  start_step = int(state.step)
  # Before anything is written: the data arguments (e.g. a batch larger than the data) are checked here.
  batches = input_pipeline.prefetch_to_mesh(task.batches(start_step), batch_sharding, size=config.data.prefetch)
  cleanup.callback(batches.close)
  if is_main:
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
      f.write(config.to_json_best_effort(indent=2))
  # Git revision, packages, devices, seed, command; wall time is added when the run ends.
  provenance.write_run_record(workdir, config, start_time, step=start_step, status="running")

  # --- Sample grids at fixed inputs.
  def write_samples(step: int) -> None:
    grid = task.sample_grid(state)
    if is_main:
      sampling.save_png(os.path.join(workdir, "samples", f"step_{step:06d}.png"), grid)
    writer.write_images(step, {"samples": grid[None]})

  # --- Loop.
  writer = writers.create_writer(workdir, is_main)
  cleanup.callback(_close_quietly(writer.close, "the metric writer"))
  total_steps = config.train.steps
  progress = periodic_actions.ReportProgress(num_train_steps=total_steps, writer=writer,
                                             every_steps=config.train.log_every)
  history: list[dict[str, jax.Array]] = []
  last_saved = manager.latest_step()
  run_info = {"signature": signature, "class_names": list(task.class_names),
              "config": json.loads(config.to_json_best_effort())}   # saved with every checkpoint

  # --- Evaluation with the domain classifier; the best checkpoint by FID is kept apart.
  evaluate_state = task.evaluate
  best_manager = checkpointing.make_manager(workdir, 1, folder="best_checkpoint", writer=True)
  cleanup.callback(_close_quietly(best_manager.close, "the best-checkpoint manager"))
  best_fid = (checkpointing.latest_meta(best_manager) or {}).get("fid", float("inf"))

  def run_evaluation(step: int) -> None:
    nonlocal best_fid
    results = evaluate_state(state)
    writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
    if "fid" in results and results["fid"] < best_fid:   # pix2pix without a classifier: PSNR / SSIM only
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
      checkpointing.wait(manager)   # the last good checkpoint is complete on disk before we stop
      raise NonFiniteLossError(
          f"Non-finite {name} at step {bad_step}: training stopped without saving ({where}). "
          "Try a lower learning rate (--config.optimizer.d_lr / g_lr) or another loss, or let the run "
          "roll back with lowered learning rates: --config.train.on_non_finite=rollback.")
    means = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
    writer.write_scalars(step, means)

  logging.info("Training %s for %d steps from step %d on %d device(s), global batch %d.",
               config.model.name if task_name == "generation" else task_name, total_steps, start_step,
               jax.device_count(), config.train.batch_size)
  # A signal during setup: stop before compiling (every process agrees; nothing new to save).
  if start_step < total_steps and distributed.stop_requested(stop, start_step, 1):
    logging.warning("Stopped before training after a signal; rerun the same command to resume from "
                    "step %d.", start_step)
    total_steps = start_step
  for step in range(start_step + 1, total_steps + 1):
    with jax.profiler.StepTraceAnnotation("train", step_num=step):
      state, metrics = train_step(state, next(batches))
    history.append(metrics)
    # Read once: a signal arriving later is handled at the next step (several processes: at the
    # next multiple of log_every, all together).
    stopping = distributed.stop_requested(stop, step, config.train.log_every)
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
      checkpointing.save(manager, state, {"step": step, "data_position": step * task.data_steps_per_step, **run_info})
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
    checkpointing.wait(m)      # a failed last save (disk full) is a clear CheckpointWriteError
    m.close()
  writer.flush()
  writer.close()
  cleanup.pop_all()   # everything is closed above; the stack only guards the error paths
  provenance.write_run_record(workdir, config, start_time, step=int(state.step),
                              status="finished" if int(state.step) >= config.train.steps else "stopped")
  return state
