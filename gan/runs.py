"""Opening a run: its saved config, its checkpoints, the device mesh, and the errors that go with them.

A run is a workdir written by the shared training loop (gan/train.py), whatever its task:

  <workdir>/config.json        the full config the run was started with
  <workdir>/checkpoints/<step> Orbax: the task's state + JSON metadata (step, data position, signature)
  <workdir>/best_checkpoint/   the best evaluated state, when the task evaluates
  <workdir>/samples/, metrics.jsonl, TensorBoard events, provenance.json

This module knows nothing about what a task trains: it reads the config and restores a checkpoint
into an abstract target that the task module provides (gan/tasks/<task>.py `abstract_state`), so
commands, notebooks and experiments open every kind of run the same way (gan.tasks.restore).
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import jax
import ml_collections

from configs import default as default_config
from gan import checkpointing
from gan import cli


class ConfigError(cli.UserError):
  """A config value is invalid; the message names the key and a valid alternative."""


class RunError(cli.UserError):
  """The workdir is not a run of the expected kind, or has no checkpoint yet; the message says what to do."""


def make_mesh() -> jax.sharding.Mesh:
  """A 1-D data-parallel mesh ("data") over all devices of all processes.

  Auto axes: XLA propagates shardings from the inputs (the "explicit" default would need every
  op to state its output sharding).
  """
  return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def merge_config(base: ml_collections.ConfigDict, saved: dict[str, Any]) -> ml_collections.ConfigDict:
  """`base` with every value of `saved` (a nested dict) written over it, new keys included.

  Keys added to the codebase after a run started keep `base`'s defaults, which reproduce the
  behaviour the run was trained with.
  """
  config = base.copy_and_resolve_references()

  def merge(node: ml_collections.ConfigDict, values: dict) -> None:
    for key, value in values.items():
      if isinstance(value, dict) and key in node and isinstance(node[key], ml_collections.ConfigDict):
        merge(node[key], value)
      else:
        with node.ignore_type():
          node[key] = value

  merge(config, saved)
  return config


def load_config(workdir: str, base: Optional[ml_collections.ConfigDict] = None) -> ml_collections.ConfigDict:
  """The config a run was trained with (workdir/config.json merged over `base`, default configs/default.py).

  Raises:
    RunError: no config.json (not a run, or not started), or it is unreadable.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise RunError(f"{path} not found: {workdir!r} is not a training workdir. Train first with "
                   f"python -m gan.main --config configs/... --workdir {workdir}")
  try:
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise RunError(f"Cannot read {path} ({e}): the run's config is damaged. Restore it from a copy, "
                   "or rewrite it with the config the run was trained with.") from None
  if not isinstance(saved, dict):
    raise RunError(f"{path} does not hold a config (a JSON object); restore it from a copy.")
  return merge_config(base if base is not None else default_config.get_config(), saved)


class RunNotFoundError(RunError, FileNotFoundError):
  """No run at all in the folder (no config.json): nothing was trained there yet."""


def load_task_config(workdir: str, task: str, what: str, train_command: str) -> ml_collections.ConfigDict:
  """The config of a run of `task` (e.g. "adain_decoder"), for loaders of one kind of model.

  what: the model, for messages ("an AdaIN decoder"); train_command: how to train one.

  Raises:
    RunNotFoundError (also a FileNotFoundError): no run in `workdir`.
    RunError: an unreadable config.json, or a run of another task.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise RunNotFoundError(f"{path} not found: {workdir!r} holds no {what.split(' ', 1)[-1]}. Train one "
                           f"with: {train_command}")
  config = load_config(workdir)
  if task_of(config) != task:
    raise RunError(f"{workdir} is a {task_of(config)!r} run, not {what} (task {task!r}). Train one with: "
                   f"{train_command}")
  return config


def task_of(config: ml_collections.ConfigDict) -> str:
  """The task a config trains ("generation" for configs that predate the key)."""
  return config.get("task", "generation")


def on_one_device(abstract: Any) -> Any:
  """An abstract state (ShapeDtypeStructs) placed on the first local device: a restore target."""
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device), abstract)


def restore_checkpoint(workdir: str, target: Any, signature: dict[str, Any], keep: int = 1,
                       folder: str = "checkpoints", train_command: str = "python -m gan.main --config "
                       "configs/... --workdir {workdir}") -> tuple[Any, dict[str, Any]]:
  """(state, meta) of the newest readable checkpoint of workdir/folder, restored into `target`.

  Reading only: nothing in the folder is moved or removed (a training run may be writing it).

  Raises:
    RunError: no checkpoint yet (the message gives `train_command`).
    checkpointing.CheckpointMismatchError / CheckpointCorruptError: see gan/checkpointing.py.
  """
  if not os.path.isdir(os.path.join(workdir, folder)):
    raise RunError(f"No checkpoints in {workdir}: train first ({train_command.format(workdir=workdir)}) "
                   "or wait for the first checkpoint.")
  manager = checkpointing.make_manager(workdir, keep, folder)
  try:
    restored = checkpointing.restore_latest(manager, target, signature)
  finally:
    manager.close()
  if restored is None:
    raise RunError(f"No complete checkpoint in {workdir}/{folder} yet.")
  return restored
