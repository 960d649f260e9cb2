"""A task's step over its batches in memory, without a workdir: no checkpoints, no resume.

For throwaway models trained inside another computation (the classification accuracy score trains a
classifier on generated images, gan/evaluate.py) and for unit tests; a run that must survive a stop
goes through the shared loop (gan/train.py) with the same `common.Task`.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from gan import input_pipeline
from gan.tasks import common


def train(task: common.Task, mesh: jax.sharding.Mesh, steps: int, *, log_every: int = 0,
          writer: Optional[Any] = None) -> Any:
  """task.state trained with task.train_step until its step is `steps`.

  Batches are task.batches(state.step) sharded over the mesh's "data" axis, as in the shared loop.
  With log_every > 0 and a CLU `writer`, the mean metrics of every log_every steps are written.
  """
  batches = input_pipeline.prefetch_to_mesh(task.batches(int(task.state.step)), NamedSharding(mesh, P("data")))
  state, history = task.state, []
  logging = writer is not None and log_every > 0
  try:
    for step in range(int(state.step) + 1, steps + 1):
      state, metrics = task.train_step(state, next(batches))
      if not logging:
        continue
      history.append(metrics)
      if step % log_every == 0 or step == steps:
        fetched = jax.device_get(history)
        history.clear()
        writer.write_scalars(step, {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]})
  finally:
    batches.close()
  return state
