"""Thin layer over Orbax's CheckpointManager: save the GanState plus JSON metadata, restore the latest.

A checkpoint holds the whole GanState (params, optimizer states, batch-norm statistics, EMA
weights, step, RNG) and a JSON item with the data position and the parts of the config that fix
the parameter shapes. Orbax writes to a temporary folder and renames it when complete, so a run
killed mid-save never leaves a checkpoint that `latest_step` would pick up.

Faults:
  killed mid-save   the partial `<step>.orbax-checkpoint-tmp` folder is ignored, and removed when the
                    training run starts again (`make_manager(..., writer=True)`).
  unreadable        `restore_latest` falls back to the next older checkpoint with a warning naming
                    the bad one (truncated or garbled files); the training run moves it aside to
                    `<step>.corrupt` (kept, never deleted) so later saves and restarts skip it.
  disk full         `save` / `wait` raise CheckpointWriteError naming the folder; the earlier
                    checkpoints stay intact (Orbax deletes old ones only after a new one is complete).
"""

from __future__ import annotations

import dataclasses
import errno
import os
from typing import Any, Optional
import weakref

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from gan import cli
from gan import distributed

CORRUPT_SUFFIX = ".corrupt"
MAX_LISTED = 8      # differing keys / arrays shown by CheckpointMismatchError


class CheckpointMismatchError(ValueError):
  """The workdir's checkpoint was written by a different model/data shape than the config asks for."""


class CheckpointCorruptError(ValueError):
  """No checkpoint of the workdir can be read (every one is truncated or garbled)."""


class CheckpointWriteError(OSError):
  """A checkpoint could not be written (disk full, no permission...); earlier ones are intact."""


# The step each manager is writing: an Orbax write error surfaces one save later (saves are async).
_pending_step: "weakref.WeakKeyDictionary[ocp.CheckpointManager, int]" = weakref.WeakKeyDictionary()


def make_manager(workdir: str, keep: int, folder: str = "checkpoints", *,
                 writer: bool = False, create: bool = True) -> ocp.CheckpointManager:
  """Manager of workdir/folder keeping the `keep` newest checkpoints.

  writer=True (the training run, the folder's only writer) also removes the partial folders of
  saves that a killed run left behind; readers (sampling while training runs) must not.
  create=False: never create the folder (reading another run's checkpoints, which must stay as they are).
  """
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create, cleanup_tmp_directories=writer)
  handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), folder), options=options,
                               item_handlers=handlers)


def latest_meta(manager: ocp.CheckpointManager) -> Optional[dict[str, Any]]:
  """The JSON metadata of the newest checkpoint, or None (also, with a warning, when it is unreadable)."""
  step = manager.latest_step()
  if step is None:
    return None
  try:
    return manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
  except Exception as e:  # pylint: disable=broad-except  (any decoding error of a damaged file)
    logging.warning("Cannot read the metadata of %s/%d (%s); ignoring it.", manager.directory, step,
                    cli.one_line(e, root_cause=True))
    return None


def _disk_full(error: BaseException) -> bool:
  """Whether `error` (or its cause) is ENOSPC / EDQUOT, also when TensorStore reports it as text."""
  while error is not None:
    if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
      return True
    if "No space left on device" in str(error) or "Disk quota exceeded" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


def _as_write_error(manager: ocp.CheckpointManager, error: Exception) -> Optional[CheckpointWriteError]:
  """CheckpointWriteError for file-system failures (TensorStore reports some as ValueError), else None."""
  if not (isinstance(error, OSError) or _disk_full(error)) or isinstance(error, CheckpointWriteError):
    return None
  step = _pending_step.get(manager)
  manager.reload()      # the failed step is not a checkpoint
  intact = list(manager.all_steps())
  where = f"checkpoint step {step} in {manager.directory}" if step is not None else f"a checkpoint in {manager.directory}"
  kept = (f"The earlier checkpoints (steps {intact}) are intact; rerun the same command to resume from "
          f"step {intact[-1]}." if intact else "No earlier checkpoint exists.")
  if _disk_full(error):
    result = CheckpointWriteError(
        f"No space left on the device while writing {where} "
        f"({getattr(error, 'filename', None) or cli.one_line(error, root_cause=True)}). Free some space "
        f"on that disk (or move the run to a larger one with a new --workdir). {kept}")
    result.errno = errno.ENOSPC
    return result
  result = CheckpointWriteError(f"Cannot write {where}: {cli.one_line(error, root_cause=True)}. Check that the "
                                f"folder is writable. {kept}")
  result.errno = getattr(error, "errno", None)
  return result


def save(manager: ocp.CheckpointManager, state: Any, meta: dict[str, Any]) -> None:
  """Saves asynchronously (device arrays are copied before this returns, so donation is safe).

  Raises:
    CheckpointWriteError: this or the previous save failed (e.g. the disk is full).
  """
  step = int(meta["step"])
  wait(manager)            # the previous save (Orbax waits for it here anyway): errors name its step
  _pending_step[manager] = step
  try:
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                               meta=ocp.args.JsonSave(meta)), force=True)
  except Exception as e:  # pylint: disable=broad-except
    if (write_error := _as_write_error(manager, e)) is None:
      raise
    raise write_error from e


def wait(manager: ocp.CheckpointManager) -> None:
  """Blocks until the last save is complete on disk; CheckpointWriteError if it failed."""
  try:
    manager.wait_until_finished()
  except Exception as e:  # pylint: disable=broad-except
    if (write_error := _as_write_error(manager, e)) is None:
      raise
    raise write_error from e


def _describe(value: Any) -> str:
  return f"{tuple(value.shape)} {np.dtype(value.dtype).name}"


def flat_by_path(tree: Any) -> dict[str, Any]:
  """Leaves keyed 'a/0/b' whatever the containers (Orbax reads dataclasses back as dicts)."""
  def name(entry) -> str:
    for attr in ("key", "name", "idx"):
      if hasattr(entry, attr):
        return str(getattr(entry, attr))
    return str(entry)
  return {"/".join(name(e) for e in path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _tree_mismatches(saved_tree: Any, target: Any) -> list[str]:
  saved, wanted = flat_by_path(saved_tree), flat_by_path(target)
  problems = [f"{k}: only in checkpoint" for k in saved.keys() - wanted.keys()]
  problems += [f"{k}: missing from checkpoint" for k in wanted.keys() - saved.keys()]
  problems += [f"{k}: checkpoint {_describe(saved[k])} vs config {_describe(wanted[k])}"
               for k in saved.keys() & wanted.keys()
               if tuple(saved[k].shape) != tuple(wanted[k].shape)]
  return sorted(problems)


def _without_new_empty_fields(target: Any, saved_tree: Any) -> tuple[Any, list[str]]:
  """(restore target, names of dropped fields): the fields of a dataclass state that the checkpoint
  lacks and that hold no arrays (added to the code after the checkpoint was written, e.g.
  GanState.ada, {} while ADA is off) are left out of the target, since Orbax refuses a tree with
  keys the checkpoint does not have; they keep the target's (empty) value."""
  if not dataclasses.is_dataclass(target) or not isinstance(saved_tree, dict):
    return target, []
  names = [f.name for f in dataclasses.fields(target)]
  dropped = [n for n in names if n not in saved_tree and not jax.tree.leaves(getattr(target, n))]
  if not dropped:
    return target, []
  return {n: getattr(target, n) for n in names if n not in dropped}, dropped


def restore_step(manager: ocp.CheckpointManager, step: int, target: Any, signature: dict[str, Any]
                 ) -> tuple[Any, dict[str, Any]]:
  """(state, meta) of checkpoint `step` restored into `target`.

  Raises:
    CheckpointMismatchError: its arrays do not fit `target` (every differing key / array named).
    Any decoding error of a damaged checkpoint (callers decide whether to fall back).
  """
  directory = manager.directory
  meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
  saved_signature = meta.get("signature", {})
  differing = [f"{key}: checkpoint {saved_signature.get(key)!r} vs config {value!r}"
               for key, value in signature.items() if saved_signature.get(key) != value]
  array_problems = _tree_mismatches(manager.item_metadata(step)["state"].tree, target)
  if array_problems:
    raise CheckpointMismatchError(
        f"The checkpoint at {directory}/{step} does not match this config, so it cannot be resumed.\n"
        + "".join(f"  {line}\n" for line in (differing + array_problems)[:MAX_LISTED])
        + (f"  ... and {len(differing + array_problems) - MAX_LISTED} more arrays\n"
           if len(differing + array_problems) > MAX_LISTED else "")
        + "Use a new --workdir for this config, or rerun with the config that wrote the checkpoint "
          f"(saved as {os.path.dirname(str(directory))}/config.json).")
  if differing:
    logging.warning("Resuming %s/%d with config values that differ from the run that wrote it "
                    "(array shapes match):\n  %s", directory, step, "\n  ".join(differing))
  restore_target, dropped = _without_new_empty_fields(target, manager.item_metadata(step)["state"].tree)
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(restore_target), meta=ocp.args.JsonRestore()))
  state = dataclasses.replace(target, **restored.state) if dropped else restored.state
  return state, restored.meta


def moved_aside(directory: str) -> list[str]:
  """The checkpoint folders of `directory` that were moved aside as unreadable (<step>.corrupt...)."""
  if not os.path.isdir(directory):
    return []
  return sorted(name for name in os.listdir(directory) if CORRUPT_SUFFIX in name)


def _move_aside(manager: ocp.CheckpointManager, steps: list[int]) -> list[str]:
  """Renames each step folder to <step>.corrupt (.corrupt.1, ... if taken) on process 0; new paths."""
  directory = str(manager.directory)
  targets = []
  for step in steps:
    target, k = os.path.join(directory, f"{step}{CORRUPT_SUFFIX}"), 0
    while os.path.exists(target):
      k += 1
      target = os.path.join(directory, f"{step}{CORRUPT_SUFFIX}.{k}")
    if distributed.is_main_process():
      os.rename(os.path.join(directory, str(step)), target)
    targets.append(target)
  distributed.barrier("checkpointing.move_aside")
  manager.reload()
  return targets


def restore_latest(manager: ocp.CheckpointManager, target: Any, signature: dict[str, Any], *,
                   move_aside_unreadable: bool = False) -> Optional[tuple[Any, dict[str, Any]]]:
  """Restores the newest readable checkpoint into the structure/shardings of `target`.

  A checkpoint that cannot be read (truncated, garbled or missing files) is skipped with a warning
  naming it, and the next older one is tried. With move_aside_unreadable (the training run, which
  must not save over it later), each skipped folder is renamed <step>.corrupt: kept for
  inspection, never deleted.

  Returns:
    (state, meta), or None when the folder holds no checkpoint (a warning lists folders moved aside
    earlier, so a run never starts from scratch silently).

  Raises:
    CheckpointMismatchError: the newest readable checkpoint does not fit the config (names every
      differing config key / array).
    CheckpointCorruptError: there are checkpoints but none can be read.
  """
  directory = str(manager.directory)
  unreadable: list[tuple[int, str]] = []
  result, restored_step = None, None
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      result, restored_step = restore_step(manager, step, target, signature), step
      break
    except CheckpointMismatchError:
      raise
    except Exception as e:  # pylint: disable=broad-except  (decoding errors have many types)
      unreadable.append((step, cli.one_line(e, root_cause=True)))
      logging.warning("Checkpoint %s/%d is unreadable, trying the previous one. %s", directory, step,
                      cli.one_line(e, root_cause=True))
  if unreadable:
    moved = _move_aside(manager, [step for step, _ in unreadable]) if move_aside_unreadable else []
    listing = "; ".join(f"step {step}: {why}" for step, why in unreadable)
    where = (f" They were moved aside to {', '.join(moved)} (kept; rename one back to its step to "
             "retry it)." if moved else "")
    if result is None:
      raise CheckpointCorruptError(
          f"No checkpoint in {directory} can be read ({listing}).{where} Restore the folder from a "
          "backup, or rerun to start again from step 0" + (" (the unreadable ones stay moved aside)."
                                                           if moved else " in a new --workdir."))
    logging.warning("Resuming from step %d, the newest readable checkpoint in %s: skipped %s.%s",
                    restored_step, directory, listing, where)
    return result
  if result is None and (earlier := moved_aside(directory)):
    logging.warning("No checkpoint in %s; %s were moved aside earlier as unreadable: starting from "
                    "step 0.", directory, ", ".join(earlier))
  return result
