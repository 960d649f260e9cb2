"""Training that recovers from non-finite losses: stop, or roll back with a lower learning rate.

`train.train_and_evaluate` stops with NonFiniteLossError when a loss becomes NaN/inf; nothing
non-finite is ever saved, so the workdir's latest checkpoint is the last good state. With
`train.on_non_finite = "rollback"` this module then reruns training from that checkpoint with
every learning rate of `config.optimizer` multiplied by `train.rollback_lr_factor` (at most
`train.max_rollbacks` times over the run's life, then it stops with the error). Each rollback is
logged and appended to workdir/rollbacks.jsonl; a later start of the same run reads that file,
so the lowered learning rates survive restarts (and config.json shows the rates in use).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Optional

from absl import logging
import jax
import ml_collections

from gan import checkpointing
from gan import train

NON_FINITE_POLICIES = ("stop", "rollback")
ROLLBACK_LOG = "rollbacks.jsonl"


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises train.ConfigError naming the key for invalid fault-handling values."""
  t = config.train
  problems = []
  if t.get("on_non_finite", "stop") not in NON_FINITE_POLICIES:
    problems.append(f"Unknown train.on_non_finite {t.on_non_finite!r}; valid: {list(NON_FINITE_POLICIES)}.")
  factor = t.get("rollback_lr_factor", 0.5)
  if not isinstance(factor, (int, float)) or not 0.0 < factor < 1.0:
    problems.append(f"train.rollback_lr_factor must be in (0, 1) (e.g. 0.5 halves the learning "
                    f"rates), got {factor!r}.")
  rollbacks = t.get("max_rollbacks", 3)
  if not isinstance(rollbacks, int) or rollbacks < 0:
    problems.append(f"train.max_rollbacks must be an int >= 0, got {rollbacks!r}.")
  if problems:
    raise train.ConfigError("Invalid config:\n  " + "\n  ".join(problems))


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
      raise train.ConfigError(f"{path} is not valid JSON lines ({e}); it records the learning-rate "
                              "rollbacks of this run. Fix or delete it (deleting restores the config's "
                              "learning rates).") from None


def _latest_step(workdir: str, keep: int) -> int | None:
  manager = checkpointing.make_manager(workdir, keep)
  try:
    return manager.latest_step()
  finally:
    manager.close()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       stop: Optional[threading.Event] = None):
  """train.train_and_evaluate with config.train.on_non_finite applied; returns the final GanState.

  stop: passed on to train.train_and_evaluate (the event its signal handlers set).

  Raises:
    train.NonFiniteLossError: with "stop" (the default), or after train.max_rollbacks rollbacks.
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
      return train.train_and_evaluate(run_config, workdir, stop)
    except train.NonFiniteLossError as e:
      if policy != "rollback":
        raise
      if len(history) >= max_rollbacks:
        raise train.NonFiniteLossError(
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
