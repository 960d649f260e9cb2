"""What produced a result: code revision, packages, devices, seed, command and wall time.

  record = provenance.record(config=config, seed=config.seed)      # at the start
  ...                                                               # the experiment
  provenance.write(path, provenance.finish(record))                 # adds end time, wall seconds

A training run keeps one file, workdir/provenance.json (`write_run_record`): the latest attempt in
full and a summary of earlier attempts (a resumed run may span several processes and revisions).
Figures carry the same record in their sidecar JSON (gan/figures.py), sweeps in each run's
result.json (experiments/benchmark.py).

Every image the commands write (gan.sample, gan.edit, gan.stylize, training sample grids, figures)
carries a short record inside the file itself (`image_record`, written by `write_image`, the one
image writer): that productgan made it, the run, checkpoint step, seed, the operations applied, git
revision, time and command. PNG: an iTXt chunk "productgan" holding the record as JSON, plus the
standard "Software", "Description", "Source" and "Creation Time" chunks other tools show. JPEG: EXIF
(ImageDescription, Software, DateTime, and the JSON in the Exif UserComment) and an XMP packet
(dc:description, xmp:CreatorTool, xmp:CreateDate, productgan:record). Read it back with
`read_image_record`, or from the command line:

  python -m gan.provenance show out.png [more files...]

which prints each file's record (--json: one JSON object per file, null without a record). Exit
code 0 when every file carries one; 1 when one does not (a photo, or a file whose metadata an editor
stripped: said on stdout, per file), as grep exits 1 when nothing matched, so that `if python -m
gan.provenance show F` tests for a record; and 1 when a file is missing or not an image (one
paragraph "error: ..." on stderr, before anything is printed; --json or the output tells the two
apart).

Records degrade to "unknown" instead of failing: a missing git binary, a copy of the code outside a
repository, a package that is not installed. A record never stops an experiment.
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
from xml.sax import saxutils

from absl import app
from absl import flags
import numpy as np

from gan import cli

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


# --- Provenance inside image files -------------------------------------------------------------

GENERATOR = "productgan"
IMAGE_KEY = "productgan"            # PNG text chunk / XMP property holding the record as JSON
IMAGE_KINDS = ("generated", "edited", "stylized", "figure")
# Output formats that carry the record, by suffix (PIL format names); the commands' outputs.
IMAGE_FORMATS = {ext: "PNG" if ext == ".png" else "JPEG" for ext in cli.OUTPUT_EXTENSIONS}
JPEG_QUALITY = 95
_EXIF_IFD = 0x8769                  # the Exif sub-IFD, where UserComment lives
_EXIF_TAGS = {"ImageDescription": 0x010E, "Software": 0x0131, "DateTime": 0x0132, "UserComment": 0x9286}
_XMP_NS = "http://ns.productgan.invalid/1.0/"    # XMP property namespace (a name, never fetched)


def image_record(kind: str, *, run: Optional[str | os.PathLike] = None, step: Optional[int] = None,
                 seed: Optional[int] = None, operations: Sequence[str] = (),
                 extra: Optional[Mapping[str, Any]] = None, command: Optional[str] = None) -> dict[str, Any]:
  """The provenance record stored inside an image file (see `write_image`).

  Args:
    kind: one of IMAGE_KINDS: "generated" (from noise), "edited", "stylized" or "figure".
    run: the workdir of the model that made it (None: no trained model, e.g. Gatys stylization).
    step: that model's checkpoint step.
    seed: the seed of the latents / projection noise, when one was used.
    operations: what was done, in order, as human-readable strings, e.g. ["invert (W+, 300 steps,
      perceptual lpips_vgg)", "direction size +2"].
    extra: anything else worth keeping (labels, the source image's name, style files, ...).
    command: None: this process's command line.

  Returns:
    {"generator": "productgan", "kind", "run", "step", "seed", "operations", "git": {"revision",
     "dirty"}, "time" (ISO 8601 UTC), "command", "extra"}; JSON types only.
  """
  if kind not in IMAGE_KINDS:
    raise ValueError(f"Unknown image kind {kind!r}; valid: {', '.join(IMAGE_KINDS)}.")
  return to_jsonable({
      "generator": GENERATOR, "kind": kind, "run": run, "step": None if step is None else int(step),
      "seed": None if seed is None else int(seed), "operations": list(operations),
      "git": git_revision(), "time": _iso(time.time()),
      "command": command if command is not None else shlex.join(sys.argv), "extra": dict(extra or {})})


def describe(rec: Mapping[str, Any]) -> str:
  """One line for other tools' "Description" field, e.g. "Edited by productgan: invert (...), then
  direction size +2 (run runs/stylegan, step 9000, seed 0)"."""
  ops = ", then ".join(rec.get("operations") or []) or "no operations recorded"
  where = [f"{k} {rec[k]}" for k in ("run", "step", "seed") if rec.get(k) is not None]
  kind = str(rec.get("kind", "made")).capitalize()
  return f"{kind} by {GENERATOR}: {ops}" + (f" ({', '.join(where)})" if where else "")


def _software(rec: Mapping[str, Any]) -> str:
  git = rec.get("git") or {}
  revision = str(git.get("revision", UNKNOWN))[:12]
  return f"{GENERATOR} (git {revision}{'+dirty' if git.get('dirty') else ''})"


def _xmp_packet(rec: Mapping[str, Any], payload: str) -> bytes:
  """An XMP packet with the Dublin Core description, the creator tool and date, and the record."""
  esc = lambda text: saxutils.escape(str(text), {'"': "&quot;"})
  return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
          '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
          '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
          f'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:productgan="{_XMP_NS}" '
          f'xmp:CreatorTool="{esc(_software(rec))}" xmp:CreateDate="{esc(rec.get("time", ""))}">'
          f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{esc(describe(rec))}</rdf:li></rdf:Alt>'
          f'</dc:description><productgan:record>{esc(payload)}</productgan:record>'
          '</rdf:Description></rdf:RDF></x:xmpmeta>\n<?xpacket end="w"?>').encode("utf-8")


def write_image(path: str | os.PathLike, image: Any, rec: Mapping[str, Any], *,
                quality: int = JPEG_QUALITY) -> None:
  """Writes an image with its provenance record inside: the one image writer of the commands.

  Args:
    path: ends in .png, .jpg or .jpeg (IMAGE_FORMATS); folders are created. Written atomically
      (cli.write_atomically: a reader sees the whole file or none).
    image: uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array in [0, 255] (sampling.to_uint8
      converts [-1, 1] floats), or a PIL image (e.g. a rendered figure; its dpi is kept).
    rec: `image_record`'s dict.
    quality: JPEG quality.

  Raises:
    cli.UserError: a suffix other than IMAGE_FORMATS' (the message lists them).
    TypeError: an array that is not uint8.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top  (a library module: no PIL on import)
  from PIL import PngImagePlugin  # pylint: disable=g-import-not-at-top
  path = Path(path)
  fmt = IMAGE_FORMATS.get(path.suffix.lower())
  if fmt is None:
    raise cli.UserError(f"Cannot write {path}: images are written as {', '.join(IMAGE_FORMATS)} (the "
                        "formats that carry the provenance record); change the file name's suffix.")
  options: dict[str, Any] = {}
  if isinstance(image, Image.Image):
    pil = image
    if "dpi" in image.info:
      options["dpi"] = image.info["dpi"]
  else:
    array = np.asarray(image)
    if array.dtype != np.uint8:
      raise TypeError(f"write_image takes uint8 images (sampling.to_uint8 converts [-1, 1]), got {array.dtype}.")
    pil = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array)
  payload = json.dumps(to_jsonable(rec), sort_keys=True)   # ASCII (non-ASCII escaped): fits EXIF
  description = describe(rec)
  if fmt == "PNG":
    info = PngImagePlugin.PngInfo()
    info.add_itxt(IMAGE_KEY, payload)
    info.add_text("Software", _software(rec))   # tEXt (iTXt when not Latin-1): what most viewers read
    info.add_text("Description", description)
    if rec.get("run") is not None:
      info.add_text("Source", f"{GENERATOR} run {rec['run']}, step {rec.get('step')}")
    info.add_text("Creation Time", str(rec.get("time", "")))
    options["pnginfo"] = info
  else:
    pil = pil.convert("RGB") if pil.mode not in ("RGB", "L") else pil   # JPEG has no alpha
    exif = Image.Exif()
    exif[_EXIF_TAGS["ImageDescription"]] = description.encode("ascii", "replace").decode("ascii")
    exif[_EXIF_TAGS["Software"]] = _software(rec)
    exif[_EXIF_TAGS["DateTime"]] = str(rec.get("time", ""))[:19].replace("-", ":").replace("T", " ")
    exif.get_ifd(_EXIF_IFD)[_EXIF_TAGS["UserComment"]] = b"ASCII\0\0\0" + payload.encode("ascii")
    options.update(exif=exif, xmp=_xmp_packet(rec, payload), quality=quality)
  path.parent.mkdir(parents=True, exist_ok=True)
  cli.write_atomically(path, lambda f: pil.save(f, format=fmt, **options))


def _record_from_xmp(xmp: bytes | str) -> Optional[str]:
  """The productgan:record text of an XMP packet, or None."""
  import xml.etree.ElementTree as ET  # pylint: disable=g-import-not-at-top
  text = xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else xmp
  start, end = text.find("<x:xmpmeta"), text.rfind("</x:xmpmeta>")
  if start < 0 or end < 0:
    return None
  try:
    root = ET.fromstring(text[start:end + len("</x:xmpmeta>")])
  except ET.ParseError:
    return None
  element = root.find(f".//{{{_XMP_NS}}}record")
  return element.text if element is not None else None


def read_image_record(path: str | os.PathLike) -> Optional[dict[str, Any]]:
  """The provenance record inside an image file, or None when it carries none (a photo, or a file
  whose metadata an editor stripped).

  Raises:
    cli.UserError: no file at `path`, not an image PIL can open, or a record that is not valid JSON
      (a damaged file); the message says which.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from PIL import UnidentifiedImageError  # pylint: disable=g-import-not-at-top
  path = Path(path)
  if path.is_dir():
    raise cli.UserError(f"{path} is a folder: pass the image files in it (e.g. {path / '*.png'}).")
  if not path.is_file():
    raise cli.UserError(f"{path} not found: give the path of a PNG or JPEG image.")
  try:
    with Image.open(path) as image:
      payload = None
      if image.format == "PNG":   # chunks before the pixels are in info; .text decodes the image to reach the rest
        payload = image.info.get(IMAGE_KEY) or image.text.get(IMAGE_KEY)
      if payload is None:
        comment = image.getexif().get_ifd(_EXIF_IFD).get(_EXIF_TAGS["UserComment"])
        if isinstance(comment, bytes) and comment.startswith(b"ASCII\0\0\0"):
          payload = comment[8:].decode("ascii", "replace").rstrip("\0")
        elif isinstance(comment, str):
          payload = comment
      if payload is None and image.info.get("xmp"):
        payload = _record_from_xmp(image.info["xmp"])
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
    raise cli.UserError(f"{path} is not an image that can be read ({cli.one_line(e)}): productgan's "
                        "provenance is read from PNG and JPEG files.") from None
  if payload is None:
    return None
  try:
    rec = json.loads(payload)
  except ValueError:
    rec = None
  if not isinstance(rec, dict) or rec.get("generator") != GENERATOR:
    raise cli.UserError(f"{path} has a damaged productgan provenance record (not the JSON written by "
                        "gan.provenance.write_image): the file was altered after it was written. Regenerate it, "
                        "or read the other tags with an EXIF / PNG metadata viewer.")
  return rec


NO_RECORD = "carries no productgan provenance (a photo, or metadata stripped by an editor)"


def format_record(rec: Mapping[str, Any]) -> str:
  """The record as aligned "key: value" lines (operations one per line)."""
  git = rec.get("git") or {}
  lines = [f"  {GENERATOR} image, {rec.get('kind')}",
           f"  run:        {rec.get('run')}",
           f"  step:       {rec.get('step')}",
           f"  seed:       {rec.get('seed')}",
           "  operations: " + ("\n              ".join(rec.get("operations") or []) or "(none recorded)"),
           f"  git:        {git.get('revision', UNKNOWN)}{' (dirty)' if git.get('dirty') else ''}",
           f"  time:       {rec.get('time')}",
           f"  command:    {rec.get('command')}"]
  lines += [f"  {k + ':':11} {json.dumps(v)}" for k, v in (rec.get("extra") or {}).items()]
  return "\n".join(lines)


def show(paths: Sequence[str | os.PathLike], as_json: bool = False) -> int:
  """Prints the provenance of each file (after checking them all: a missing / unreadable file is a
  UserError before any output). Returns the exit code: 0 when every file carries a record, else 1."""
  if not paths:
    raise cli.UserError("Give the image files to read: python -m gan.provenance show FILE [FILE ...].")
  records = [(os.fspath(p), read_image_record(p)) for p in paths]
  for path, rec in records:
    if as_json:
      print(json.dumps({"file": path, "provenance": rec}, sort_keys=True))
    elif rec is None:
      print(f"{path} {NO_RECORD}")
    else:
      print(f"{path}:\n{format_record(rec)}")
  return 0 if all(rec is not None for _, rec in records) else 1


COMMANDS = ("show",)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Command-line flags, defined only when run as a program (the module is also a library)."""
  flags.DEFINE_boolean("json", False, "show: one JSON object per file ({file, provenance}; null without).",
                       flag_values=flag_values)


def run_cli(args: flags.FlagValues, argv: Sequence[str]) -> int:
  """`show FILE...` (argv: what absl left, the program first); returns the exit code."""
  if len(argv) < 2 or argv[1] not in COMMANDS:
    given = f" (got {argv[1]!r})" if len(argv) > 1 else ""
    raise cli.UserError(f"Say what to do{given}: python -m gan.provenance show FILE [FILE ...] prints the "
                        "provenance record inside images written by productgan.")
  return show(argv[2:], as_json=args.json)


def main(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """`python -m gan.provenance show FILE...`: exit 1 for a file without a record or a bad file."""
  code = []
  cli.run_command(lambda: code.append(run_cli(flag_values, argv)))
  if code and code[0]:
    sys.exit(code[0])


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
