"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for images in [-1, 1].

The discriminator sees `diff_augment(real)` and `diff_augment(G(z))`; every op is differentiable
w.r.t. the images, so the generator is trained through the augmentation. Ops, as in the reference
code (mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py), with one random draw per example:
  "color":       brightness + U(-0.5, 0.5), then saturation x U(0, 2) about the per-pixel channel
                 mean, then contrast x U(0.5, 1.5) about the per-image mean.
  "translation": integer shift in [-s, s] pixels per axis, s = round(size / 8), zero fill.
  "cutout":      one square of side round(size / 2) set to 0, centred uniformly on the image
                 (clipped at the border, so up to 3/4 of it can fall outside).

The reference code also works on [-1, 1] images (StyleGAN2, BigGAN-CIFAR), so its constants carry
over unchanged: brightness +-0.5 is a quarter of the range, and the fill value 0 of translation and
cutout is mid-grey. Our products sit on white (+1), but 0 is kept: "color" runs first and moves the
background off +1 anyway, and D sees the same fill on real and fake images, so it cannot tell them
apart by it. For 1-channel images saturation is the identity (the channel mean is the pixel).

Randomness comes from `key` and the policy position only, so the same key and shape give the same
transforms (pass the same key for real and fake batches to augment them identically).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

BRIGHTNESS = 0.5  # brightness offset ~ U(-BRIGHTNESS, BRIGHTNESS)
SATURATION = (0.0, 2.0)
CONTRAST = (0.5, 1.5)
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def adjust_color(images: jax.Array, brightness: jax.Array, saturation: jax.Array,
                 contrast: jax.Array) -> jax.Array:
  """Brightness, then saturation, then contrast, with explicit per-example factors.

  Args:
    images: (N, H, W, C), C = 1 or 3, in [-1, 1].
    brightness: (N,) offset added to every pixel.
    saturation: (N,) factor on the deviation from the channel mean (0 = grey, 1 = identity).
    contrast: (N,) factor on the deviation from the image mean (over H, W, C).

  Returns:
    (N, H, W, C); may leave [-1, 1] (the reference does not clip either).
  """
  per_example = lambda v: jnp.asarray(v, images.dtype).reshape(-1, 1, 1, 1)
  x = images + per_example(brightness)
  mean = jnp.mean(x, axis=3, keepdims=True)
  x = (x - mean) * per_example(saturation) + mean
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * per_example(contrast) + mean


def translate(images: jax.Array, shifts: jax.Array) -> jax.Array:
  """Shifts each image by whole pixels, filling the uncovered border with 0.

  Args:
    images: (N, H, W, C).
    shifts: (N, 2) int (dy, dx); positive moves the content down / right, like np.roll, but
      pixels shifted out are dropped instead of wrapping around.

  Returns:
    (N, H, W, C) with out[n, y, x] = images[n, y - dy, x - dx], or 0 where that is outside.
  """
  _, h, w, _ = images.shape
  shifts = jnp.asarray(shifts, jnp.int32)
  rows = jnp.arange(h)[None, :] - shifts[:, :1]  # (N, H) source row of each output row
  cols = jnp.arange(w)[None, :] - shifts[:, 1:]  # (N, W)
  out = jnp.take_along_axis(images, jnp.clip(rows, 0, h - 1)[:, :, None, None], axis=1)
  out = jnp.take_along_axis(out, jnp.clip(cols, 0, w - 1)[:, None, :, None], axis=2)
  inside = (((rows >= 0) & (rows < h))[:, :, None, None]
            & ((cols >= 0) & (cols < w))[:, None, :, None])
  return jnp.where(inside, out, jnp.zeros((), images.dtype))


def cutout(images: jax.Array, centers: jax.Array, size: int | tuple[int, int]) -> jax.Array:
  """Sets one rectangle per image to 0 (all channels), clipped at the border.

  Args:
    images: (N, H, W, C).
    centers: (N, 2) int (cy, cx); the hole covers rows cy - sh // 2 ... cy - sh // 2 + sh - 1 and
      likewise columns, so an even side is centred on the corner between four pixels.
    size: side sh = sw, or (sh, sw), in pixels (static).

  Returns:
    (N, H, W, C).
  """
  _, h, w, _ = images.shape
  sh, sw = (size, size) if isinstance(size, int) else size
  starts = jnp.asarray(centers, jnp.int32) - jnp.array([sh // 2, sw // 2])
  in_rows = jnp.arange(h)[None, :] - starts[:, :1]  # (N, H) offset into the hole
  in_cols = jnp.arange(w)[None, :] - starts[:, 1:]
  hole = (((in_rows >= 0) & (in_rows < sh))[:, :, None, None]
          & ((in_cols >= 0) & (in_cols < sw))[:, None, :, None])
  return images * (1 - hole).astype(images.dtype)


def random_color(images: jax.Array, key: jax.Array) -> jax.Array:
  """`adjust_color` with factors drawn per example from the ranges at the top of the module."""
  kb, ks, kc = jax.random.split(key, 3)
  n, dtype = images.shape[0], images.dtype
  return adjust_color(images,
                      jax.random.uniform(kb, (n,), dtype, -BRIGHTNESS, BRIGHTNESS),
                      jax.random.uniform(ks, (n,), dtype, *SATURATION),
                      jax.random.uniform(kc, (n,), dtype, *CONTRAST))


def random_translation(images: jax.Array, key: jax.Array) -> jax.Array:
  """`translate` by shifts ~ U{-s, ..., s} per axis and example, s = int(size / 8 + 0.5)."""
  n, h, w, _ = images.shape
  max_shift = jnp.array([int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)])
  shifts = jax.random.randint(key, (n, 2), -max_shift, max_shift + 1)
  return translate(images, shifts)


def random_cutout(images: jax.Array, key: jax.Array) -> jax.Array:
  """`cutout` of sides int(size / 2 + 0.5) at a random centre, as in the reference.

  Per axis the centre is uniform on 0 ... H - 1 for an odd side and on 0 ... H for an even one,
  which makes the placement symmetric; the hole is clipped whenever it reaches past the border.
  """
  n, h, w, _ = images.shape
  sh, sw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
  maxval = jnp.array([h + 1 - sh % 2, w + 1 - sw % 2])
  centers = jax.random.randint(key, (n, 2), 0, maxval)
  return cutout(images, centers, (sh, sw))


POLICIES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "color": random_color,
    "translation": random_translation,
    "cutout": random_cutout,
}


def diff_augment(images: jax.Array, key: jax.Array, policy: str = "color,translation,cutout") -> jax.Array:
  """Applies the comma-separated ops of `policy` in order, with fresh randomness per example.

  Args:
    images: (N, H, W, C), C = 1 or 3, in [-1, 1].
    key: PRNG key; op i of the policy uses fold_in(key, i).
    policy: comma-separated names from POLICIES; "" is the identity. Static under jit
      (`jax.jit(diff_augment, static_argnames="policy")`).

  Returns:
    (N, H, W, C), differentiable w.r.t. `images`.
  """
  names = [name.strip() for name in policy.split(",") if name.strip()]
  unknown = [name for name in names if name not in POLICIES]
  if unknown:
    raise ValueError(f"Unknown augmentation policy {unknown}; valid names: {sorted(POLICIES)}.")
  for i, name in enumerate(names):
    images = POLICIES[name](images, jax.random.fold_in(key, i))
  return images
