"""Latent directions and edits: PCA against numpy's eigendecomposition, probes recover planted
directions, conditional (orthogonalized) directions leave held probe scores unchanged, strength-0
edits are the identity, layer ranges, style mixing and category interpolation, and edit reports
against hand-computed numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan import attributes
from gan.editing import directions
from gan.editing import edits
from gan.editing import inversion
from gan.metrics import classifier as classifier_lib
from gan.models import stylegan

D = 12


def _key(seed):
  return jax.random.key(seed, impl="unsafe_rbg")


def _correlated_ws(n=4000, seed=0):
  """w with a known anisotropic covariance (a random rotation of variances 10, 5, 2, 1, ...)."""
  rng = np.random.default_rng(seed)
  rotation, _ = np.linalg.qr(rng.normal(size=(D, D)))
  stds = np.sqrt(np.array([10.0, 5.0, 2.0] + [1.0] * (D - 3)) * np.linspace(1.0, 0.5, D))
  return rng.normal(size=(n, D)) * stds @ rotation.T + 3.0, rng


def test_pca_is_orthonormal_ordered_and_matches_numpy():
  ws, _ = _correlated_ws()
  pca = directions.fit_pca(ws, num_components=5)
  np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(5), atol=1e-10)
  assert np.all(np.diff(pca.variances) < 0)
  eigenvalues, eigenvectors = np.linalg.eigh(np.cov(ws, rowvar=False))
  order = np.argsort(eigenvalues)[::-1][:5]
  np.testing.assert_allclose(pca.variances, eigenvalues[order], rtol=1e-8)
  # Same axes up to sign (eigh's sign is arbitrary; fit_pca fixes its own).
  np.testing.assert_allclose(np.abs(np.sum(pca.components * eigenvectors[:, order].T, axis=1)), 1.0, atol=1e-8)
  np.testing.assert_allclose(pca.explained, eigenvalues[order] / eigenvalues.sum(), rtol=1e-8)
  found = directions.pca_directions(pca, num=2, layers=(0, 4))
  assert [d.name for d in found] == ["pc0@0-4", "pc1@0-4"]
  assert found[0].scale == pytest.approx(np.std((ws - ws.mean(0)) @ found[0].vector, ddof=1), rel=1e-8)
  with pytest.raises(ValueError, match="num_components must be in"):
    directions.fit_pca(ws, num_components=D + 1)


def test_probes_recover_planted_directions():
  ws, rng = _correlated_ws()
  planted = rng.normal(size=D)
  planted /= np.linalg.norm(planted)
  y = ws @ planted * 0.7 + 1.5 + 0.05 * rng.normal(size=len(ws))
  probe = directions.fit_linear_probe(ws, y, "brightness")
  assert probe.kind == "linear" and probe.quality > 0.99
  np.testing.assert_allclose(probe.weight, 0.7 * planted, atol=0.01)
  direction = directions.probe_direction(probe, ws)
  assert direction.vector @ planted > 0.999
  assert direction.scale == pytest.approx(np.std(ws @ direction.vector), rel=1e-10)

  labels = (ws @ planted + 0.3 * rng.normal(size=len(ws)) > np.median(ws @ planted)).astype(int)
  logistic = directions.fit_logistic_probe(ws, labels, "handbag")
  assert logistic.kind == "logistic" and logistic.quality > 0.9
  assert directions.probe_direction(logistic, ws).vector @ planted > 0.98
  # Scores are logits: positive on the label-1 side.
  assert np.mean((logistic.scores(ws) > 0) == labels) > 0.9
  with pytest.raises(ValueError, match="needs both labels"):
    directions.fit_logistic_probe(ws, np.zeros(len(ws)), "nothing")


def test_conditional_direction_keeps_held_probe_scores():
  ws, rng = _correlated_ws()
  # Correlated attributes: the naive size direction also moves brightness and class.
  a, b, c = rng.normal(size=(3, D))
  b = b + 0.8 * a
  c = c - 0.5 * a
  size = directions.fit_linear_probe(ws, ws @ a, "size")
  brightness = directions.fit_linear_probe(ws, ws @ b, "brightness")
  handbag = directions.fit_logistic_probe(ws, (ws @ c > np.median(ws @ c)).astype(int), "handbag")
  held = [brightness, handbag]
  conditional = directions.conditional_direction(size, held, ws)
  naive = directions.probe_direction(size, ws)
  assert conditional.name == "size|brightness,handbag"
  for probe in held:
    assert abs(conditional.vector @ probe.weight) < 1e-10 * np.linalg.norm(probe.weight)

  ws_plus = inversion.broadcast_w(jnp.asarray(ws[:64], jnp.float32), 6)
  for direction in (conditional, naive):
    edited = np.asarray(edits.apply_direction(ws_plus, direction, 2.0))
    changes = {p.name: np.abs(p.scores(edited) - p.scores(ws_plus)).max() for p in held + [size]}
    if direction is conditional:
      tolerance = 1e-4 * np.abs(brightness.scores(ws)).std()
      assert changes["brightness"] < tolerance and changes["handbag"] < 1e-4
    else:   # without the projection the held scores do move: the test above can fail
      assert changes["brightness"] > 0.1 * np.abs(brightness.scores(ws)).std()
    assert changes["size"] > 0.5 * np.std(size.scores(ws))
  with pytest.raises(ValueError, match="lies in the span"):
    directions.orthogonalize(a + b, np.stack([a, b]))


@pytest.fixture(scope="module")
def tiny():
  g = stylegan.Generator(image_size=16, channels=3, width=4, w_dim=8, num_classes=2)
  variables = jax.jit(lambda key: g.init(key, jnp.zeros((2, 8)), jnp.zeros((2,), jnp.int32), train=False))(_key(0))
  z = jnp.asarray(np.random.default_rng(1).normal(size=(3, 8)), jnp.float32)
  return g, variables, z


def test_strength_zero_edits_are_the_identity_and_layer_ranges_hold(tiny):
  g, variables, z = tiny
  ws_a = edits.category_ws(g, variables, z, jnp.array([0, 0, 0]))
  ws_b = edits.category_ws(g, variables, z, jnp.array([1, 1, 1]))
  direction = directions.Direction("d", np.linspace(-1, 1, 8) / np.linalg.norm(np.linspace(-1, 1, 8)), 1.7, (2, 5))
  images = inversion.render(g, variables, ws_a, "w+")
  for edit in (edits.direction_edit(direction), edits.mix_edit(ws_b, (0, 3)), lambda ws, t: edits.interpolate(ws, ws_b, t)):
    edited = edit(ws_a, 0.0)
    np.testing.assert_array_equal(edited, ws_a)
    np.testing.assert_array_equal(inversion.render(g, variables, edited, "w+"), images)
  # The direction moves only layers 2..4 (of num_ws = 6), by strength * scale.
  moved = np.asarray(edits.apply_direction(ws_a, direction, jnp.array([1.0, -2.0, 0.5])))
  delta = moved - np.asarray(ws_a)
  np.testing.assert_array_equal(delta[:, [0, 1, 5]], 0.0)
  np.testing.assert_allclose(delta[1, 3], -2.0 * 1.7 * direction.vector, rtol=1e-5)
  # Full style mixing on a range swaps exactly those layers; interpolation at 1 gives b.
  mixed = np.asarray(edits.style_mix(ws_a, ws_b, (0, 3), 1.0))
  np.testing.assert_array_equal(mixed[:, :3], ws_b[:, :3])
  np.testing.assert_array_equal(mixed[:, 3:], ws_a[:, 3:])
  np.testing.assert_array_equal(edits.interpolate(ws_a, ws_b, 1.0), ws_b)
  # Category interpolation ends at the generator's own image of class b.
  class_b = jax.jit(lambda v, z, y: g.apply(v, z, y, train=False))(variables, z, jnp.array([1, 1, 1]))
  np.testing.assert_allclose(inversion.render(g, variables, edits.interpolate(ws_a, ws_b, 1.0), "w+"), class_b, atol=1e-5)
  with pytest.raises(ValueError, match="layers must be a range"):
    edits.apply_direction(ws_a, direction._replace(layers=(5, 9)), 1.0)
  with pytest.raises(ValueError, match="W\\+ latents"):
    edits.apply_direction(ws_a[:, 0], direction, 1.0)


def test_measure_and_edit_report_by_hand():
  # A red square on white: size 64/256, dominant colour red; then a blue one of a quarter the size.
  images = np.full((2, 16, 16, 3), 255, np.uint8)
  images[0, 4:12, 4:12] = (210, 30, 35)
  images[1, 6:10, 6:10] = (35, 80, 200)
  as_float = images.astype(np.float32) / 127.5 - 1.0
  model = classifier_lib.Classifier(num_classes=2, width=4)
  variables = jax.jit(lambda key: model.init(key, jnp.zeros((1, 16, 16, 3)), train=False))(_key(0))
  classifier = edits.DomainClassifier(model, variables, ("shoe", "handbag"), 16)
  m = edits.measure(as_float, classifier)
  np.testing.assert_allclose(m["size"], [64 / 256, 16 / 256])
  np.testing.assert_array_equal(m["color=red"], [1, 0])
  np.testing.assert_array_equal(m["color=blue"], [0, 1])
  np.testing.assert_allclose(m["p(shoe)"] + m["p(handbag)"], 1.0, rtol=1e-6)
  direct = attributes.attribute_vectors(attributes.measure(images))
  np.testing.assert_allclose(m["brightness"], direct[:, 0], rtol=1e-6)

  before = {"size": np.array([0.2, 0.4]), "brightness": np.array([0.5, 0.5]),
            "color=red": np.array([1.0, 0.0]), "color=blue": np.array([0.0, 1.0]),
            "p(shoe)": np.array([0.9, 0.2]), "p(handbag)": np.array([0.1, 0.8])}
  after = {"size": np.array([0.3, 0.6]), "brightness": np.array([0.45, 0.6]),
           "color=red": np.array([1.0, 1.0]), "color=blue": np.array([0.0, 0.0]),
           "p(shoe)": np.array([0.3, 0.2]), "p(handbag)": np.array([0.7, 0.8])}
  report = edits.edit_report(before, after, "size")
  assert report["target_change"] == pytest.approx(0.15)
  assert report["target_before"] == pytest.approx(0.3) and report["target_after"] == pytest.approx(0.45)
  assert report["other_changes"] == {"brightness": pytest.approx(0.075)}
  assert report["max_other_change"] == ["brightness", pytest.approx(0.075)]
  assert report["dominant_color_changed"] == 0.5
  assert report["class_prob_change"] == pytest.approx(0.3)     # (0.6 + 0) / 2 images
  assert report["class_flip_rate"] == 0.5
  with pytest.raises(ValueError, match="Unknown target 'hue'"):
    edits.edit_report(before, after, "hue")
