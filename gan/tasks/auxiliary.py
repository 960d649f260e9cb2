"""What the tasks training auxiliary models share: enhancement (gan/tasks/enhance.py), the AdaIN
decoder (adain_decoder.py) and the inversion encoder (inversion_encoder.py).

  recorded       a config value chosen from the machine at a run's first start ("auto": is there a
                 domain classifier, which VGG weights exist), kept for every later start of the run
  step_rng       the host randomness of one train step, a pure function of (seed, stream, step)
  process_rows   this process's rows of a global batch
  apply_in_chunks  a jitted function over fixed-size chunks of N examples (one compilation)
  rows_grid      a sample grid with one row per example and one column per image array
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import ml_collections
import numpy as np

from gan import runs
from gan import sampling

AUTO = "auto"


def _get(config: ml_collections.ConfigDict, key: str) -> Any:
  node = config
  for part in key.split("."):
    node = node[part]
  return node


def recorded(config: ml_collections.ConfigDict, workdir: str, key: str, unset: Any = AUTO) -> Any:
  """config's value of the dotted `key`, or, when it is `unset` ("auto"), the value this run
  resolved it to at its first start (workdir/config.json; `unset` again when there is none yet).

  A task's setup resolves "auto" and writes the outcome into the config, which the loop saves as
  config.json right after setup: a restart then continues with what the run was trained with,
  even if the machine changed in between (a classifier trained, VGG weights fetched).
  """
  value = _get(config, key)
  if value != unset:
    return value
  try:
    previous = runs.load_config(workdir)
  except runs.RunError:   # the first start
    return value
  try:
    return _get(previous, key)
  except (KeyError, AttributeError):
    return value


def step_rng(seed: int, stream: int, step: int) -> np.random.Generator:
  """Host randomness of train step `step`: PCG64 seeded by (seed, stream, step), so a resumed run
  draws what an uninterrupted one draws (streams 0 and 1 are gan/input_pipeline.py's)."""
  return np.random.default_rng([seed, stream, step])


def process_rows(global_batch_size: int, process_index: int, process_count: int) -> slice:
  """Rows [p * B / P, (p + 1) * B / P) of a global batch: process p's, as gan/input_pipeline.py."""
  local = global_batch_size // process_count
  return slice(process_index * local, (process_index + 1) * local)


def apply_in_chunks(fn: Callable[..., Any], arrays: tuple[np.ndarray, ...], chunk: int) -> np.ndarray:
  """np.concatenate of fn(*chunks) over consecutive chunks of the arrays' leading axis (N).

  fn is jitted by the caller; every chunk is padded to `chunk` rows (repeating the last row), so it
  compiles once whatever N is.
  """
  n = len(arrays[0])
  chunk = min(chunk, n)
  outputs = []
  for start in range(0, n, chunk):
    parts = [np.asarray(a[start:start + chunk]) for a in arrays]
    pad = chunk - len(parts[0])
    parts = [np.concatenate([p, np.repeat(p[-1:], pad, axis=0)]) if pad else p for p in parts]
    outputs.append(np.asarray(fn(*parts))[:chunk - pad])
  return np.concatenate(outputs)


def rows_grid(columns: list[Any], size: Optional[int] = None) -> np.ndarray:
  """uint8 grid: row i shows columns[0][i], columns[1][i], ...; each column (N, h, w, C) float in
  [-1, 1], nearest-upsampled to `size` (default the largest h) when smaller (e.g. low-resolution inputs)."""
  size = size or max(int(np.shape(c)[1]) for c in columns)
  tiles = []
  for column in columns:
    column = np.asarray(column, np.float32)
    factor = size // column.shape[1]
    if factor > 1:
      column = column.repeat(factor, axis=1).repeat(factor, axis=2)
    tiles.append(sampling.to_uint8(column))
  stacked = np.stack(tiles, axis=1)                    # (N, columns, S, S, C)
  return sampling.make_grid(stacked.reshape(-1, *stacked.shape[2:]), len(columns))

