"""What produced a result: code revision, packages, devices, seed, command and wall time.

  record = provenance.record(config=config, seed=config.seed)      # at the start
  ...                                                               # the experiment
  provenance.write(path, provenance.finish(record))                 # adds end time, wall seconds

A training run keeps one file, workdir/provenance.json (`write_run_record`): the latest attempt in
full and a summary of earlier attempts (a resumed run may span several processes and revisions).
Figures carry the same record in their sidecar JSON (gan/figures.py), sweeps in each run's
result.json (experiments/benchmark.py).

Everything here degrades to "unknown" instead of failing: a missing git binary, a copy of the
code outside a repository, a package that is not installed. A record never stops an experiment.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
from pathlib import Path
import platform
import shlex
import socket
import subprocess
import sys
import time
from typing import Any, Mapping, Optional, Sequence

# Packages whose versions change numbers. JAX plugins (jax-cuda12-plugin, ...) are added when present.
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "clu", "ml-collections", "numpy",
            "scipy", "tensorflow-datasets")
# Environment variables that change what runs (device count, precision, data location).
ENV_PREFIXES = ("XLA_", "JAX_", "PRODUCTGAN_", "CUDA_VISIBLE_DEVICES", "TF_CPP_")
RUN_RECORD = "provenance.json"
UNKNOWN = "unknown"
REPO_ROOT = Path(__file__).resolve().parents[1]


def git_revision(repo_dir: Optional[str | os.PathLike] = None) -> dict[str, Any]:
  """{"revision": 40-hex commit or "unknown", "dirty": bool (tracked files modified) or None}.

  repo_dir: any folder inside a git work tree. None: this code's own checkout, and only when this
  file really sits at its top level (an installed copy inside some other repository, e.g. a
  virtualenv in a project folder, must not report that project's revision).
  Read-only: `git status` runs with --no-optional-locks, so it never rewrites the index.
  """
  unknown = {"revision": UNKNOWN, "dirty": None}
  folder = Path(repo_dir) if repo_dir is not None else REPO_ROOT
  if not folder.is_dir():
    return unknown
  try:
    run = lambda *args: subprocess.run(["git", "-C", str(folder), "--no-optional-locks", *args],
                                       capture_output=True, text=True, check=True, timeout=20).stdout
    top, revision = run("rev-parse", "--show-toplevel", "HEAD").split()
    if repo_dir is None and Path(top).resolve() != REPO_ROOT:
      return unknown
    dirty = bool(run("status", "--porcelain", "--untracked-files=no").strip())
  except (OSError, ValueError, subprocess.SubprocessError):   # no git, not a repo, no commit yet
    return unknown
  return {"revision": revision, "dirty": dirty}


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
  """{distribution name: version or "not installed"}, plus any installed JAX accelerator plugin."""
  versions = {}
  for name in names:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = "not installed"
  for dist in importlib.metadata.distributions():
    name = (dist.metadata["Name"] or "").lower().replace("_", "-")
    if name.startswith(("jax-cuda", "jax-rocm", "libtpu")) and name not in versions:
      versions[name] = dist.version
  return versions


def cpu_model() -> str:
  """The CPU's model name (/proc/cpuinfo on Linux), e.g. "AMD EPYC" or "Intel(R) Xeon(R) ...";
  speeds are only comparable on the same model."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine() or "unknown"


def device_info() -> dict[str, Any]:
  """The JAX backend: platform, device kind(s) and counts (global, local, processes)."""
  import jax  # pylint: disable=g-import-not-at-top  (figures of plain data need no JAX)
  devices = jax.devices()
  return {"backend": jax.default_backend(),
          "device_kind": ", ".join(sorted({d.device_kind for d in devices})),
          "device_count": len(devices), "local_device_count": jax.local_device_count(),
          "process_count": jax.process_count(), "process_index": jax.process_index()}


def to_jsonable(value: Any) -> Any:
  """ConfigDicts, numpy values, paths and tuples -> plain JSON types; anything else -> str(value)."""
  if hasattr(value, "to_json_best_effort") and hasattr(value, "to_dict"):   # ml_collections (Frozen)ConfigDict
    return to_jsonable(value.to_dict())
  if isinstance(value, Mapping):
    return {str(k): to_jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple, set, frozenset)):
    return [to_jsonable(v) for v in value]
  if isinstance(value, (str, bool, int, type(None))):
    return value
  if isinstance(value, float):
    return value if value == value and abs(value) != float("inf") else str(value)   # JSON has no NaN
  if hasattr(value, "tolist"):                        # numpy / jax scalars and arrays
    return to_jsonable(value.tolist())
  if isinstance(value, os.PathLike):
    return os.fspath(value)
  return str(value)


def _iso(unix_seconds: float) -> str:
  return datetime.datetime.fromtimestamp(unix_seconds, datetime.timezone.utc).isoformat(timespec="seconds")


def record(*, config: Any = None, seed: Optional[int] = None, command: Optional[str] = None,
           start_time: Optional[float] = None, devices: bool = True,
           packages: Sequence[str] = PACKAGES, repo_dir: Optional[str | os.PathLike] = None,
           extra: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
  """Everything needed to reproduce a result, as a JSON-able dict.

  Args:
    config: the experiment's config (ConfigDict or dict), stored in full; None: not recorded.
    seed: None: config.seed when the config has one.
    command: None: this process's command line (sys.argv).
    start_time: time.time() when the experiment started; None: now. `finish` measures from it.
    devices: record the JAX devices (initialises JAX's backend if nothing has yet).
    packages: distributions whose versions are recorded.
    repo_dir: where to read the git revision (None: this code's checkout, see `git_revision`).
    extra: anything else, stored under "extra".

  Returns:
    {"git": {"revision", "dirty"}, "packages", "python", "platform", "cpu", "cpu_count", "hostname", "devices",
     "seed", "command", "cwd", "env", "start_time" (ISO 8601 UTC), "start_unix", "config", "extra"}.
  """
  start_time = time.time() if start_time is None else float(start_time)
  if seed is None and config is not None:
    try:
      seed = config["seed"]
    except (KeyError, TypeError, AttributeError):
      seed = None
  result = {
      "git": git_revision(repo_dir),
      "packages": package_versions(packages),
      "python": f"{platform.python_implementation()} {platform.python_version()}",
      "platform": platform.platform(),
      "cpu": cpu_model(), "cpu_count": os.cpu_count(),
      "hostname": socket.gethostname(),
      "devices": device_info() if devices else None,
      "seed": to_jsonable(seed),
      "command": command if command is not None else shlex.join(sys.argv),
      "cwd": os.getcwd(),
      "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)},
      "start_time": _iso(start_time),
      "start_unix": start_time,
      "config": to_jsonable(config),
  }
  if extra:
    result["extra"] = to_jsonable(extra)
  return result


def finish(rec: Mapping[str, Any], end_time: Optional[float] = None) -> dict[str, Any]:
  """A copy of `rec` with "end_time" (ISO 8601 UTC) and "wall_seconds" since its start."""
  end_time = time.time() if end_time is None else float(end_time)
  return {**rec, "end_time": _iso(end_time), "wall_seconds": round(end_time - rec["start_unix"], 3)}


def write(path: str | os.PathLike, rec: Mapping[str, Any]) -> str:
  """Writes `rec` as indented JSON to `path` (folders created; atomic rename); returns the path."""
  path = os.fspath(path)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(to_jsonable(rec), f, indent=2)
    f.write("\n")
  os.replace(tmp, path)       # a reader never sees half a file
  return path


def read(path: str | os.PathLike) -> dict[str, Any]:
  with open(path, encoding="utf-8") as f:
    return json.load(f)


_ATTEMPT_KEYS = ("start_time", "end_time", "wall_seconds", "status", "step", "git", "command", "devices")


def write_run_record(workdir: str | os.PathLike, config: Any, start_time: float, *,
                     step: Optional[int] = None, status: str = "finished",
                     filename: str = RUN_RECORD, extra: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
  """Writes workdir/provenance.json for a training run; returns the record.

  Call it at the start of train_and_evaluate (status="running") and at its end ("finished", or
  "stopped" after a signal), with the same `start_time` (time.time() at the start of this process's
  attempt). A file left by an earlier attempt moves, summarised, to "previous_attempts" (one still
  "running" there was killed: "interrupted", its wall time unknown); "total_wall_seconds" adds the
  known wall times of all attempts. Only process 0 writes; the others just return the record.

  Args:
    workdir: the run's folder.
    config: the run's ConfigDict.
    start_time: time.time() when this attempt started.
    step: the train step reached (the start step while "running").
    status: "running", "finished" or "stopped".
    filename: file name inside workdir.
    extra: more JSON-able keys of the run, e.g. {"init_from": parent run and step} of a fine-tuned run.
  """
  path = os.path.join(os.fspath(workdir), filename)
  rec = record(config=config, start_time=start_time)
  rec = finish(rec) if status != "running" else {**rec, "end_time": None, "wall_seconds": None}
  rec.update(status=status, step=None if step is None else int(step), **dict(extra or {}))
  previous: list[dict[str, Any]] = []
  if os.path.exists(path):
    try:
      old = read(path)
    except (OSError, ValueError):    # unreadable (e.g. a crash mid-write on a full disk): start afresh
      old = None
    if old is not None:
      previous = list(old.get("previous_attempts", []))
      if old.get("start_unix") != rec["start_unix"]:      # an earlier process, not this one's first call
        attempt = {k: old.get(k) for k in _ATTEMPT_KEYS}
        if attempt["status"] == "running":
          attempt["status"] = "interrupted"
        previous.append(attempt)
  known = [a["wall_seconds"] for a in previous if a.get("wall_seconds") is not None]
  rec["previous_attempts"] = previous
  rec["total_wall_seconds"] = round(sum(known) + (rec["wall_seconds"] or 0.0), 3)
  if rec["devices"]["process_index"] == 0:
    write(path, rec)
  return rec
