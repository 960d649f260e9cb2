"""Inpainting: fill a masked region of a product photo consistently with the rest.

Masks are (N, H, W, 1) float32 with 1 on the hole (the pixels to fill) and 0 on the pixels to
keep. Synthetic masks for training and evaluation are pure functions of a PRNG key:
  box_masks:       one axis-aligned rectangle per image, sides a random fraction of the image.
  free_form_masks: 1-4 random brush strokes per image (polylines of 4 segments, 3-8 px wide),
                   the free-form masks of Yu et al. 2019 ("DeepFill v2"), drawn analytically
                   (distance of every pixel to every segment), so they are jittable.

The trained generator (`make_task`, trained as task "enhance", gan/tasks/enhance.py):
  masked = image with the hole set to 0 (mid grey);  x = concat(masked, mask)  (4 channels)
  fill   = clip(masked + G(x), -1, 1)
  out    = composite(image, fill, mask)    -> unmasked pixels are exactly the input's
G is a ResidualGenerator with two stride-2 downsamplings and dilated residual blocks (dilations
1, 2, 4, 8 at 16x16: the blocks see the whole image, as Iizuka et al. 2017's dilated middle).
The loss is taken on the composite, so only the hole is learned. Masks given to `inpaint` are
binarised at 0.5 (a soft mask would let the hole's original pixels leak into the input).

Baseline: `biharmonic` (skimage.restoration.inpaint_biharmonic), a smooth interpolation.
Masked GAN inversion (`masked_inversion`): project the photo into a StyleGAN's W+ with the hole's
pixels weighted 0 in the loss, and fill the hole with the generator's rendering (it needs no
inpainting training, only a generator of the domain, at the generator's resolution).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan.editing import background
from gan.editing import enhance_train

MASK_KINDS = ("box", "free_form", "mixed")


@functools.partial(jax.jit, static_argnames=("num", "size", "min_fraction", "max_fraction"))
def box_masks(key: jax.Array, num: int, size: int, min_fraction: float = 0.25,
              max_fraction: float = 0.5) -> jax.Array:
  """(num, size, size, 1) float32: one random rectangle of 1s per image.

  Height and width are independent, uniform in [min_fraction, max_fraction] * size (rounded);
  the position is uniform among those that keep the box inside the image.
  """
  if not 0.0 < min_fraction <= max_fraction <= 1.0:  # checked at trace time (static)
    raise ValueError(f"Need 0 < min_fraction <= max_fraction <= 1, got {min_fraction}, {max_fraction}.")
  k_size, k_pos = jax.random.split(key)
  sides = jnp.round(jax.random.uniform(k_size, (num, 2), minval=min_fraction * size,
                                       maxval=max_fraction * size)).astype(jnp.int32)
  sides = jnp.clip(sides, 1, size)
  corner = jnp.floor(jax.random.uniform(k_pos, (num, 2)) * (size - sides + 1)).astype(jnp.int32)
  coords = jnp.arange(size)
  inside_y = (coords[None] >= corner[:, :1]) & (coords[None] < corner[:, :1] + sides[:, :1])
  inside_x = (coords[None] >= corner[:, 1:]) & (coords[None] < corner[:, 1:] + sides[:, 1:])
  return (inside_y[:, :, None] & inside_x[:, None, :]).astype(jnp.float32)[..., None]


@functools.partial(jax.jit, static_argnames=("num", "size", "max_strokes", "segments",
                                             "min_width", "max_width", "max_length"))
def free_form_masks(key: jax.Array, num: int, size: int, max_strokes: int = 4,
                    segments: int = 4, min_width: float = 3.0, max_width: float = 8.0,
                    max_length: float = 0.25) -> jax.Array:
  """(num, size, size, 1) float32: 1 to `max_strokes` random brush strokes per image.

  A stroke starts at a uniform point and turns by a random angle (within +-60 degrees) at each
  of its `segments` segments, each up to max_length * size long; its width is uniform in
  [min_width, max_width] pixels. A pixel is in the hole when its centre lies within width / 2 of
  a segment of an active stroke.
  """
  keys = jax.random.split(key, 6)
  count = jax.random.randint(keys[0], (num,), 1, max_strokes + 1)
  start = jax.random.uniform(keys[1], (num, max_strokes, 2), maxval=size)
  heading = jax.random.uniform(keys[2], (num, max_strokes, 1), maxval=2 * jnp.pi)
  turns = jax.random.uniform(keys[3], (num, max_strokes, segments), minval=-jnp.pi / 3,
                             maxval=jnp.pi / 3)
  lengths = jax.random.uniform(keys[4], (num, max_strokes, segments),
                               minval=0.3 * max_length * size, maxval=max_length * size)
  widths = jax.random.uniform(keys[5], (num, max_strokes), minval=min_width, maxval=max_width)
  angles = heading + jnp.cumsum(turns, axis=-1)
  steps = lengths[..., None] * jnp.stack([jnp.cos(angles), jnp.sin(angles)], -1)
  vertices = jnp.clip(start[:, :, None] + jnp.cumsum(
      jnp.concatenate([jnp.zeros_like(steps[:, :, :1]), steps], axis=2), axis=2), 0, size - 1)
  a, b = vertices[:, :, :-1], vertices[:, :, 1:]           # (num, strokes, segments, 2)
  yy, xx = jnp.meshgrid(jnp.arange(size) + 0.5, jnp.arange(size) + 0.5, indexing="ij")
  p = jnp.stack([yy, xx], -1).reshape(-1, 2)                # (P, 2) pixel centres
  ab = b - a
  t = jnp.einsum("nskd,pd->nskp", ab, p) - jnp.sum(ab * a, -1)[..., None]
  t = jnp.clip(t / jnp.maximum(jnp.sum(ab * ab, -1), 1e-6)[..., None], 0.0, 1.0)
  closest = a[..., None, :] + t[..., None] * ab[..., None, :]        # (n, s, k, P, 2)
  distance = jnp.sqrt(jnp.sum((p - closest) ** 2, -1))               # (n, s, k, P)
  active = (jnp.arange(max_strokes)[None] < count[:, None])          # (n, s)
  hit = (distance <= widths[:, :, None, None] / 2) & active[:, :, None, None]
  return jnp.any(hit, axis=(1, 2)).reshape(num, size, size, 1).astype(jnp.float32)


def random_masks(key: jax.Array, num: int, size: int, kind: str = "mixed") -> jax.Array:
  """(num, size, size, 1) masks of one MASK_KINDS; "mixed": box or free-form, 50/50 per image."""
  if kind not in MASK_KINDS:
    raise ValueError(f"Unknown mask kind {kind!r}; valid: {', '.join(MASK_KINDS)}.")
  k_box, k_free, k_pick = jax.random.split(key, 3)
  if kind == "box":
    return box_masks(k_box, num, size)
  if kind == "free_form":
    return free_form_masks(k_free, num, size)
  pick = jax.random.bernoulli(k_pick, 0.5, (num, 1, 1, 1))
  return jnp.where(pick, box_masks(k_box, num, size), free_form_masks(k_free, num, size))


def box_mask(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
  """(H, W, 1) float32 with 1 on the pixels x0 <= x < x1, y0 <= y < y1 of box = (x0, y0, x1, y1)."""
  x0, y0, x1, y1 = (int(v) for v in box)
  if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
    raise ValueError(f"Box {box} (x0, y0, x1, y1) must satisfy 0 <= x0 < x1 <= {width} and "
                     f"0 <= y0 < y1 <= {height} for a {width}x{height} image.")
  mask = np.zeros((height, width, 1), np.float32)
  mask[y0:y1, x0:x1] = 1.0
  return mask


def mask_out(images: Any, masks: Any) -> jax.Array:
  """The images with the hole set to 0 (mid grey): what the generator is allowed to see."""
  return jnp.where(jnp.asarray(masks) > 0.5, 0.0, jnp.asarray(images, jnp.float32))


def model_input(inputs: enhance_train.Inputs) -> jax.Array:
  mask = (inputs["mask"] > 0.5).astype(jnp.float32)
  return jnp.concatenate([mask_out(inputs["image"], mask), mask], axis=-1)


def make_task(config: ml_collections.ConfigDict) -> enhance_train.Task:
  """The inpainting Task of config.inpaint (mask kind)."""
  kind = config.inpaint.mask
  if kind not in MASK_KINDS:
    raise ValueError(f"Unknown inpaint.mask {kind!r}; valid: {', '.join(MASK_KINDS)}.")
  generator = enhance_train.make_generator(config.model)

  def degrade(key: jax.Array, clean: jax.Array, aux: Optional[jax.Array]) -> enhance_train.Inputs:
    del aux
    return {"image": clean, "mask": random_masks(key, clean.shape[0], clean.shape[1], kind)}

  def restore(params: Any, inputs: enhance_train.Inputs) -> jax.Array:
    x = model_input(inputs)
    mask = x[..., 3:]
    fill = jnp.clip(x[..., :3] + generator.apply({"params": params}, x), -1.0, 1.0)
    return background.composite(inputs["image"], fill, mask)

  def example_inputs(batch: int, size: int) -> enhance_train.Inputs:
    return {"image": jnp.zeros((batch, size, size, 3), jnp.float32),
            "mask": jnp.zeros((batch, size, size, 1), jnp.float32)}

  return enhance_train.Task("inpaint", generator, degrade, restore, enhance_train.no_aux,
                            example_inputs, model_input)


def _check_pair(images: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
  """(images (N, H, W, 3), masks broadcast to (N, H, W, 1), whether images was one image)."""
  single = images.ndim == 3
  batch = images[None] if single else images
  if batch.ndim != 4 or batch.shape[-1] != 3:
    raise ValueError(f"Expected (N, H, W, 3) or (H, W, 3) images, got {images.shape}.")
  m = masks[..., None] if masks.ndim == 2 else masks
  m = m[None] if m.ndim == 3 else m
  if m.ndim != 4 or m.shape[-1] != 1 or m.shape[0] not in (1, len(batch)):
    raise ValueError(f"Masks must be (H, W), (H, W, 1) or (N, H, W, 1) with N = {len(batch)}, "
                     f"got {masks.shape}.")
  if m.shape[1:3] != batch.shape[1:3]:
    raise ValueError(f"The mask is {m.shape[2]}x{m.shape[1]} but the image is "
                     f"{batch.shape[2]}x{batch.shape[1]}: they must have the same size.")
  return batch, np.broadcast_to(m, batch.shape[:3] + (1,)), single


def inpaint(model: enhance_train.Enhancer, images: Any, masks: Any, batch_size: int = 64) -> np.ndarray:
  """Fills the holes of (N, H, W, 3) or (H, W, 3) float images in [-1, 1].

  Args:
    model: a trained inpainting model.
    images: the images (hole content is ignored).
    masks: (N, H, W, 1), (H, W, 1) or (H, W): 1 (> 0.5) on the hole; one mask is used for all
      images. Any H, W (reflect-padded to the generator's multiple, cropped back).

  Returns:
    float32, the shape of `images`; pixels outside the hole are the input's, exactly.
  """
  if model.task.name != "inpaint":
    raise ValueError(f"inpaint needs an inpainting model, got a {model.task.name!r} one.")
  images, masks, single = _check_pair(np.asarray(images, np.float32), np.asarray(masks, np.float32))
  # The mask is reflected like the image, so hole pixels mirrored into the padding stay hidden.
  multiple = 2 ** model.task.generator.down
  images, h, w = enhance_train.pad_to_multiple(images, multiple)
  masks, _, _ = enhance_train.pad_to_multiple(np.ascontiguousarray(masks), multiple)
  out = np.concatenate([np.asarray(model({"image": images[i:i + batch_size],
                                          "mask": masks[i:i + batch_size]}))
                        for i in range(0, len(images), batch_size)])[:, :h, :w]
  return out[0] if single else out


def biharmonic(images: Any, masks: Any) -> np.ndarray:
  """skimage.restoration.inpaint_biharmonic per image: (N, H, W, 3) [-1, 1], masks (N, H, W, 1)."""
  from skimage import restoration  # pylint: disable=g-import-not-at-top
  images = np.asarray(images, np.float64)
  masks = np.asarray(masks) > 0.5
  out = np.stack([restoration.inpaint_biharmonic(image, mask[..., 0], channel_axis=-1)
                  for image, mask in zip(images, masks)])
  return np.clip(out, -1.0, 1.0).astype(np.float32)


def hole_psnr(outputs: Any, targets: Any, masks: Any) -> float:
  """Mean over images of the PSNR (dB, data_range 2) over the hole pixels only."""
  outputs, targets = np.asarray(outputs, np.float64), np.asarray(targets, np.float64)
  masks = np.asarray(masks) > 0.5
  values = []
  for o, t, m in zip(outputs, targets, masks):
    m = np.broadcast_to(m, o.shape)
    mse = np.mean((o[m] - t[m]) ** 2)
    if mse > 0:
      values.append(10 * np.log10(4.0 / mse))
  return float(np.mean(values))


def masked_inversion(generator: Any, variables: Any, images: Any, masks: Any, key: jax.Array, *,
                     options: Optional[Any] = None, init: Optional[jax.Array] = None,
                     noise: Optional[Any] = None, stats: Optional[Any] = None,
                     perceptual: Optional[Any] = None) -> tuple[np.ndarray, Any]:
  """Fills holes by masked GAN inversion into a StyleGAN's W+ (gan.editing.inversion.project).

  The images are resized to the generator's resolution S by normalised averaging over the known
  pixels only (resize(image * known) / resize(known)), so nothing of the hole's content reaches the
  projection; the loss weights are resize(known). The rendering is resized back (bicubic) and
  composited into the hole.

  Args:
    generator, variables: an unconditional StyleGAN generator and its {"params", "batch_stats"}.
    images: (N, H, W, 3) or (H, W, 3) float in [-1, 1] (hole content is ignored).
    masks: as for `inpaint`, 1 (> 0.5) on the hole.
    key: projection randomness (latent perturbation, noise maps when `noise` is None).
    options: inversion.ProjectionOptions (default: W+ defaults, 300 steps).
    init: starting W+ latents (N, num_ws, w_dim), e.g. an encoder's guess; default the mean w.
    noise, stats, perceptual: passed on to inversion.project.

  Returns:
    (filled images with the shape of `images`, pixels outside the hole exactly the input's;
     the inversion.ProjectionResult at the generator's resolution).
  """
  from gan.editing import inversion  # pylint: disable=g-import-not-at-top
  images, masks, single = _check_pair(np.asarray(images, np.float32), np.asarray(masks, np.float32))
  hole = (masks > 0.5).astype(np.float32)
  known = 1.0 - hole
  n, h, w, _ = images.shape
  size = generator.image_size
  shrink = lambda x: jax.image.resize(jnp.asarray(x), (n, size, size, x.shape[-1]), "linear", antialias=True)
  weights = jnp.clip(shrink(known), 0.0, 1.0)
  targets = jnp.clip(shrink(images * known) / jnp.maximum(weights, 1e-6), -1.0, 1.0)
  result = inversion.project(generator, variables, targets, key, space="w+",
                             options=options or inversion.ProjectionOptions(), init=init, noise=noise,
                             stats=stats, perceptual=perceptual, weights=weights)
  rendered = np.asarray(jax.image.resize(result.images, (n, h, w, 3), "cubic", antialias=False)).clip(-1, 1)
  out = np.where(hole > 0, rendered, images).astype(np.float32)
  return (out[0] if single else out), result
