"""Background replacement: cut the product out of a plain background, composite it elsewhere.

  alpha = foreground_alpha(photo)                 soft silhouette in [0, 1], 1 on the product
  out   = (1 - alpha) * new_background + alpha * photo       (`composite`)

The silhouette is gan.attributes.foreground_mask (pixels differing from the background, opened,
holes filled) feathered by a Gaussian of `feather` pixels, through gan.style.controls.product_mask,
which snaps values within 1/512 of 0 or 1 so that pixels far outside the product get the new
background exactly and pixels well inside keep the product exactly. Backgrounds:
"white" photos (the product photos), "black", or "plain": any uniform colour, estimated as the
median of the image border (products touch the border only in places).

New backgrounds (`make_background` / `parse_background`): a solid colour, a vertical linear
gradient between two colours, or an image file (resized to cover the photo, centre-cropped).
Images are float32 (H, W, 3) in [-1, 1]; colours are "#RRGGBB" or any name Pillow knows.
"""

from __future__ import annotations

import os
from typing import Any, Union

import jax.numpy as jnp
import numpy as np
from PIL import ImageColor

from gan.style import controls

BACKGROUNDS = ("white", "black", "plain")
DEFAULT_FEATHER = 1.0


def composite(base: Any, overlay: Any, alpha: Any) -> jnp.ndarray:
  """(1 - alpha) * base + alpha * overlay: `base` exactly where alpha = 0, `overlay` where 1.

  Args:
    base, overlay: (..., H, W, C) float.
    alpha: (..., H, W, 1) or (..., H, W) float in [0, 1] (a missing channel axis is added).

  Returns:
    float32, the broadcast shape of base and overlay.
  """
  base = jnp.asarray(base, jnp.float32)
  overlay = jnp.asarray(overlay, jnp.float32)
  alpha = jnp.asarray(alpha, jnp.float32)
  if alpha.ndim == base.ndim - 1:
    alpha = alpha[..., None]
  return (1.0 - alpha) * base + alpha * overlay


def _as_uint8(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  if image.dtype == np.uint8:
    return image
  return np.round((np.clip(image, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def border_color(image: np.ndarray) -> np.ndarray:
  """(3,) uint8: per-channel median of the 1-pixel border of an (H, W, 3) image."""
  image = _as_uint8(image)
  border = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
  return np.median(border, axis=0).round().astype(np.uint8)


def foreground_alpha(image: Any, *, feather: float = DEFAULT_FEATHER,
                     background: str = "white") -> np.ndarray:
  """Soft product silhouette: (H, W) float32 in [0, 1], 1 on the product.

  Args:
    image: (H, W, 3) uint8 or float in [-1, 1].
    feather: Gaussian sigma of the edge in pixels (0: hard edge).
    background: "white", "black" or "plain" (uniform colour of the image border).
  """
  if background not in BACKGROUNDS:
    raise ValueError(f"Unknown background kind {background!r}; valid: {', '.join(BACKGROUNDS)}.")
  if not feather >= 0:
    raise ValueError(f"feather (edge softness in pixels) must be >= 0, got {feather}.")
  image = _as_uint8(image)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"image must be (H, W, 3), got {image.shape}.")
  if background == "plain":
    # 255 - |image - background colour| is white exactly where the image matches the border
    # colour, and foreground_mask on white thresholds the largest channel difference: the same
    # test as for white photos, against any uniform colour.
    difference = np.abs(image.astype(np.int16) - border_color(image).astype(np.int16))
    image, background = (255 - difference).astype(np.uint8), "white"
  return controls.product_mask(image, sigma=feather, background=background)


def parse_color(text: str) -> np.ndarray:
  """"#RRGGBB", "#RGB" or a colour name -> (3,) float32 in [-1, 1]."""
  try:
    rgb = ImageColor.getrgb(text.strip())
  except (ValueError, AttributeError):
    raise ValueError(f"Unknown colour {text!r}: use #RRGGBB (e.g. #ffcc00) or a name such as "
                     "white, black, lightgray.") from None
  return np.asarray(rgb[:3], np.float32) / 127.5 - 1.0


def solid(color: Any, height: int, width: int) -> np.ndarray:
  """(H, W, 3) float32 of one colour (a parse_color string or 3 floats in [-1, 1])."""
  color = parse_color(color) if isinstance(color, str) else np.asarray(color, np.float32)
  return np.broadcast_to(color, (height, width, 3)).astype(np.float32)


def linear_gradient(top: Any, bottom: Any, height: int, width: int) -> np.ndarray:
  """(H, W, 3) float32: `top` on the first row, `bottom` on the last, linear in between."""
  top = parse_color(top) if isinstance(top, str) else np.asarray(top, np.float32)
  bottom = parse_color(bottom) if isinstance(bottom, str) else np.asarray(bottom, np.float32)
  t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
  return np.broadcast_to((1.0 - t) * top + t * bottom, (height, width, 3)).astype(np.float32)


def image_background(path: Union[str, os.PathLike], height: int, width: int) -> np.ndarray:
  """An image file resized to cover (H, W) and centre-cropped: (H, W, 3) float32 in [-1, 1]."""
  side = max(height, width)
  square = controls.load_image(path, side)
  top, left = (side - height) // 2, (side - width) // 2
  return square[top:top + height, left:left + width]


def parse_background(spec: str, height: int, width: int) -> np.ndarray:
  """A background from its command-line spec: a colour ("white", "#RRGGBB"), "gradient:A,B"
  (vertical, colour A at the top) or an image path. (H, W, 3) float32 in [-1, 1]."""
  spec = spec.strip()
  if spec.startswith("gradient:"):
    colors = spec[len("gradient:"):].split(",")
    if len(colors) != 2:
      raise ValueError(f"A gradient background is gradient:TOP,BOTTOM (two colours, e.g. "
                       f"gradient:#ffffff,#88aaff), got {spec!r}.")
    return linear_gradient(colors[0], colors[1], height, width)
  if os.path.splitext(spec)[1] or os.sep in spec:
    if not os.path.isfile(spec):
      raise FileNotFoundError(f"Background image not found: {spec}")
    return image_background(spec, height, width)
  return solid(spec, height, width)


def replace_background(image: Any, new_background: Any, *, feather: float = DEFAULT_FEATHER,
                       background: str = "white") -> tuple[np.ndarray, np.ndarray]:
  """The product of `image` on `new_background`.

  Args:
    image: (H, W, 3) float in [-1, 1] (or uint8): a product on a plain background.
    new_background: (H, W, 3) float in [-1, 1] (make it with solid / linear_gradient /
      image_background / parse_background).
    feather: edge softness (Gaussian sigma in pixels).
    background: the photo's background kind, see `foreground_alpha`.

  Returns:
    (composite (H, W, 3) float32 in [-1, 1], alpha (H, W) float32 in [0, 1]).
  """
  photo = np.asarray(image)
  if photo.dtype == np.uint8:
    photo = photo.astype(np.float32) / 127.5 - 1.0
  new_background = np.asarray(new_background, np.float32)
  if new_background.shape != photo.shape:
    raise ValueError(f"The new background is {new_background.shape}, the photo {photo.shape}: "
                     "they must have the same size.")
  alpha = foreground_alpha(photo, feather=feather, background=background)
  return np.asarray(composite(new_background, photo, alpha)), alpha
