"""Super-resolution x2 / x4 of product photos (SRGAN-style) and the downscaling it learns to undo.

  lr = downscale(hr, scale)                                  the synthetic degradation
  sr = clip(upscale_bicubic(lr, scale) + G(lr), -1, 1)       the model (`make_task`)

G is gan.editing.enhance_train.ResidualGenerator with log2(scale) sub-pixel upsamplings: residual
blocks at the low resolution (cheap: a 16x16 input for x4 of 64x64), trained with the pixel +
perceptual + adversarial loss of enhance_train. It learns a correction on top of bicubic
upsampling (global residual, as VDSR / ESPCN-style models), so an untrained model is exactly
bicubic upsampling and training starts from the baseline it must beat.

Images are (N, H, W, C) float32 in [-1, 1].

  python -m gan.main --config configs/enhance_products.py:superres_x4 --workdir runs/enhance/superres_x4
  python -m gan.edit --op superres --workdir runs/enhance/superres_x4 --image small.png --out big.png
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan.editing import enhance_train

SCALES = (2, 4)
DOWNSCALE_METHODS = ("bicubic", "area")


def check_scale(scale: Any) -> int:
  if isinstance(scale, bool) or scale not in SCALES:
    raise ValueError(f"Super-resolution scale must be one of {SCALES}, got {scale!r}.")
  return int(scale)


def downscale(images: Any, scale: int, method: str = "bicubic") -> jax.Array:
  """(N, H, W, C) -> (N, H / scale, W / scale, C); H and W must be multiples of `scale`.

  "bicubic": Keys cubic (a = -0.5) with the kernel stretched by `scale` (antialiased, as PIL's
  bicubic reduction); "area": the mean of each scale x scale block. Both keep a constant image
  constant.
  """
  scale = check_scale(scale)
  images = jnp.asarray(images, jnp.float32)
  n, h, w, c = images.shape
  if h % scale or w % scale:
    raise ValueError(f"Image sides must be multiples of the scale {scale}, got {h}x{w}.")
  if method == "area":
    return images.reshape(n, h // scale, scale, w // scale, scale, c).mean(axis=(2, 4))
  if method == "bicubic":
    return jax.image.resize(images, (n, h // scale, w // scale, c), "bicubic", antialias=True)
  raise ValueError(f"Unknown downscale method {method!r}; valid: {', '.join(DOWNSCALE_METHODS)}.")


def upscale_bicubic(images: Any, scale: int) -> jax.Array:
  """Bicubic upsampling (N, h, w, C) -> (N, scale * h, scale * w, C), clipped to [-1, 1]."""
  images = jnp.asarray(images, jnp.float32)
  n, h, w, c = images.shape
  up = jax.image.resize(images, (n, h * scale, w * scale, c), "bicubic")
  return jnp.clip(up, -1.0, 1.0)


def model_input(inputs: enhance_train.Inputs) -> jax.Array:
  return inputs["lr"]


def make_task(config: ml_collections.ConfigDict) -> enhance_train.Task:
  """The super-resolution Task of config.superres (scale, downscale method)."""
  scale = check_scale(config.superres.scale)
  method = config.superres.downscale
  if method not in DOWNSCALE_METHODS:
    raise ValueError(f"Unknown superres.downscale {method!r}; valid: {', '.join(DOWNSCALE_METHODS)}.")
  generator = enhance_train.make_generator(config.model, up={2: 1, 4: 2}[scale])

  def degrade(key: jax.Array, clean: jax.Array, aux: Optional[jax.Array]) -> enhance_train.Inputs:
    del key, aux
    return {"lr": downscale(clean, scale, method)}

  def restore(params: Any, inputs: enhance_train.Inputs) -> jax.Array:
    lr = inputs["lr"]
    residual = generator.apply({"params": params}, lr)
    return jnp.clip(upscale_bicubic(lr, scale) + residual, -1.0, 1.0)

  def example_inputs(batch: int, size: int) -> enhance_train.Inputs:
    return {"lr": jnp.zeros((batch, size // scale, size // scale, 3), jnp.float32)}

  return enhance_train.Task("superres", generator, degrade, restore, enhance_train.no_aux,
                            example_inputs, model_input)


def super_resolve(model: enhance_train.Enhancer, images: Any, batch_size: int = 64) -> np.ndarray:
  """Upscales (N, h, w, 3) or (h, w, 3) float images in [-1, 1] by the model's scale.

  Returns:
    float32 (N, s*h, s*w, 3) (or (s*h, s*w, 3)) in [-1, 1].
  """
  if model.task.name != "superres":
    raise ValueError(f"super_resolve needs a super-resolution model, got a {model.task.name!r} one.")
  images = np.asarray(images, np.float32)
  single = images.ndim == 3
  batch = images[None] if single else images
  if batch.ndim != 4 or batch.shape[-1] != 3:
    raise ValueError(f"Expected (N, h, w, 3) or (h, w, 3) images, got {images.shape}.")
  out = np.concatenate([np.asarray(model({"lr": batch[i:i + batch_size]}))
                        for i in range(0, len(batch), batch_size)])
  return out[0] if single else out


def scale_of(model: enhance_train.Enhancer) -> int:
  return int(model.config.superres.scale)
