"""Measured attributes of product images: for captions, continuous conditioning and editing.

Products sit on a plain background: white for the product photos, black for Fashion-MNIST.
Everything here is measured on the foreground, the pixels that differ from that background:

  foreground_mask:   (N, H, W) bool silhouette of the product.
  measure:           dict of (N,) arrays: brightness, size, width, height, aspect, saturation,
                     hue, dominant_color (an index into COLOR_NAMES), and the pose of the
                     silhouette (`mask_pose`): orientation (angle of its principal axis, degrees),
                     elongation, facing (which end of that axis is the thin one).
  attribute_vectors: (N, len(ATTRIBUTE_NAMES)) float32 in [0, 1], a continuous conditioning
                     vector; fit_normalization / normalize standardize it if wanted.
  pose_vectors:      (N, len(POSE_NAMES)) float32 in [0, 1]: orientation and facing as edit
                     targets (gan/editing: probes and latent directions).
  captions:          short deterministic texts like "a dark red, wide handbag".

Images are uint8 (N, H, W, C) in [0, 255] with C = 1 (grey) or 3 (RGB). All functions are
plain numpy / scipy / scikit-image on the host (1,600 64x64 photos: a few seconds on 2 cores).
Fashion-MNIST stores negated intensities, so there "light" means bright pixels, i.e. a dark
garment in the original photo.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage import color as skcolor

BACKGROUNDS = ("auto", "white", "black")
# A pixel is foreground when one of its channels differs from the background by more than
# this (in [0, 1]): above the noise of the white background (real product photos at 64 px:
# 99.9% of the pixels >= 3 px away from the object are within 20/255 of white), yet low
# enough to keep light-grey parts and soft shadows of the product.
FOREGROUND_THRESHOLD = 24 / 255
# Opening with a 2x2 square keeps exactly the pixels that lie in some all-foreground 2x2
# block: it removes specks and 1-pixel-wide lines (JPEG ringing, dust) and leaves rectangles
# unchanged (a 3x3 cross would clip their corners). At 28 px it also drops 1-pixel straps.
# The leading 1 makes scipy treat each image of the (N, H, W) batch on its own.
_OPENING = np.ones((1, 2, 2), bool)
# Holes: background regions not 4-connected to the image border.
_HOLE_CONNECTIVITY = ndimage.generate_binary_structure(2, 1)[None]  # (1, 3, 3)
# Hue is only meaningful for pixels with some colour and light: HSV hue of near-grey or
# near-black pixels is JPEG noise.
HUE_MIN_SATURATION = 0.2
HUE_MIN_VALUE = 0.15

COLOR_NAMES = ("black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple",
               "pink", "brown")
# sRGB anchor of each name; a pixel takes the name of the nearest anchor in CIELAB (CIE76).
PALETTE_RGB = np.array([
    (0, 0, 0), (255, 255, 255), (128, 128, 128), (210, 30, 35), (245, 130, 20), (245, 215, 30),
    (40, 150, 60), (35, 80, 200), (120, 50, 160), (240, 140, 180), (120, 75, 40)], np.uint8)
_ACHROMATIC = (0, 1, 2)  # black, white, gray: the only names for 1-channel images.
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, as PIL's convert("L").

MEASUREMENTS = ("brightness", "size", "width", "height", "aspect", "saturation", "hue",
                "dominant_color", "orientation", "elongation", "facing")
# attribute_vectors columns. Circular hues become points of the unit disc mapped to
# [0, 1]^2: 0.5 + 0.5 * radius * (cos, sin), with radius = saturation, so colourless things
# sit at the centre (0.5, 0.5) and the vector is continuous across red (hue 0 = hue 1).
ATTRIBUTE_NAMES = ("brightness", "size", "width", "height", "aspect", "saturation", "hue_x",
                   "hue_y", "color_x", "color_y", "color_value")

# pose_vectors columns: the pose as edit targets in [0, 1]. Not in ATTRIBUTE_NAMES: that vector is
# the input of trained attribute-conditioned runs, and a new column would change their cond_dim.
POSE_NAMES = ("orientation", "facing")

# captions: size / shape words mark the outer CAPTION_QUANTILE tails of the reference set.
CAPTION_QUANTILE = 0.25
# Brightness words are absolute (dark means dark whatever the dataset).
DARK_BELOW, LIGHT_ABOVE = 0.3, 0.7


def _check_images(images: np.ndarray) -> np.ndarray:
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
    raise ValueError(f"images must be uint8 (N, H, W, C) with C = 1 or 3, got "
                     f"{images.shape} {images.dtype}.")
  return images


def _luminance(pixels: np.ndarray) -> np.ndarray:
  """(..., C) uint8 -> (...) float64 luminance in [0, 1]."""
  if pixels.shape[-1] == 1:
    return pixels[..., 0] / 255.0
  return pixels @ _LUMA / 255.0


def background_is_white(images: np.ndarray, background: str = "auto") -> np.ndarray:
  """(N,) bool: True where the background is white, False where black.

  "auto" decides per image from the median luminance of its 1-pixel border: products touch
  the border only in places, so the median is background.
  """
  images = _check_images(images)
  if background not in BACKGROUNDS:
    raise ValueError(f"Unknown background {background!r}; valid: {', '.join(BACKGROUNDS)}.")
  if background != "auto":
    return np.full(len(images), background == "white")
  border = np.concatenate([images[:, 0], images[:, -1], images[:, 1:-1, 0],
                           images[:, 1:-1, -1]], axis=1)  # (N, 2H + 2W - 4, C)
  return np.median(_luminance(border), axis=1) > 0.5


def foreground_mask(images: np.ndarray, background: str = "auto") -> np.ndarray:
  """Product silhouettes.

  A pixel is foreground when any channel differs from the background (255 or 0) by more than
  FOREGROUND_THRESHOLD; the mask is then opened with a 2x2 square (removes specks and 1-pixel
  lines) and its holes are filled (background pixels not connected to the image border, e.g.
  the white upper of a sneaker inside its grey outline, or the space inside a bag handle).

  Args:
    images: (N, H, W, C) uint8 in [0, 255], C = 1 or 3.
    background: "auto" (per image, from the border), "white" or "black".

  Returns:
    (N, H, W) bool.
  """
  images = _check_images(images)
  return _foreground_mask(images, background_is_white(images, background))


def _foreground_mask(images: np.ndarray, white: np.ndarray) -> np.ndarray:
  # The largest channel difference from the background: 255 - min on white, max on black.
  difference = np.where(white[:, None, None], 255 - images.min(-1).astype(np.int32),
                        images.max(-1))
  mask = difference > FOREGROUND_THRESHOLD * 255
  mask = ndimage.binary_opening(mask, structure=_OPENING)
  return ndimage.binary_fill_holes(mask, structure=_HOLE_CONNECTIVITY)


def _palette_lab() -> np.ndarray:
  return skcolor.rgb2lab(PALETTE_RGB[None] / 255.0)[0]  # (K, 3)


def _unique_colors(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(P, C) uint8 -> (distinct colours (U, 3) uint8 RGB, (P,) index of each pixel's colour).

  Photos repeat colours a lot (JPEG, flat regions), so per-colour work (CIELAB, HSV) on the
  distinct colours and a gather is several times faster than per pixel, and exact.
  """
  p = pixels.astype(np.int32)
  codes = p[:, 0] if pixels.shape[1] == 1 else (p[:, 0] << 16) | (p[:, 1] << 8) | p[:, 2]
  distinct, inverse = np.unique(codes, return_inverse=True)
  if pixels.shape[1] == 1:
    return np.repeat(distinct.astype(np.uint8)[:, None], 3, axis=1), inverse
  rgb = np.stack([distinct >> 16, (distinct >> 8) & 255, distinct & 255], axis=1)
  return rgb.astype(np.uint8), inverse


def _nearest_palette(rgb: np.ndarray, allowed: Sequence[int]) -> np.ndarray:
  """(P, 3) uint8 RGB -> (P,) index into COLOR_NAMES of the nearest allowed anchor in CIELAB."""
  allowed = np.asarray(allowed)
  lab = skcolor.rgb2lab(rgb[None] / 255.0)[0]  # (P, 3)
  anchors = _palette_lab()[allowed]  # (K, 3)
  # |lab - anchor|^2 without the per-pixel |lab|^2, which does not change the argmin; a
  # (P, 3) x (3, K) product instead of a (P, K, 3) difference array.
  distances = (anchors ** 2).sum(-1) - 2 * lab @ anchors.T
  return allowed[np.argmin(distances, axis=1)]


def measure(images: np.ndarray, background: str = "auto") -> dict[str, np.ndarray]:
  """Measures every image's foreground (see foreground_mask).

  Args:
    images: (N, H, W, C) uint8 in [0, 255], C = 1 or 3.
    background: "auto", "white" or "black".

  Returns:
    A dict of (N,) arrays (float64 unless noted):
      brightness: mean ITU-R 601 luminance of the foreground, in [0, 1].
      size: foreground pixels / all pixels, in [0, 1].
      width, height: bounding box width / image width and height / image height, in [0, 1].
      aspect: bounding box width / height in pixels, > 0.
      saturation: mean HSV saturation of the foreground, in [0, 1] (0 for C = 1).
      hue: circular mean HSV hue of the foreground pixels with saturation >= HUE_MIN_SATURATION
        and value >= HUE_MIN_VALUE, in [0, 1) (0 = red, 1/3 = green, 2/3 = blue); 0 when there
        are none (and always for C = 1).
      dominant_color: int64 index into COLOR_NAMES, the name most foreground pixels are
        nearest to in CIELAB (ties: the lower index); only black / white / gray for C = 1.
      orientation, elongation, facing: the silhouette's pose, see `mask_pose` (it depends on the
        mask only: not on colour or brightness).
    An image without foreground gets brightness = its mean luminance, size = width = height =
    saturation = hue = orientation = elongation = facing = 0, aspect = 1 and the background's colour.
  """
  images = _check_images(images)
  n, h, w, c = images.shape
  white = background_is_white(images, background)
  mask = _foreground_mask(images, white)
  count = mask.sum(axis=(1, 2))
  empty = count == 0
  safe = np.maximum(count, 1)

  rows, cols = mask.any(axis=2), mask.any(axis=1)  # (N, H), (N, W)
  box_h = np.where(empty, 0, h - np.argmax(rows[:, ::-1], 1) - np.argmax(rows, 1))
  box_w = np.where(empty, 0, w - np.argmax(cols[:, ::-1], 1) - np.argmax(cols, 1))

  image_of_pixel = np.nonzero(mask)[0]  # (P,) which image each foreground pixel is in
  rgb, color_of_pixel = _unique_colors(images[mask])  # (U, 3), (P,)

  def mean_over_foreground(per_color: np.ndarray) -> np.ndarray:
    return np.bincount(image_of_pixel, per_color[color_of_pixel], minlength=n) / safe

  brightness = mean_over_foreground(_luminance(rgb))
  if empty.any():
    brightness[empty] = _luminance(images[empty]).mean(axis=(1, 2))

  saturation, hue = np.zeros(n), np.zeros(n)
  if c == 3 and len(rgb):
    hsv = skcolor.rgb2hsv(rgb[None])[0]  # (U, 3) in [0, 1]
    saturation = mean_over_foreground(hsv[:, 1])
    colored = ((hsv[:, 1] >= HUE_MIN_SATURATION) & (hsv[:, 2] >= HUE_MIN_VALUE))[color_of_pixel]
    angle = 2 * np.pi * hsv[color_of_pixel[colored], 0]
    sums = [np.bincount(image_of_pixel[colored], f(angle), minlength=n) for f in (np.cos, np.sin)]
    # Circular mean: the direction of the summed unit vectors (0 when there are none).
    hue = np.mod(np.arctan2(sums[1], sums[0]) / (2 * np.pi), 1.0)
    hue[np.hypot(*sums) == 0] = 0.0
    hue[hue >= 1.0] = 0.0  # mod of a tiny negative number can round to exactly 1.0.

  num_colors = len(COLOR_NAMES)
  names = _nearest_palette(rgb, range(num_colors) if c == 3 else _ACHROMATIC)[color_of_pixel]
  votes = np.bincount(image_of_pixel * num_colors + names,
                      minlength=n * num_colors).reshape(n, num_colors)
  dominant = np.argmax(votes, axis=1)
  dominant[empty] = np.where(white[empty], COLOR_NAMES.index("white"), COLOR_NAMES.index("black"))

  return {
      "brightness": brightness,
      "size": count / (h * w),
      "width": box_w / w,
      "height": box_h / h,
      "aspect": np.where(empty, 1.0, box_w / np.maximum(box_h, 1)),
      "saturation": saturation,
      "hue": hue,
      "dominant_color": dominant.astype(np.int64),
      **mask_pose(mask),
  }


def mask_pose(masks: np.ndarray) -> dict[str, np.ndarray]:
  """The pose of silhouettes, from the moments of their masks (all images at once).

  Coordinates: x to the right, y up (image rows go down), in pixels from the mask's centroid. With
  the central second moments mu20 = E[x^2], mu02 = E[y^2], mu11 = E[x y] over the mask's pixels,
  the principal (longest) axis is at angle theta = atan2(2 mu11, mu20 - mu02) / 2, its unit vector
  u = (cos theta, sin theta) points right (or straight up at 90 degrees), and t = (x, y) . u is
  each pixel's position along it.

  Args:
    masks: (N, H, W) bool, e.g. foreground_mask's.

  Returns:
    orientation: (N,) float64 degrees in (-90, 90], the principal axis' angle counterclockwise from
      horizontal: 0 lying flat, 45 rising to the right, 90 upright; 0 without foreground. Only
      meaningful when elongation is well above 0 (a disc or a square has no principal axis).
    elongation: (N,) in [0, 1], (l1 - l2) / (l1 + l2) of the second-moment eigenvalues: 0 for a
      disc or a square, -> 1 for a line.
    facing: (N,) in [-1, 1], E[t^3] / E[|t|^3]: the mass skew along u. > 0 when the mass is heavy
      at the left (-u) end and the thin end points right (+u), as a wedge pointing right or a shoe
      with its heel left and toe right; < 0 the mirror image; 0 for shapes symmetric across the
      axis' normal. A horizontal flip negates it (and the orientation).
  """
  masks = np.asarray(masks, bool)
  n, h, w = masks.shape
  weights = masks.astype(np.float64)
  count = weights.sum(axis=(1, 2))
  safe = np.maximum(count, 1.0)
  x = np.arange(w, dtype=np.float64)[None, None, :]
  y = -np.arange(h, dtype=np.float64)[None, :, None]          # up is positive
  cx = (weights * x).sum(axis=(1, 2)) / safe
  cy = (weights * y).sum(axis=(1, 2)) / safe
  dx, dy = x - cx[:, None, None], y - cy[:, None, None]       # (N, H, W) by broadcasting
  mu20, mu02, mu11 = ((weights * m).sum(axis=(1, 2)) / safe for m in (dx * dx, dy * dy, dx * dy))
  theta = 0.5 * np.arctan2(2 * mu11, mu20 - mu02)            # (-pi/2, pi/2]
  spread = np.hypot(mu20 - mu02, 2 * mu11)                    # l1 - l2
  elongation = np.where(count > 0, spread / np.maximum(mu20 + mu02, 1e-12), 0.0)
  t = dx * np.cos(theta)[:, None, None] + dy * np.sin(theta)[:, None, None]
  third = (weights * t ** 3).sum(axis=(1, 2))
  absolute = (weights * np.abs(t) ** 3).sum(axis=(1, 2))
  facing = np.where(absolute > 0, third / np.maximum(absolute, 1e-300), 0.0)
  orientation = np.degrees(theta)
  orientation = np.where(orientation <= -90.0, orientation + 180.0, orientation)   # rounding at -pi/2
  return {"orientation": np.where(count > 0, orientation, 0.0), "elongation": elongation,
          "facing": np.clip(facing, -1.0, 1.0)}


def pose_vectors(measurements: dict[str, np.ndarray]) -> np.ndarray:
  """Measurements -> (N, len(POSE_NAMES)) float32 in [0, 1], columns in POSE_NAMES order.

  orientation: 0.5 + 0.5 * elongation * sin(2 * angle), the tilt: 0.5 level (lying flat or upright)
    or round, > 0.5 turned counterclockwise (up to 1 at 45 degrees), < 0.5 clockwise. Doubling the
    angle makes it continuous where the angle wraps (an axis at 90 degrees is the one at -90), and
    the elongation weight makes a round shape's meaningless angle count for nothing (as saturation
    weights hue in ATTRIBUTE_NAMES).
  facing: 0.5 + 0.5 * facing: > 0.5 the thin end points right.
  """
  angle = np.radians(np.asarray(measurements["orientation"], np.float64))
  columns = {"orientation": 0.5 + 0.5 * np.asarray(measurements["elongation"]) * np.sin(2 * angle),
             "facing": 0.5 + 0.5 * np.asarray(measurements["facing"], np.float64)}
  vectors = np.stack([columns[name] for name in POSE_NAMES], -1)
  return np.clip(vectors, 0.0, 1.0).astype(np.float32)


def _disc(radius: np.ndarray, hue: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """A hue at a radius in [0, 1] as a point of [0, 1]^2 (see ATTRIBUTE_NAMES)."""
  angle = 2 * np.pi * hue
  return 0.5 + 0.5 * radius * np.cos(angle), 0.5 + 0.5 * radius * np.sin(angle)


def attribute_vectors(measurements: dict[str, np.ndarray]) -> np.ndarray:
  """Measurements -> (N, len(ATTRIBUTE_NAMES)) float32 in [0, 1], columns in ATTRIBUTE_NAMES order.

  aspect becomes w / (w + h) (0.5 = square, -> 1 for wide); the measured hue and the dominant
  palette colour's HSV hue are points of the disc scaled by their saturation (see
  ATTRIBUTE_NAMES), so a colour name becomes three continuous numbers (color_x, color_y and
  color_value = its HSV value).
  """
  aspect = np.asarray(measurements["aspect"], np.float64)
  palette_hsv = skcolor.rgb2hsv(PALETTE_RGB[None] / 255.0)[0]  # (K, 3)
  dominant = palette_hsv[np.asarray(measurements["dominant_color"])]
  hue_x, hue_y = _disc(measurements["saturation"], measurements["hue"])
  color_x, color_y = _disc(dominant[:, 1], dominant[:, 0])
  columns = {
      "brightness": measurements["brightness"], "size": measurements["size"],
      "width": measurements["width"], "height": measurements["height"],
      "aspect": aspect / (aspect + 1), "saturation": measurements["saturation"],
      "hue_x": hue_x, "hue_y": hue_y, "color_x": color_x, "color_y": color_y,
      "color_value": dominant[:, 2],
  }
  vectors = np.stack([np.asarray(columns[name], np.float64) for name in ATTRIBUTE_NAMES], -1)
  return np.clip(vectors, 0.0, 1.0).astype(np.float32)


def fit_normalization(vectors: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
  """Per-column (mean, std) of (N, A) vectors, as (A,) float32; std >= eps."""
  vectors = np.asarray(vectors, np.float64)
  return (vectors.mean(0).astype(np.float32),
          np.maximum(vectors.std(0), eps).astype(np.float32))


def normalize(vectors: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
  """(vectors - mean) / std as float32: zero mean, unit variance over the fitting set."""
  return ((np.asarray(vectors, np.float32) - mean) / std).astype(np.float32)


def readable_class_name(name: str) -> str:
  """Caption form of a class name: "T-shirt/top" -> "t-shirt", "Ankle boot" -> "ankle boot"."""
  return name.split("/")[0].strip().lower()


def captions(measurements: dict[str, np.ndarray], labels: np.ndarray,
             class_names: Sequence[str], *, channels: int = 3,
             reference: dict[str, np.ndarray] | None = None) -> list[str]:
  """One short caption per image, e.g. "a dark red, wide handbag" or "a light, wide bag".

  Words, in order:
    brightness: "dark" (brightness < DARK_BELOW) or "light" (> LIGHT_ABOVE), none between,
      and none before "black" or "white" (they say it already);
    colour (RGB only, channels = 3): the dominant colour name, joined to the brightness word
      ("dark red");
    size / shape, at most one: "wide" when aspect > 1 and above the (1 - CAPTION_QUANTILE)
      quantile of the reference aspects, "tall" when aspect < 1 and below the CAPTION_QUANTILE
      quantile; otherwise "large" / "small" the same way for size;
    the class name (readable_class_name).
  Adjective groups are separated by ", " and the article is "an" before a vowel.

  Args:
    measurements: output of `measure` for N images.
    labels: (N,) int class ids into class_names.
    class_names: name of each class id.
    channels: the images' channels; 1 drops the colour word (measurements do not record
      it, and grey images have no colour to speak of).
    reference: measurements whose quantiles set the size / shape thresholds (e.g. the whole
      training set when captioning a few generated images); default: `measurements`.

  Returns:
    N strings; the same inputs always give the same captions.
  """
  reference = measurements if reference is None else reference
  labels = np.asarray(labels)
  bounds = {key: np.quantile(np.asarray(reference[key], np.float64),
                             [CAPTION_QUANTILE, 1 - CAPTION_QUANTILE])
            for key in ("aspect", "size")}
  out = []
  for i, label in enumerate(labels):
    brightness = float(measurements["brightness"][i])
    aspect, size = float(measurements["aspect"][i]), float(measurements["size"][i])
    color = COLOR_NAMES[int(measurements["dominant_color"][i])] if channels == 3 else ""
    tone = "dark" if brightness < DARK_BELOW else "light" if brightness > LIGHT_ABOVE else ""
    if color in ("black", "white"):
      tone = ""
    shape = ""
    if aspect > 1 and aspect > bounds["aspect"][1]:
      shape = "wide"
    elif aspect < 1 and aspect < bounds["aspect"][0]:
      shape = "tall"
    elif size > bounds["size"][1]:
      shape = "large"
    elif size < bounds["size"][0]:
      shape = "small"
    groups = [g for g in (" ".join(w for w in (tone, color) if w), shape) if g]
    noun = readable_class_name(class_names[int(label)])
    words = f"{', '.join(groups)} {noun}" if groups else noun
    article = "an" if words[0] in "aeiou" else "a"
    out.append(f"{article} {words}")
  return out
