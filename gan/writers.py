"""Metric writers: CLU's default (TensorBoard + logging) plus a machine-readable JSON-lines log."""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np
from clu import metric_writers


class JsonlWriter(metric_writers.MetricWriter):
  """Appends {"step": s, name: value, ...} lines to `path` (scalars only; other kinds are ignored)."""

  def __init__(self, path: str):
    self._file = open(path, "a", encoding="utf-8")

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    record = {"step": int(step), **{k: float(np.asarray(v)) for k, v in scalars.items()}}
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()   # readable while training runs (one line per log_every steps)

  def write_images(self, step, images): pass
  def write_videos(self, step, videos): pass
  def write_audios(self, step, audios, *, sample_rate): pass
  def write_texts(self, step, texts): pass
  def write_histograms(self, step, arrays, num_buckets=None): pass
  def write_hparams(self, hparams): pass
  def write_summaries(self, step, values, metadata=None): pass

  def flush(self) -> None:
    self._file.flush()

  def close(self) -> None:
    self._file.close()


def read_jsonl(path: str) -> list[dict[str, float]]:
  """The records of a metrics.jsonl file, in order."""
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def create_writer(workdir: str, is_main_process: bool) -> metric_writers.MetricWriter:
  """TensorBoard events + log lines + workdir/metrics.jsonl on process 0; log lines elsewhere."""
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_main_process)
  if not is_main_process:
    return writer
  return metric_writers.MultiWriter([writer, JsonlWriter(os.path.join(workdir, "metrics.jsonl"))])
