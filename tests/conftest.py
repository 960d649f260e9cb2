"""Shared test fixtures: small IDX data written on the fly, and the optional real data folder."""

from collections.abc import Callable
import gzip
import os
from pathlib import Path
import subprocess
import sys
import time

import numpy as np
import pytest

# ../shared/data next to the repo, or $PRODUCTGAN_DATA_DIR (as in configs/default.py).
REAL_DATA_DIR = Path(os.environ.get("PRODUCTGAN_DATA_DIR",
                                    Path(__file__).resolve().parents[2] / "shared" / "data"))

_IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def idx_bytes(array: np.ndarray) -> bytes:
  """IDX encoding of a uint8 array: magic 0x000008<ndim>, big-endian dims, then the bytes."""
  header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
  return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx_files(directory: Path, images: np.ndarray, labels: np.ndarray,
                    split: str = "train", compress: bool = True) -> tuple[Path, Path]:
  """Writes (N, 28, 28) uint8 images and (N,) labels as the official IDX files of `split`.

  Returns:
    The (images, labels) paths; official ".gz" names when `compress`, else without ".gz".
  """
  directory = Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  paths = []
  for name, array in zip(_IDX_NAMES[split], (images, labels)):
    content = idx_bytes(np.asarray(array, np.uint8))
    path = directory / (name + ".gz" if compress else name)
    path.write_bytes(gzip.compress(content) if compress else content)
    paths.append(path)
  return tuple(paths)


@pytest.fixture(scope="session")
def write_idx() -> Callable[..., tuple[Path, Path]]:
  """`write_idx(directory, images, labels, split="train", compress=True)`: see write_idx_files."""
  return write_idx_files


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
  """The real Fashion-MNIST IDX folder; skips the test when it is absent."""
  path = REAL_DATA_DIR / "fashion_mnist"
  if not (path / "train-images-idx3-ubyte.gz").is_file():
    pytest.skip(f"real Fashion-MNIST not found in {path} (set PRODUCTGAN_DATA_DIR to the folder "
                "holding fashion_mnist/)")
  return path


@pytest.fixture(scope="session")
def product_photos_dir() -> Path:
  """The 400 real validation product photos (shoes 1-200, handbags 201-400; photo in the left half)."""
  path = REAL_DATA_DIR / "products" / "edges2shoes_edges2handbags" / "val"
  if not path.is_dir():
    pytest.skip(f"real product photos not found at {path} (set PRODUCTGAN_DATA_DIR to the folder "
                "holding products/)")
  return path


@pytest.fixture(scope="session")
def products_dir() -> Path:
  """The real products folder (data README section 2): <subset>/{train,val}/<number>_AB.jpg."""
  path = REAL_DATA_DIR / "products"
  if not (path / "edges2shoes_edges2handbags" / "val").is_dir():
    pytest.skip(f"real product photos not found in {path} (set PRODUCTGAN_DATA_DIR to the "
                "folder holding products/)")
  return path


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> str:
  """256 synthetic 28x28 'products' as IDX files (class c: a bright bar at row 2c, plus noise), the
  data of configs/tiny.py in the fault, multi-process and bad-input tests."""
  rng = np.random.default_rng(0)
  labels = np.arange(256) % 10
  images = rng.integers(0, 40, (256, 28, 28), dtype=np.uint8)
  for i, c in enumerate(labels):
    images[i, 2 * c + 2:2 * c + 6, 4:24] = 230
  folder = tmp_path_factory.mktemp("tiny_idx")
  write_idx_files(folder, images, labels, split="train")
  return str(folder)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data_dir):
  """A finished configs/tiny.py run on tiny_data_dir (4 steps, checkpoints 2 and 4):
  (workdir, final GanState). Shared: copy the folder before changing anything in it."""
  from configs import default  # pylint: disable=g-import-not-at-top
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from gan import train  # pylint: disable=g-import-not-at-top
  workdir = tmp_path_factory.mktemp("tiny_run")
  config = default.apply_overrides(tiny.get_config(), {"data.dir": tiny_data_dir})
  return workdir, train.train_and_evaluate(config, str(workdir))


@pytest.fixture
def preempted(monkeypatch) -> Callable[..., tuple[object, object]]:
  """`preempted(config, workdir, metric)`: trains `config` in `workdir` with gan.train, sending this
  process SIGTERM (as a preemption) right after the run first logs the training metric `metric`;
  then reruns the same config in the same workdir. Returns (state the stopped run returned, state
  of the rerun)."""
  import signal  # pylint: disable=g-import-not-at-top
  from gan import train  # pylint: disable=g-import-not-at-top
  from gan import writers  # pylint: disable=g-import-not-at-top

  def run(config, workdir, metric):
    original = writers.create_writer
    sent = []

    def create_writer(*args, **kwargs):
      writer = original(*args, **kwargs)
      write_scalars = writer.write_scalars

      def write_and_signal(step, scalars):
        write_scalars(step, scalars)
        if metric in scalars and not sent:
          sent.append(step)
          os.kill(os.getpid(), signal.SIGTERM)
      writer.write_scalars = write_and_signal
      return writer

    monkeypatch.setattr(writers, "create_writer", create_writer)
    stopped = train.train_and_evaluate(config, str(workdir))
    assert sent, f"the run never logged {metric!r}"
    monkeypatch.setattr(writers, "create_writer", original)
    return stopped, train.train_and_evaluate(config, str(workdir))

  return run


@pytest.fixture(scope="module")
def persistent_compilation_cache(tmp_path_factory):
  """A persistent compilation cache for one test module (restored afterwards): a test that resumes
  a run compiles the same programs as the run it resumes, and the cache turns those second compiles
  (~10 s each for a StyleGAN or translation step on CPU) into reads. Use it with
  `pytestmark = pytest.mark.usefixtures("persistent_compilation_cache")`."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental.compilation_cache import compilation_cache  # pylint: disable=g-import-not-at-top
  keys = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
  saved = {key: jax.config.values[key] for key in keys}
  jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla_cache")))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  compilation_cache.reset_cache()
  yield
  for key, value in saved.items():
    jax.config.update(key, value)
  compilation_cache.reset_cache()


def launch_command(module: str, args: list[str], log_path: Path) -> subprocess.Popen:
  """`python -m MODULE ARGS` from the repository root on one CPU device, stderr (the absl log) to
  `log_path` (a pipe could fill). For the tests that signal a training program mid-run."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
  with open(log_path, "w") as log:
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=Path(__file__).resolve().parents[1],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)


def wait_for(predicate: Callable[[], bool], timeout: float = 300.0) -> None:
  """Polls `predicate` every 20 ms until it holds; AssertionError after `timeout` seconds (a loaded
  machine starts a JAX program slowly: the default is generous)."""
  deadline = time.time() + timeout
  while time.time() < deadline and not predicate():
    time.sleep(0.02)
  assert predicate(), "timed out"


def assert_studio_samples(client, run: str, query: dict, images: np.ndarray, columns: int) -> None:
  """The studio's /api/runs/<run>/samples.png for `query` (a Flask test client's) shows exactly
  `images` (gan.sample's uint8 (N, S, S, C)) in a grid of `columns`, as RGB."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from gan import sampling  # pylint: disable=g-import-not-at-top
  response = client.get(f"/api/runs/{run}/samples.png", query_string=query)
  assert response.status_code == 200, response.data
  grid = sampling.make_grid(images, columns)
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.data)).convert("RGB")),
                                np.repeat(grid, 3, axis=-1) if grid.shape[-1] == 1 else grid)


def assert_states_equal(a, b, exact: bool = True) -> None:
  """Every leaf of pytree `a` equals `b`'s in order (exact, or within float32 round-off of a
  different device split: rtol 2e-4, atol 2e-5), naming the first leaf that differs."""
  import jax  # pylint: disable=g-import-not-at-top
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b)):
    if exact:
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))
    else:
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-4, atol=2e-5,
                                 err_msg=jax.tree_util.keystr(path))
