"""Personalization controls: strength, colour preservation, masks, profiles and image loading."""

import json

import numpy as np
from PIL import Image
import pytest
from skimage import exposure

from gan.losses import style as style_losses
from gan.style import controls

RNG = np.random.default_rng(0)
CONTENT = RNG.uniform(-0.5, 0.5, (16, 16, 3)).astype(np.float32)
STYLIZED = RNG.uniform(-0.6, 0.6, (16, 16, 3)).astype(np.float32)


def product_photo(size=24):
  """White (+1) with a dark red rectangle: rows 6..17, columns 4..19."""
  image = np.ones((size, size, 3), np.float32)
  image[6:18, 4:20] = (0.2, -0.8, -0.7)
  return image


def test_blend_alpha_endpoints_are_exact_and_between_is_linear():
  np.testing.assert_array_equal(controls.blend(CONTENT, STYLIZED, 0.0), CONTENT)
  np.testing.assert_array_equal(controls.blend(CONTENT, STYLIZED, 1.0), STYLIZED)
  np.testing.assert_allclose(controls.blend(CONTENT, STYLIZED, 0.25),
                             0.75 * CONTENT + 0.25 * STYLIZED, atol=1e-7)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_outside_unit_interval_raises(alpha):
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    controls.blend(CONTENT, STYLIZED, alpha)
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    controls.adain_alpha(CONTENT[None], STYLIZED[None], alpha)


def test_adain_alpha_interpolates_in_feature_space():
  c, s = CONTENT[None] * 3, STYLIZED[None] + 1
  np.testing.assert_array_equal(controls.adain_alpha(c, s, 0.0), c)
  full = style_losses.adain(c, s)
  np.testing.assert_allclose(controls.adain_alpha(c, s, 1.0), full, atol=1e-6)
  np.testing.assert_allclose(controls.adain_alpha(c, s, 0.3), 0.3 * full + 0.7 * c, atol=1e-5)


def test_luminance_preservation_keeps_content_chroma_and_stylized_luminance():
  out = controls.preserve_color(CONTENT, STYLIZED, "luminance")
  unclipped = np.all(np.abs(out) < 1.0, axis=-1)
  assert unclipped.mean() > 0.9  # the test compares most pixels
  yiq_out = controls.rgb_to_yiq(out)[unclipped]
  np.testing.assert_allclose(yiq_out[:, 1:], controls.rgb_to_yiq(CONTENT)[unclipped][:, 1:],
                             atol=1e-6)
  np.testing.assert_allclose(yiq_out[:, 0], controls.rgb_to_yiq(STYLIZED)[unclipped][:, 0],
                             atol=1e-6)
  # The YIQ matrix: white has no chroma, luminance weights are ITU-R 601.
  np.testing.assert_allclose(controls.rgb_to_yiq(np.ones(3)), [1, 0, 0], atol=1e-6)
  np.testing.assert_allclose(controls.yiq_to_rgb(controls.rgb_to_yiq(STYLIZED)), STYLIZED,
                             atol=1e-6)


def test_histogram_preservation_matches_skimage():
  stylized = np.clip(STYLIZED * 1.5 + 0.2, -1, 1)  # other range and ties at the clip value
  out = controls.preserve_color(CONTENT, stylized, "histogram")
  expected = exposure.match_histograms(stylized, CONTENT, channel_axis=-1)
  np.testing.assert_allclose(out, expected, atol=1e-6)
  # Without ties the output takes exactly the content's per-channel values, in the stylized order.
  out = controls.preserve_color(CONTENT, STYLIZED, "histogram").reshape(-1, 3)
  np.testing.assert_allclose(np.sort(out, 0), np.sort(CONTENT.reshape(-1, 3), 0), atol=1e-6)
  np.testing.assert_array_equal(np.argsort(out, 0), np.argsort(STYLIZED.reshape(-1, 3), 0))
  batched = controls.preserve_color(np.stack([CONTENT, STYLIZED]),
                                    np.stack([stylized, CONTENT]), "histogram")
  np.testing.assert_allclose(batched[0], expected, atol=1e-6)
  np.testing.assert_allclose(
      batched[1], exposure.match_histograms(CONTENT, STYLIZED, channel_axis=-1), atol=1e-6)


def test_preserve_color_rejects_unknown_methods_and_shapes():
  with pytest.raises(ValueError, match="valid: luminance, histogram"):
    controls.preserve_color(CONTENT, STYLIZED, "lab")
  with pytest.raises(ValueError, match="same"):
    controls.preserve_color(CONTENT, STYLIZED[:8], "luminance")


def test_product_mask_is_a_soft_silhouette():
  image = product_photo()
  mask = controls.product_mask(image)
  assert mask.shape == (24, 24) and mask.dtype == np.float32
  assert mask.min() == 0.0 and mask.max() == 1.0
  np.testing.assert_array_equal(mask[9:15, 7:17], 1.0)  # >= 3 sigma inside the edge
  assert np.all(mask[:3] == 0) and np.all(mask[:, -1] == 0)  # >= 3.5 sigma outside
  assert 0.2 < mask[6, 10] < 1.0 and 0.0 < mask[5, 10] < 0.5  # softened edge
  uint8 = np.round((image + 1) * 127.5).astype(np.uint8)
  np.testing.assert_array_equal(controls.product_mask(uint8), mask)
  hard = controls.product_mask(image, sigma=0)
  np.testing.assert_array_equal(hard[6:18, 4:20], 1.0)
  assert hard.sum() == 12 * 16


@pytest.mark.parametrize("region", ["product", "background"])
def test_apply_mask_keeps_the_other_region_exactly(region):
  content = product_photo()
  stylized = RNG.uniform(-1, 1, content.shape).astype(np.float32)
  mask = controls.product_mask(content)
  out = controls.apply_mask(content, stylized, mask, region)
  kept, styled = (mask == 0, mask == 1) if region == "product" else (mask == 1, mask == 0)
  assert kept.sum() > 50 and styled.sum() > 50
  np.testing.assert_array_equal(out[kept], content[kept])
  np.testing.assert_array_equal(out[styled], stylized[styled])
  soft = (mask > 0) & (mask < 1)
  m = (mask if region == "product" else 1 - mask)[soft][:, None]
  np.testing.assert_allclose(out[soft], (1 - m) * content[soft] + m * stylized[soft], atol=1e-6)


def test_apply_mask_validates():
  mask = np.zeros((16, 16), np.float32)
  with pytest.raises(ValueError, match="valid: product, background"):
    controls.apply_mask(CONTENT, STYLIZED, mask, "foreground")
  with pytest.raises(ValueError, match="mask"):
    controls.apply_mask(CONTENT, STYLIZED, mask[:8], "product")


def test_apply_controls_composes_the_controls():
  content = product_photo(16)
  np.testing.assert_array_equal(controls.apply_controls(content, STYLIZED, alpha=0.0), content)
  out = controls.apply_controls(content, STYLIZED, alpha=0.5, color="luminance",
                                region="product")
  mask = controls.product_mask(content)
  np.testing.assert_array_equal(out[mask == 0], content[mask == 0])
  recolored = controls.preserve_color(content, STYLIZED, "luminance")
  np.testing.assert_allclose(out[mask == 1], (0.5 * content + 0.5 * recolored)[mask == 1],
                             atol=1e-6)


def test_style_profile_json_round_trip():
  profile = controls.StyleProfile(styles=("a.png", "b.jpg"), weights=(0.25, 0.75), alpha=0.6,
                                  preserve_color="histogram", mask="background", method="adain")
  text = profile.to_json()
  assert json.loads(text)["styles"] == ["a.png", "b.jpg"]
  assert controls.StyleProfile.from_json(text) == profile
  default = controls.StyleProfile.from_json('{"styles": ["x.png", "y.png"]}')
  assert (default.alpha, default.method, default.mask, default.preserve_color) == (
      1.0, "gatys", None, None)
  np.testing.assert_allclose(default.style_weights, [0.5, 0.5])


@pytest.mark.parametrize("fields,match", [
    (dict(weights=[1.0]), "1 entries for 2 styles"),
    (dict(weights=[0.5, 0.6]), "sum to 1"),
    (dict(weights=[1.5, -0.5]), ">= 0"),
    (dict(weights=0.5), "list of numbers"),
    (dict(alpha=1.2), r"\[0, 1\]"),
    (dict(alpha="strong"), "alpha must be a number"),
    (dict(preserve_color="lab"), "valid: None, luminance, histogram"),
    (dict(mask="sky"), "valid: None, product, background"),
    (dict(method="cyclegan"), "valid: gatys, adain"),
    (dict(styles=[]), "non-empty list"),
    (dict(styles="a.png"), "non-empty list"),
])
def test_style_profile_validation(fields, match):
  data = {"styles": ["a.png", "b.png"], **fields}
  with pytest.raises(ValueError, match=match):
    controls.StyleProfile(**data)
  with pytest.raises(ValueError, match=match):
    controls.StyleProfile.from_json(json.dumps(data))


@pytest.mark.parametrize("text,match", [
    ('{"styles": ["a.png"], "strength": 0.5}', r"Unknown style profile fields \['strength'\]"),
    ('{"alpha": 0.5}', "needs 'styles'"),
    ('["a.png"]', "JSON object"),
    ('{"styles": [', "Expecting value"),  # json.JSONDecodeError is a ValueError
])
def test_style_profile_json_errors(text, match):
  with pytest.raises(ValueError, match=match):
    controls.StyleProfile.from_json(text)


def test_load_image_converts_resizes_and_crops(tmp_path):
  # RGBA: a transparent half and an opaque blue half -> white and blue.
  rgba = np.zeros((20, 20, 4), np.uint8)
  rgba[:, 10:] = (0, 0, 255, 255)
  Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
  image = controls.load_image(tmp_path / "rgba.png", 20)
  assert image.shape == (20, 20, 3) and image.dtype == np.float32
  np.testing.assert_array_equal(image[:, :10], 1.0)
  np.testing.assert_array_equal(image[:, 10:], np.broadcast_to([-1.0, -1.0, 1.0], (20, 10, 3)))
  # Grey -> three equal channels.
  Image.fromarray(np.full((8, 8), 51, np.uint8), "L").save(tmp_path / "grey.png")
  np.testing.assert_allclose(controls.load_image(str(tmp_path / "grey.png"), 8),
                             51 / 127.5 - 1, atol=1e-6)
  # 60 x 20 (w x h) red | green | blue bands: shorter side to 10 (30 x 10), centre crop = green.
  bands = np.zeros((20, 60, 3), np.uint8)
  bands[:, :20, 0], bands[:, 20:40, 1], bands[:, 40:, 2] = 255, 255, 255
  Image.fromarray(bands).save(tmp_path / "bands.png")
  image = controls.load_image(tmp_path / "bands.png", 10)
  assert image.shape == (10, 10, 3)
  np.testing.assert_allclose(image[:, 2:8], np.broadcast_to([-1.0, 1.0, -1.0], (10, 6, 3)),
                             atol=0.02)
  assert image.min() >= -1 and image.max() <= 1


def test_load_image_errors_name_the_path(tmp_path):
  missing = tmp_path / "nope.png"
  with pytest.raises(FileNotFoundError, match="nope.png"):
    controls.load_image(missing, 8)
  garbage = tmp_path / "garbage.jpg"
  garbage.write_bytes(b"not an image at all")
  with pytest.raises(ValueError, match="garbage.jpg"):
    controls.load_image(garbage, 8)
