"""train_and_evaluate: check config -> devices -> task setup -> restore or init -> train loop.

The loop runs one jit-compiled `train_step` per step with the state donated, data-parallel over
every device (the batch is sharded along a 1-D "data" mesh axis; parameters are replicated).
Metrics stay on the device and are fetched every `train.log_every` steps (and before every
checkpoint, so a non-finite loss is caught before it can be saved).

What is trained comes from `config.task` (gan/tasks/: generation, pix2pix, cyclegan, and the
auxiliary models: classifier, text_encoder, enhance, adain_decoder, inversion_encoder): the task
module's `setup` returns a `Task` (initial state, jitted step, batches, sample grid, evaluator,
checkpoint signature); this loop is the same for all of them, and so is everything around it:
resuming, checkpoints (gan/checkpointing.py), SIGTERM / Ctrl-C, metrics and samples, and the
non-finite-loss policy (`train.on_non_finite`: "stop", or "rollback" to the last good checkpoint
with lowered learning rates), so every caller (gan.main, benchmarks, notebooks) gets the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from typing import Any, Callable, Iterator, Optional

from absl import logging
import jax
import ml_collections
import numpy as np
from clu import periodic_actions
from jax.sharding import NamedSharding, PartitionSpec as P

from gan import checkpointing
from gan import distributed
from gan import finetune
from gan import input_pipeline
from gan import provenance
from gan import runs
from gan import tasks
from gan import writers


class NonFiniteLossError(FloatingPointError):
  """A loss became NaN/inf; the run stops without saving so the last good checkpoint stays intact."""


NON_FINITE_POLICIES = ("stop", "rollback")
ROLLBACK_LOG = "rollbacks.jsonl"


def loop_config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with the keys this loop reads (train.*, eval.every, data.prefetch), one message each."""
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
  if config.data.prefetch < 1:
    problems.append(f"data.prefetch must be >= 1 (batches kept ready on the devices), got {config.data.prefetch}.")
  if t.batch_size > 0 and t.batch_size % jax.device_count():
    problems.append(f"train.batch_size ({t.batch_size}) must be divisible by the number of devices "
                    f"({jax.device_count()}): use e.g. --config.train.batch_size="
                    f"{max(1, t.batch_size // jax.device_count()) * jax.device_count()}.")
  budget = t.get("time_budget_minutes", 0.0)
  if not isinstance(budget, (int, float)) or budget < 0:
    problems.append(f"train.time_budget_minutes must be a number >= 0 (0 = no budget), got {budget!r}.")
  if t.get("on_non_finite", "stop") not in NON_FINITE_POLICIES:
    problems.append(f"Unknown train.on_non_finite {t.on_non_finite!r}; valid: {list(NON_FINITE_POLICIES)}.")
  factor = t.get("rollback_lr_factor", 0.5)
  if not isinstance(factor, (int, float)) or not 0.0 < factor < 1.0:
    problems.append(f"train.rollback_lr_factor must be in (0, 1) (e.g. 0.5 halves the learning "
                    f"rates), got {factor!r}.")
  rollbacks = t.get("max_rollbacks", 3)
  if not isinstance(rollbacks, int) or rollbacks < 0:
    problems.append(f"train.max_rollbacks must be an int >= 0, got {rollbacks!r}.")
  return problems


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises runs.ConfigError listing every invalid value (the loop's and config.task's) at once,
  before anything is written."""
  module = tasks.get(config)
  problems = (loop_config_problems(config) + finetune.config_problems(config, hasattr(module, "initialize_from"))
              + module.config_problems(config))
  if problems:
    raise runs.ConfigError("Invalid config:\n  " + "\n  ".join(problems))


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


def learning_rate_keys(config: ml_collections.ConfigDict) -> list[str]:
  """The optimizer keys holding learning rates (g_lr, d_lr, ...): names ending in "lr"."""
  return sorted(k for k, v in config.optimizer.items()
                if k.endswith("lr") and isinstance(v, (int, float)) and not isinstance(v, bool))


def scale_learning_rates(config: ml_collections.ConfigDict, scale: float) -> ml_collections.ConfigDict:
  """A copy of `config` with every learning rate of config.optimizer multiplied by `scale`."""
  config = config.copy_and_resolve_references()
  for key in learning_rate_keys(config):
    config.optimizer[key] = float(config.optimizer[key]) * scale
  return config


def read_rollbacks(workdir: str) -> list[dict[str, Any]]:
  """The records of workdir/rollbacks.jsonl (oldest first); [] when there is none."""
  path = os.path.join(workdir, ROLLBACK_LOG)
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    try:
      return [json.loads(line) for line in f if line.strip()]
    except json.JSONDecodeError as e:
      raise runs.ConfigError(f"{path} is not valid JSON lines ({e}); it records the learning-rate "
                             "rollbacks of this run. Fix or delete it (deleting restores the config's "
                             "learning rates).") from None


def _latest_step(workdir: str, keep: int) -> int | None:
  manager = checkpointing.make_manager(workdir, keep)
  try:
    return manager.latest_step()
  finally:
    manager.close()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       stop: Optional[threading.Event] = None) -> Any:
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the final state
  (the task's state: a GanState for generation, a TranslationState for pix2pix / CycleGAN).

  A non-finite loss stops the run without saving (the latest checkpoint is the last good state).
  With `train.on_non_finite = "rollback"` training then restarts from that checkpoint with every
  learning rate of config.optimizer multiplied by `train.rollback_lr_factor` (at most
  `train.max_rollbacks` times over the run's life). Each rollback is logged and appended to
  workdir/rollbacks.jsonl; a later start of the same run reads that file, so the lowered learning
  rates survive restarts.

  SIGTERM / SIGINT at any point (setup included) end the run cleanly: in the loop, after saving a
  checkpoint at the current step; before it, right after setup (nothing new to save). `stop`: the
  event of a caller's `stop_on_signals` (see there).

  Raises:
    runs.ConfigError: invalid config values (all listed), before anything is written.
    NonFiniteLossError: with "stop" (the default), or after train.max_rollbacks rollbacks.
  """
  check_config(config)
  policy = config.train.get("on_non_finite", "stop")
  factor = config.train.get("rollback_lr_factor", 0.5)
  max_rollbacks = config.train.get("max_rollbacks", 3)
  history = read_rollbacks(workdir)
  scale = float(history[-1]["lr_scale"]) if history else 1.0
  while True:
    run_config = scale_learning_rates(config, scale) if scale != 1.0 else config
    if scale != 1.0:
      logging.warning("Learning rates x%g after %d rollback(s) recorded in %s: %s.", scale, len(history),
                      os.path.join(workdir, ROLLBACK_LOG),
                      ", ".join(f"optimizer.{k}={run_config.optimizer[k]:.3g}"
                                for k in learning_rate_keys(run_config)))
    try:
      return train_once(run_config, workdir, stop)
    except NonFiniteLossError as e:
      if policy != "rollback":
        raise
      if len(history) >= max_rollbacks:
        raise NonFiniteLossError(
            f"{e} Gave up after {len(history)} rollback(s) (train.max_rollbacks={max_rollbacks}, "
            f"learning rates now x{scale:g}, see {os.path.join(workdir, ROLLBACK_LOG)}).") from None
      scale *= factor
      resume_step = _latest_step(workdir, config.train.keep_checkpoints)
      lowered = scale_learning_rates(config, scale)
      record = {"rollback": len(history) + 1, "time": time.time(), "error": str(e),
                "resumed_from_step": resume_step, "lr_scale": scale,
                **{f"optimizer.{k}": lowered.optimizer[k] for k in learning_rate_keys(lowered)}}
      history.append(record)
      if jax.process_index() == 0:
        with open(os.path.join(workdir, ROLLBACK_LOG), "a", encoding="utf-8") as f:
          f.write(json.dumps(record) + "\n")
      logging.warning("Rollback %d of at most %d: %s Resuming from %s with learning rates x%g.",
                      len(history), max_rollbacks, e,
                      f"checkpoint step {resume_step}" if resume_step is not None
                      else "step 0 (no checkpoint was saved yet)", scale)


def train_once(config: ml_collections.ConfigDict, workdir: str, stop: Optional[threading.Event] = None) -> Any:
  """One attempt of `train_and_evaluate`, without the non-finite-loss policy (NonFiniteLossError
  propagates). Whatever ends it, the data thread, the checkpoint managers and the writers are closed."""
  with stop_on_signals(stop) as stop, contextlib.ExitStack() as cleanup:
    return _train_and_evaluate(config, workdir, stop, cleanup)


class _LoweringCounter:
  """Counts the programs JAX lowers for XLA inside `counting()` blocks (a jax.monitoring listener):
  around the train step, each count is one compilation of it."""

  EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"

  def __init__(self):
    self.count = 0
    self._active = False

  def __call__(self, event: str, duration: float, **kwargs) -> None:
    del duration, kwargs
    if self._active and event == self.EVENT:
      self.count += 1

  @contextlib.contextmanager
  def counting(self) -> Iterator[None]:
    self._active = True
    try:
      yield
    finally:
      self._active = False


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
  check_config(config)   # also here: train_once is public
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  is_main = jax.process_index() == 0

  # --- Devices.
  mesh = runs.make_mesh()
  batch_sharding = NamedSharding(mesh, P("data"))

  # --- Data, models, state, step, sample grids and evaluator of config.task.
  task = tasks.get(config).setup(config, mesh, workdir, is_main)
  state, train_step = task.state, task.train_step

  # --- Restore or start.
  manager = checkpointing.make_manager(workdir, config.train.keep_checkpoints, writer=True)
  cleanup.callback(_close_quietly(manager.close, "the checkpoint manager"))
  signature = task.signature
  restored = checkpointing.restore_latest(manager, state, signature, move_aside_unreadable=True)
  meta = {}
  if restored is not None:
    state, meta = restored
    logging.info("Resumed from %s at step %d.", manager.directory, meta["step"])
    parent = meta.get("init_from")          # a fine-tuned run resumes its own weights, never the parent's
  elif config.train.get("init_from"):
    # First start of a fine-tuned run (gan/finetune.py): the parent's weights, read only.
    state, parent = tasks.get(config).initialize_from(config, state, config.train.init_from)
  else:
    parent = None
  start_step = int(state.step)
  # Before anything is written: the data arguments (e.g. a batch larger than the data) are checked here.
  batches = input_pipeline.prefetch_to_mesh(task.batches(start_step), batch_sharding, size=config.data.prefetch)
  cleanup.callback(batches.close)
  if is_main:
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
      f.write(config.to_json_best_effort(indent=2))
  # Git revision, packages, devices, seed, command; wall time is added when the run ends.
  run_record = {"init_from": parent} if parent else {}
  provenance.write_run_record(workdir, config, start_time, step=start_step, status="running", extra=run_record)

  # --- Sample grids at fixed inputs.
  def write_samples(step: int) -> None:
    if task.sample_grid is None:
      return
    grid = task.sample_grid(state)
    if is_main:   # with its record inside: this run, step and seed (python -m gan.provenance show FILE)
      name = runs.task_of(config)
      rec = provenance.image_record("generated" if name == "generation" else "figure", run=workdir, step=step,
                                    seed=config.seed, operations=[f"{name} sample grid at fixed inputs"])
      provenance.write_image(os.path.join(workdir, "samples", f"step_{step:06d}.png"), grid, rec)
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
              "config": json.loads(config.to_json_best_effort()), **run_record}   # saved with every checkpoint

  # --- Evaluation; the best checkpoint by task.best_metric (e.g. FID, lower is better) is kept apart.
  evaluate_state = task.evaluate
  best_key = task.best_metric
  best_manager = checkpointing.make_manager(workdir, 1, folder="best_checkpoint", writer=True)
  cleanup.callback(_close_quietly(best_manager.close, "the best-checkpoint manager"))
  best_value = (checkpointing.latest_meta(best_manager) or {}).get(best_key, float("inf"))
  # The newest evaluation results are saved with every later checkpoint (meta["eval"]): a trained
  # auxiliary model (e.g. the domain classifier) carries its test accuracy with its weights.
  latest_eval = dict(meta.get("eval", {}))
  # Training seconds used so far (train.time_budget_minutes): the loop's wall time without the
  # evaluations and sample grids, carried across restarts in the checkpoints' meta.
  budget_seconds = 60.0 * float(config.train.get("time_budget_minutes", 0.0))
  train_seconds = float(meta.get("train_seconds", 0.0))
  aside_seconds = 0.0   # spent in evaluation / samples since the loop (re)started

  def run_evaluation(step: int) -> None:
    nonlocal best_value
    results = evaluate_state(state)
    latest_eval.clear()
    latest_eval.update(results, step=step)
    writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
    if best_key in results and results[best_key] < best_value:   # pix2pix without a classifier: no FID
      best_value = results[best_key]
      checkpointing.save(best_manager, state, {"step": step, best_key: best_value, **run_info})

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
               task.description or runs.task_of(config), total_steps, start_step,
               jax.device_count(), config.train.batch_size)
  # A signal during setup: stop before compiling (every process agrees; nothing new to save).
  if start_step < total_steps and distributed.stop_requested(stop, start_step, 1):
    logging.warning("Stopped before training after a signal; rerun the same command to resume from "
                    "step %d.", start_step)
    total_steps = start_step
  lowerings = _LoweringCounter()
  jax.monitoring.register_event_duration_secs_listener(lowerings)
  cleanup.callback(jax.monitoring.unregister_event_duration_listener, lowerings)
  loop_start = time.perf_counter()
  budget_reached = bool(budget_seconds) and train_seconds >= budget_seconds and start_step > 0
  if budget_reached and start_step < total_steps:
    logging.info("The run used its time budget of %.1f min at step %d: nothing left to train.",
                 budget_seconds / 60, start_step)
    total_steps = start_step
  for step in range(start_step + 1, total_steps + 1):
    with jax.profiler.StepTraceAnnotation("train", step_num=step), lowerings.counting():
      state, metrics = train_step(state, next(batches))
    history.append(metrics)
    # Read once: a signal arriving later is handled at the next step (several processes: at the
    # next multiple of log_every, all together).
    stopping = distributed.stop_requested(stop, step, config.train.log_every)
    if budget_seconds and step % config.train.log_every == 0 and step < total_steps:
      jax.block_until_ready(metrics)   # honest time: the step has run, not only been dispatched
      used = train_seconds + time.perf_counter() - loop_start - aside_seconds
      # Several processes: one clock decides for all (they stop together, as for signals).
      if distributed.any_process(used >= budget_seconds):
        budget_reached = True
        total_steps = step
        logging.info("Time budget of %.1f min reached at step %d (%.1f min of training); this is the "
                     "run's last step.", budget_seconds / 60, step, used / 60)
    last = step == total_steps or stopping
    save_now = last or step % config.train.checkpoint_every == 0
    # The final step is always evaluated (a signal on it included: the finished run must carry its
    # results); eval.every = 0 means only then, for tasks that evaluate at all.
    evaluate_now = evaluate_state is not None and (
        step == total_steps or (not stopping and config.eval.every and step % config.eval.every == 0))
    if save_now or evaluate_now or step % config.train.log_every == 0:
      # Waits for the device: NaNs are caught before anything is saved, and the host stays at
      # most log_every steps ahead.
      flush_metrics(step)
    progress(step)            # after the wait, so steps/s measures compute, not dispatch
    aside_start = time.perf_counter()
    if last or step % config.train.sample_every == 0:
      write_samples(step)
    if evaluate_now:
      run_evaluation(step)
    aside_seconds += time.perf_counter() - aside_start
    if save_now:
      seconds = train_seconds + time.perf_counter() - loop_start - aside_seconds
      checkpointing.save(manager, state, {"step": step, "data_position": step * task.data_steps_per_step,
                                          "eval": dict(latest_eval), "train_seconds": seconds,
                                          **run_info})
      last_saved = step
    if stopping:
      logging.warning("Stopped at step %d after a signal; rerun the same command to resume.", step)
      break
    if budget_reached:
      break
  batches.close()
  # Fixed shapes: the step compiles once per run; more means something recompiles every so often.
  compiles = lowerings.count
  jax.monitoring.unregister_event_duration_listener(lowerings)
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
  finished = int(state.step) >= config.train.steps or budget_reached
  provenance.write_run_record(workdir, config, start_time, step=int(state.step),
                              status="finished" if finished else "stopped", extra=run_record)
  return state
