"""Shared test fixtures: small IDX data written on the fly, and the optional real data folder."""

from collections.abc import Callable
import gzip
import os
from pathlib import Path

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
