"""Personalization controls applied around any style-transfer method.

Images are float (H, W, 3) (or (N, H, W, 3) where noted) in [-1, 1]; the controls are plain
numpy on the host, applied to a content image and its stylized version:

  blend:          style strength alpha in pixel space (AdaIN applies it in feature space:
                  adain_alpha).
  preserve_color: keep the content's colours, by luminance transfer or histogram matching.
  product_mask / apply_mask: stylize only the product, or only the background.
  StyleProfile:   a user's saved choices (style images, weights, alpha, ...) as JSON.
  apply_controls: colour preservation, then strength and mask, in one call.
  load_image:     a style or content file -> (size, size, 3) float32 in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import json
import os
from typing import Any

import jax
import numpy as np
from PIL import Image
from scipy import ndimage

from gan import attributes
from gan import data
from gan.losses import style as style_losses

# Style-transfer methods a profile may name (gan/style/<method>.py).
METHODS = ("gatys", "adain")
COLOR_METHODS = ("luminance", "histogram")
MASK_REGIONS = ("product", "background")

# YIQ (FCC NTSC): Y is the luminance; I and Q rows sum to 0 and Y's to 1, so the transform
# commutes with the [0, 1] -> [-1, 1] offset and can be applied to [-1, 1] pixels directly.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.59590059, -0.27455667, -0.32134392],
                        [0.21153661, -0.52273617, 0.31119955]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)

# Gaussian sigma (pixels) that softens the product mask's edge, so the composite shows no
# staircase seam; ~1 pixel keeps the halo narrow at 64-256 px.
MASK_SIGMA = 1.0
# Softened mask values this close to 0 or 1 are snapped, so the kept region is kept exactly:
# the snap changes a composite by at most 2 / 512 = 0.5 grey levels of 255.
MASK_SNAP = 1 / 512


def _check_alpha(alpha: float) -> float:
  alpha = float(alpha)
  if not 0.0 <= alpha <= 1.0:  # also rejects NaN
    raise ValueError(f"alpha (style strength) must be in [0, 1], got {alpha}.")
  return alpha


def blend(content: np.ndarray, stylized: np.ndarray, alpha: float) -> np.ndarray:
  """(1 - alpha) * content + alpha * stylized: style strength in pixel space.

  alpha = 0 returns the content and alpha = 1 the stylized image, both exactly. Any shapes that
  broadcast; float32 out.
  """
  alpha = _check_alpha(alpha)
  content = np.asarray(content, np.float32)
  stylized = np.asarray(stylized, np.float32)
  return ((1.0 - alpha) * content + alpha * stylized).astype(np.float32)


def adain_alpha(content_features: jax.Array, style_features: jax.Array, alpha: float,
                eps: float = 1e-5) -> jax.Array:
  """alpha * AdaIN(c, s) + (1 - alpha) * c: AdaIN's strength, in feature space (before decoding).

  Huang & Belongie (2017, Sec. 7) interpolate the features fed to the decoder, not the pixels.
  (N, h, w, C) features as in `gan.losses.style.adain`.
  """
  alpha = _check_alpha(alpha)
  return (alpha * style_losses.adain(content_features, style_features, eps)
          + (1.0 - alpha) * content_features)


def rgb_to_yiq(images: np.ndarray) -> np.ndarray:
  """(..., 3) RGB -> (..., 3) YIQ, float64 (linear, any offset range: see _RGB_TO_YIQ)."""
  return np.asarray(images, np.float64) @ _RGB_TO_YIQ.T


def yiq_to_rgb(images: np.ndarray) -> np.ndarray:
  """Inverse of `rgb_to_yiq`."""
  return np.asarray(images, np.float64) @ _YIQ_TO_RGB.T


def match_histograms(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
  """Per-channel histogram matching: maps each channel's values so its CDF is the reference's.

  The algorithm of skimage.exposure.match_histograms (exact quantiles of the distinct values,
  linear interpolation between the reference's), for (..., C) float images of any sizes.
  """
  image, reference = np.asarray(image), np.asarray(reference)
  out = np.empty(image.shape, np.float64)
  for c in range(image.shape[-1]):
    values, inverse, counts = np.unique(image[..., c].ravel(), return_inverse=True,
                                        return_counts=True)
    ref_values, ref_counts = np.unique(reference[..., c].ravel(), return_counts=True)
    quantiles = np.cumsum(counts) / counts.sum()
    ref_quantiles = np.cumsum(ref_counts) / ref_counts.sum()
    out[..., c] = np.interp(quantiles, ref_quantiles, ref_values)[inverse].reshape(image.shape[:-1])
  return out


def preserve_color(content: np.ndarray, stylized: np.ndarray,
                   method: str = "luminance") -> np.ndarray:
  """Keeps the content's colours in a stylized image (Gatys et al. 2017, "Preserving colour").

  Args:
    content: (H, W, 3) or (N, H, W, 3) float in [-1, 1].
    stylized: same shape.
    method: "luminance": YIQ luminance Y of `stylized` with the chroma (I, Q) of `content`, so
      the style only brings texture and shading. "histogram": each RGB channel of `stylized`
      remapped so its histogram is the content's (per image when batched): the style's
      strokes, the content's palette.

  Returns:
    float32, same shape, clipped to [-1, 1] (the only place where "luminance" departs from
    the content's chroma).
  """
  content = np.asarray(content, np.float32)
  stylized = np.asarray(stylized, np.float32)
  if content.shape != stylized.shape or content.shape[-1] != 3:
    raise ValueError(f"content and stylized must have the same (..., 3) shape, got "
                     f"{content.shape} and {stylized.shape}.")
  if method == "luminance":
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(stylized)[..., 0]
    out = yiq_to_rgb(yiq)
  elif method == "histogram":
    if stylized.ndim == 3:
      out = match_histograms(stylized, content)
    else:
      out = np.stack([match_histograms(s, c) for s, c in zip(stylized, content)])
  else:
    raise ValueError(f"Unknown colour preservation {method!r}; valid: "
                     f"{', '.join(COLOR_METHODS)}.")
  return np.clip(out, -1.0, 1.0).astype(np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  if image.dtype == np.uint8:
    return image
  return np.round((np.clip(image, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def product_mask(image: np.ndarray, sigma: float = MASK_SIGMA,
                 background: str = "white") -> np.ndarray:
  """Soft silhouette of the product: (H, W) float32 in [0, 1], 1 on the product.

  `gan.attributes.foreground_mask` (pixels differing from the plain background, opened, holes
  filled), blurred by a Gaussian of `sigma` pixels (0: hard mask), then values within MASK_SNAP
  of 0 or 1 snapped to it so `apply_mask` keeps the other region exactly.

  Args:
    image: (H, W, 3) uint8 in [0, 255] or float in [-1, 1].
    sigma: Gaussian standard deviation in pixels.
    background: "white" (product photos), "black" or "auto" (from the image border).
  """
  image = _to_uint8(image)
  if image.ndim != 3 or image.shape[-1] not in (1, 3):
    raise ValueError(f"image must be (H, W, 3), got {image.shape}.")
  mask = attributes.foreground_mask(image[None], background)[0].astype(np.float32)
  if sigma > 0:
    mask = ndimage.gaussian_filter(mask, sigma)
  mask = np.clip(mask, 0.0, 1.0)
  mask[mask < MASK_SNAP] = 0.0
  mask[mask > 1.0 - MASK_SNAP] = 1.0
  return mask


def apply_mask(content: np.ndarray, stylized: np.ndarray, mask: np.ndarray,
               region: str = "product") -> np.ndarray:
  """Composite: the stylized pixels in `region`, the content's elsewhere.

  out = (1 - m) * content + m * stylized with m = mask ("product") or 1 - mask ("background"):
  where m = 0 the content pixel is returned exactly, where m = 1 the stylized one.

  Args:
    content, stylized: (H, W, 3) float in [-1, 1].
    mask: (H, W) float in [0, 1], 1 on the product (`product_mask`).
    region: "product" or "background": the region that gets the style.
  """
  if region not in MASK_REGIONS:
    raise ValueError(f"Unknown mask region {region!r}; valid: {', '.join(MASK_REGIONS)}.")
  content = np.asarray(content, np.float32)
  stylized = np.asarray(stylized, np.float32)
  mask = np.asarray(mask, np.float32)
  if mask.shape != content.shape[:-1] or content.shape != stylized.shape:
    raise ValueError(f"Shapes differ: content {content.shape}, stylized {stylized.shape}, "
                     f"mask {mask.shape} (must be the content's without channels).")
  m = (mask if region == "product" else 1.0 - mask)[..., None]
  return ((1.0 - m) * content + m * stylized).astype(np.float32)


def apply_controls(content: np.ndarray, stylized: np.ndarray, *, alpha: float = 1.0,
                   color: str | None = None, region: str | None = None) -> np.ndarray:
  """Colour preservation, then strength `alpha` and the mask (these two commute), on one image.

  For AdaIN pass alpha=1 here and use `adain_alpha` on the features before decoding instead.
  With a profile: apply_controls(c, s, alpha=p.alpha, color=p.preserve_color, region=p.mask).

  Args:
    content, stylized: (H, W, 3) float in [-1, 1].
    alpha: style strength in [0, 1].
    color: None, "luminance" or "histogram" (`preserve_color`).
    region: None (whole image), "product" or "background": the region to stylize, from
      `product_mask(content)`.
  """
  out = stylized if color is None else preserve_color(content, stylized, color)
  out = blend(content, out, alpha)
  if region is not None:
    out = apply_mask(content, out, product_mask(content), region)
  return out


@dataclasses.dataclass
class StyleProfile:
  """A user's style settings, saved as JSON.

  Attributes:
    styles: paths of the style images.
    weights: one per style, >= 0, summing to 1; None: equal.
    alpha: style strength in [0, 1].
    preserve_color: None, "luminance" or "histogram".
    mask: None (whole image), "product" or "background": the region that gets the style.
    method: one of METHODS.
  """
  styles: list[str]
  weights: list[float] | None = None
  alpha: float = 1.0
  preserve_color: str | None = None
  mask: str | None = None
  method: str = "gatys"

  def __post_init__(self):
    self.validate()
    # Lists and floats, so a JSON round trip gives an equal profile.
    self.styles = list(self.styles)
    if self.weights is not None:
      self.weights = [float(w) for w in self.weights]
    self.alpha = float(self.alpha)

  def validate(self) -> None:
    """Raises ValueError naming the first invalid field."""
    if (isinstance(self.styles, (str, bytes)) or not isinstance(self.styles, Sequence)
        or not self.styles or not all(isinstance(p, str) and p for p in self.styles)):
      raise ValueError(f"styles must be a non-empty list of image paths, got {self.styles!r}.")
    if self.weights is not None:
      if isinstance(self.weights, (str, bytes)) or not isinstance(self.weights, Sequence):
        raise ValueError(f"weights must be None or a list of numbers, got {self.weights!r}.")
      if len(self.weights) != len(self.styles):
        raise ValueError(f"weights has {len(self.weights)} entries for {len(self.styles)} "
                         "styles.")
      style_losses.check_blend_weights(self.weights, len(self.styles))
    if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)):
      raise ValueError(f"alpha must be a number in [0, 1], got {self.alpha!r}.")
    _check_alpha(self.alpha)
    if self.preserve_color is not None and self.preserve_color not in COLOR_METHODS:
      raise ValueError(f"Unknown preserve_color {self.preserve_color!r}; valid: None, "
                       f"{', '.join(COLOR_METHODS)}.")
    if self.mask is not None and self.mask not in MASK_REGIONS:
      raise ValueError(f"Unknown mask {self.mask!r}; valid: None, {', '.join(MASK_REGIONS)}.")
    if self.method not in METHODS:
      raise ValueError(f"Unknown method {self.method!r}; valid: {', '.join(METHODS)}.")

  @property
  def style_weights(self) -> np.ndarray:
    """(len(styles),) float64: `weights`, or equal weights when None."""
    return style_losses.check_blend_weights(self.weights, len(self.styles))

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2)

  @classmethod
  def from_json(cls, text: str) -> StyleProfile:
    """Parses and validates; unknown or missing fields and bad values raise ValueError."""
    data: Any = json.loads(text)  # json.JSONDecodeError is a ValueError
    if not isinstance(data, dict):
      raise ValueError(f"A style profile is a JSON object, got {type(data).__name__}.")
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(fields))
    if unknown:
      raise ValueError(f"Unknown style profile fields {unknown}; valid: {', '.join(fields)}.")
    if "styles" not in data:
      raise ValueError("A style profile needs 'styles' (a list of image paths).")
    return cls(**data)


def load_image(path: str | os.PathLike, size: int) -> np.ndarray:
  """An image file -> (size, size, 3) float32 in [-1, 1].

  EXIF orientation applied; transparency composited on white (product photos sit on white);
  grey and palette images converted to RGB; shorter side resized to `size` (bicubic), then
  centre-cropped.

  Raises:
    FileNotFoundError: no file at `path`.
    ValueError: the file is not a readable image.
  """
  if size < 1:
    raise ValueError(f"size must be >= 1, got {size}.")
  image = data.read_rgb(path)
  width, height = image.size
  scale = size / min(width, height)
  new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
  image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
  left, top = (new_w - size) // 2, (new_h - size) // 2
  image = image.crop((left, top, left + size, top + size))
  return (np.asarray(image, np.float32) / 127.5 - 1.0).astype(np.float32)
