"""Gram / style / content / TV / AdaIN losses against hand-computed values and numpy references."""

import jax.numpy as jnp
import numpy as np
import pytest

from gan.losses import style


def np_gram(f):
  n, h, w, c = f.shape
  f = f.reshape(n, h * w, c).astype(np.float64)
  return np.einsum("npc,npd->ncd", f, f) / (h * w)


def np_mean_std(f, eps):
  mean = f.mean(axis=(1, 2), keepdims=True)
  return mean, np.sqrt(f.var(axis=(1, 2), keepdims=True) + eps)


def random_features(seed, shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_gram_matrix_of_a_hand_made_2x2x2_map():
  # Positions (row-major) hold the channel pairs (1, 2), (0, 1), (3, 0), (1, 1).
  f = jnp.array([[[[1.0, 2.0], [0.0, 1.0]], [[3.0, 0.0], [1.0, 1.0]]]])  # (1, 2, 2, 2)
  # G00 = (1 + 0 + 9 + 1) / 4, G01 = (2 + 0 + 0 + 1) / 4, G11 = (4 + 1 + 0 + 1) / 4.
  expected = np.array([[[11 / 4, 3 / 4], [3 / 4, 6 / 4]]])
  np.testing.assert_allclose(style.gram_matrix(f), expected, rtol=1e-6)


def test_gram_matrix_does_not_depend_on_image_size():
  # Tiling a map repeats every outer product: same mean, same Gram (normalised by h * w).
  f = random_features(0, (1, 3, 4, 5))
  tiled = np.tile(f, (1, 2, 3, 1))
  np.testing.assert_allclose(style.gram_matrix(tiled), style.gram_matrix(f), rtol=1e-5)


def test_style_loss_is_zero_for_identical_inputs_and_matches_numpy():
  a = {"l1": random_features(1, (2, 4, 4, 3)), "l2": random_features(2, (2, 2, 2, 5))}
  b = {"l1": random_features(3, (1, 6, 5, 3)), "l2": random_features(4, (1, 3, 3, 5))}
  weights = {"l1": 0.3, "l2": 2.0}
  assert float(style.style_loss(a, a, weights)) == 0.0
  # Targets of another size and batch 1: their Grams are broadcast over the two images.
  expected = sum(w * np.mean((np_gram(a[l]) - np_gram(b[l])) ** 2) for l, w in weights.items())
  np.testing.assert_allclose(style.style_loss(a, b, weights), expected, rtol=1e-5)
  # Precomputed Gram targets, (1, C, C) and (C, C), give the same value.
  grams = {"l1": np_gram(b["l1"]), "l2": np_gram(b["l2"])[0]}
  np.testing.assert_allclose(style.style_loss(a, grams, weights), expected, rtol=1e-5)
  # Default weights: 1 per layer.
  np.testing.assert_allclose(
      style.style_loss(a, b),
      sum(np.mean((np_gram(a[l]) - np_gram(b[l])) ** 2) for l in a), rtol=1e-5)


def test_losses_reject_unknown_layers():
  a = {"l1": random_features(1, (1, 2, 2, 3))}
  with pytest.raises(ValueError, match="l9"):
    style.style_loss(a, a, {"l9": 1.0})
  with pytest.raises(ValueError, match="targets"):
    style.content_loss(a, {"other": a["l1"]})


def test_content_loss_and_total_variation_by_hand():
  a = {"x": jnp.array([[[[1.0], [2.0]]]]), "y": jnp.zeros((1, 1, 1, 2))}
  b = {"x": jnp.array([[[[0.0], [4.0]]]]), "y": jnp.ones((1, 1, 1, 2))}
  # x: mean(1, 4) = 2.5; y: mean(1, 1) = 1.
  assert float(style.content_loss(a, b, {"x": 2.0, "y": 0.5})) == pytest.approx(5.5)
  assert float(style.content_loss(a["x"], b["x"])) == pytest.approx(2.5)
  image = jnp.array([[[0.0], [1.0]], [[3.0], [5.0]]])  # (2, 2, 1)
  # Vertical: (3 - 0)^2, (5 - 1)^2 -> 12.5; horizontal: (1 - 0)^2, (5 - 3)^2 -> 2.5.
  assert float(style.total_variation(image)) == pytest.approx(15.0)
  assert float(style.total_variation(image[None])) == pytest.approx(15.0)
  assert float(style.total_variation(jnp.full((1, 4, 4, 3), 0.7))) == 0.0


def test_mean_std_matches_numpy():
  f = random_features(5, (2, 3, 4, 6)) * 3 + 1
  mean, std = style.mean_std(f, eps=1e-3)
  np_mean, np_std = np_mean_std(f.astype(np.float64), 1e-3)
  assert mean.shape == std.shape == (2, 1, 1, 6)
  np.testing.assert_allclose(mean, np_mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(std, np_std, rtol=1e-5)


def test_adain_output_has_the_style_statistics():
  content = random_features(6, (2, 5, 5, 4)) * 2.0 - 1.0
  style_f = random_features(7, (2, 3, 7, 4)) * np.array([0.5, 1.0, 3.0, 0.1]) + np.array(
      [1.0, -2.0, 0.0, 4.0])
  out = np.asarray(style.adain(content, style_f, eps=0.0), np.float64)
  out_mean, out_std = np_mean_std(out, 0.0)
  s_mean, s_std = np_mean_std(style_f.astype(np.float64), 0.0)
  np.testing.assert_allclose(out_mean, s_mean, atol=1e-5)
  np.testing.assert_allclose(out_std, s_std, atol=1e-5)
  # With eps: the style's mean, and variance (var_s + eps) * var_c / (var_c + eps).
  eps = 1e-2
  out = np.asarray(style.adain(content, style_f, eps=eps), np.float64)
  var_c, var_s = content.var((1, 2), keepdims=True), style_f.var((1, 2), keepdims=True)
  np.testing.assert_allclose(out.mean((1, 2), keepdims=True), s_mean, atol=1e-5)
  np.testing.assert_allclose(out.var((1, 2), keepdims=True),
                             (var_s + eps) * var_c / (var_c + eps), rtol=1e-5)
  # The normalised content is kept: AdaIN is affine per channel with positive slope.
  c = (content - content.mean((1, 2), keepdims=True)) / content.std((1, 2), keepdims=True)
  o = (out - out.mean((1, 2), keepdims=True)) / out.std((1, 2), keepdims=True)
  np.testing.assert_allclose(o, c, atol=1e-4)


def test_mean_std_loss_matches_numpy_and_accepts_precomputed_statistics():
  a = {"l1": random_features(8, (1, 4, 4, 3)), "l2": random_features(9, (1, 2, 2, 5)) + 2}
  b = {"l1": random_features(10, (1, 5, 3, 3)) * 2, "l2": random_features(11, (1, 3, 3, 5))}
  weights = {"l1": 1.0, "l2": 0.5}
  assert float(style.mean_std_loss(a, a, weights)) == 0.0
  expected = 0.0
  for layer, w in weights.items():
    (ma, sa), (mb, sb) = np_mean_std(a[layer], 1e-5), np_mean_std(b[layer], 1e-5)
    expected += w * (np.mean((ma - mb) ** 2) + np.mean((sa - sb) ** 2))
  np.testing.assert_allclose(style.mean_std_loss(a, b, weights), expected, rtol=1e-5)
  stats = {layer: style.mean_std(f) for layer, f in b.items()}
  np.testing.assert_allclose(style.mean_std_loss(a, stats, weights), expected, rtol=1e-5)


def test_blended_targets_are_the_weighted_mean():
  grams = [{"l1": np_gram(random_features(k, (1, 3, 3, 4)))} for k in range(3)]
  blended = style.blend_statistics(grams, [0.5, 0.2, 0.3])
  expected = 0.5 * grams[0]["l1"] + 0.2 * grams[1]["l1"] + 0.3 * grams[2]["l1"]
  np.testing.assert_allclose(blended["l1"], expected, rtol=1e-6)
  # (mean, std) pairs blend leaf by leaf; None means equal weights.
  stats = [{"l1": style.mean_std(random_features(k, (1, 3, 3, 4)))} for k in range(2)]
  mean, std = style.blend_statistics(stats)["l1"]
  np.testing.assert_allclose(mean, (stats[0]["l1"][0] + stats[1]["l1"][0]) / 2, rtol=1e-6)
  np.testing.assert_allclose(std, (stats[0]["l1"][1] + stats[1]["l1"][1]) / 2, rtol=1e-6)


@pytest.mark.parametrize("weights,match", [([0.5, 0.6], "sum to 1"), ([0.5], "1 style weights"),
                                           ([1.5, -0.5], ">= 0"), ([np.nan, 1.0], "finite")])
def test_blend_weights_are_validated(weights, match):
  with pytest.raises(ValueError, match=match):
    style.blend_statistics([{"l": np.eye(2)}, {"l": np.eye(2)}], weights)
