"""Fine-tuning: a new run that starts from another run's weights (`train.init_from`).

  python -m gan.main --config configs/dcgan_products.py --workdir runs/finetuned \
      --config.train.init_from=runs/products:6000

`<workdir>[:<step>]` names the parent run and one of its checkpoints (default: its newest). At the
first start of the new run (no checkpoint of its own yet) the task copies the parent's weights into
its freshly initialised state: for a GAN (gan/tasks/generation.py) G, D, their normalisation
statistics and the EMA generator; the optimizer states, the step counter (0), the RNG and ADA's p
stay fresh. Arrays whose shapes differ (e.g. a class embedding after a change of data.num_classes)
or that the parent lacks keep their new initialisation and are listed in the log. A parent of
another architecture, resolution or channel count is refused with the keys that differ.

Later starts resume the new run's own checkpoints and never read the parent again (it may be gone).
The parent is only read: its folder is never created, cleaned or written. What was copied, from
which step, is recorded in the new run's provenance.json and checkpoint metadata ("init_from").
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence

from absl import logging
import jax
import ml_collections

from gan import checkpointing
from gan import cli
from gan import runs

MAX_LISTED = 12     # re-initialised / unused arrays listed in the log


class InitFromError(cli.UserError):
  """train.init_from names a run that cannot be fine-tuned from; the message says why and what to do."""


def parse(value: str) -> tuple[str, Optional[int]]:
  """"<workdir>[:<step>]" -> (workdir, step or None); a suffix that is not a number is part of the path."""
  head, sep, tail = value.rpartition(":")
  if sep and head and tail.isdigit():
    return head, int(tail)
  return value, None


def config_problems(config: ml_collections.ConfigDict, supported: bool) -> list[str]:
  """What is wrong with train.init_from (format only: the parent is read at the first start).

  supported: whether config.task can start from another run's weights.
  """
  value = config.train.get("init_from", "")
  if not isinstance(value, str):
    return [f"train.init_from must be a string '<workdir>[:<step>]' (empty: start from scratch), got {value!r}."]
  if not value:
    return []
  if not supported:
    return [f"train.init_from is not supported for task {runs.task_of(config)!r} (only 'generation'); "
            "remove --config.train.init_from."]
  workdir, _ = parse(value)
  if not workdir or workdir.startswith(":"):
    return [f"train.init_from={value!r} names no run folder: use '<workdir>' or '<workdir>:<step>', e.g. "
            "--config.train.init_from=runs/products:6000."]
  return []


def incompatibilities(config: ml_collections.ConfigDict, parent: ml_collections.ConfigDict,
                      keys: Sequence[str]) -> list[str]:
  """'key: parent X vs new Y' for each dotted config key in `keys` whose values differ."""
  def get(c, key):
    node = c
    for part in key.split("."):
      node = node.get(part) if node is not None else None
    return node.to_dict() if isinstance(node, ml_collections.ConfigDict) else node
  return [f"{key}: parent {get(parent, key)!r} vs new {get(config, key)!r}"
          for key in keys if get(parent, key) != get(config, key)]


def resolve(value: str, parent_config: ml_collections.ConfigDict) -> tuple[str, int]:
  """(parent workdir, step to start from) for train.init_from `value`; read only.

  Raises:
    InitFromError: no checkpoint folder, no complete checkpoint (only a half-written one), or the
      requested step is not kept.
  """
  workdir, step = parse(value)
  folder = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(folder):
    raise InitFromError(f"train.init_from={value!r}: {workdir} has no checkpoints yet (no {folder}). Train "
                        "the parent run first, or point --config.train.init_from at a run that has "
                        "checkpoints.")
  manager = checkpointing.make_manager(workdir, parent_config.train.keep_checkpoints, create=False)
  try:
    steps = sorted(manager.all_steps())
  finally:
    manager.close()
  if not steps:
    partial = sorted(n for n in os.listdir(folder) if not n.isdigit())
    raise InitFromError(f"train.init_from={value!r}: {folder} holds no complete checkpoint"
                        + (f" (only {', '.join(partial)}: half-written or moved aside)" if partial else "")
                        + ". Let the parent run save a checkpoint (rerun its command to resume it), or "
                        "point --config.train.init_from at another run.")
  if step is None:
    return workdir, steps[-1]
  if step not in steps:
    raise InitFromError(f"train.init_from={value!r}: {workdir} has no checkpoint at step {step} (kept: "
                        f"{steps}). Use one of them, e.g. --config.train.init_from={workdir}:{steps[-1]}, or "
                        f"--config.train.init_from={workdir} for the newest.")
  return workdir, step


def restore_parent(workdir: str, step: int, target: Any, signature: dict[str, Any], keep: int
                   ) -> tuple[Any, dict[str, Any]]:
  """(state, meta) of the parent's checkpoint `step`, into `target` (the parent's own shapes); read only.

  Raises:
    InitFromError: the checkpoint is unreadable (truncated, garbled) or does not fit the parent's config.
  """
  manager = checkpointing.make_manager(workdir, keep, create=False)
  try:
    return checkpointing.restore_step(manager, step, target, signature)
  except checkpointing.CheckpointMismatchError as e:
    raise InitFromError(f"train.init_from: the checkpoint {workdir}/checkpoints/{step} does not match its own "
                        f"run's config.json, so its weights cannot be identified: {cli.one_line(e)}") from None
  except Exception as e:  # pylint: disable=broad-except  (decoding errors have many types)
    others = [s for s in manager.all_steps() if s != step]
    raise InitFromError(
        f"train.init_from: the checkpoint {workdir}/checkpoints/{step} cannot be read "
        f"({cli.one_line(e, root_cause=True)}). "
        + (f"Start from another of its checkpoints, e.g. --config.train.init_from={workdir}:{max(others)} "
           f"(kept: {sorted(others)})" if others else "It has no other checkpoint; restore it from a backup")
        + ", or point --config.train.init_from at another run.") from None
  finally:
    manager.close()


def transplant(state: Any, parent: Any, fields: Sequence[str]) -> tuple[Any, list[str], list[str]]:
  """`state` with every array of `fields` replaced by the parent's array at the same path when the
  shapes and dtypes match (placed like the array it replaces).

  Returns:
    (new state, re-initialised: "path: parent (shape) vs new (shape)" or "path: not in the parent",
    unused: parent arrays of `fields` with no counterpart in `state`).
  """
  updates, reinitialised, unused = {}, [], []
  for field in fields:
    old = checkpointing.flat_by_path(getattr(parent, field))
    leaves, treedef = jax.tree_util.tree_flatten_with_path(getattr(state, field))
    names = list(checkpointing.flat_by_path(getattr(state, field)))   # same order as `leaves`
    new_leaves = []
    for name, (_, leaf) in zip(names, leaves):
      source = old.pop(name, None)
      if source is None:
        reinitialised.append(f"{field}/{name}: not in the parent")
        new_leaves.append(leaf)
      elif source.shape != leaf.shape or source.dtype != leaf.dtype:
        reinitialised.append(f"{field}/{name}: parent {tuple(source.shape)} vs new {tuple(leaf.shape)}")
        new_leaves.append(leaf)
      else:
        new_leaves.append(jax.device_put(source, leaf.sharding))
    unused += [f"{field}/{name} {tuple(a.shape)}" for name, a in old.items()]
    updates[field] = jax.tree_util.tree_unflatten(treedef, new_leaves)
  return state.replace(**updates), reinitialised, unused


def log_transplant(parent: str, step: int, reinitialised: list[str], unused: list[str]) -> None:
  listing = lambda items: "\n  ".join(items[:MAX_LISTED]) + (
      f"\n  ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")
  logging.info("Initialised from %s step %d (train.init_from); optimizer states, step and RNG are fresh.",
               parent, step)
  if reinitialised:
    logging.warning("%d array(s) re-initialised (shape differs from the parent's, or new):\n  %s",
                    len(reinitialised), listing(reinitialised))
  if unused:
    logging.warning("%d array(s) of the parent not used (this model has no such array):\n  %s",
                    len(unused), listing(unused))
