"""Denoising of product photos (Gaussian noise or JPEG artefacts) and the classical baselines.

  noisy    = add_gaussian_noise(key, clean, sigma)   or   jpeg_compress(clean, quality)
  denoised = clip(noisy + G(noisy), -1, 1)           (`make_task`; DnCNN-style residual)

G is gan.editing.enhance_train.ResidualGenerator with one stride-2 downsampling and a U-Net skip (a
receptive field of 45x45 pixels), trained as task "enhance" (gan/tasks/enhance.py). Noise levels are given on the
[0, 1] intensity scale: sigma = 0.1 is a standard deviation of 25.5 grey levels of 255 (0.2 on
the [-1, 1] scale of the models). Noisy pixels are clipped to the valid range, as in a saved
photo. JPEG runs on the host with Pillow (4:2:0 chroma subsampling, Pillow's default), so JPEG
training pairs are precomputed once for the training set (`Task.host_aux`).

Baselines (scikit-image, on the host): `gaussian_filter` and `nl_means`
(skimage.restoration.denoise_nl_means, fast mode, 5x5 patches, 13x13 search window; for Gaussian
noise its strength h is a multiple of the known sigma, for JPEG an absolute value).
`tune_baseline` picks their parameter on training images by PSNR, so the comparison is fair.
Images are (N, H, W, 3) float32 in [-1, 1] unless stated.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from gan.editing import enhance_train

DEGRADATIONS = ("gaussian", "jpeg")
# Search grids of the baselines' parameter (`tune_baseline`).
GAUSSIAN_SIGMAS = (0.5, 0.75, 1.0, 1.5, 2.0)
NLM_H_FACTORS = (0.4, 0.6, 0.8, 1.0, 1.2)      # x the known noise sigma (Gaussian noise)
NLM_H_JPEG = (0.02, 0.04, 0.06, 0.08, 0.12)    # absolute, on the [0, 1] scale (JPEG)


def check_sigma(sigma: float) -> float:
  sigma = float(sigma)
  if not 0.0 <= sigma <= 1.0:
    raise ValueError(f"Noise sigma (on the [0, 1] intensity scale) must be in [0, 1], got {sigma}.")
  return sigma


def check_quality(quality: int) -> int:
  if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 95:
    raise ValueError(f"JPEG quality must be an int in [1, 95], got {quality!r}.")
  return int(quality)


def add_gaussian_noise(key: jax.Array, images: Any, sigma: float, clip: bool = True) -> jax.Array:
  """images + N(0, (2 sigma)^2) per pixel and channel (sigma on the [0, 1] scale), clipped to
  [-1, 1] when `clip`. (N, H, W, C) float32 in [-1, 1]."""
  sigma = check_sigma(sigma)
  images = jnp.asarray(images, jnp.float32)
  noisy = images + 2.0 * sigma * jax.random.normal(key, images.shape, jnp.float32)
  return jnp.clip(noisy, -1.0, 1.0) if clip else noisy


def jpeg_compress(images: np.ndarray, quality: int) -> np.ndarray:
  """JPEG encode / decode with Pillow at `quality` (1-95): uint8 (N, H, W, 3) or (H, W, 3) ->
  uint8 of the same shape."""
  quality = check_quality(quality)
  images = np.asarray(images)
  if images.dtype != np.uint8 or images.shape[-1] != 3 or images.ndim not in (3, 4):
    raise ValueError(f"jpeg_compress takes uint8 (N, H, W, 3) or (H, W, 3), got "
                     f"{images.shape} {images.dtype}.")
  batch = images[None] if images.ndim == 3 else images
  out = np.empty_like(batch)
  for i, image in enumerate(batch):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
      out[i] = np.asarray(decoded.convert("RGB"))
  return out[0] if images.ndim == 3 else out


def model_input(inputs: enhance_train.Inputs) -> jax.Array:
  return inputs["noisy"]


def make_task(config: ml_collections.ConfigDict) -> enhance_train.Task:
  """The denoising Task of config.denoise (degradation, sigma, jpeg_quality)."""
  cfg = config.denoise
  if cfg.degradation not in DEGRADATIONS:
    raise ValueError(f"Unknown denoise.degradation {cfg.degradation!r}; valid: "
                     f"{', '.join(DEGRADATIONS)}.")
  sigma = check_sigma(cfg.sigma)
  quality = check_quality(cfg.jpeg_quality)
  generator = enhance_train.make_generator(config.model)

  def degrade(key: jax.Array, clean: jax.Array, aux: Optional[jax.Array]) -> enhance_train.Inputs:
    if cfg.degradation == "jpeg":
      if aux is None:
        raise ValueError("JPEG denoising needs the precomputed JPEG images (aux).")
      return {"noisy": aux}
    return {"noisy": add_gaussian_noise(key, clean, sigma)}

  def restore(params: Any, inputs: enhance_train.Inputs) -> jax.Array:
    noisy = inputs["noisy"]
    return jnp.clip(noisy + generator.apply({"params": params}, noisy), -1.0, 1.0)

  def host_aux(images: np.ndarray) -> Optional[np.ndarray]:
    return jpeg_compress(images, quality) if cfg.degradation == "jpeg" else None

  def example_inputs(batch: int, size: int) -> enhance_train.Inputs:
    return {"noisy": jnp.zeros((batch, size, size, 3), jnp.float32)}

  return enhance_train.Task("denoise", generator, degrade, restore, host_aux, example_inputs,
                            model_input)


def denoise(model: enhance_train.Enhancer, images: Any, batch_size: int = 64) -> np.ndarray:
  """Denoises (N, H, W, 3) or (H, W, 3) float images in [-1, 1]; any size (reflect-padded to the
  generator's multiple and cropped back). Returns float32 of the same shape."""
  if model.task.name != "denoise":
    raise ValueError(f"denoise needs a denoising model, got a {model.task.name!r} one.")
  images = np.asarray(images, np.float32)
  single = images.ndim == 3
  batch = images[None] if single else images
  if batch.ndim != 4 or batch.shape[-1] != 3:
    raise ValueError(f"Expected (N, H, W, 3) or (H, W, 3) images, got {images.shape}.")
  padded, h, w = enhance_train.pad_to_multiple(batch, 2 ** model.task.generator.down)
  out = np.concatenate([np.asarray(model({"noisy": padded[i:i + batch_size]}))
                        for i in range(0, len(padded), batch_size)])[:, :h, :w]
  return out[0] if single else out


# --- Classical baselines (host, scikit-image) -------------------------------------------------


def _per_image(fn: Callable[[np.ndarray], np.ndarray], images: Any) -> np.ndarray:
  """Applies fn to each [0, 1] image of (N, H, W, 3) [-1, 1] floats; returns [-1, 1] float32."""
  images = np.asarray(images, np.float32)
  unit = (images + 1.0) / 2.0
  out = np.stack([fn(np.asarray(image, np.float64)) for image in unit])
  return (np.clip(out, 0.0, 1.0) * 2.0 - 1.0).astype(np.float32)


def gaussian_filter(images: Any, sigma: float = 1.0) -> np.ndarray:
  """skimage.filters.gaussian per image and channel, `sigma` in pixels. (N, H, W, 3) [-1, 1]."""
  from skimage import filters  # pylint: disable=g-import-not-at-top
  return _per_image(lambda x: filters.gaussian(x, sigma=sigma, channel_axis=-1), images)


def nl_means(images: Any, h: float = 0.08, noise_sigma: float = 0.0) -> np.ndarray:
  """skimage.restoration.denoise_nl_means per image (fast mode, 5x5 patches, 13x13 window).

  Args:
    images: (N, H, W, 3) float in [-1, 1].
    h: filter strength on the [0, 1] scale (skimage suggests ~0.8 * sigma in fast mode).
    noise_sigma: the noise std on the [0, 1] scale when known (skimage subtracts 2 sigma^2 from
      the patch distances), else 0 (JPEG artefacts: no single sigma).
  """
  from skimage import restoration  # pylint: disable=g-import-not-at-top
  return _per_image(lambda x: restoration.denoise_nl_means(
      x, h=h, sigma=noise_sigma, fast_mode=True, patch_size=5, patch_distance=6, channel_axis=-1),
      images)


def tune_baseline(fn: Callable[..., np.ndarray], noisy: Any, clean: Any, name: str,
                  grid: Sequence[float], **kwargs: Any) -> tuple[float, float]:
  """The value of parameter `name` in `grid` with the best mean PSNR of fn(noisy, name=value),
  and that PSNR (dB). noisy, clean: (N, H, W, 3) float in [-1, 1]."""
  from gan.metrics import image as image_metrics  # pylint: disable=g-import-not-at-top
  scores = []
  for value in grid:
    out = fn(noisy, **{name: value}, **kwargs)
    scores.append(float(np.mean(image_metrics.psnr(out, np.asarray(clean, np.float32),
                                                   data_range=2.0))))
  best = int(np.argmax(scores))
  return float(grid[best]), scores[best]
