"""LPIPS (gan.metrics.lpips).

Without weights or data: random params from the modules' init, checked against a float64 numpy
re-implementation of the LPIPS formula, hand-computed values, shapes and gradients. With the
pretrained weights (`python -m gan.weights fetch lpips`) and the paper's example images
(../shared/data/lpips_examples): the published LPIPS-Alex v0.1 values.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REAL_DATA_DIR
from gan import weights
from gan.metrics import lpips
from gan.style import vgg

# LPIPS's ScalingLayer constants, written out again so a changed constant in the module fails here.
SHIFT = np.array([-.030, -.088, -.188])
SCALE = np.array([.458, .448, .450])


def numpy_lpips(taps_a, taps_b, lin) -> np.ndarray:
  """The reference formula in float64: x / (sqrt(sum x^2) + 1e-10), squared difference, weighted
  channel sum, spatial mean, sum over taps. (N,) per image."""
  total = 0.0
  for a, b, w in zip(taps_a, taps_b, lin):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na = a / (np.sqrt(np.sum(a ** 2, -1, keepdims=True)) + 1e-10)
    nb = b / (np.sqrt(np.sum(b ** 2, -1, keepdims=True)) + 1e-10)
    total = total + np.mean(((na - nb) ** 2) @ np.asarray(w, np.float64), axis=(1, 2))
  return total


@functools.cache
def random_model(net: str) -> lpips.LpipsModel:
  return lpips.init(net, jax.random.key(0))


def images(seed: int, n: int = 2, size: int = 32, channels: int = 3) -> np.ndarray:
  return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype(np.float32)


def test_from_features_hand_computed():
  # Tap 0, two positions: [3, 4] vs a zero vector -> normalised [.6, .8] vs [0, 0], weighted by
  # [1, 2]: .36 + 1.28 = 1.64; the second position is identical (0): mean .82. Tap 1: b = 2a, and
  # LPIPS is blind to the scale of a feature vector: 0.
  a0 = jnp.array([[[[3., 4.], [1., 1.]]]])             # (1, 1, 2, 2)
  b0 = jnp.array([[[[0., 0.], [1., 1.]]]])
  a1 = jnp.array([[[[1., 2., 3.]]]])
  d = lpips.from_features([a0, a1], [b0, 2 * a1], [jnp.array([1., 2.]), jnp.ones(3)])
  np.testing.assert_allclose(d, [0.82], rtol=1e-6)


def test_from_features_matches_numpy_formula():
  rng = np.random.default_rng(1)
  shapes = [(3, 8, 8, 4), (3, 4, 4, 6), (3, 2, 2, 5)]
  taps_a = [np.maximum(rng.normal(size=s), 0).astype(np.float32) for s in shapes]
  taps_b = [np.maximum(rng.normal(size=s), 0).astype(np.float32) for s in shapes]
  taps_a[0][0, :3] = 0                                     # zero feature vectors, as after a ReLU
  taps_b[0][0, :2] = 0
  lin = [rng.uniform(0, 1, s[-1]).astype(np.float32) for s in shapes]
  np.testing.assert_allclose(lpips.from_features(taps_a, taps_b, lin), numpy_lpips(taps_a, taps_b, lin),
                             rtol=1e-5)


@pytest.mark.parametrize("net", lpips.NETS)
def test_distance_is_the_formula_on_the_backbone_taps(net):
  model = random_model(net)
  a, b = images(2), images(3)
  taps = [jax.jit(functools.partial(lpips.backbone_taps, net))(model.params["features"],
                                                              jnp.asarray((x - SHIFT) / SCALE, jnp.float32))
          for x in (a, b)]
  expected = numpy_lpips(taps[0], taps[1], model.params["lin"])
  d = lpips.distance(model, a, b)
  assert d.shape == (2,) and d.dtype == jnp.float32
  np.testing.assert_allclose(d, expected, rtol=1e-5)


@pytest.mark.parametrize("net", lpips.NETS)
def test_identity_symmetry_and_grayscale(net):
  model = random_model(net)
  a, b = images(4), images(5)
  np.testing.assert_allclose(lpips.distance(model, a, a), [0, 0], atol=1e-7)
  d = lpips.distance(model, a, b)
  assert np.all(d > 1e-3)
  np.testing.assert_allclose(lpips.distance(model, b, a), d, rtol=1e-6)
  gray_a, gray_b = a[..., :1], b[..., :1]
  np.testing.assert_allclose(lpips.distance(model, gray_a, gray_b),
                             lpips.distance(model, np.repeat(gray_a, 3, -1), np.repeat(gray_b, 3, -1)), rtol=1e-6)


@pytest.mark.parametrize("net", lpips.NETS)
def test_min_size_is_the_smallest_with_a_nonempty_last_tap(net):
  model, m = random_model(net), lpips.MIN_SIZE[net]
  last_tap = lambda size: jax.eval_shape(functools.partial(lpips.backbone_taps, net), model.params["features"],
                                         jnp.zeros((1, size, size, 3)))[-1].shape
  assert last_tap(m)[1] == 1
  if net == "alex":
    assert last_tap(m - 1)[1] == 0
  else:   # gan.style.vgg refuses an empty tap outright
    with pytest.raises(ValueError, match=f"too small for VGG16 layer 'relu5_3'.*at least {m}x{m}"):
      last_tap(m - 1)
  assert np.isfinite(lpips.distance(model, images(6, 1, m), images(7, 1, m))).all()
  with pytest.raises(ValueError, match=f"at least {m}"):
    lpips.distance(model, images(6, 1, m - 1), images(7, 1, m - 1))
  with pytest.raises(ValueError, match=f"at least {m}"):      # one side too short is enough
    lpips.distance(model, images(6, 1, 64)[:, :m - 1], images(7, 1, 64)[:, :m - 1])


def test_bad_shapes_raise():
  model = random_model("alex")
  with pytest.raises(ValueError, match="same shape"):
    lpips.distance(model, images(0), images(1, n=3))
  with pytest.raises(ValueError, match="batch axis"):
    lpips.distance(model, images(0)[0], images(1)[0])
  with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
    lpips.distance(model, images(0, channels=2), images(1, channels=2))
  with pytest.raises(ValueError, match="Unknown LPIPS net"):
    lpips.init("resnet", jax.random.key(0))


def test_normalize_equals_reference_forward_and_has_finite_gradients_at_zero():
  x = jnp.array([[3., 4.], [0., 0.], [1e-3, 0.], [2., -1.]])
  naive = x / (jnp.sqrt(jnp.sum(x ** 2, -1, keepdims=True)) + 1e-10)
  np.testing.assert_array_equal(lpips.normalize(x), naive)
  jacobian = jax.jacobian(lambda v: lpips.normalize(v[None])[0])
  assert np.isfinite(jacobian(jnp.zeros(2))).all()
  naive_jacobian = jax.jacobian(lambda v: v / (jnp.sqrt(jnp.sum(v ** 2)) + 1e-10))(jnp.zeros(2))
  assert np.isnan(naive_jacobian).any()      # what the safe norm avoids


@pytest.mark.parametrize("net", lpips.NETS)
def test_gradients_are_finite_where_all_features_are_zero(net):
  # With init's zero biases, an image equal to SHIFT becomes 0 after scaling and every feature
  # vector of every tap is exactly 0: sqrt's derivative there is infinite.
  model = random_model(net)
  zero = np.broadcast_to(SHIFT.astype(np.float32), (2, 32, 32, 3))
  taps = jax.jit(functools.partial(lpips.backbone_taps, net))(model.params["features"], jnp.zeros(zero.shape))
  assert all(float(jnp.max(jnp.abs(t))) == 0.0 for t in taps)
  other = np.stack([zero[0], images(8, 1)[0]])
  grad = jax.grad(lambda a, b: lpips.loss(model, a, b), argnums=(0, 1))
  for a, b in ((zero, zero), (zero, other), (other, zero)):
    assert all(np.isfinite(g).all() for g in grad(jnp.asarray(a), jnp.asarray(b)))
  assert float(jnp.abs(grad(jnp.asarray(other), jnp.asarray(zero))[0][1]).max()) > 0


def test_loss_is_the_mean_distance_with_the_right_gradient_under_jit():
  model = random_model("alex")
  a, b = jnp.asarray(images(9)), jnp.asarray(images(10))
  value, grad = jax.jit(jax.value_and_grad(lambda x: lpips.loss(model, x, b)))(a)
  np.testing.assert_allclose(value, np.mean(lpips.distance(model, a, b)), rtol=1e-6)
  # Central difference along the gradient: a random direction is nearly orthogonal to it, and its
  # small derivative drowns in float32 rounding and ReLU kinks.
  norm = jnp.linalg.norm(grad)
  step = 1e-2 * grad / norm
  numeric = (lpips.loss(model, a + step, b) - lpips.loss(model, a - step, b)) / 2e-2
  np.testing.assert_allclose(numeric, norm, rtol=1e-2)


def test_mean_distance_over_batches():
  model = random_model("alex")
  a, b = images(12, n=5), images(13, n=5)
  np.testing.assert_allclose(lpips.mean_distance(model, a, b, batch_size=2),
                             np.mean(lpips.distance(model, a, b)), rtol=1e-6)


def test_vgg_backbone_is_gan_style_vgg16_tapped_after_each_block():
  # The VGG16 itself (layer table, pretrained values) is tested in test_vgg.py; here: LPIPS uses it
  # unpreprocessed, at the last ReLU of each block, and creates no conv after conv5_3.
  assert isinstance(lpips.VGG16, vgg.VGG) and lpips.VGG16.depth == 16 and lpips.VGG16.preprocessing is None
  assert lpips.LPIPS_VGG_TAPS == ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
  features = random_model("vgg").params["features"]
  params = features["params"]
  assert list(params) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
                          "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]
  assert [p["kernel"].shape[-1] for p in params.values()] == [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6
  x = jnp.asarray(images(15, size=32))
  taps = jax.jit(functools.partial(lpips.backbone_taps, "vgg"))(features, x)
  assert [t.shape for t in taps] == [(2, 32, 32, 64), (2, 16, 16, 128), (2, 8, 8, 256), (2, 4, 4, 512),
                                     (2, 2, 2, 512)]
  # The input is not normalised again: the first tap is relu(conv(relu(conv(x)))) of x itself.
  conv = lambda v, p: jax.lax.conv_general_dilated(v, p["kernel"], (1, 1), "SAME", precision="highest",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC")) + p["bias"]
  relu1_2 = jax.nn.relu(conv(jax.nn.relu(conv(x, params["conv1_1"])), params["conv1_2"]))
  np.testing.assert_allclose(taps[0], relu1_2, rtol=1e-5, atol=1e-5 * float(jnp.abs(relu1_2).max()))


def test_missing_weights_say_how_to_fetch(tmp_path, monkeypatch):
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(tmp_path))
  for net in lpips.NETS:
    with pytest.raises(weights.MissingWeightsError, match="python -m gan.weights fetch lpips"):
      lpips.load(net)


# --------------------------------------------------------------------- pretrained weights


@functools.cache
def _pretrained(net: str) -> lpips.LpipsModel:
  return lpips.load(net)


@pytest.fixture(params=lpips.NETS)
def pretrained(request) -> lpips.LpipsModel:
  try:
    return _pretrained(request.param)
  except weights.MissingWeightsError:
    pytest.skip(f"LPIPS-{request.param} weights not found in {weights.weights_dir()}: fetch them with "
                "`python -m gan.weights fetch lpips` (or set PRODUCTGAN_WEIGHTS_DIR)")


@pytest.fixture(scope="module")
def paper_examples() -> dict[str, np.ndarray]:
  """ex_ref, ex_p0, ex_p1 of the LPIPS repository, (1, 64, 64, 3) float32 in [-1, 1]."""
  from PIL import Image
  folder = REAL_DATA_DIR / "lpips_examples"
  names = ("ex_ref", "ex_p0", "ex_p1")
  if not all((folder / f"{n}.png").is_file() for n in names):
    pytest.skip(f"LPIPS example images not found in {folder} (set PRODUCTGAN_DATA_DIR to the folder "
                "holding lpips_examples/)")
  return {n: np.asarray(Image.open(folder / f"{n}.png").convert("RGB"), np.float32)[None] / 127.5 - 1
          for n in names}


@pytest.mark.real_data
def test_paper_examples(pretrained, paper_examples):
  ex = paper_examples
  d = lpips.distance(pretrained, np.concatenate([ex["ex_ref"]] * 2), np.concatenate([ex["ex_p0"], ex["ex_p1"]]))
  if pretrained.net == "alex":
    # The published LPIPS v0.1 AlexNet values (richzhang/PerceptualSimilarity README / test_network.py).
    assert [round(float(v), 3) for v in d] == [0.722, 0.138], d
  else:
    # No published value: a float64 numpy VGG16 + LPIPS written from the torchvision cfg gave
    # 0.568613 and 0.421664 with the same weights.
    np.testing.assert_allclose(d, [0.568613, 0.421664], atol=2e-5)


def test_pretrained_identity_and_finite_gradients(pretrained):
  a, b = images(14, size=64), np.full((2, 64, 64, 3), -1, np.float32)
  np.testing.assert_allclose(lpips.distance(pretrained, a, a), [0, 0], atol=1e-6)
  grad = jax.grad(lambda x: lpips.loss(pretrained, x, b))(jnp.asarray(a))
  assert np.isfinite(grad).all() and float(jnp.abs(grad).max()) > 0


def test_enhancement_metrics_report_lpips_when_fetched(monkeypatch):
  """gan.editing.enhance_train.evaluate adds "lpips_alex" exactly when the weights are there."""
  from gan.editing import enhance_train
  rng = np.random.default_rng(0)
  outputs, targets = (rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32) for _ in range(2))
  model = lpips.init("alex", jax.random.key(0))
  monkeypatch.setattr(lpips, "available", lambda net="alex": True)
  monkeypatch.setattr(lpips, "cached", lambda net="alex": model)
  result = enhance_train.evaluate(outputs, targets)
  np.testing.assert_allclose(result["lpips_alex"], np.mean(lpips.distance(model, outputs, targets)), rtol=1e-5)
  assert "lpips_alex" not in enhance_train.evaluate(outputs[:, :16, :16], targets[:, :16, :16])  # < 31 px
  monkeypatch.setattr(lpips, "available", lambda net="alex": False)
  assert set(enhance_train.evaluate(outputs, targets)) == {"psnr", "ssim"}
