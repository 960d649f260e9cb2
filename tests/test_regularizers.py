"""Gradient penalties on discriminators with known input gradients, and flax's SpectralNorm."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.losses import regularizers

SHAPE = (3, 4, 4, 2)


def _linear_d(w):
  """d(x) = sum(w * x) per example: input gradient w everywhere."""
  return lambda x: jnp.sum(w * x, axis=(1, 2, 3))


def _quadratic_d(x):
  """d(x) = 0.5 * sum(x^2) per example: input gradient x."""
  return 0.5 * jnp.sum(jnp.square(x), axis=(1, 2, 3))


def _random(seed, shape=SHAPE):
  return jax.random.normal(jax.random.PRNGKey(seed), shape)


def test_r1_of_linear_discriminator_is_squared_weight_norm():
  w = _random(0, SHAPE[1:])
  np.testing.assert_allclose(regularizers.r1_penalty(_linear_d(w), _random(1)), jnp.sum(w ** 2), rtol=1e-5)


def test_r1_of_quadratic_discriminator_is_mean_squared_image_norm():
  x = _random(2)
  expected = np.mean(np.sum(np.asarray(x) ** 2, axis=(1, 2, 3)))  # sum per example, mean over batch
  np.testing.assert_allclose(regularizers.r1_penalty(_quadratic_d, x), expected, rtol=1e-5)


def test_r1_gradient_reaches_closed_over_parameters():
  # R1 = ||w||^2, so dR1/dw = 2w (the penalty trains D through its input gradient).
  w, x = _random(3, SHAPE[1:]), _random(4)
  grad_w = jax.grad(lambda w: regularizers.r1_penalty(_linear_d(w), x))(w)
  np.testing.assert_allclose(grad_w, 2 * w, rtol=1e-5)


def test_r1_is_jittable():
  w, x = _random(5, SHAPE[1:]), _random(6)
  r1 = jax.jit(lambda w, x: regularizers.r1_penalty(_linear_d(w), x))(w, x)
  np.testing.assert_allclose(r1, jnp.sum(w ** 2), rtol=1e-5)


@pytest.mark.parametrize("scale", [0.05, 1.0, 3.0])
def test_gradient_penalty_of_linear_discriminator(scale):
  # The gradient is w at every interpolate, so GP = (||w|| - 1)^2 whatever eps is.
  w = _random(7, SHAPE[1:])
  w = scale * w / jnp.linalg.norm(w)
  gp = regularizers.gradient_penalty(_linear_d(w), _random(8), _random(9), jax.random.PRNGKey(0))
  np.testing.assert_allclose(gp, (scale - 1.0) ** 2, rtol=1e-4, atol=1e-7)


def test_gradient_penalty_gradient_reaches_closed_over_parameters():
  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||.
  w, real, fake = _random(10, SHAPE[1:]), _random(11), _random(12)
  grad_w = jax.grad(lambda w: regularizers.gradient_penalty(_linear_d(w), real, fake, jax.random.PRNGKey(1)))(w)
  norm = jnp.linalg.norm(w)
  np.testing.assert_allclose(grad_w, 2 * (norm - 1) * w / norm, rtol=1e-4)


def test_gradient_penalty_at_equal_real_and_fake_ignores_eps():
  # x_hat = x whatever eps; the quadratic D's gradient norm is ||x||.
  x = _random(13)
  norms = np.sqrt(np.sum(np.asarray(x) ** 2, axis=(1, 2, 3)))
  gp = regularizers.gradient_penalty(_quadratic_d, x, x, jax.random.PRNGKey(2))
  np.testing.assert_allclose(gp, np.mean((norms - 1) ** 2), rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_penalty_interpolates_with_one_uniform_eps_per_example(seed):
  # real = ones (norm 2 on 2x2x1), fake = 0: ||grad|| = ||x_hat|| = 2 eps, so GP = E[(2 eps - 1)^2],
  # which is 1/3 for eps ~ U(0, 1) per example (std of the mean over 4096 examples ~ 0.005).
  # One eps shared by the batch would give (2 eps - 1)^2, within 0.03 of 1/3 only ~5% of the time.
  real = jnp.ones((4096, 2, 2, 1))
  gp = regularizers.gradient_penalty(_quadratic_d, real, jnp.zeros_like(real), jax.random.PRNGKey(seed))
  np.testing.assert_allclose(gp, 1 / 3, atol=0.03)


def test_gradient_penalty_depends_on_key_and_is_deterministic():
  real, fake = _random(14), _random(15)
  gp = lambda seed: regularizers.gradient_penalty(_quadratic_d, real, fake, jax.random.PRNGKey(seed))
  assert gp(0) == gp(0)
  assert gp(0) != gp(1)


def test_gradient_penalty_is_finite_at_zero_gradient():
  # A constant D has zero input gradient: GP = 1, with a finite gradient w.r.t. its inputs.
  real, fake = _random(16), _random(17)
  gp, grad = jax.value_and_grad(
      lambda r: regularizers.gradient_penalty(lambda x: 0.0 * _quadratic_d(x), r, fake, jax.random.PRNGKey(0)))(real)
  np.testing.assert_allclose(gp, 1.0, rtol=1e-5)
  assert np.all(np.isfinite(grad))


def test_gradient_penalty_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match="shape"):
    regularizers.gradient_penalty(_quadratic_d, _random(0), _random(1, (2, 4, 4, 2)), jax.random.PRNGKey(0))


# --- flax's nn.SpectralNorm: state lives in "batch_stats" as "<layer>/kernel/u" and ".../sigma".

TOP_SINGULAR_VALUE = 3.0


def _known_kernel() -> np.ndarray:
  """A (4, 3) Dense kernel with singular values (3, 1.5, 0.5) from an explicit SVD."""
  rng = np.random.default_rng(0)
  u, _ = np.linalg.qr(rng.normal(size=(4, 4)))
  v, _ = np.linalg.qr(rng.normal(size=(3, 3)))
  return ((u[:, :3] * np.array([TOP_SINGULAR_VALUE, 1.5, 0.5])) @ v.T).astype(np.float32)


def _spectral_dense():
  module = nn.SpectralNorm(nn.Dense(3, use_bias=False))
  variables = module.init(jax.random.PRNGKey(0), jnp.eye(4), update_stats=False)
  # Set the kernel after init: flax's init stores the kernel already divided by the first sigma
  # estimate (map_variables writes the normalised params back), not the initializer's output.
  params = {"layer_instance": {"kernel": jnp.asarray(_known_kernel())}}
  return module, params, variables["batch_stats"]


def test_spectral_norm_converges_to_top_singular_value():
  module, params, state = _spectral_dense()
  assert set(state) == {"layer_instance/kernel/u", "layer_instance/kernel/sigma"}
  np.testing.assert_allclose(state["layer_instance/kernel/sigma"], 1.0)  # not yet estimated
  for _ in range(30):  # power iteration error shrinks by (1.5 / 3)^2 per application
    # With an identity input and no bias, the output is the normalised kernel itself.
    normalized, updates = module.apply({"params": params, "batch_stats": state}, jnp.eye(4),
                                       update_stats=True, mutable=["batch_stats"])
    state = updates["batch_stats"]
  np.testing.assert_allclose(state["layer_instance/kernel/sigma"], TOP_SINGULAR_VALUE, atol=1e-3)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(normalized), 2), 1.0, atol=1e-3)
  np.testing.assert_allclose(normalized, _known_kernel() / TOP_SINGULAR_VALUE, atol=1e-3)
  # u converges to the top right-singular vector (up to sign).
  _, _, vt = np.linalg.svd(_known_kernel())
  np.testing.assert_allclose(abs(float(np.dot(state["layer_instance/kernel/u"][0], vt[0]))), 1.0, atol=1e-3)


def test_spectral_norm_state_is_frozen_without_update_stats():
  module, params, state = _spectral_dense()
  apply = lambda state, update_stats: module.apply({"params": params, "batch_stats": state}, jnp.eye(4),
                                                   update_stats=update_stats, mutable=["batch_stats"])[1]
  # One update does change the state (so the equality below can fail) ...
  state = apply(state, True)["batch_stats"]
  assert not np.allclose(apply(state, True)["batch_stats"]["layer_instance/kernel/sigma"],
                         state["layer_instance/kernel/sigma"])
  # ... and update_stats=False returns it bit for bit.
  jax.tree_util.tree_map(np.testing.assert_array_equal, apply(state, False)["batch_stats"], state)


def test_spectral_norm_init_stores_a_rescaled_kernel():
  # flax quirk worth knowing when choosing an init scale: the kernel stored by init is the
  # initializer's output divided by the first (one-step, random-u) sigma estimate.
  kernel = jnp.asarray(_known_kernel())
  module = nn.SpectralNorm(nn.Dense(3, use_bias=False, kernel_init=lambda *_: kernel))
  variables = module.init(jax.random.PRNGKey(0), jnp.eye(4), update_stats=False)
  stored = np.asarray(variables["params"]["layer_instance"]["kernel"])
  ratio = np.asarray(kernel) / stored
  np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-4)  # proportional ...
  assert 1.0 < ratio.flat[0] <= TOP_SINGULAR_VALUE + 1e-4  # ... by a sigma estimate (<= true sigma)
