"""StyleGAN2: modulated conv against per-sample kernels, mapping / truncation / w_avg maths, style
mixing and noise plumbing, conditioning, and the minibatch-std feature against numpy."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gan.models import layers
from gan.models import stylegan

W_DIM = 8
N, Z_DIM, NUM_CLASSES, COND_DIM = 4, 6, 3, 5


def _normal(seed, shape):
  # Test inputs from numpy: jax.random would compile a sampler per shape.
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _key(seed):
  # unsafe_rbg keys compile much faster on CPU than threefry; the model does not care which it gets.
  return jax.random.key(seed, impl="unsafe_rbg")


def _set_noise_strength(params, value):
  flat = flax.traverse_util.flatten_dict(params)
  flat = {k: (jnp.full_like(v, value) if k[-1] == "noise_strength" else v) for k, v in flat.items()}
  return flax.traverse_util.unflatten_dict(flat)


# One conditional 32x32 generator / discriminator shared by most tests: eager ops are compiled once
# per shape and reused, which keeps the file fast. Variants use g.clone(...) with the same params.
@pytest.fixture(scope="module")
def g32():
  g = stylegan.Generator(image_size=32, channels=1, width=4, w_dim=W_DIM, num_classes=NUM_CLASSES,
                         cond_dim=COND_DIM)
  z = _normal(0, (N, Z_DIM))
  labels = jnp.array([0, 1, 2, 0])
  cond = _normal(7, (N, COND_DIM))
  variables = g.init(_key(1), z, labels, cond, train=True)
  return g, variables, z, labels, cond


@pytest.fixture(scope="module")
def d32(g32):
  g, g_vars, z, labels, cond = g32
  d = stylegan.Discriminator(image_size=32, channels=1, width=4, num_classes=NUM_CLASSES, cond_dim=COND_DIM)
  images = g.apply(g_vars, z, labels, cond, train=False)
  return d, d.init(_key(2), images, labels, cond, train=True), images


def test_shapes_ranges_and_gradients_32(g32, d32):
  g, g_vars, z, labels, cond = g32
  d, d_vars, _ = d32
  assert g.num_ws == 8
  images, updates = g.apply(g_vars, z, labels, cond, train=True, mutable=["batch_stats"],
                            rngs={"noise": _key(3)})
  assert images.shape == (N, 32, 32, 1) and images.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(images))) <= 1.0 and float(jnp.std(images)) > 0.05   # tanh, not constant
  assert updates["batch_stats"]["mapping_network"]["w_avg"].shape == (W_DIM,)
  assert "batch_stats" not in d_vars                                                   # no batch norm
  logits = d.apply(d_vars, images, labels, cond, train=True)
  assert logits.shape == (N,) and logits.dtype == jnp.float32

  target = _normal(3, images.shape)

  def g_loss(params):
    return jnp.sum(g.apply({**g_vars, "params": params}, z, labels, cond, train=False) * target)

  grads = jax.jit(jax.grad(g_loss))(g_vars["params"])
  for name in ("mapping_network", "synthesis_network"):       # the gradient reaches both halves
    norm = sum(float(jnp.sum(x ** 2)) for x in jax.tree_util.tree_leaves(grads[name]))
    assert np.isfinite(norm) and norm > 0


def test_shapes_and_ranges_64_rgb():
  g = stylegan.Generator(image_size=64, channels=3, width=4, w_dim=W_DIM)
  d = stylegan.Discriminator(image_size=64, channels=3, width=4)
  z = _normal(0, (2, Z_DIM))
  assert g.num_ws == 10
  # One jit compiles faster here than op-by-op dispatch of a model with all-new shapes.
  images, g_vars = jax.jit(lambda key: g.init_with_output(key, z, train=False))(_key(1))
  assert images.shape == (2, 64, 64, 3) and images.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(images))) <= 1.0 and float(jnp.std(images)) > 0.05
  assert g_vars["params"]["synthesis_network"]["const"].shape == (4, 4, 16)   # 4 * width cap
  logits, d_vars = d.init_with_output(_key(2), images, train=True)
  assert logits.shape == (2,) and bool(jnp.all(jnp.isfinite(logits)))
  with pytest.raises(ValueError, match="expects images of shape"):
    d.apply(d_vars, images[..., :1], train=True)


def test_bfloat16_computation_keeps_float32_params_and_outputs(g32, d32):
  g, g_vars, z, labels, cond = g32
  d, d_vars, images = d32
  # Shapes and dtypes only (eval_shape compiles nothing).
  out = jax.eval_shape(lambda v: g.clone(dtype=jnp.bfloat16).apply(v, z, labels, cond, train=False), g_vars)
  assert out.dtype == jnp.float32 and out.shape == (N, 32, 32, 1)
  params = jax.eval_shape(lambda k: g.clone(dtype=jnp.bfloat16).init(k, z, labels, cond, train=True), _key(0))
  assert {x.dtype for x in jax.tree_util.tree_leaves(params)} == {jnp.dtype(jnp.float32)}
  logits = jax.eval_shape(lambda v: d.clone(dtype=jnp.bfloat16).apply(v, images, labels, cond, train=True), d_vars)
  assert logits.dtype == jnp.float32


def _reference_modulated_conv(x, weight, styles, demodulate):
  """One conv per sample with its own kernel w * s_n, demodulated per output channel."""
  outputs = []
  for n in range(x.shape[0]):
    w = weight * styles[n][None, None, :, None]
    if demodulate:
      w = w / jnp.sqrt(jnp.sum(w ** 2, axis=(0, 1, 2), keepdims=True) + 1e-8)
    outputs.append(lax.conv_general_dilated(x[n:n + 1], w, (1, 1), "SAME",
                                            dimension_numbers=layers.DIMENSION_NUMBERS))
  return jnp.concatenate(outputs)


@pytest.mark.parametrize("k,demodulate", [(3, True), (3, False), (1, False)])
def test_modulated_conv_equals_per_sample_kernel(k, demodulate):
  x, weight, styles = _normal(0, (3, 6, 6, 5)), _normal(1, (k, k, 5, 4)) * 0.3, _normal(2, (3, 5)) + 1.0
  out = stylegan.modulated_conv(x, weight, styles, demodulate=demodulate)
  ref = _reference_modulated_conv(x, weight, styles, demodulate)
  np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
  # The styles really are per sample: swapping two samples' styles changes the output.
  swapped = stylegan.modulated_conv(x, weight, styles[jnp.array([1, 0, 2])], demodulate=demodulate)
  assert float(jnp.max(jnp.abs(swapped[0] - out[0]))) > 1e-2


def test_demodulation_gives_unit_std_output():
  x, weight = _normal(0, (4, 40, 40, 16)), _normal(1, (3, 3, 16, 8))
  styles = jnp.exp(_normal(2, (4, 16)))                          # very unequal scales per sample
  inner = (slice(None), slice(1, -1), slice(1, -1))              # skip the zero-padded border
  std = jnp.std(stylegan.modulated_conv(x, weight, styles)[inner], axis=(1, 2))   # (N, O)
  np.testing.assert_allclose(std, 1.0, atol=0.1)
  raw = jnp.std(stylegan.modulated_conv(x, weight, styles, demodulate=False)[inner], axis=(1, 2))
  assert float(jnp.min(jnp.abs(raw - 1.0))) > 0.5                # without demodulation it is not


def test_bilinear_upsample_matches_jax_image_resize_and_names_are_checked():
  x = _normal(0, (2, 5, 3, 2))
  np.testing.assert_allclose(stylegan.upsample_bilinear(x), jax.image.resize(x, (2, 10, 6, 2), "bilinear"),
                             atol=1e-6)
  np.testing.assert_array_equal(stylegan.upsample_nearest(x)[:, 3, 5], x[:, 1, 2])
  with pytest.raises(ValueError, match="valid names: \\['bilinear', 'nearest'\\]"):
    stylegan.Generator(upsample="cubic").init(_key(0), jnp.zeros((1, 2)), train=False)


def _map(g, variables, z, labels, cond, **kwargs):
  return g.apply(variables, z, labels, cond, method=g.mapping, **kwargs)


def _with_w_avg(variables, w_avg):
  return {**variables, "batch_stats": {"mapping_network": {"w_avg": w_avg}}}


def test_mapping_matches_a_numpy_reference(g32):
  g, variables, z, labels, cond = g32
  p = jax.tree_util.tree_map(np.asarray, variables["params"]["mapping_network"])
  norm = lambda v: v / np.sqrt(np.mean(v ** 2, -1, keepdims=True) + 1e-8)
  embedded_cond = np.asarray(cond) @ p["cond_embed"]["kernel"] / np.sqrt(COND_DIM) + p["cond_embed"]["bias"]
  x = np.concatenate([norm(np.asarray(z)), norm(p["class_embed"][np.asarray(labels)]), norm(embedded_cond)], -1)
  for i in range(4):                        # equalized lr with a 0.01 learning-rate multiplier
    fc = p[f"fc{i}"]
    x = x @ fc["kernel"] * (0.01 / np.sqrt(x.shape[-1])) + fc["bias"] * 0.01
    x = np.where(x > 0, x, 0.2 * x) * np.sqrt(2)
  np.testing.assert_allclose(_map(g, variables, z, labels, cond, train=False), x, rtol=1e-4, atol=1e-5)
  assert np.std(x, axis=0).mean() > 0.1     # w actually varies with z


def test_truncation(g32):
  g, variables, z, labels, cond = g32
  avg = _normal(9, (W_DIM,))
  variables = _with_w_avg(variables, avg)
  w = _map(g, variables, z, labels, cond, train=False, psi=1.0)
  assert float(jnp.min(jnp.linalg.norm(w - avg, axis=-1))) > 0.1
  # psi = 0: every z maps to w_avg; psi = 1 equals the untruncated (training-mode) w.
  np.testing.assert_allclose(_map(g, variables, z, labels, cond, train=False, psi=0.0),
                             jnp.broadcast_to(avg, w.shape), atol=1e-6)
  untruncated, _ = _map(g, variables, z, labels, cond, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(w, untruncated, rtol=1e-6, atol=1e-6)
  # In eval mode the default psi is truncation_psi; psi may also be a traced value.
  g7 = g.clone(truncation_psi=0.7)
  np.testing.assert_allclose(_map(g7, variables, z, labels, cond, train=False), avg + 0.7 * (w - avg),
                             rtol=1e-5, atol=1e-5)
  traced = jax.jit(lambda psi: _map(g, variables, z, labels, cond, train=False, psi=psi))(jnp.float32(0.3))
  np.testing.assert_allclose(traced, avg + 0.3 * (w - avg), rtol=1e-5, atol=1e-5)
  assert stylegan.w_avg(variables) is avg


def test_w_avg_is_updated_only_in_training(g32):
  g, variables, z, labels, cond = g32
  g = g.clone(w_avg_beta=0.9)
  np.testing.assert_array_equal(stylegan.w_avg(variables), 0.0)      # init does not update it
  old = _normal(9, (W_DIM,))
  variables = _with_w_avg(variables, old)
  w, updates = _map(g, variables, z, labels, cond, train=True, mutable=["batch_stats"])
  expected = 0.9 * old + 0.1 * jnp.mean(w, axis=0)
  assert float(jnp.max(jnp.abs(expected - old))) > 1e-3
  np.testing.assert_allclose(stylegan.w_avg(updates), expected, rtol=1e-5, atol=1e-6)
  _, updates = _map(g, variables, z, labels, cond, train=False, mutable=["batch_stats"])
  np.testing.assert_array_equal(stylegan.w_avg(updates), old)
  # Through __call__ with style mixing on, only the main z's w enters the average.
  _, updates = g.clone(style_mixing_prob=1.0).apply(variables, z, labels, cond, train=True,
                                                    mutable=["batch_stats"], rngs={"noise": _key(4)})
  np.testing.assert_allclose(stylegan.w_avg(updates), expected, rtol=1e-5, atol=1e-6)


def test_synthesis_of_broadcast_w_equals_call_without_mixing(g32):
  g, variables, z, labels, cond = g32
  g = g.clone(style_mixing_prob=1.0)
  w = _map(g, variables, z, labels, cond, train=False)
  ws = jnp.broadcast_to(w[:, None], (N, g.num_ws, W_DIM))
  images = g.apply(variables, ws, method=g.synthesis, train=False)
  np.testing.assert_allclose(images, g.apply(variables, z, labels, cond, train=False), atol=1e-6)
  # train=True without an rng: no mixing, no noise, deterministic.
  train_images, _ = g.apply(variables, z, labels, cond, train=True, mutable=["batch_stats"])
  again, _ = g.apply(variables, z, labels, cond, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(train_images, images, atol=1e-6)
  np.testing.assert_array_equal(train_images, again)
  # Every slot of W+ is used: changing the first or the last one changes the image.
  for i in (0, g.num_ws - 1):
    changed = g.apply(variables, ws.at[:, i].set(-ws[:, i]), method=g.synthesis, train=False)
    assert float(jnp.max(jnp.abs(changed - images))) > 1e-4, i
  with pytest.raises(ValueError, match="ws of shape"):
    g.apply(variables, ws[:, :-1], method=g.synthesis, train=False)


def test_style_mixing(g32):
  g, variables, z, labels, cond = g32
  # Noise strengths start at zero, so with an rng any change comes from mixing, not noise.
  assert all(float(jnp.max(jnp.abs(v))) == 0 for k, v in flax.traverse_util.flatten_dict(
      variables["params"]).items() if k[-1] == "noise_strength")
  plain = g.apply(variables, z, labels, cond, train=False)
  run = lambda prob: g.clone(style_mixing_prob=prob).apply(variables, z, labels, cond, train=True,
                                                           mutable=["batch_stats"], rngs={"noise": _key(5)})[0]
  assert float(jnp.max(jnp.abs(run(1.0) - plain))) > 1e-3
  np.testing.assert_allclose(run(0.0), plain, atol=1e-6)      # same rng, probability 0: no change


def test_noise_inputs(g32):
  g, variables, z, labels, cond = g32
  noisy = {**variables, "params": _set_noise_strength(variables["params"], 0.5)}
  run = lambda seed: g.apply(noisy, z, labels, cond, train=False, rngs={"noise": _key(seed)})
  first = run(0)
  assert float(jnp.max(jnp.abs(first - run(1)))) > 1e-3
  np.testing.assert_array_equal(first, run(0))
  # Without an rng the noise is zero: the output equals the zero-strength model's.
  np.testing.assert_allclose(g.apply(noisy, z, labels, cond, train=False),
                             g.apply(variables, z, labels, cond, train=False), atol=1e-6)


def test_generator_conditioning(g32):
  g, variables, z, labels, cond = g32
  base = g.apply(variables, z, labels, cond, train=False)
  other_labels = g.apply(variables, z, (labels + 1) % NUM_CLASSES, cond, train=False)
  assert float(jnp.min(jnp.max(jnp.abs(other_labels - base), axis=(1, 2, 3)))) > 1e-3
  other_cond = g.apply(variables, z, labels, -cond, train=False)
  assert float(jnp.min(jnp.max(jnp.abs(other_cond - base), axis=(1, 2, 3)))) > 1e-3
  with pytest.raises(ValueError, match="pass labels"):
    g.apply(variables, z, None, cond, train=False)
  with pytest.raises(ValueError, match="pass cond"):
    g.apply(variables, z, labels, None, train=False)


def test_discriminator_projection(d32):
  d, variables, x = d32
  params = variables["params"]
  table = params["class_projection"]

  def logits(tab, label, cond):
    return d.apply({"params": {**params, "class_projection": tab}}, x, jnp.full(N, label, jnp.int32), cond,
                   train=True)

  c0 = jnp.zeros((N, COND_DIM))
  # logit(y=1) - logit(y=0) = <e1 - e0, h> / sqrt(C): what a table with row 1 = e1 - e0 adds.
  via_projection = logits(jnp.zeros_like(table).at[1].set(table[1] - table[0]), 1, c0) - logits(
      jnp.zeros_like(table), 0, c0)
  np.testing.assert_allclose(logits(table, 1, c0) - logits(table, 0, c0), via_projection, rtol=1e-4, atol=1e-4)
  assert float(jnp.min(jnp.abs(via_projection))) > 1e-4
  # The cond term <Dense(cond), h> / sqrt(C) is linear in cond and not zero.
  c1, c2 = _normal(2, (2, N, COND_DIM))
  f = lambda c: logits(table, 0, c) - logits(table, 0, c0)
  np.testing.assert_allclose(f(c1 + 2 * c2), f(c1) + 2 * f(c2), rtol=1e-4, atol=1e-4)
  assert float(jnp.min(jnp.abs(f(c1)))) > 1e-4
  labels = jnp.zeros(N, jnp.int32)
  with pytest.raises(ValueError, match="pass labels"):
    d.apply(variables, x, None, c0, train=True)
  with pytest.raises(ValueError, match="pass cond"):
    d.apply(variables, x, labels, None, train=True)


@pytest.mark.parametrize("n,expected_group", [(8, 4), (6, 3), (5, 1), (2, 2)])
def test_minibatch_stddev_matches_numpy(n, expected_group):
  scale = np.arange(1, n + 1, dtype=np.float32)[:, None, None, None]      # unequal spread per sample
  x = np.random.default_rng(0).normal(size=(n, 3, 2, 5)).astype(np.float32) * scale
  out = np.asarray(stylegan.minibatch_stddev(jnp.asarray(x), group_size=4))
  assert out.shape == (n, 3, 2, 6)
  np.testing.assert_array_equal(out[..., :5], x)
  groups = n // expected_group
  for i in range(n):
    members = x[[i % groups + k * groups for k in range(expected_group)]].astype(np.float64)
    std = np.sqrt(np.mean((members - members.mean(0)) ** 2, axis=0) + 1e-8).mean()
    np.testing.assert_allclose(out[i, ..., 5], std, rtol=1e-5)
