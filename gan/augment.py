"""Differentiable augmentation for images in [-1, 1]: DiffAugment (Zhao et al. 2020) and adaptive
discriminator augmentation (ADA, Karras et al. 2020; `ada_augment`, at the end of this module).

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
import numpy as np

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


# ---------------------------------------------------------------------------------------------------
# Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial
# Networks with Limited Data", the "bgc" pipeline of stylegan2-ada's training/augment.py).
#
# Every transformation is applied to each image independently with probability p (one Bernoulli
# draw per image and transformation); a skipped one uses its identity parameters, so p = 0 is
# exactly the identity. With p < ~0.8 the distribution of augmented images still identifies the
# clean one (the paper's "non-leaking" condition), so G learns clean images. p itself lives in the
# train state (gan/state.py) and is tuned from D's real logits (`ada_update`).
#   "blit":  x-flip, rotation by a multiple of 90 degrees, integer translation by up to 1/8 of the
#            size (reflect padding) - one pixel gather, so flips and rotations are exact permutations.
#   "geom":  isotropic scale 2^N(0, 0.2^2), rotation U(-180, 180) degrees, anisotropic scale
#            2^N(0, 0.2^2), rotation again (each rotation with probability 1 - sqrt(1 - p), so that
#            some rotation happens with probability p), fractional translation N(0, 0.125^2) of the
#            size; composed into one affine map, sampled bilinearly with reflect padding. (The
#            reference additionally up/down-samples 2x with a Sym6 wavelet filter against aliasing;
#            we sample bilinearly at the output resolution.)
#   "color": brightness + N(0, 0.2^2), contrast x 2^N(0, 0.5^2), luma flip, hue rotation
#            U(-180, 180) degrees about the luma axis, saturation x 2^N(0, 1): composed into one 4x4
#            colour matrix. One-channel images get the matrix averaged over output channels and
#            applied to the grey value (as the reference does).
# ---------------------------------------------------------------------------------------------------

ADA_GROUPS = ("blit", "geom", "color")
ADA_TRANSLATE_INT = 0.125      # integer translation: U(-0.125, 0.125) x size, rounded
ADA_SCALE_STD = 0.2            # isotropic scale 2^N(0, std^2)
ADA_ROTATE_MAX = 1.0           # rotation U(-pi, pi) x this
ADA_ANISO_STD = 0.2
ADA_TRANSLATE_FRAC_STD = 0.125
ADA_BRIGHTNESS_STD = 0.2
ADA_CONTRAST_STD = 0.5
ADA_HUE_MAX = 1.0
ADA_SATURATION_STD = 1.0


def _reflect(index: jax.Array, n: int) -> jax.Array:
  """Maps (possibly fractional) positions onto [0, n - 1] by mirroring at the border pixels'
  centres (numpy's pad mode "reflect": ... 2 1 | 0 1 2 ... n-1 | n-2 ...), for any distance."""
  if n == 1:
    return jnp.zeros_like(index)
  period = 2 * (n - 1)
  m = jnp.mod(index, period)
  return jnp.where(m > n - 1, period - m, m)


def _gather_pixels(images: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
  """out[n, y, x] = images[n, rows[n, y, x], cols[n, y, x]] for int index maps (N, H, W) in range."""
  n, h, w, c = images.shape
  flat = (rows * w + cols).reshape(n, -1, 1)
  return jnp.take_along_axis(images.reshape(n, h * w, c), flat, axis=1).reshape(n, rows.shape[1],
                                                                                 rows.shape[2], c)


def blit(images: jax.Array, flip: jax.Array, quarter_turns: jax.Array, shifts: jax.Array) -> jax.Array:
  """x-flip, then rotation by quarter_turns x 90 degrees, then integer translation with reflect
  padding: one gather, so every output pixel is one input pixel (exactly).

  Args:
    images: (N, S, S, C), square.
    flip: (N,) bool, mirror left-right.
    quarter_turns: (N,) int k in 0..3: counter-clockwise as displayed, = jnp.rot90(image, k).
    shifts: (N, 2) int (dy, dx): content moves down / right; uncovered pixels are mirrored in.

  Returns:
    (N, S, S, C).
  """
  n, h, w, _ = images.shape
  if h != w:
    raise ValueError(f"blit needs square images, got {h}x{w}.")
  y = jnp.arange(h)[None, :, None]
  x = jnp.arange(w)[None, None, :]
  shifts = jnp.asarray(shifts, jnp.int32)
  # Inverse order: the last transform (translation) is undone first.
  y = _reflect(y - shifts[:, 0, None, None], h)
  x = _reflect(x - shifts[:, 1, None, None], w)
  y, x = jnp.broadcast_to(y, (n, h, w)), jnp.broadcast_to(x, (n, h, w))
  k = (jnp.asarray(quarter_turns, jnp.int32) % 4)[:, None, None]
  # rot90 by k: out[y, x] = in[src]; k = 1: in[x, S-1-y], 2: in[S-1-y, S-1-x], 3: in[S-1-x, y].
  rows = jnp.select([k == 0, k == 1, k == 2], [y, x, h - 1 - y], w - 1 - x)
  cols = jnp.select([k == 0, k == 1, k == 2], [x, w - 1 - y, w - 1 - x], y)
  cols = jnp.where(jnp.asarray(flip)[:, None, None], w - 1 - cols, cols)
  return _gather_pixels(images, rows, cols)


def affine_warp(images: jax.Array, inverse: jax.Array) -> jax.Array:
  """Resamples each image through an affine map, bilinearly, with reflect padding.

  Coordinates are in pixels about the image centre, (x right, y down, 1). Output pixel q takes the
  input at inverse @ q, so `inverse` is the inverse of the transform applied to the content.

  Args:
    images: (N, H, W, C).
    inverse: (N, 3, 3) float; the identity gives the images back exactly.

  Returns:
    (N, H, W, C), differentiable w.r.t. images (and the matrices).
  """
  n, h, w, _ = images.shape
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
  v, u = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - cy, jnp.arange(w, dtype=jnp.float32) - cx,
                      indexing="ij")
  grid = jnp.stack([u, v, jnp.ones_like(u)], axis=-1)                      # (H, W, 3)
  src = jnp.einsum("nij,hwj->nhwi", inverse.astype(jnp.float32), grid)      # (N, H, W, 3)
  sx = _reflect(src[..., 0] + cx, w)
  sy = _reflect(src[..., 1] + cy, h)
  x0, y0 = jnp.floor(sx), jnp.floor(sy)
  fx, fy = (sx - x0)[..., None].astype(images.dtype), (sy - y0)[..., None].astype(images.dtype)
  x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
  x1, y1 = jnp.minimum(x0 + 1, w - 1), jnp.minimum(y0 + 1, h - 1)   # weight 0 when x0 = W - 1
  # The four neighbours in one gather (each gather, and its scatter-add gradient, is a sizeable
  # program for XLA to compile): rows (N, 4H, W) = y0, y0, y1, y1 stacked along the height.
  rows = jnp.concatenate([y0, y0, y1, y1], axis=1)
  cols = jnp.concatenate([x0, x1, x0, x1], axis=1)
  v00, v01, v10, v11 = jnp.split(_gather_pixels(images, rows, cols), 4, axis=1)
  top = v00 * (1 - fx) + v01 * fx
  bottom = v10 * (1 - fx) + v11 * fx
  return top * (1 - fy) + bottom * fy


def _matrix(rows: list[list[jax.Array | float]], n: int) -> jax.Array:
  """(N, k, k) from a k x k nested list of (N,) arrays or scalars."""
  return jnp.stack([jnp.stack([jnp.broadcast_to(jnp.asarray(e, jnp.float32), (n,)) for e in row], -1)
                    for row in rows], -2)


def rotation_2d(theta: jax.Array) -> jax.Array:
  """(N, 3, 3): rotates content counter-clockwise as displayed (y points down) by theta (N,) radians."""
  c, s = jnp.cos(theta), jnp.sin(theta)
  return _matrix([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]], theta.shape[0])


def scale_2d(sx: jax.Array, sy: jax.Array) -> jax.Array:
  return _matrix([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]], sx.shape[0])


def translation_2d(tx: jax.Array, ty: jax.Array) -> jax.Array:
  return _matrix([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]], tx.shape[0])


# numpy, not jnp: a jnp array at import would start the XLA backend before jax.distributed.initialize.
LUMA_AXIS = np.full((3,), 1.0 / np.sqrt(3.0), np.float32)


def color_matrix(brightness: jax.Array, contrast: jax.Array, luma_flip: jax.Array, hue: jax.Array,
                 saturation: jax.Array) -> jax.Array:
  """(N, 4, 4) homogeneous RGB transform, in the reference's order: brightness, contrast, luma flip,
  hue rotation, saturation. All five at identity values (0, 1, 0, 0, 1) give the identity.

  Args:
    brightness: (N,) offset added to every channel.
    contrast: (N,) factor about 0 (mid-grey in [-1, 1]).
    luma_flip: (N,) 0 or 1: reflect the colour through the plane orthogonal to the luma axis.
    hue: (N,) radians of rotation about the luma axis.
    saturation: (N,) factor on the component orthogonal to the luma axis.
  """
  n = brightness.shape[0]
  eye = jnp.eye(4, dtype=jnp.float32)
  v = jnp.concatenate([LUMA_AXIS, jnp.zeros((1,), jnp.float32)])
  vv = jnp.outer(v, v)                                                   # projection on the luma axis
  per = lambda a: jnp.asarray(a, jnp.float32)[:, None, None]
  m = jnp.broadcast_to(eye, (n, 4, 4))
  m = _matrix([[1.0, 0.0, 0.0, brightness], [0.0, 1.0, 0.0, brightness], [0.0, 0.0, 1.0, brightness],
               [0.0, 0.0, 0.0, 1.0]], n) @ m
  m = _matrix([[contrast, 0.0, 0.0, 0.0], [0.0, contrast, 0.0, 0.0], [0.0, 0.0, contrast, 0.0],
               [0.0, 0.0, 0.0, 1.0]], n) @ m
  m = (eye - 2.0 * vv * per(luma_flip)) @ m
  # Rodrigues' rotation about the (unit) luma axis.
  cross = jnp.array([[0.0, -LUMA_AXIS[2], LUMA_AXIS[1]], [LUMA_AXIS[2], 0.0, -LUMA_AXIS[0]],
                     [-LUMA_AXIS[1], LUMA_AXIS[0], 0.0]], jnp.float32)
  cross = jnp.pad(cross, ((0, 1), (0, 1)))
  c, s = per(jnp.cos(hue)), per(jnp.sin(hue))
  rot = eye * c + cross * s + vv * (1.0 - c)
  rot = rot.at[:, 3, 3].set(1.0)
  m = rot @ m
  m = (vv + (eye - vv) * per(saturation)) @ m
  return m


def apply_color_matrix(images: jax.Array, matrix: jax.Array) -> jax.Array:
  """images (N, H, W, C), C = 3: out = M[:3, :3] @ rgb + M[:3, 3]; C = 1: the matrix averaged over
  its output rows, applied to the grey value replicated over RGB (the reference's rule)."""
  matrix = matrix.astype(images.dtype)
  if images.shape[-1] == 3:
    return jnp.einsum("nij,nhwj->nhwi", matrix[:, :3, :3], images) + matrix[:, None, None, :3, 3]
  if images.shape[-1] != 1:
    raise ValueError(f"Colour augmentation needs 1 or 3 channels, got {images.shape[-1]}.")
  mean = jnp.mean(matrix[:, :3, :], axis=1)                               # (N, 4)
  return images * jnp.sum(mean[:, :3], -1)[:, None, None, None] + mean[:, None, None, None, 3]


def _draws(key: jax.Array, n: int, uniforms: int, normals: int) -> tuple[jax.Array, jax.Array]:
  """(N, uniforms) U[0, 1) and (N, normals) N(0, 1) values: one draw of each kind per group, since
  every separate jax.random call adds its own threefry program to the (compiled) train step."""
  ku, kn = jax.random.split(key)
  return jax.random.uniform(ku, (n, uniforms)), jax.random.normal(kn, (n, max(normals, 1)))


def _gate(u: jax.Array, p: jax.Array, value: jax.Array, identity: float | jax.Array) -> jax.Array:
  """`value` (N, ...) where u (N,) ~ U[0, 1) is below p (probability p per example), else the identity."""
  return jnp.where((u < p).reshape((-1,) + (1,) * (value.ndim - 1)), value, identity)


def random_blit(images: jax.Array, key: jax.Array, p: jax.Array) -> jax.Array:
  """`blit` with flip, quarter turns and shifts each applied with probability p per example
  (a flip, once applied, mirrors with probability 1/2; turns are uniform on 0..3, as in the reference)."""
  n, h, _, _ = images.shape
  u, _ = _draws(key, n, 7, 0)
  flip = _gate(u[:, 0], p, u[:, 1] < 0.5, False)
  turns = _gate(u[:, 2], p, jnp.floor(u[:, 3] * 4).astype(jnp.int32), 0)
  shifts = jnp.round((u[:, 5:7] * 2 - 1) * ADA_TRANSLATE_INT * h).astype(jnp.int32)
  return blit(images, flip, turns, _gate(u[:, 4], p, shifts, 0))


def random_geometric_matrix(key: jax.Array, p: jax.Array, n: int, size: int) -> jax.Array:
  """(N, 3, 3) inverse maps for `affine_warp`: scale, rotation, anisotropic scale, rotation,
  fractional translation (applied to the content in this order), each gated by p."""
  u, z = _draws(key, n, 7, 4)
  p_rot = 1.0 - jnp.sqrt(1.0 - jnp.clip(p, 0.0, 1.0))  # two rotations: one or both with probability p
  s = _gate(u[:, 0], p, jnp.exp2(ADA_SCALE_STD * z[:, 0]), 1.0)
  theta1 = _gate(u[:, 1], p_rot, (u[:, 2] * 2 - 1) * jnp.pi * ADA_ROTATE_MAX, 0.0)
  a = _gate(u[:, 3], p, jnp.exp2(ADA_ANISO_STD * z[:, 1]), 1.0)
  theta2 = _gate(u[:, 4], p_rot, (u[:, 5] * 2 - 1) * jnp.pi * ADA_ROTATE_MAX, 0.0)
  t = _gate(u[:, 6], p, z[:, 2:4] * ADA_TRANSLATE_FRAC_STD * size, 0.0)
  # Inverse of T R2 A R1 S = S^-1 R1^-1 A^-1 R2^-1 T^-1.
  return (scale_2d(1.0 / s, 1.0 / s) @ rotation_2d(-theta1) @ scale_2d(1.0 / a, a)
          @ rotation_2d(-theta2) @ translation_2d(-t[:, 0], -t[:, 1]))


def random_geometric(images: jax.Array, key: jax.Array, p: jax.Array) -> jax.Array:
  """`affine_warp` by `random_geometric_matrix` (a skipped image is resampled at its own pixels)."""
  return affine_warp(images, random_geometric_matrix(key, p, images.shape[0], images.shape[1]))


def random_color_matrix(key: jax.Array, p: jax.Array, n: int) -> jax.Array:
  """(N, 4, 4) `color_matrix` with each of the five transforms gated by p."""
  u, z = _draws(key, n, 7, 3)
  return color_matrix(
      brightness=_gate(u[:, 0], p, ADA_BRIGHTNESS_STD * z[:, 0], 0.0),
      contrast=_gate(u[:, 1], p, jnp.exp2(ADA_CONTRAST_STD * z[:, 1]), 1.0),
      luma_flip=_gate(u[:, 2], p, (u[:, 3] < 0.5).astype(jnp.float32), 0.0),
      hue=_gate(u[:, 4], p, (u[:, 5] * 2 - 1) * jnp.pi * ADA_HUE_MAX, 0.0),
      saturation=_gate(u[:, 6], p, jnp.exp2(ADA_SATURATION_STD * z[:, 2]), 1.0))


def random_ada_color(images: jax.Array, key: jax.Array, p: jax.Array) -> jax.Array:
  return apply_color_matrix(images, random_color_matrix(key, p, images.shape[0]))


ADA_OPS: dict[str, Callable[[jax.Array, jax.Array, jax.Array], jax.Array]] = {
    "blit": random_blit,
    "geom": random_geometric,
    "color": random_ada_color,
}


def parse_ada_groups(groups: str) -> list[str]:
  """The group names of a comma list, in the pipeline's fixed order (blit, geom, color)."""
  names = {name.strip() for name in groups.split(",") if name.strip()}
  unknown = sorted(names - set(ADA_GROUPS))
  if unknown:
    raise ValueError(f"Unknown ADA groups {unknown}; valid: a comma list of {list(ADA_GROUPS)}.")
  return [name for name in ADA_GROUPS if name in names]


def ada_augment(images: jax.Array, key: jax.Array, p: jax.Array, groups: str = "blit,geom,color") -> jax.Array:
  """ADA: every transformation of `groups` applied per example with probability p.

  Args:
    images: (N, S, S, C), C = 1 or 3, in [-1, 1] (outputs may leave the range, like the reference).
    key: PRNG key; group i uses fold_in(key, i) (its index in ADA_GROUPS), so same key, same transforms.
    p: float scalar in [0, 1] (a traced value: changing it does not recompile). p = 0: identity, exactly.
    groups: comma list of ADA_GROUPS (static); applied in the order blit, geom, color.

  Returns:
    (N, S, S, C), differentiable w.r.t. `images`.
  """
  p = jnp.asarray(p, jnp.float32)
  for name in parse_ada_groups(groups):
    images = ADA_OPS[name](images, jax.random.fold_in(key, ADA_GROUPS.index(name)), p)
  return images


def ada_adjust(p: jax.Array, sign_sum: jax.Array, count: jax.Array, target: float, images: float,
               kimg: float) -> jax.Array:
  """The ADA heuristic's new p: r_t = sign_sum / count = E[sign(D(real))] over the interval;
  p moves by sign(r_t - target) * images / (kimg * 1000) (images: reals shown in the interval, so p
  can cross [0, 1] in `kimg` thousand images), clipped to [0, 1]."""
  r_t = sign_sum / jnp.maximum(count, 1.0)
  return jnp.clip(p + jnp.sign(r_t - target) * images / (kimg * 1000.0), 0.0, 1.0)
