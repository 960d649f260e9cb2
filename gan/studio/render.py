"""What the studio shows of a runs folder: run summaries (read defensively: a half-written or corrupt
run is reported, never fatal), generated images from stored seeds and real held-out images.

Every image a study shows is a pure function of (run checkpoint, generator EMA / raw, seed, label)
or (run's held-out split, index); both are written once to <runs>/.studio_cache/ as PNGs whose text
carries its provenance record (provenance.write_image), then served from there.

Run names come from requests: `run_dir` accepts only a direct sub-folder of the runs folder with a
plain name, so no request can reach outside it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import re
import threading
from typing import Any, Optional

import numpy as np

from gan import cli
from gan import data
from gan import provenance
from gan import runs
from gan import sample
from gan import sampling

CACHE = ".studio_cache"
EXPORTS = "studio_exports"
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RunAccessError(cli.UserError):
  """A run name that is not a readable run of the folder (HTTP 404)."""


def run_dir(runs_dir: str | os.PathLike, name: Any) -> Path:
  """runs_dir/name, a direct sub-folder; RunAccessError for anything else ("..", "/etc", "a/b",
  a symlink leading out, ...)."""
  root = Path(runs_dir).resolve()
  if not isinstance(name, str) or not RUN_NAME.match(name) or name in (CACHE, EXPORTS):
    raise RunAccessError(f"No run named {name!r} in the runs folder.")
  path = (root / name).resolve()
  if path.parent != root or not path.is_dir():
    raise RunAccessError(f"No run named {name!r} in the runs folder.")
  return path


def run_names(runs_dir: str | os.PathLike) -> list[str]:
  """The sub-folders of runs_dir that may be runs (hidden folders and the studio's own excluded)."""
  root = Path(runs_dir)
  return sorted(p.name for p in root.iterdir()
                if p.is_dir() and RUN_NAME.match(p.name) and p.name != EXPORTS)


def read_metrics(path: Path) -> list[dict[str, Any]]:
  """The records of a metrics.jsonl, skipping lines that do not parse (a run being written ends
  with a partial line)."""
  records = []
  if path.is_file():
    with open(path, encoding="utf-8", errors="replace") as f:
      for line in f:
        try:
          record = json.loads(line)
        except json.JSONDecodeError:
          continue
        if isinstance(record, dict) and isinstance(record.get("step"), (int, float)):
          records.append(record)
  return records


def latest_step(path: Path) -> Optional[int]:
  """The newest numbered checkpoint folder, or None."""
  folder = path / "checkpoints"
  steps = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
  return max(steps) if steps else None


def summarize_run(runs_dir: str | os.PathLike, name: str) -> dict[str, Any]:
  """{"name", "readable", "error"?, "task", "model", "loss", "data", "conditional", "steps", "step",
  "metrics" (the last record), "fid" [(step, value)], "grid" (newest sample grid file name)}."""
  summary: dict[str, Any] = {"name": name, "readable": False}
  try:
    path = run_dir(runs_dir, name)
    config = runs.load_config(str(path))
    records = read_metrics(path / "metrics.jsonl")
    fid_key = next((k for r in records for k in r if k.endswith("fid")), None)
    grids = sorted((path / "samples").glob("step_*.png")) if (path / "samples").is_dir() else []
    summary.update(
        readable=True, task=runs.task_of(config), model=config.model.get("name"),
        loss=config.get("loss", {}).get("name"), data=f"{config.data.get('source')}:{config.data.get('name')}",
        image_size=config.data.get("image_size"), conditional=_condition(config),
        steps=config.train.get("steps"), step=latest_step(path),
        metrics={k: v for k, v in (records[-1] if records else {}).items() if isinstance(v, (int, float))},
        fid=[(int(r["step"]), float(r[fid_key])) for r in records if fid_key and fid_key in r],
        fid_key=fid_key, grid=grids[-1].name if grids else None)
  except (cli.UserError, OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    summary["error"] = cli.one_line(e)
  return summary


def _condition(config) -> str:
  if config.model.get("cond_dim", 0):
    return config.data.get("condition", "none")
  return "class" if config.model.get("conditional") else "none"


def data_key(config) -> tuple:
  """What makes two runs "of the same data" for a preference study."""
  d = config.data
  return (d.get("source"), d.get("name"), d.get("dir"), d.get("image_size"), d.get("channels"), d.get("view"))


class Renderer:
  """Opened runs (one `sample.LoadedRun` each, loaded once), held-out splits and the PNG cache.

  Thread-safe: one lock per run serializes loading and drawing (JAX calls are thread-safe, but
  drawing the same image twice at once is wasted work).
  """

  def __init__(self, runs_dir: str | os.PathLike):
    self.runs_dir = Path(runs_dir)
    self.cache_dir = self.runs_dir / CACHE
    self._loaded: dict[str, sample.LoadedRun] = {}
    self._held_out: dict[str, np.ndarray] = {}
    self._locks: dict[str, threading.Lock] = {}
    self._lock = threading.Lock()

  def _run_lock(self, name: str) -> threading.Lock:
    with self._lock:
      return self._locks.setdefault(name, threading.Lock())

  def loaded(self, name: str) -> sample.LoadedRun:
    """The opened run (RunAccessError / sample.USER_ERRORS when it cannot be opened)."""
    path = run_dir(self.runs_dir, name)
    with self._run_lock(name):
      if name not in self._loaded:
        self._loaded[name] = sample.load_run(str(path))
      return self._loaded[name]

  def config(self, name: str):
    return runs.load_config(str(run_dir(self.runs_dir, name)))

  def num_classes(self, name: str) -> int:
    config = self.config(name)
    return int(config.data.num_classes) if config.model.get("conditional") else 0

  def held_out(self, name: str) -> np.ndarray:
    """The run's held-out split (data.held_out_split), uint8 (N, S, S, C)."""
    with self._run_lock(name):
      if name not in self._held_out:
        self._held_out[name] = data.held_out_dataset(self.config(name).data).images
      return self._held_out[name]

  def draw(self, name: str, num: int, seed: int, use_ema: bool = True, label: Optional[str] = None,
           text: Optional[str] = None, attributes: Optional[str] = None) -> sample.Samples:
    """sample.draw on the opened run: uint8 images (num, S, S, C), grid columns, step, operations."""
    run = self.loaded(name)
    with self._run_lock(name):
      return sample.draw(run, num, label, seed, use_ema, text, attributes)

  def image_png(self, name: str, source: str, seed: int, use_ema: bool = True, label: Optional[int] = None) -> Path:
    """The cached PNG of one study image: generated from `seed` (and class `label`), or the real
    held-out image number `seed`. Written on first use."""
    run_dir(self.runs_dir, name)
    if source == "generated":
      file = self.cache_dir / name / f"{'ema' if use_ema else 'raw'}_{seed}_{'' if label is None else label}.png"
    elif source == "real":
      file = self.cache_dir / name / f"real_{seed}.png"
    else:
      raise ValueError(f"Unknown image source {source!r}.")
    if not file.is_file():
      if source == "generated":
        samples = self.draw(name, 1, seed, use_ema, None if label is None else str(label))
        rec = provenance.image_record("generated", run=run_dir(self.runs_dir, name), step=samples.step, seed=seed,
                                      operations=samples.operations, extra={"studio_image": source})
        image = samples.images[0]
      else:
        split = data.held_out_split(self.config(name).data)
        image = self.held_out(name)[seed]
        # A real photo shown in a study: recorded as such, never as generated.
        rec = provenance.image_record("figure", run=run_dir(self.runs_dir, name), seed=seed,
                                      operations=[f"real image {seed} of the held-out {split!r} split"],
                                      extra={"studio_image": source})
      provenance.write_image(file, to_rgb(image), rec)
    return file

  def grid_png(self, name: str, num: int, seed: int, use_ema: bool = True, label: Optional[str] = None,
               text: Optional[str] = None, attributes: Optional[str] = None) -> Path:
    """A PNG grid of `num` fresh samples, cached by its arguments (the Sample page)."""
    key = json.dumps([num, seed, use_ema, label, text, attributes])
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    file = self.cache_dir / name / f"grid_{digest}.png"
    if not file.is_file():
      samples = self.draw(name, num, seed, use_ema, label, text, attributes)
      rec = provenance.image_record("generated", run=run_dir(self.runs_dir, name), step=samples.step, seed=seed,
                                    operations=[*samples.operations, f"grid of {samples.columns} columns"])
      provenance.write_image(file, to_rgb(sampling.make_grid(samples.images, samples.columns)), rec)
    return file


def to_rgb(image: np.ndarray) -> np.ndarray:
  """(H, W, 1|3) uint8 -> (H, W, 3) uint8 (the browser shows RGB)."""
  return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
