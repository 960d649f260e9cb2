"""Thin layer over Orbax's CheckpointManager: save the GanState plus JSON metadata, restore the latest.

A checkpoint holds the whole GanState (params, optimizer states, batch-norm statistics, EMA
weights, step, RNG) and a JSON item with the data position and the parts of the config that fix
the parameter shapes. Orbax writes to a temporary folder and renames it when complete, so a run
killed mid-save never leaves a checkpoint that `latest_step` would pick up.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from absl import logging
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp


class CheckpointMismatchError(ValueError):
  """The workdir's checkpoint was written by a different model/data shape than the config asks for."""


def shape_signature(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config values that determine parameter shapes; a checkpoint must match them to be restored."""
  return {
      **{f"model.{key}": value for key, value in sorted(config.model.to_dict().items())},
      "data.image_size": config.data.image_size,
      "data.channels": config.data.channels,
      "data.num_classes": config.data.num_classes,
  }


def make_manager(workdir: str, keep: int, folder: str = "checkpoints") -> ocp.CheckpointManager:
  """Manager of workdir/folder keeping the `keep` newest checkpoints."""
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
  handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), folder), options=options,
                               item_handlers=handlers)


def latest_meta(manager: ocp.CheckpointManager) -> Optional[dict[str, Any]]:
  """The JSON metadata of the newest checkpoint, or None."""
  step = manager.latest_step()
  if step is None:
    return None
  return manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta


def save(manager: ocp.CheckpointManager, state: Any, meta: dict[str, Any]) -> None:
  """Saves asynchronously (device arrays are copied before this returns, so donation is safe)."""
  step = int(meta["step"])
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
               force=True)


def _describe(value: Any) -> str:
  return f"{tuple(value.shape)} {np.dtype(value.dtype).name}"


def _flat_by_path(tree: Any) -> dict[str, Any]:
  """Leaves keyed 'a/0/b' whatever the containers (Orbax reads dataclasses back as dicts)."""
  def name(entry) -> str:
    for attr in ("key", "name", "idx"):
      if hasattr(entry, attr):
        return str(getattr(entry, attr))
    return str(entry)
  return {"/".join(name(e) for e in path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _tree_mismatches(saved_tree: Any, target: Any) -> list[str]:
  saved, wanted = _flat_by_path(saved_tree), _flat_by_path(target)
  problems = [f"{k}: only in checkpoint" for k in saved.keys() - wanted.keys()]
  problems += [f"{k}: missing from checkpoint" for k in wanted.keys() - saved.keys()]
  problems += [f"{k}: checkpoint {_describe(saved[k])} vs config {_describe(wanted[k])}"
               for k in saved.keys() & wanted.keys()
               if tuple(saved[k].shape) != tuple(wanted[k].shape)]
  return sorted(problems)


def restore_latest(manager: ocp.CheckpointManager, target: Any, signature: dict[str, Any]
                   ) -> Optional[tuple[Any, dict[str, Any]]]:
  """Restores the latest checkpoint into the structure/shardings of `target`; None if there is none.

  Raises CheckpointMismatchError naming every differing config key / array when the checkpoint
  does not fit the config.
  """
  meta = latest_meta(manager)
  if meta is None:
    return None
  step, directory = manager.latest_step(), manager.directory
  saved_signature = meta.get("signature", {})
  differing = [f"{key}: checkpoint {saved_signature.get(key)!r} vs config {value!r}"
               for key, value in signature.items() if saved_signature.get(key) != value]
  array_problems = _tree_mismatches(manager.item_metadata(step)["state"].tree, target)
  if array_problems:
    raise CheckpointMismatchError(
        f"The checkpoint at {directory}/{step} does not match this config, so it cannot be resumed.\n"
        + "".join(f"  {line}\n" for line in differing + array_problems[:20])
        + "Use a new --workdir for this config, or rerun with the config that wrote the checkpoint "
          f"(saved as {os.path.dirname(str(directory))}/config.json).")
  if differing:
    logging.warning("Resuming %s/%d with config values that differ from the run that wrote it "
                    "(array shapes match):\n  %s", directory, step, "\n  ".join(differing))
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
  return restored.state, restored.meta
