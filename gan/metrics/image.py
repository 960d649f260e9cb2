"""Full-reference image metrics: MSE, PSNR and SSIM (Wang et al. 2004), jit-compiled.

Images are floats of shape (N, H, W, C) or (H, W, C), in [0, 1] (data_range=1) or [-1, 1]
(data_range=2). Batched inputs give one value per image, shape (N,); a single image gives a scalar.
SSIM matches skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=..., channel_axis=-1).
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import jax
import jax.numpy as jnp


def _batched(a: Any, b: Any, min_size: int = 1) -> tuple[jax.Array, jax.Array, bool]:
  """Both images as float32 (N, H, W, C), and whether the inputs were a single (H, W, C) image."""
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  if a.shape != b.shape or a.ndim not in (3, 4):
    raise ValueError(f"Expected two images of the same shape (N, H, W, C) or (H, W, C), got {a.shape} and "
                     f"{b.shape}; add a channel axis to grayscale images with x[..., None].")
  if min(a.shape[-3:-1]) < min_size:
    raise ValueError(f"Images of {a.shape[-3]}x{a.shape[-2]} pixels are smaller than the {min_size}x{min_size} "
                     "SSIM window; compare images at least that large.")
  single = a.ndim == 3
  return (a[None], b[None], single) if single else (a, b, single)


def _check_range(data_range: float) -> None:
  if not data_range > 0:
    raise ValueError(f"data_range must be positive (1 for images in [0, 1], 2 for [-1, 1]), got {data_range}.")


@jax.jit
def _mse(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.mean(jnp.square(a - b), axis=(1, 2, 3))


def mse(a: Any, b: Any) -> jax.Array:
  """Mean squared error over pixels and channels, per image: (N,) or scalar float32."""
  a, b, single = _batched(a, b)
  values = _mse(a, b)
  return values[0] if single else values


def psnr(a: Any, b: Any, *, data_range: float) -> jax.Array:
  """Peak signal-to-noise ratio 10 log10(data_range^2 / MSE) in dB, per image: (N,) or scalar.

  Identical images have MSE 0 and PSNR +inf; average PSNRs only over finite values.
  """
  _check_range(data_range)
  a, b, single = _batched(a, b)
  values = 10.0 * jnp.log10(data_range ** 2 / _mse(a, b))
  return values[0] if single else values


def _gaussian_window(sigma: float, truncate: float) -> jax.Array:
  """Normalised 1-D Gaussian taps, the radius int(truncate * sigma + 0.5) of scipy.ndimage."""
  radius = int(truncate * sigma + 0.5)
  x = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  taps = jnp.exp(-0.5 * (x / sigma) ** 2)
  return taps / taps.sum()


def _blur_valid(x: jax.Array, taps: jax.Array) -> jax.Array:
  """Separable depthwise Gaussian blur of (N, H, W, K) without padding: (N, H - 2r, W - 2r, K)."""
  channels = x.shape[-1]
  for kernel_shape in ((taps.shape[0], 1), (1, taps.shape[0])):
    kernel = jnp.tile(taps.reshape(*kernel_shape, 1, 1), (1, 1, 1, channels))
    x = jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     feature_group_count=channels, precision=jax.lax.Precision.HIGHEST)
  return x


def _local_moments(a: jax.Array, b: jax.Array, taps: jax.Array) -> tuple[jax.Array, ...]:
  """Gaussian-weighted local statistics of every window that fits inside the images, two-pass.

  a, b: (N, H, W, C) float32; taps: (2r + 1,) normalised 1-D Gaussian.
  Returns (mu_a, mu_b, var_a, var_b, cov), each (N, H - 2r, W - 2r, C): means in the images' range,
  population (co)variances >= 0 (cov may be negative).
  """
  size = taps.shape[0]
  mu_a, mu_b = jnp.split(_blur_valid(jnp.concatenate([a, b], axis=-1), taps), 2, axis=-1)
  # Not the one-pass blur(a^2) - mu^2: on flat white backgrounds that subtracts two numbers ~1 to
  # get ~0, and float32's ~1e-7 rounding of them is ~1e-4 of C2 = 9e-4, the denominator there; JPEG-
  # compressed product photos then differed from skimage's float64 SSIM by up to 1.2e-4, growing
  # with the share of white background (a global shift to the image mean only got that to 1.1e-5).
  # Deviations from the window's own mean are small where the variance is, so rounding stays
  # relative to the variance. Each window has its own mean, so this is no convolution: the
  # (2r + 1)^2 shifted slices (121 for sigma 1.5) fuse into one elementwise kernel, faster on CPU
  # than the depthwise conv it replaces; compile time grows with sigma^2.
  height, width = mu_a.shape[1:3]
  var_a = var_b = cov = jnp.zeros_like(mu_a)
  for i, j in itertools.product(range(size), repeat=2):
    weight = taps[i] * taps[j]
    dev_a = a[:, i:i + height, j:j + width] - mu_a
    dev_b = b[:, i:i + height, j:j + width] - mu_b
    var_a = var_a + weight * dev_a * dev_a
    var_b = var_b + weight * dev_b * dev_b
    cov = cov + weight * dev_a * dev_b
  return mu_a, mu_b, var_a, var_b, cov


@functools.partial(jax.jit, static_argnames=("sigma", "truncate", "k1", "k2"))
def _ssim(a: jax.Array, b: jax.Array, data_range: jax.Array, sigma: float, truncate: float, k1: float,
          k2: float) -> jax.Array:
  mu_a, mu_b, var_a, var_b, cov = _local_moments(a, b, _gaussian_window(sigma, truncate))
  c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
  ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
  return jnp.mean(ssim_map, axis=(1, 2, 3))


def ssim(a: Any, b: Any, *, data_range: float, sigma: float = 1.5, truncate: float = 3.5, k1: float = 0.01,
         k2: float = 0.03) -> jax.Array:
  """Mean structural similarity per image, averaged over channels: (N,) or scalar float32 in [-1, 1].

  Local statistics use a Gaussian window (sigma 1.5, truncated at 3.5 sigma: 11x11 taps) and C1 =
  (k1 data_range)^2, C2 = (k2 data_range)^2. skimage filters with reflected borders and then drops
  the (11 - 1) // 2 = 5 border pixels on each side before averaging; the remaining pixels' windows
  never reach the padding, so an unpadded ("VALID") blur gives exactly that mean, with no border
  handling at all. Images must be at least 11x11. (Co)variances are taken about each window's own
  mean (two-pass), which keeps float32 results within ~2e-7 of skimage's float64 ones also on
  photos with flat white backgrounds.
  """
  _check_range(data_range)
  a, b, single = _batched(a, b, min_size=2 * int(truncate * sigma + 0.5) + 1)
  values = _ssim(a, b, jnp.float32(data_range), sigma=sigma, truncate=truncate, k1=k1, k2=k2)
  return values[0] if single else values
