"""ResNet GAN: shapes, conditioning, projection maths, spectral norm, residual blocks, gradients.

Speed: on this CPU XLA takes seconds to compile random-number generation, so most tests fill the
variables of the real shapes from numpy (`_filled`) instead of calling `module.init`; the real
initialisation is exercised by the shape test, the parameter count and the conditional-norm test.
Applies are jitted once per (module, mode).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan import sampling
from gan.models import resnet

Z_DIM = 8
KEY = jax.random.key(0, impl="rbg")      # rbg compiles far faster than threefry on XLA:CPU


@functools.lru_cache(maxsize=None)
def _jitted(module, train, mutable=("batch_stats",)):
  """module.apply(variables, *args, train=train) jitted; in train mode also returns the `mutable` updates."""
  if train:
    return jax.jit(lambda variables, *args: module.apply(variables, *args, train=True, mutable=list(mutable)))
  return jax.jit(lambda variables, *args: module.apply(variables, *args, train=False))


def _train(module, variables, *args):
  return _jitted(module, True)(variables, *args)[0]


def _init(module, *args):
  return jax.jit(functools.partial(module.init, train=True))(KEY, *args)


def _filled(module, *args, seed=0):
  """Variables of `module.init(..., train=True)`'s shapes from numpy: kernels and tables ~ N(0, 1/fan_in),
  class / BN scales 1 + N(0, 0.3^2), other vectors N(0, 0.3^2); BN statistics 0 / 1, SN sigmas 1."""
  shapes = jax.eval_shape(functools.partial(module.init, train=True), KEY, *args)
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    keys = [getattr(p, "key", "") for p in path]
    name = keys[-1].rsplit("/", 1)[-1]          # spectral-norm stats are named "conv1/kernel/u"
    if name in ("mean",):
      return jnp.zeros(leaf.shape)
    if name in ("var", "sigma"):
      return jnp.ones(leaf.shape)
    noise = rng.standard_normal(leaf.shape)
    if "scale" in keys:
      return jnp.asarray(1.0 + 0.3 * noise, jnp.float32)
    if len(leaf.shape) >= 2:
      return jnp.asarray(noise / np.sqrt(np.prod(leaf.shape[:-1])), jnp.float32)
    return jnp.asarray(0.3 * noise, jnp.float32)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def _inputs(n, size, channels, num_classes=0, cond_dim=0, seed=0):
  """z (n, Z_DIM), images (n, size, size, channels) in [-1, 1], labels (n,) | None, cond | None."""
  rng = np.random.default_rng(seed)
  z = jnp.asarray(rng.standard_normal((n, Z_DIM)), jnp.float32)
  x = jnp.asarray(rng.uniform(-1.0, 1.0, (n, size, size, channels)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, num_classes, n), jnp.int32) if num_classes else None
  cond = jnp.asarray(rng.standard_normal((n, cond_dim)), jnp.float32) if cond_dim else None
  return z, x, labels, cond


# A class- and cond-conditional 32x32 pair shared by most tests.
G = resnet.Generator(image_size=32, channels=1, width=4, num_classes=3, cond_dim=2)
D = resnet.Discriminator(image_size=32, channels=1, width=4, num_classes=3, cond_dim=2)
Z, X, LABELS, COND = _inputs(4, 32, 1, num_classes=3, cond_dim=2)


@pytest.fixture(scope="module")
def g_vars():
  return _filled(G, Z, LABELS, COND)


@pytest.fixture(scope="module")
def d_vars():
  return _filled(D, X, LABELS, COND, seed=1)


@pytest.mark.parametrize("size,channels,num_classes,cond_dim,real_init",
                         [(32, 1, 0, 0, True), (64, 3, 3, 2, False)])
def test_shapes_ranges_and_eval_mode(size, channels, num_classes, cond_dim, real_init):
  g = resnet.Generator(image_size=size, channels=channels, width=4, num_classes=num_classes,
                       cond_dim=cond_dim)
  d = resnet.Discriminator(image_size=size, channels=channels, width=4, num_classes=num_classes,
                           cond_dim=cond_dim)
  z, x, labels, cond = _inputs(4, size, channels, num_classes, cond_dim)
  init = _init if real_init else _filled
  g_vars, d_vars = init(g, z, labels, cond), init(d, x, labels, cond)
  images, g_updates = _jitted(g, True)(g_vars, z, labels, cond)
  assert images.shape == (4, size, size, channels) and images.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(images))) <= 1.0 and float(jnp.std(images)) > 1e-3
  if real_init:   # eval mode (compiled once only, to save time) reads the running statistics, no rng
    eval_images = _jitted(g, False)({"params": g_vars["params"], **g_updates}, z, labels, cond)
    assert eval_images.shape == images.shape and bool(jnp.all(jnp.isfinite(eval_images)))
  logits, d_updates = _jitted(d, True)(d_vars, images, labels, cond)
  assert logits.shape == (4,) and logits.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(logits)))
  # The spectral-norm state is in batch_stats and the train pass returns all of it.
  assert jax.tree.structure(d_updates["batch_stats"]) == jax.tree.structure(d_vars["batch_stats"])
  # A u vector and a sigma per conv (3 per block, 3 or 4 blocks), psi, projection, cond projection.
  num_blocks = {32: 3, 64: 4}[size]
  num_sn_layers = 3 * num_blocks + 1 + bool(num_classes) + bool(cond_dim)
  assert len(jax.tree.leaves(d_vars["batch_stats"])) == 2 * num_sn_layers
  if real_init:
    eval_logits = _jitted(d, False)({"params": d_vars["params"], **d_updates}, images, labels, cond)
    assert eval_logits.shape == (4,) and bool(jnp.all(jnp.isfinite(eval_logits)))
  with pytest.raises(ValueError, match="expects images of shape"):
    d.apply(d_vars, images[:, :16], labels, cond, train=False)


def test_width_32_parameter_counts():
  count = lambda tree: sum(a.size for a in jax.tree.leaves(tree["params"]))
  g_vars = jax.eval_shape(functools.partial(resnet.Generator(width=32).init, train=True), KEY,
                          jnp.zeros((1, 100)))
  d_vars = jax.eval_shape(functools.partial(resnet.Discriminator(width=32).init, train=True), KEY,
                          jnp.zeros((1, 32, 32, 1)))
  # G: dense 100 -> 4*4*128 (no bias); blocks 128->128, 128->64, 64->32 (3x3 convs Cin->Cout, Cout->Cout
  # and a 1x1 shortcut, no biases; BN scale+offset over Cin and Cout); final BN(32), 3x3 conv 32->1 + bias.
  blocks = [(128, 128), (128, 64), (64, 32)]
  g_expected = (100 * 16 * 128 + sum(9 * i * o + 9 * o * o + i * o + 2 * i + 2 * o for i, o in blocks)
                + 2 * 32 + 9 * 32 + 1)
  # D: blocks 1->32, 32->64, 64->128 (the same three convs, with biases), psi Dense(128 -> 1).
  d_blocks = [(1, 32), (32, 64), (64, 128)]
  d_expected = sum(9 * i * o + 9 * o * o + i * o + 3 * o for i, o in d_blocks) + 128 + 1
  assert count(g_vars) == g_expected == 666017
  assert count(d_vars) == d_expected == 297057


def _max_diff(a, b):
  return float(jnp.max(jnp.abs(a - b)))


def test_labels_and_cond_change_conditional_outputs(g_vars, d_vars):
  other_labels = (LABELS + 1) % 3
  other_cond = COND + 1.0
  images = _train(G, g_vars, Z, LABELS, COND)
  assert _max_diff(images, _train(G, g_vars, Z, other_labels, COND)) > 1e-3
  assert _max_diff(images, _train(G, g_vars, Z, LABELS, other_cond)) > 1e-3
  logits = _train(D, d_vars, X, LABELS, COND)
  assert _max_diff(logits, _train(D, d_vars, X, other_labels, COND)) > 1e-3
  assert _max_diff(logits, _train(D, d_vars, X, LABELS, other_cond)) > 1e-3


def test_unconditional_models_ignore_labels_and_cond():
  g = resnet.Generator(image_size=32, channels=1, width=4)     # the models of the first shape test
  d = resnet.Discriminator(image_size=32, channels=1, width=4)
  g_vars, d_vars = _filled(g, Z), _filled(d, X)
  images = _train(g, g_vars, Z, None, None)
  logits = _train(d, d_vars, X, None, None)
  for labels, cond in [(LABELS, COND), ((LABELS + 1) % 3, COND + 1.0)]:
    np.testing.assert_array_equal(_train(g, g_vars, Z, labels, cond), images)
    np.testing.assert_array_equal(_train(d, d_vars, X, labels, cond), logits)


def test_missing_or_misshaped_conditioning_raises():
  for module, inp in [(resnet.Generator, Z), (resnet.Discriminator, X)]:
    with pytest.raises(ValueError, match="pass labels"):
      module(width=4, num_classes=3).init(KEY, inp, None, None, train=True)
    with pytest.raises(ValueError, match="pass cond"):
      module(width=4, cond_dim=2).init(KEY, inp, None, None, train=True)
    with pytest.raises(ValueError, match="pass cond"):
      module(width=4, num_classes=3, cond_dim=2).init(KEY, inp, LABELS, None, train=True)
    with pytest.raises(ValueError, match="expects cond of shape"):
      module(width=4, cond_dim=2).init(KEY, inp, None, COND[:, :1], train=True)


def test_projection_discriminator_adds_label_embedding_dot_features(d_vars):
  # Mirrors the DCGAN test in tests/test_models.py (no spectral norm: the embedding is used as is).
  d = D.clone(spectral_norm=False)
  params = d_vars["params"]
  embed = params["projection"]["embedding"]                  # (3, feature_dim)

  def logits(embedding, label):
    p = {**params, "projection": {"embedding": embedding}}
    return _train(d, {"params": p}, X, jnp.full(4, label, jnp.int32), COND)

  base = logits(jnp.zeros_like(embed), 0)                    # psi(h(x)) + <Dense(cond), h(x)> alone
  # logit(y=1) - logit(y=0) = <e1 - e0, h(x)>; the same inner product is what a zero embedding
  # with row 1 set to e1 - e0 adds to the rest.
  via_projection = logits(jnp.zeros_like(embed).at[1].set(embed[1] - embed[0]), 1) - base
  np.testing.assert_allclose(logits(embed, 1) - logits(embed, 0), via_projection, rtol=1e-4, atol=1e-4)
  assert float(jnp.max(jnp.abs(via_projection))) > 1e-3      # the label does matter


def _top_singular(matrix):
  _, s, vt = np.linalg.svd(np.asarray(matrix, np.float64))
  return s[0], vt[0]


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_projection_terms_equal_inner_products_with_features(d_vars, spectral_norm):
  """logit(y=1) - logit(y=0) = <E_1 - E_0, h>, logit(c) - logit(0) = <c W, h>; with spectral norm
  E and W are divided by their largest singular values."""
  d = D.clone(spectral_norm=spectral_norm)
  variables = {"params": d_vars["params"],
               "batch_stats": jax.tree.map(lambda a: a, d_vars["batch_stats"]) if spectral_norm else {}}
  embed = np.asarray(variables["params"]["projection"]["embedding"], np.float64)    # (3, C)
  kernel = np.asarray(variables["params"]["cond_projection"]["kernel"], np.float64)  # (2, C)
  if spectral_norm:
    # With u at the top right singular vector the power iteration is at its fixed point, so the layer
    # divides by the exact largest singular value.
    stats = variables["batch_stats"]
    sigma, v = _top_singular(embed)
    stats["projection_sn"]["projection/embedding/u"] = jnp.asarray(v[None], jnp.float32)
    embed = embed / sigma
    sigma, v = _top_singular(kernel)
    stats["cond_projection_sn"]["cond_projection/kernel/u"] = jnp.asarray(v[None], jnp.float32)
    kernel = kernel / sigma
  # Also capture the last block's output, to check h is its ReLU summed over positions.
  run = jax.jit(lambda v, labels, cond: d.apply(
      v, X, labels, cond, train=True, mutable=["batch_stats", "intermediates"],
      capture_intermediates=lambda m, _: m.name == "block3"))

  def logits_and_features(labels, cond):
    logits, state = run(variables, labels, cond)
    h = np.asarray(state["intermediates"]["features"][0], np.float64)
    return np.asarray(logits, np.float64), h, state["intermediates"]["block3"]["__call__"][0]

  zeros, ones = jnp.zeros(4, jnp.int32), jnp.ones(4, jnp.int32)
  logits0, h, last = logits_and_features(zeros, COND)
  assert last.shape == (4, 4, 4, 16)
  np.testing.assert_allclose(h, np.sum(np.maximum(np.asarray(last), 0.0), axis=(1, 2)), rtol=1e-5, atol=1e-5)
  logits1, h1, _ = logits_and_features(ones, COND)
  np.testing.assert_array_equal(h, h1)                       # features do not depend on the label
  np.testing.assert_allclose(logits1 - logits0, h @ (embed[1] - embed[0]), rtol=1e-4, atol=1e-4)
  logits_no_cond, _, _ = logits_and_features(zeros, jnp.zeros_like(COND))
  np.testing.assert_allclose(logits0 - logits_no_cond, np.sum((np.asarray(COND) @ kernel) * h, -1),
                             rtol=1e-4, atol=1e-4)
  assert np.max(np.abs(logits1 - logits0)) > 1e-3 and np.max(np.abs(logits0 - logits_no_cond)) > 1e-3


def test_spectral_norm_power_iteration_converges_to_unit_singular_value(d_vars):
  params = jax.tree.map(lambda p: 3.0 * p, d_vars["params"])    # largest singular values well above 1
  step = jax.jit(lambda stats: _jitted(D, True)({"params": params, "batch_stats": stats}, X, LABELS, COND)[1])
  stats = {"batch_stats": d_vars["batch_stats"]}
  for _ in range(30):                                          # one power iteration per train call
    stats = step(stats["batch_stats"])
  stats = stats["batch_stats"]
  for block, conv in [("block1", "conv1"), ("block2", "conv2"), ("block3", "conv1"), ("block3", "shortcut")]:
    kernel = np.asarray(params[block][conv]["kernel"], np.float64)
    matrix = kernel.reshape(-1, kernel.shape[-1])              # (k*k*Cin, Cout)
    sigma = float(stats[block][f"{conv}_sn"][f"{conv}/kernel/sigma"])
    assert np.linalg.svd(matrix, compute_uv=False)[0] > 2.0    # normalisation has something to do
    np.testing.assert_allclose(np.linalg.svd(matrix / sigma, compute_uv=False)[0], 1.0, rtol=1e-3)


@pytest.mark.parametrize("spectral_norm", [True, False])
def test_spectral_norm_makes_logits_invariant_to_weight_scale(d_vars, spectral_norm):
  d = D.clone(spectral_norm=spectral_norm)
  variables = {"params": d_vars["params"], "batch_stats": d_vars["batch_stats"] if spectral_norm else {}}
  scaled = jax.tree.map(lambda p: p * 7.0 if p.ndim >= 2 else p, variables["params"])  # kernels, tables
  logits = _train(d, variables, X, LABELS, COND)
  logits_scaled = _train(d, {**variables, "params": scaled}, X, LABELS, COND)
  if spectral_norm:
    np.testing.assert_allclose(logits_scaled, logits, rtol=1e-4, atol=1e-4)
  else:
    assert _max_diff(logits_scaled, logits) > 1e-2


def _upsample_np(x):
  return np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)


def _avgpool_np(x):
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def test_generator_block_with_zero_residual_branch_is_upsampled_1x1_conv():
  block = resnet.GBlock(6, num_classes=3, cond_dim=2)
  x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 4, 4, 5)), jnp.float32)
  variables = _filled(block, x, LABELS, COND)
  out = np.asarray(_train(block, variables, x, LABELS, COND))
  w = np.asarray(variables["params"]["shortcut"]["kernel"])[0, 0]     # (5, 6)
  shortcut = _upsample_np(np.asarray(x)) @ w
  assert out.shape == (4, 8, 8, 6) and np.max(np.abs(out - shortcut)) > 1e-2
  params = {**variables["params"],
            "conv2": {"kernel": jnp.zeros_like(variables["params"]["conv2"]["kernel"])}}
  out = _train(block, {**variables, "params": params}, x, LABELS, COND)
  np.testing.assert_allclose(out, shortcut, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("optimized,downsample,features",
                         [(True, True, 6), (False, True, 5), (False, False, 6), (False, False, 5)])
def test_discriminator_block_with_zero_residual_branch_is_its_shortcut(optimized, downsample, features):
  block = resnet.DBlock(features, optimized=optimized, downsample=downsample, spectral_norm=False)
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 8, 8, 5)), jnp.float32)
  variables = _filled(block, x)
  out = np.asarray(_jitted(block, False)(variables, x))
  s = _avgpool_np(np.asarray(x)) if downsample else np.asarray(x)
  # A learnt 1x1 shortcut when the size or the width changes, else the identity.
  assert ("shortcut" in variables["params"]) == (downsample or features != 5)
  if "shortcut" in variables["params"]:
    s = s @ np.asarray(variables["params"]["shortcut"]["kernel"])[0, 0] + np.asarray(
        variables["params"]["shortcut"]["bias"])
  assert out.shape == s.shape and np.max(np.abs(out - s)) > 1e-2
  params = {**variables["params"], "conv2": jax.tree.map(jnp.zeros_like, variables["params"]["conv2"])}
  np.testing.assert_allclose(_jitted(block, False)({"params": params}, x), s, rtol=1e-5, atol=1e-5)


def test_conditional_norm_matches_hand_computed_scale_and_offset():
  norm = resnet.ConditionalNorm(num_classes=3, cond_dim=2)
  rng = np.random.default_rng(0)
  x = jnp.asarray(2.0 + 3.0 * rng.standard_normal((4, 2, 2, 5)), jnp.float32)
  variables = _init(norm, x, LABELS, jnp.zeros_like(COND))
  xn = np.asarray(x, np.float64)
  x_hat = (xn - xn.mean((0, 1, 2))) / np.sqrt(xn.var((0, 1, 2)) + 1e-5)
  # At initialisation the scale is 1 and the offset 0 for every class and cond = 0.
  np.testing.assert_allclose(_train(norm, variables, x, LABELS, jnp.zeros_like(COND)), x_hat, atol=1e-4)
  params = jax.tree.map(lambda p: p + 0.5 * rng.standard_normal(p.shape), variables["params"])
  out = _train(norm, {"params": params, "batch_stats": variables["batch_stats"]}, x, LABELS, COND)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  delta = np.asarray(COND, np.float64) @ p["cond_scale_offset"]["kernel"] + p["cond_scale_offset"]["bias"]
  gamma = p["scale"]["embedding"][np.asarray(LABELS)] + delta[:, :5]
  beta = p["offset"]["embedding"][np.asarray(LABELS)] + delta[:, 5:]
  np.testing.assert_allclose(out, x_hat * gamma[:, None, None] + beta[:, None, None], rtol=1e-4, atol=1e-4)


def test_discriminator_gradient_reaches_every_generator_parameter(g_vars, d_vars):
  def d_logit_sum(g_params):
    images = G.apply({"params": g_params, "batch_stats": g_vars["batch_stats"]}, Z, LABELS, COND,
                     train=True, mutable=["batch_stats"])[0]
    logits = D.apply(d_vars, images, LABELS, COND, train=True, mutable=["batch_stats"])[0]
    return jnp.sum(logits)

  grads = jax.jit(jax.grad(d_logit_sum))(g_vars["params"])
  for path, grad in jax.tree_util.tree_leaves_with_path(grads):
    assert bool(jnp.all(jnp.isfinite(grad))), path
    assert float(jnp.max(jnp.abs(grad))) > 0.0, path


def test_mixed_precision_keeps_float32_params_and_outputs(g_vars, d_vars):
  g16, d16 = G.clone(dtype=jnp.bfloat16), D.clone(dtype=jnp.bfloat16)
  shapes = jax.eval_shape(functools.partial(g16.init, train=True), KEY, Z, LABELS, COND)
  assert {a.dtype for a in jax.tree.leaves(shapes)} == {jnp.dtype(jnp.float32)}
  images = _train(g16, g_vars, Z, LABELS, COND)
  logits = _train(d16, d_vars, images, LABELS, COND)
  assert images.dtype == jnp.float32 and logits.dtype == jnp.float32
  # The same weights in float32: bfloat16 only perturbs the values.
  np.testing.assert_allclose(images, _train(G, g_vars, Z, LABELS, COND), atol=0.1)
  np.testing.assert_allclose(logits, _train(D, d_vars, images, LABELS, COND), rtol=0.1, atol=0.1)


def test_standing_stats_work_with_the_resnet_generator():
  g = resnet.Generator(image_size=32, channels=1, width=4)
  variables = _filled(g, Z)
  key = jax.random.key(5, impl="rbg")
  standing_stats = jax.jit(functools.partial(sampling.standing_batch_stats, g, num=256, z_dim=Z_DIM,
                                             num_classes=0))
  stats = standing_stats(variables["params"], variables["batch_stats"], key)
  # The first BN sees the dense layer's output (no bias): recompute its mean/variance by hand.
  z_all = jax.random.normal(jax.random.split(key)[0], (256, Z_DIM))
  h = (z_all @ variables["params"]["dense"]["kernel"]).reshape(256, 4, 4, -1)
  bn = stats["block1"]["bn1"]["BatchNorm_0"]
  np.testing.assert_allclose(bn["mean"], h.mean((0, 1, 2)), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(bn["var"], h.var((0, 1, 2)), rtol=1e-3, atol=1e-5)
