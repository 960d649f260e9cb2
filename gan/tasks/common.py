"""The contract between a task module and the shared training loop (gan/train.py), and what tasks share.

Every task module in gan/tasks/ provides:

  config_problems(config) -> list[str]   what is wrong with the config keys the task reads (one
                                         message per key, naming a valid value); checked before any
                                         output is written
  setup(config, mesh, workdir, is_main) -> Task    data, models, state, jitted step, sample grid, evaluator
  abstract_state(config) -> pytree of jax.ShapeDtypeStruct    the state's shapes (restore target)
  shape_signature(config) -> dict        the config values fixing those shapes (saved with every
                                         checkpoint; a mismatch is refused with the keys that differ)
  TRAIN_COMMAND: str                     how a user trains one (error messages), "{workdir}" filled in
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple, Optional

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P


class Task(NamedTuple):
  """What the shared loop needs from one kind of model; built by each task module's `setup`."""
  state: Any                                   # initial state, replicated on the mesh; has a `.step`
  train_step: Callable[[Any, dict], tuple[Any, dict]]   # jitted; state donated, batch sharded
  batches: Callable[[int], Iterator[dict[str, np.ndarray]]]   # start_step -> this process's host batches
  sample_grid: Optional[Callable[[Any], np.ndarray]]   # state -> uint8 (H, W, C) grid at fixed inputs;
  #                                              None = the task has no images to show
  evaluate: Optional[Callable[[Any], dict[str, float]]]   # state -> eval metrics (best checkpoint by
  #                                              `best_metric` when present); None = no evaluation
  signature: dict[str, Any]                    # config values fixing the state's shapes (checkpoints)
  class_names: tuple[str, ...]
  data_steps_per_step: int                     # data position of a checkpoint = step * this
  description: str = ""                        # what is trained, for the log ("dcgan", "pix2pix", ...)
  best_metric: str = "fid"                     # lower is better; the best checkpoint keeps its minimum


def replicated_state_and_step(mesh: jax.sharding.Mesh, init: Callable[[], Any],
                              step: Callable[[Any, dict], tuple[Any, dict]]) -> tuple[Any, Callable]:
  """(init() replicated on `mesh`, jit(step)): the state replicated and donated, the batch sharded
  along "data" (data parallelism: XLA inserts the gradient all-reduce)."""
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P("data"))
  state = jax.jit(init, out_shardings=replicated)()
  train_step = jax.jit(step, in_shardings=(replicated, batch_sharding), out_shardings=(replicated, replicated),
                       donate_argnums=(0,))
  return state, train_step
