"""Frechet distance between Gaussians fitted to features, with streaming statistics in float64.

Features arrive batch by batch (N, D) and are folded into `FeatureStats` on the host, so a
50k x 2048 feature set never has to sit in memory. The reference (real-data) statistics are
cached as .npz files named by `stats_cache_path`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from typing import Any, NamedTuple

import numpy as np


class FeatureStats(NamedTuple):
  """Running statistics of a stream of D-dimensional features (float64 numpy; a pytree).

  count: number of feature vectors seen so far.
  mean: (D,) float64 mean of those vectors.
  m2: (D, D) float64 sum over vectors of (x - mean)(x - mean)^T (the centred scatter matrix).
  """
  count: int
  mean: np.ndarray
  m2: np.ndarray


def empty_stats(dim: int) -> FeatureStats:
  """Statistics of no features, the starting point of `update`."""
  return FeatureStats(0, np.zeros((dim,), np.float64), np.zeros((dim, dim), np.float64))


def merge(a: FeatureStats, b: FeatureStats) -> FeatureStats:
  """Statistics of the union of two feature sets (Chan et al. 1979 parallel update).

  Only centred products are ever summed. The textbook E[x x^T] - mu mu^T instead subtracts two
  numbers of size |mu|^2 to get one of size var: with |mu| / std = 1e4 that cancels ~8 of float64's
  16 digits (catastrophic cancellation), and all of float32's.
  """
  if a.mean.shape != b.mean.shape:
    raise ValueError(f"Cannot merge statistics of {a.mean.shape[0]}-D and {b.mean.shape[0]}-D features: "
                     "both must come from the same feature network.")
  if a.count == 0:
    return b
  if b.count == 0:
    return a
  count = a.count + b.count
  delta = b.mean - a.mean
  mean = a.mean + delta * (b.count / count)
  m2 = a.m2 + b.m2 + np.outer(delta, delta) * (a.count * b.count / count)
  return FeatureStats(count, mean, m2)


def update(stats: FeatureStats, features: Any) -> FeatureStats:
  """Returns `stats` with the batch `features` (N, D), any float dtype (numpy or jax), added."""
  features = np.asarray(features)
  if features.ndim != 2 or features.shape[1] != stats.mean.shape[0]:
    raise ValueError(f"Expected features of shape (N, {stats.mean.shape[0]}), got {features.shape}; "
                     "flatten spatial axes (or pool) before accumulating.")
  if features.shape[0] == 0:
    return stats
  # Cast before centring: the batch mean and deviations of float32 features are then exact to float64.
  features = features.astype(np.float64)
  mean = features.mean(axis=0)
  centred = features - mean
  return merge(stats, FeatureStats(features.shape[0], mean, centred.T @ centred))


def mean_cov(stats: FeatureStats) -> tuple[np.ndarray, np.ndarray]:
  """(mu (D,), sigma (D, D)) float64; unbiased covariance (N - 1), as np.cov(rowvar=False) in pytorch-fid."""
  if stats.count < 2:
    raise ValueError(f"A covariance needs at least 2 feature vectors, got {stats.count}.")
  return stats.mean.copy(), stats.m2 / (stats.count - 1)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix; rounding-level negative eigenvalues -> 0."""
  eigvals, eigvecs = np.linalg.eigh(sigma)
  return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
  """||mu1 - mu2||^2 + Tr(s1 + s2 - 2 (s1 s2)^{1/2}) in float64 (Heusel et al. 2017).

  mu: (D,) means; sigma: (D, D) symmetric PSD covariances. No general (non-symmetric) sqrtm: with
  symmetric square roots A = s1^{1/2}, B = s2^{1/2} (from `eigh`), s1 s2 is similar to the PSD
  (BA)^T (BA), so Tr (s1 s2)^{1/2} is the sum of the singular values of BA. SVD finds those to
  ~1e-16 |BA| absolute, whereas square-rooting eigenvalues of A s2 A would turn its ~1e-16 rounding
  noise into ~1e-8 per zero eigenvalue (FID of a singular covariance with itself came out -6e-6 for
  D = 64). Singular covariances (fewer samples than dimensions) need no diagonal offset.
  Returns a float >= ~0 (rounding can leave it at about -1e-13 for equal statistics).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  dim = mu1.shape[-1] if mu1.ndim == 1 else -1
  for name, value, shape in (("mu1", mu1, (dim,)), ("mu2", mu2, (dim,)),
                             ("sigma1", sigma1, (dim, dim)), ("sigma2", sigma2, (dim, dim))):
    if value.shape != shape:
      raise ValueError(f"{name} has shape {value.shape}, expected {shape}: means must be (D,) and "
                       f"covariances (D, D) of the same D (mu1 has shape {mu1.shape}).")
    if not np.all(np.isfinite(value)):
      raise ValueError(f"{name} contains NaN or inf; check the features the statistics came from.")
  trace_sqrt = np.sum(np.linalg.svd(_psd_sqrt(sigma2) @ _psd_sqrt(sigma1), compute_uv=False))
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def fid_from_features(real: Any, fake: Any) -> float:
  """FID of feature sets real (N, D) and fake (M, D), any float dtype (numpy or jax), N, M >= 2.

  The all-at-once form of `update` + `mean_cov` on each set, then `frechet_distance`: float64
  means and unbiased (N - 1) covariances, as pytorch-fid. Returns a float >= ~0 (see
  `frechet_distance`); use the streaming functions when features do not fit in memory.
  """
  real, fake = np.asarray(real), np.asarray(fake)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"Expected real (N, D) and fake (M, D) features with the same D, got {real.shape} and "
                     f"{fake.shape}; flatten spatial axes (or pool) first.")
  for name, features in (("real", real), ("fake", fake)):
    if len(features) < 2:
      raise ValueError(f"FID needs at least 2 {name} feature vectors for a covariance, got {len(features)}.")
  mu_r, sigma_r = mean_cov(update(empty_stats(real.shape[1]), real))
  mu_f, sigma_f = mean_cov(update(empty_stats(fake.shape[1]), fake))
  return frechet_distance(mu_r, sigma_r, mu_f, sigma_f)


def save_stats(path: str | os.PathLike, mu: Any, sigma: Any, **metadata: Any) -> None:
  """Writes mu (D,), sigma (D, D) and JSON-serialisable `metadata` to an .npz file at `path`.

  The file is written to a temporary name and renamed, so a concurrent reader of the cache never
  sees half a file.
  """
  try:
    metadata_json = json.dumps(metadata, sort_keys=True)
  except TypeError as e:
    raise ValueError(f"Statistics metadata must be JSON-serialisable (str, int, float, list, dict): {e}") from e
  path = os.fspath(path)
  directory = os.path.dirname(path) or "."
  os.makedirs(directory, exist_ok=True)
  fd, tmp_path = tempfile.mkstemp(dir=directory, suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:  # A file object: np.savez then does not append ".npz".
      np.savez(f, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64),
               metadata=np.asarray(metadata_json))
    os.replace(tmp_path, path)
  except BaseException:
    os.unlink(tmp_path)
    raise


def load_stats(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
  """Reads (mu (D,), sigma (D, D), metadata dict) written by `save_stats`."""
  with np.load(path, allow_pickle=False) as data:
    return data["mu"], data["sigma"], json.loads(str(data["metadata"]))


def stats_cache_path(cache_dir: str | os.PathLike, *, dataset: str, split: str, features: str,
                     resolution: int) -> str:
  """Path of the cached reference statistics, e.g. <cache_dir>/fashion_mnist-train-inception_v3-299px.npz.

  Characters outside [A-Za-z0-9_.] become "_"; when that changed a key (e.g. split "train[:10%]")
  a short hash of the exact keys is appended, so different keys never share a file.
  """
  if not isinstance(resolution, int) or resolution <= 0:
    raise ValueError(f"resolution must be a positive int (pixels fed to the feature network), got {resolution!r}.")
  keys = {"dataset": dataset, "split": split, "features": features}
  for name, value in keys.items():
    if not isinstance(value, str) or not value:
      raise ValueError(f"{name} must be a non-empty string, got {value!r}.")
  safe = [re.sub(r"[^A-Za-z0-9_.]", "_", value) for value in keys.values()]
  name = "-".join(safe) + f"-{resolution}px"
  if safe != list(keys.values()):
    name += "-" + hashlib.sha256(repr((dataset, split, features, resolution)).encode()).hexdigest()[:8]
  return os.path.join(os.fspath(cache_dir), name + ".npz")
