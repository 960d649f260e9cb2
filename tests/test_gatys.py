"""Gatys optimisation with a tiny stand-in extractor: convergence, identities, blending, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.losses import style as style_losses
from gan.style import gatys
from gan.style.features import FeatureExtractor


def standin_extractor(seed: int = 0, widths=(8, 16)) -> FeatureExtractor:
  """Fixed random 3x3 conv + relu, then 2x2 average pool, twice (He-scaled weights)."""
  rng = np.random.default_rng(seed)
  kernels, cin = [], 3
  for c in widths:
    kernels.append(jnp.asarray(rng.normal(0, (2 / (9 * cin)) ** 0.5, (3, 3, cin, c)), jnp.float32))
    cin = c

  def apply(images, layers):
    out, x = {}, images
    for i, kernel in enumerate(kernels, 1):
      x = jax.nn.relu(jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC")))
      out[f"conv{i}"] = x
      n, h, w, c = x.shape  # odd sizes: the last row / column is dropped, as VALID pooling
      x = x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).mean((2, 4))
      out[f"pool{i}"] = x
    return {layer: out[layer] for layer in layers}

  return FeatureExtractor("standin", ("conv1", "pool1", "conv2", "pool2"), apply, ("conv2",),
                          ("conv1", "conv2"))


EXTRACTOR = standin_extractor()
_yy, _xx = np.mgrid[0:16, 0:16] / 16
# A smooth content image and a noisy style: very different Grams.
CONTENT = (0.8 * np.stack([np.sin(6 * _xx), np.cos(4 * _yy), _xx - _yy], -1)).astype(np.float32)
STYLE = np.random.default_rng(0).uniform(-1, 1, (12, 12, 3)).astype(np.float32)
STYLE2 = np.random.default_rng(1).uniform(-0.2, 0.6, (16, 16, 3)).astype(np.float32)


@pytest.mark.parametrize("optimizer,learning_rate", [("adam", 0.05), ("lbfgs", 0.0)])
def test_total_loss_drops_by_a_large_factor(optimizer, learning_rate):
  result = gatys.stylize(CONTENT, [STYLE], EXTRACTOR, steps=60, optimizer=optimizer,
                         learning_rate=learning_rate, tv_weight=0.1)
  h = result.history
  assert set(h) == {"content", "style", "tv", "total", "scale"}
  assert h["total"].shape == (60,)
  np.testing.assert_allclose(h["total"], h["content"] + h["style"] + h["tv"], rtol=1e-5)
  assert h["total"][-1] < h["total"][0] / 20, h["total"][[0, -1]]
  # The style term is what falls: content starts at 0 from init="content".
  assert h["style"][-1] < h["style"][0] / 20
  assert result.image.shape == (16, 16, 3) and result.image.dtype == np.float32
  assert np.all(np.abs(result.image) <= 1.0)
  assert np.abs(result.image - CONTENT).mean() > 0.05  # the image changed
  assert result.seconds > 0


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_without_style_the_content_image_is_kept(optimizer):
  # Zero gradient at the content image: both optimisers must stay there (no NaN from L-BFGS).
  result = gatys.stylize(CONTENT[None], [STYLE], EXTRACTOR, steps=5, style_weight=0.0,
                         optimizer=optimizer)
  np.testing.assert_allclose(result.image, CONTENT, atol=1e-6)
  assert np.all(result.history["total"] == 0.0)


def test_noise_init_is_seeded_and_reaches_the_style():
  kwargs = dict(steps=40, init="noise", content_weight=0.0, learning_rate=0.05)
  a = gatys.stylize(CONTENT, [STYLE], EXTRACTOR, seed=3, **kwargs)
  b = gatys.stylize(CONTENT, [STYLE], EXTRACTOR, seed=3, **kwargs)
  c = gatys.stylize(CONTENT, [STYLE], EXTRACTOR, seed=4, **kwargs)
  np.testing.assert_array_equal(a.image, b.image)
  assert not np.allclose(a.image, c.image)
  assert a.history["style"][-1] < a.history["style"][0] / 10


def test_multi_scale_starts_the_full_scale_from_the_upsampled_result():
  kwargs = dict(steps=30, learning_rate=0.05)
  single = gatys.stylize(CONTENT, [STYLE], EXTRACTOR, **kwargs)
  multi = gatys.stylize(CONTENT, [STYLE], EXTRACTOR, scales=(0.5, 1.0), **kwargs)
  assert multi.image.shape == (16, 16, 3)
  np.testing.assert_array_equal(multi.history["scale"], [0.5] * 30 + [1.0] * 30)
  # The half-scale result is already stylized: the full scale starts far below the content init.
  assert multi.history["total"][30] < single.history["total"][0] / 3
  assert np.all(np.abs(multi.image) <= 1.0)


def test_style_targets_blend_the_grams_and_weights_select_a_style():
  layers = ("conv1", "conv2")
  blended = gatys.style_targets([STYLE, STYLE2], EXTRACTOR, layers, [0.25, 0.75])
  for layer in layers:
    grams = [style_losses.gram_matrix(EXTRACTOR.apply(jnp.asarray(s)[None], [layer])[layer])
             for s in (STYLE, STYLE2)]
    np.testing.assert_allclose(blended[layer], 0.25 * grams[0] + 0.75 * grams[1], rtol=1e-5)
  kwargs = dict(steps=10, learning_rate=0.05)
  only_first = gatys.stylize(CONTENT, [STYLE, STYLE2], EXTRACTOR, style_weights=[1.0, 0.0],
                             **kwargs)
  first = gatys.stylize(CONTENT, [STYLE], EXTRACTOR, **kwargs)
  both = gatys.stylize(CONTENT, [STYLE, STYLE2], EXTRACTOR, style_weights=[0.5, 0.5], **kwargs)
  np.testing.assert_allclose(only_first.image, first.image, atol=1e-6)
  assert np.abs(both.image - first.image).max() > 1e-3


@pytest.mark.parametrize("kwargs,match", [
    (dict(style_layers=("conv1", "relu9")), r"relu9.*valid: conv1, pool1, conv2, pool2"),
    (dict(content_layers=("fc7",)), "Unknown content layers"),
    (dict(layer_weights={"pool2": 1.0}), "not style layers"),
    (dict(optimizer="sgd"), "valid: adam, lbfgs"),
    (dict(init="zeros"), "valid: content, noise"),
    (dict(scales=(1.0, 0.5)), "increasing"),
    (dict(style_weights=[0.7]), "weights for 2 styles"),
])
def test_invalid_arguments_raise(kwargs, match):
  with pytest.raises(ValueError, match=match):
    gatys.stylize(CONTENT, [STYLE, STYLE2], EXTRACTOR, steps=1, **kwargs)
