"""Tests for gan/attributes.py: hand-known answers on synthetic images, captions, real photos."""

from __future__ import annotations

import io

import ml_collections
import numpy as np
from PIL import Image
import pytest

from gan import attributes
from gan import data

RED, BLUE, GREEN = (230, 30, 30), (40, 80, 220), (40, 150, 60)


def canvas(background: int = 255, size: int = 64, channels: int = 3) -> np.ndarray:
  return np.full((size, size, channels), background, np.uint8)


def with_box(color, top: int, left: int, height: int, width: int, background: int = 255,
             size: int = 64) -> np.ndarray:
  """A (size, size, C) image: one solid box on a plain background; C = len(color)."""
  image = canvas(background, size, len(color))
  image[top:top + height, left:left + width] = color
  return image


def color_index(name: str) -> int:
  return attributes.COLOR_NAMES.index(name)


def circular_distance(a, b):
  d = np.abs(np.asarray(a) - b) % 1.0
  return np.minimum(d, 1.0 - d)


def test_red_square_on_white_exact_measurements():
  images = with_box(RED, 8, 20, 16, 16)[None]
  m = attributes.measure(images)
  assert set(attributes.MEASUREMENTS) <= set(m) and all(v.shape == (1,) for v in m.values())
  assert m["size"][0] == 16 * 16 / 64**2  # Exactly: the opening keeps rectangles intact.
  assert m["width"][0] == m["height"][0] == 0.25 and m["aspect"][0] == 1.0
  assert m["dominant_color"][0] == color_index("red")
  np.testing.assert_allclose(m["brightness"][0], (0.299 * 230 + 0.587 * 30 + 0.114 * 30) / 255)
  np.testing.assert_allclose(m["saturation"][0], 200 / 230)  # (max - min) / max
  assert m["hue"][0] == 0.0  # G == B: pure red hue.


def test_blue_wide_and_green_tall_boxes():
  images = np.stack([with_box(BLUE, 30, 2, 10, 30), with_box(GREEN, 4, 50, 40, 8)])
  m = attributes.measure(images)
  np.testing.assert_array_equal(m["size"], [300 / 4096, 320 / 4096])
  np.testing.assert_array_equal(m["width"], [30 / 64, 8 / 64])
  np.testing.assert_array_equal(m["height"], [10 / 64, 40 / 64])
  np.testing.assert_allclose(m["aspect"], [3.0, 0.2])
  np.testing.assert_array_equal(m["dominant_color"], [color_index("blue"), color_index("green")])
  # HSV hue by hand: blue (40, 80, 220): 4 + (R - G) / (max - min) = 4 - 40 / 180, over 6;
  # green (40, 150, 60): 2 + (B - R) / (max - min) = 2 + 20 / 110, over 6.
  np.testing.assert_allclose(m["hue"], [(4 - 40 / 180) / 6, (2 + 20 / 110) / 6])


def test_grey_objects_on_black_brightness_order_and_grey_names():
  dark = with_box((60,), 10, 10, 20, 20, background=0, size=32)
  light = with_box((200,), 10, 10, 20, 20, background=0, size=32)
  mid = with_box((128,), 10, 10, 20, 20, background=0, size=32)
  images = np.stack([dark, light, mid])
  assert not attributes.background_is_white(images).any()
  m = attributes.measure(images)
  np.testing.assert_allclose(m["brightness"], [60 / 255, 200 / 255, 128 / 255])
  assert m["brightness"][0] < m["brightness"][2] < m["brightness"][1]
  np.testing.assert_array_equal(m["size"], 400 / 1024)
  np.testing.assert_array_equal(m["saturation"], 0)
  np.testing.assert_array_equal(m["hue"], 0)
  # 1 channel: only black / white / gray, nearest in L* (L* of 60: 25 < 53.6 / 2; of 200: 81).
  np.testing.assert_array_equal(m["dominant_color"], [color_index("black"), color_index("white"),
                                                       color_index("gray")])
  # The same pixels as RGB measure the same.
  rgb = attributes.measure(np.repeat(images, 3, axis=-1))
  for key in ("brightness", "size", "width", "height", "aspect", "dominant_color"):
    np.testing.assert_allclose(rgb[key], m[key], err_msg=key)


def test_background_auto_explicit_and_unknown():
  white_bg, black_bg = with_box(RED, 8, 8, 8, 8), with_box(RED, 8, 8, 8, 8, background=0)
  np.testing.assert_array_equal(
      attributes.background_is_white(np.stack([white_bg, black_bg])), [True, False])
  # A box touching three sides (102 of the 252 border pixels) is still on white.
  big = with_box(RED, 0, 0, 64, 20)
  assert attributes.background_is_white(big[None])[0]
  # Forcing the wrong background turns the background itself into the foreground.
  assert attributes.measure(white_bg[None], background="black")["size"][0] == 1.0
  assert attributes.measure(white_bg[None], background="white")["size"][0] == 64 / 4096
  with pytest.raises(ValueError, match="'grey'.*auto, white, black"):
    attributes.foreground_mask(white_bg[None], background="grey")
  with pytest.raises(ValueError, match="uint8"):
    attributes.measure(white_bg[None].astype(np.float32))


def test_mask_drops_specks_and_lines_fills_holes_and_threshold():
  image = canvas(size=32)
  image[2, 2] = 0                     # A speck.
  image[28, 4:28] = 0                 # A 1-pixel line.
  image[8:20, 8:20] = 90              # A 12x12 frame, 3 pixels thick, white inside.
  image[11:17, 11:17] = 255
  image[22:24, 22:30] = 255 - 24      # Exactly at the threshold: background.
  image[25:27, 22:30] = 255 - 25      # Just above it: foreground (2 pixels thick survives).
  mask = attributes.foreground_mask(image[None])[0]
  want = np.zeros((32, 32), bool)
  want[8:20, 8:20] = True             # Frame with its hole filled.
  want[25:27, 22:30] = True
  np.testing.assert_array_equal(mask, want)


def test_mask_treats_each_image_on_its_own():
  rng = np.random.default_rng(0)
  images = np.where(rng.random((6, 24, 24, 1)) < 0.3, 0, 255).astype(np.uint8)
  images[2] = 255
  images[2, 4:20, 4:20] = 0
  images[2, 8:16, 8:16] = 255         # A hole only image 2 has.
  batch = attributes.foreground_mask(images, background="white")
  for image, mask in zip(images, batch):
    np.testing.assert_array_equal(mask, attributes.foreground_mask(image[None], "white")[0])


def test_jpeg_noise_keeps_measurements_close():
  image = with_box(RED, 10, 12, 20, 36)
  buffer = io.BytesIO()
  # Quality 90 with 4:2:0 chroma: saturated red on white is the worst case for ringing (at
  # quality 75 it reaches 3 rows beyond the box, which the opening does not remove).
  Image.fromarray(image).save(buffer, format="JPEG", quality=90)
  decoded = np.asarray(Image.open(buffer))[None]
  m = attributes.measure(decoded)
  assert abs(m["size"][0] - 20 * 36 / 4096) < 0.01
  assert m["dominant_color"][0] == color_index("red")
  assert abs(m["width"][0] - 36 / 64) <= 1 / 64 and abs(m["height"][0] - 20 / 64) <= 1 / 64


def test_hue_is_a_circular_mean():
  image = canvas()
  image[10:30, 10:20] = (255, 0, 77)   # hue 1 - 77 / 255 / 6 ~ 0.95
  image[10:30, 20:30] = (255, 77, 0)   # hue 77 / 255 / 6 ~ 0.05
  hue = attributes.measure(image[None])["hue"][0]
  assert 0 <= hue < 1 and circular_distance(hue, 0.0) < 1e-9  # An arithmetic mean says 0.5.


def test_empty_image():
  m = attributes.measure(canvas()[None])
  assert m["size"][0] == m["width"][0] == m["saturation"][0] == 0 and m["aspect"][0] == 1
  assert m["brightness"][0] == 1.0 and m["dominant_color"][0] == color_index("white")


def painted(mask: np.ndarray, color=RED, background: int = 255) -> np.ndarray:
  """(H, W) bool -> (H, W, 3) uint8: the mask in `color` on a plain background."""
  image = np.full((*mask.shape, 3), background, np.uint8)
  image[mask] = color
  return image


def rotated(shape: str, angle: float, a: float = 22, b: float = 7, size: int = 64) -> np.ndarray:
  """(size, size) bool: an ellipse (semi-axes a, b) or a 2a x 2b rectangle centred in the image, its
  long axis at `angle` degrees counterclockwise from horizontal (y up)."""
  rows, cols = np.mgrid[:size, :size]
  x, y = cols - size / 2 + 0.5, -(rows - size / 2 + 0.5)
  t = np.radians(angle)
  u, v = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
  return (u / a) ** 2 + (v / b) ** 2 <= 1 if shape == "ellipse" else (np.abs(u) <= a) & (np.abs(v) <= b)


def wedge(size: int = 64) -> np.ndarray:
  """(size, size) bool: a triangle with its base at the left (x = 12) and its point at the right (x = 52)."""
  rows, cols = np.mgrid[:size, :size]
  return (cols >= 12) & (cols <= 52) & (np.abs(rows - size / 2 + 0.5) <= 0.45 * (52 - cols))


def angle_error(measured, expected):
  """Degrees between two axis angles (an axis at 90 is the one at -90)."""
  d = np.abs(np.asarray(measured) - expected) % 180.0
  return np.minimum(d, 180.0 - d)


@pytest.mark.parametrize("shape", ["ellipse", "rectangle"])
def test_orientation_of_rotated_shapes_within_two_degrees(shape):
  angles = np.array([0, 15, 30, 45, 60, 75, 90, -20, -45, -70, -89])
  images = np.stack([painted(rotated(shape, a)) for a in angles])
  m = attributes.measure(images)
  assert angle_error(m["orientation"], angles).max() < 2.0, m["orientation"]
  assert np.all((m["orientation"] > -90) & (m["orientation"] <= 90))
  assert m["elongation"].min() > 0.6 and np.abs(m["facing"]).max() < 0.05   # symmetric shapes face nowhere
  # Exactly symmetric cases by hand: level and upright axes, and a disc or a square with no axis.
  exact = attributes.mask_pose(np.stack([rotated(shape, 0), rotated(shape, 90), rotated(shape, 0, a=10, b=10)]))
  np.testing.assert_array_equal(exact["orientation"], [0.0, 90.0, 0.0])
  np.testing.assert_allclose(exact["elongation"][2], 0.0, atol=1e-12)
  # An a:b ellipse's second moments are a^2 / 4 and b^2 / 4: elongation (a^2 - b^2) / (a^2 + b^2).
  if shape == "ellipse":
    np.testing.assert_allclose(m["elongation"], (22**2 - 7**2) / (22**2 + 7**2), atol=0.02)


def test_facing_flips_with_the_wedge_and_orientation_with_a_mirror():
  right = wedge()
  tilted = rotated("ellipse", 30) | (rotated("ellipse", 30, a=8, b=12) & (np.mgrid[:64, :64][1] < 32))
  masks = np.stack([right, right[:, ::-1], tilted, tilted[:, ::-1]])
  m = attributes.measure(np.stack([painted(k) for k in masks]))
  assert m["facing"][0] > 0.3 and m["facing"][1] < -0.3           # the point to the right, then left
  np.testing.assert_allclose(m["facing"][1], -m["facing"][0], atol=1e-12)
  np.testing.assert_allclose(m["orientation"][:2], 0.0, atol=1e-9)
  np.testing.assert_allclose(m["orientation"][3], -m["orientation"][2], atol=1e-9)   # a mirror negates the tilt
  np.testing.assert_allclose(m["facing"][3], -m["facing"][2], atol=1e-12)
  assert 20 < m["orientation"][2] < 40


def test_pose_does_not_depend_on_colour_brightness_or_background():
  mask = rotated("ellipse", 35) | wedge()
  images = np.stack([painted(mask, RED), painted(mask, BLUE), painted(mask, (30, 30, 30)),
                     painted(mask, (200, 200, 200)), painted(mask, (250, 250, 250), background=0)])
  m = attributes.measure(images)
  for key in ("orientation", "elongation", "facing"):
    np.testing.assert_allclose(m[key], m[key][0], atol=1e-12, err_msg=key)
  assert m["brightness"].std() > 0.2     # while the other attributes did change


def test_pose_vectors_and_an_empty_mask():
  thin = lambda angle: rotated("ellipse", angle, size=16, a=7, b=2)
  m = attributes.mask_pose(np.stack([np.zeros((16, 16), bool), thin(45), thin(-45), thin(90)]))
  np.testing.assert_array_equal([m["orientation"][0], m["elongation"][0], m["facing"][0]], [0, 0, 0])
  vectors = attributes.pose_vectors(m)
  assert vectors.shape == (4, len(attributes.POSE_NAMES)) and vectors.dtype == np.float32
  orientation = vectors[:, attributes.POSE_NAMES.index("orientation")]
  assert orientation[0] == 0.5 and orientation[1] > 0.8 and orientation[2] < 0.2   # level, ccw, cw
  np.testing.assert_allclose(orientation[3], 0.5, atol=1e-6)                       # upright: level too
  np.testing.assert_allclose(vectors[:, attributes.POSE_NAMES.index("facing")], 0.5, atol=0.03)


def test_attribute_vectors():
  images = np.stack([with_box(RED, 8, 20, 16, 16), with_box(BLUE, 30, 2, 10, 30),
                     with_box((128, 128, 128), 8, 8, 20, 20)])
  m = attributes.measure(images)
  vectors = attributes.attribute_vectors(m)
  assert vectors.shape == (3, len(attributes.ATTRIBUTE_NAMES)) and vectors.dtype == np.float32
  assert vectors.min() >= 0 and vectors.max() <= 1
  col = {name: vectors[:, i] for i, name in enumerate(attributes.ATTRIBUTE_NAMES)}
  np.testing.assert_allclose(col["size"], m["size"], rtol=1e-6)
  np.testing.assert_allclose(col["aspect"], [0.5, 0.75, 0.5])  # w / (w + h)
  # Measured hue on the disc: red at angle 0, radius = saturation 200 / 230.
  np.testing.assert_allclose([col["hue_x"][0], col["hue_y"][0]], [0.5 + 0.5 * 200 / 230, 0.5],
                             atol=1e-6)
  # Dominant colour from the palette: red anchor (210, 30, 35) has HSV value 210 / 255 and
  # saturation 180 / 210 at hue ~ -0.005; grey sits at the centre.
  np.testing.assert_allclose(col["color_value"], [210 / 255, 200 / 255, 128 / 255], atol=1e-6)
  np.testing.assert_allclose(col["color_x"][0], 0.5 + 0.5 * 180 / 210, atol=1e-3)
  np.testing.assert_allclose([col["color_x"][2], col["color_y"][2]], [0.5, 0.5], atol=1e-6)
  # Continuous across red: hues 0.999 and 0.001 give nearly the same vector.
  near = {key: value[[0, 0]] for key, value in m.items()}
  near["hue"] = np.array([0.999, 0.001])
  v = attributes.attribute_vectors(near)
  np.testing.assert_allclose(v[0], v[1], atol=0.006)  # |hue_y| difference 0.87 * sin(0.002 pi).
  mean, std = attributes.fit_normalization(vectors)
  z = attributes.normalize(vectors, mean, std)
  assert z.dtype == np.float32
  np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
  varying = vectors.std(0) > 1e-3
  np.testing.assert_allclose(z.std(0)[varying], 1, rtol=1e-4)


def test_captions_of_synthetic_catalog():
  images = np.stack([
      with_box(RED, 8, 20, 16, 16),             # aspect 1, size 256
      with_box(BLUE, 30, 2, 10, 30),            # wide, size 300
      with_box(GREEN, 4, 50, 40, 8),            # tall, size 320
      with_box((10, 10, 10), 8, 8, 48, 48),     # black, size 2304
      with_box((185, 185, 185), 8, 8, 4, 4),    # light grey (luma 0.73, nearer gray than white)
      with_box((150, 15, 20), 8, 8, 16, 16),    # dark red (luma 0.22), size 256
  ])
  labels = np.array([2, 2, 0, 1, 1, 2])
  names = ("T-shirt/top", "Ankle boot", "Bag")
  m = attributes.measure(images)
  # Quantiles of aspect [1, 3, .2, 1, 1, 1]: 1 and 1 -> only strict outliers get wide / tall;
  # of size [256, 300, 320, 2304, 16, 256]: 256 and 315 -> 2304 large, 16 small.
  assert attributes.captions(m, labels, names) == [
      "a red bag", "a blue, wide bag", "a green, tall t-shirt", "a black, large ankle boot",
      "a light gray, small ankle boot", "a dark red bag"]
  assert attributes.captions(m, labels, names, channels=1) == [
      "a bag", "a wide bag", "a tall t-shirt", "a dark, large ankle boot",
      "a light, small ankle boot", "a dark bag"]
  # Against a reference catalog of tiny objects, everything here is large.
  tiny = dict(m, size=np.full(6, 1e-3))
  assert attributes.captions(m, labels, names, reference=tiny)[0] == "a red, large bag"
  assert attributes.captions(m, labels, names) == attributes.captions(m, labels, names)


def test_caption_words():
  m = {"brightness": np.array([0.5, 0.9, 0.1]), "size": np.array([0.3, 0.3, 0.3]),
       "aspect": np.array([1.0, 1.0, 1.0]),
       "dominant_color": np.array([color_index("orange"), color_index("white"),
                                   color_index("black")])}
  assert attributes.captions(m, [1, 1, 0], ("T-shirt/top", "Ankle boot")) == [
      "an orange ankle boot", "a white ankle boot", "a black t-shirt"]  # No "light white".
  assert attributes.captions(m, [0, 1, 1], ("Ankle boot", "shoe"), channels=1) == [
      "an ankle boot", "a light shoe", "a dark shoe"]
  assert attributes.readable_class_name("T-shirt/top") == "t-shirt"
  assert attributes.readable_class_name("Ankle boot") == "ankle boot"


@pytest.mark.real_data
def test_real_product_photos(products_dir):
  def load(split, max_examples=0):
    config = ml_collections.ConfigDict(dict(
        source="products", name="products", dir=str(products_dir), split=split, image_size=64,
        channels=3, resize="resize", max_examples=max_examples))
    return data.load_dataset(config)

  val = load("val")
  m = attributes.measure(val.images)
  assert attributes.background_is_white(val.images).mean() > 0.95
  # The white background is excluded: few products are mostly white (measured 44 / 400).
  assert (m["dominant_color"] == color_index("white")).mean() < 0.25
  assert len(set(m["dominant_color"].tolist())) >= 8  # Measured: all 11 names occur.
  # Shoes are wider than tall on average. On val (many boots and heels) only barely: mean
  # aspect 1.05, median 1.09; the first 400 train files (all shoes): mean 1.16, median 1.21,
  # 77% wider than tall.
  shoes = m["aspect"][val.labels == 0]
  assert shoes.mean() > 1.0 and np.median(shoes) > 1.0
  train_shoes = load("train", max_examples=400)
  assert (train_shoes.labels == 0).all()
  aspect = attributes.measure(train_shoes.images)["aspect"]
  assert aspect.mean() > 1.1 and np.median(aspect) > 1.1 and (aspect > 1).mean() > 0.65
  caps = attributes.captions(m, val.labels, val.class_names)
  assert caps[0].endswith(" shoe") and caps[-1].endswith(" handbag")
  # Pose: the shoes are photographed toe to the lower right, heel opening upper left, so their
  # principal axis descends to the right (val, measured 2026-12-08: median orientation -40.0 degrees,
  # elongation 0.61); handbags are rounder (median elongation 0.21) and lie level (median -0.6).
  shoes, bags = val.labels == 0, val.labels == 1
  assert -55 < np.median(m["orientation"][shoes]) < -25 and np.median(m["elongation"][shoes]) > 0.5
  assert np.median(m["elongation"][bags]) < 0.35 and abs(np.median(m["orientation"][bags])) < 10
