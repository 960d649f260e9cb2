"""Drawing images from a generator, with batch-norm statistics re-estimated for the weights used.

The EMA generator's weights never ran a forward pass in training, so the running BN statistics
of the raw generator do not belong to them. `standing_batch_stats` re-estimates them exactly from
one large batch (BigGAN's "standing statistics"): a clone of the generator with BN momentum 0
stores the batch statistics of that pass as its running averages.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Params = Any


class ConditionPool(NamedTuple):
  """The (label, condition vector) pairs of the training data, from which conditions are drawn when
  a continuous-conditioned generator is sampled without user-given conditions.

  labels: (M,) int32; cond: (M, cond_dim) float32.
  """
  labels: Any
  cond: Any


def draw_conditions(key: jax.Array, num: int, num_classes: int, pool: Optional[ConditionPool]
                    ) -> tuple[jax.Array, Optional[jax.Array]]:
  """(labels (num,), cond (num, D) | None): rows of `pool` when given, else uniform labels."""
  if pool is not None:
    rows = jax.random.randint(key, (num,), 0, pool.cond.shape[0])
    return jnp.asarray(pool.labels)[rows], jnp.asarray(pool.cond)[rows]
  return jax.random.randint(key, (num,), 0, max(num_classes, 1)), None


def _cond_dim(generator: nn.Module) -> int:
  return getattr(generator, "cond_dim", 0)


def standing_batch_stats(generator: nn.Module, params: Params, batch_stats: Params, key: jax.Array,
                         num: int, z_dim: int, num_classes: int,
                         pool: Optional[ConditionPool] = None) -> Params:
  """BN statistics of `generator` with `params` over `num` random latents (and uniform labels, or
  conditions drawn from `pool`, required for continuous-conditioned generators)."""
  if not batch_stats or not hasattr(generator, "bn_momentum"):
    return batch_stats   # no batch norm (e.g. StyleGAN, whose w_avg lives here): nothing to re-estimate
  if _cond_dim(generator) and pool is None:
    raise ValueError("This generator takes condition vectors: pass the run's ConditionPool.")
  z_key, label_key = jax.random.split(key)
  z = jax.random.normal(z_key, (num, z_dim), jnp.float32)
  labels, cond = draw_conditions(label_key, num, num_classes, pool)
  _, updates = generator.clone(bn_momentum=0.0).apply(
      {"params": params, "batch_stats": batch_stats}, z, labels if num_classes else None, cond,
      train=True, mutable=["batch_stats"])
  return updates["batch_stats"]


def apply_eval(generator: nn.Module, params: Params, batch_stats: Params, z: jax.Array,
               labels: Optional[jax.Array], cond: Optional[jax.Array] = None) -> jax.Array:
  """Images (N, S, S, C) in [-1, 1] in eval mode (BN uses `batch_stats`); labels ignored if unconditional."""
  return generator.apply({"params": params, "batch_stats": batch_stats}, z,
                         labels if generator.num_classes else None, cond if _cond_dim(generator) else None,
                         train=False)


def generate(generator: nn.Module, params: Params, batch_stats: Params, z: jax.Array,
             labels: Optional[jax.Array], key: jax.Array, standing_stats_batch: int,
             cond: Optional[jax.Array] = None, pool: Optional[ConditionPool] = None) -> jax.Array:
  """Images (N, S, S, C) in [-1, 1] for latents z (N, z_dim), labels (N,) int or None and
  conditions (N, D) or None, with BN statistics re-estimated for `params` (see standing_batch_stats)."""
  stats = standing_batch_stats(generator, params, batch_stats, key, standing_stats_batch, z.shape[-1],
                               generator.num_classes, pool)
  return apply_eval(generator, params, stats, z, labels, cond)


def grid_inputs(key: jax.Array, z_dim: int, num_classes: int, rows: int, columns: int
                ) -> tuple[jax.Array, Optional[jax.Array]]:
  """Fixed latents for sample grids. Conditional: one row per class, the same latent down each column."""
  if num_classes:
    z = jax.random.normal(key, (columns, z_dim), jnp.float32)
    return jnp.tile(z, (num_classes, 1)), jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), columns)
  return jax.random.normal(key, (rows * columns, z_dim), jnp.float32), None


def to_uint8(images: jax.Array | np.ndarray) -> np.ndarray:
  """[-1, 1] floats -> uint8 [0, 255] (rounded, clipped)."""
  images = np.asarray(images, np.float32)
  return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, columns: int, padding: int = 2) -> np.ndarray:
  """(N, H, W, C) uint8 -> one (rows*(H+p)+p, columns*(W+p)+p, C) uint8 image, row-major, padded with 0."""
  n, h, w, c = images.shape
  rows = -(-n // columns)
  grid = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8)
  for i in range(n):
    r, col = divmod(i, columns)
    y, x = padding + r * (h + padding), padding + col * (w + padding)
    grid[y:y + h, x:x + w] = images[i]
  return grid
