"""Improved precision / recall (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al. 2020).

Each feature set approximates its manifold by the union of balls around its points, the radius of
a point being the distance to its k-th nearest neighbour in the same set.
  precision: fraction of fake points inside the real manifold (k = 3).
  recall:    fraction of real points inside the fake manifold (k = 3).
  density:   real balls containing each fake point, averaged and divided by k (k = 5); ~1 when the
             distributions match, can exceed 1.
  coverage:  fraction of real points whose ball contains at least one fake point (k = 5).
A point on a ball's boundary counts as inside (<=, as in Kynkaanniemi et al.'s code).
Distances are computed in row chunks of `chunk_size` on the device, so 10k x 10k sets need only
chunk_size x 10k floats at a time.
"""

from __future__ import annotations

import functools
from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def _sq_distances(a: jax.Array, b: jax.Array) -> jax.Array:
  """(c, D), (N, D) -> (c, N) squared Euclidean distances."""
  # HIGHEST: TF32/bf16 matmuls on GPU/TPU would move points across ball boundaries.
  ab = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
  d2 = jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :] - 2.0 * ab
  return jnp.maximum(d2, 0.0)  # Rounding can make the distance of a point to itself slightly negative.


@functools.partial(jax.jit, static_argnames="num")
def _smallest_sq_distances(chunk: jax.Array, points: jax.Array, num: int) -> jax.Array:
  """(c, num) smallest squared distances of each chunk row to `points`, ascending."""
  return -jax.lax.top_k(-_sq_distances(chunk, points), num)[0]


@jax.jit
def _cross_chunk(fake: jax.Array, fake_valid: jax.Array, fake_r2: jax.Array, real: jax.Array,
                 real_r2_pr: jax.Array, real_r2_dc: jax.Array) -> tuple[jax.Array, ...]:
  """One chunk of fake rows against all real rows; padding rows are masked by `fake_valid`."""
  d2 = _sq_distances(fake, real)  # (c, N)
  in_real_manifold = jnp.any(d2 <= real_r2_pr[None, :], axis=1)  # (c,)
  real_balls_containing = jnp.sum(d2 <= real_r2_dc[None, :], axis=1)  # (c,)
  in_fake_manifold = jnp.any((d2 <= fake_r2[:, None]) & fake_valid[:, None], axis=0)  # (N,)
  nearest_fake = jnp.min(jnp.where(fake_valid[:, None], d2, jnp.inf), axis=0)  # (N,)
  return in_real_manifold, real_balls_containing, in_fake_manifold, nearest_fake


def _chunks(x: jax.Array, chunk_size: int) -> Iterator[tuple[jax.Array, int]]:
  """Yields (rows padded to one fixed size, number of real rows), so each jit compiles once."""
  size = min(chunk_size, x.shape[0])
  for start in range(0, x.shape[0], size):
    chunk = x[start:start + size]
    valid = chunk.shape[0]
    yield jnp.pad(chunk, ((0, size - valid), (0, 0))), valid


def _knn_sq_radii(x: jax.Array, ks: Sequence[int], chunk_size: int) -> np.ndarray:
  """(len(ks), N) squared distance of each row to its k-th nearest other row, for each k."""
  num = max(ks) + 1  # The row itself is its own nearest neighbour, at distance 0.
  smallest = np.concatenate([np.asarray(_smallest_sq_distances(chunk, x, num))[:valid]
                             for chunk, valid in _chunks(x, chunk_size)])
  return smallest[:, list(ks)].T


def _prepare(real: Any, fake: Any, k: int) -> tuple[jax.Array, jax.Array]:
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"Expected real (N, D) and fake (M, D) features with the same D, got {real.shape} "
                     f"and {fake.shape}.")
  if min(len(real), len(fake)) <= k:
    raise ValueError(f"k={k} nearest neighbours need more than k samples per set, got {len(real)} real "
                     f"and {len(fake)} fake: use more samples or a smaller k.")
  # Distances are translation invariant; centring shrinks |x|^2 + |y|^2 - 2 x.y, which in float32
  # cancels catastrophically for far-from-origin features.
  shift = real.mean(axis=0)
  return jnp.asarray(real - shift, jnp.float32), jnp.asarray(fake - shift, jnp.float32)


def knn_radii(features: Any, k: int, *, chunk_size: int = 1024) -> np.ndarray:
  """(N,) float32 distance of each row of `features` (N, D) to its k-th nearest other row."""
  x = np.asarray(features, np.float64)
  if x.ndim != 2 or len(x) <= k or k < 1:
    raise ValueError(f"Expected features (N, D) with N > k >= 1, got shape {x.shape} and k={k}.")
  x = jnp.asarray(x - x.mean(axis=0), jnp.float32)
  return np.sqrt(_knn_sq_radii(x, (k,), chunk_size)[0])


def precision_recall_density_coverage(real: Any, fake: Any, *, pr_k: int = 3, dc_k: int = 5,
                                      chunk_size: int = 1024) -> dict[str, float]:
  """{"precision", "recall", "density", "coverage"} of features real (N, D) and fake (M, D).

  Precision and recall use `pr_k`-NN radii, density and coverage `dc_k`-NN radii of the real set.
  All four come from one k-NN pass over each set and one pass over the real-fake distances.
  Precision, recall and coverage are in [0, 1]; density is in [0, N / dc_k].
  """
  if chunk_size < 1 or pr_k < 1 or dc_k < 1:
    raise ValueError(f"chunk_size, pr_k and dc_k must be positive, got {chunk_size}, {pr_k}, {dc_k}.")
  real, fake = _prepare(real, fake, max(pr_k, dc_k))
  real_r2_pr, real_r2_dc = _knn_sq_radii(real, (pr_k, dc_k), chunk_size)
  fake_r2 = _knn_sq_radii(fake, (pr_k,), chunk_size)[0]
  real_r2_pr, real_r2_dc = jnp.asarray(real_r2_pr), jnp.asarray(real_r2_dc)
  in_real, containing = [], []
  in_fake = np.zeros((real.shape[0],), bool)
  nearest_fake = np.full((real.shape[0],), np.inf, np.float32)
  start = 0
  for chunk, valid in _chunks(fake, chunk_size):
    size = chunk.shape[0]
    radii = np.zeros((size,), np.float32)
    radii[:valid] = fake_r2[start:start + valid]
    outputs = _cross_chunk(chunk, jnp.arange(size) < valid, jnp.asarray(radii), real, real_r2_pr, real_r2_dc)
    chunk_in_real, chunk_containing, chunk_in_fake, chunk_nearest = jax.device_get(outputs)
    in_real.append(chunk_in_real[:valid])
    containing.append(chunk_containing[:valid])
    in_fake |= chunk_in_fake
    nearest_fake = np.minimum(nearest_fake, chunk_nearest)
    start += valid
  return {"precision": float(np.mean(np.concatenate(in_real))),
          "recall": float(np.mean(in_fake)),
          "density": float(np.mean(np.concatenate(containing)) / dc_k),
          "coverage": float(np.mean(nearest_fake <= np.asarray(real_r2_dc)))}
