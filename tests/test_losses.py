"""Adversarial losses against hand-computed values and gradient signs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan.losses import adversarial

REAL = jnp.array([2.0, -1.0])
FAKE = jnp.array([0.5, -3.0])


def softplus(x):
  return math.log1p(math.exp(x))


def test_non_saturating_values():
  # D: -log sigmoid(r) - log(1 - sigmoid(f)) = softplus(-r) + softplus(f), averaged.
  expected_d = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
  np.testing.assert_allclose(adversarial.non_saturating_d(REAL, FAKE), expected_d, rtol=1e-6)
  expected_g = (softplus(-0.5) + softplus(3.0)) / 2
  np.testing.assert_allclose(adversarial.non_saturating_g(REAL, FAKE), expected_g, rtol=1e-6)
  # At logits 0 (D undecided) the D loss is 2 log 2.
  np.testing.assert_allclose(adversarial.non_saturating_d(jnp.zeros(3), jnp.zeros(3)), 2 * math.log(2), rtol=1e-6)


def test_hinge_values():
  # max(0, 1 - r): (0 + 2) / 2 = 1;  max(0, 1 + f): (1.5 + 0) / 2 = 0.75.
  np.testing.assert_allclose(adversarial.hinge_d(REAL, FAKE), 1.75, rtol=1e-6)
  np.testing.assert_allclose(adversarial.hinge_g(REAL, FAKE), 1.25, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(adversarial.LOSSES))
def test_gradient_signs(name):
  loss = adversarial.get(name)
  real, fake = jnp.array([0.3, -0.2]), jnp.array([0.1, -0.4])
  d_real, d_fake = jax.grad(loss.discriminator, (0, 1))(real, fake)
  # Descending the D loss raises real logits and lowers fake ones; the G loss raises fake logits.
  assert np.all(d_real < 0) and np.all(d_fake > 0)
  assert np.all(jax.grad(loss.generator, 1)(real, fake) < 0)


def test_non_saturating_generator_does_not_saturate():
  # When D confidently rejects fakes (logit -10), -log D(G(z)) still has gradient ~ -1/N.
  g = jax.grad(adversarial.non_saturating_g, 1)(jnp.zeros(2), jnp.full((2,), -10.0))
  np.testing.assert_allclose(g, -0.5, rtol=1e-3)


def test_unknown_loss_lists_valid_names():
  with pytest.raises(ValueError, match="hinge.*non_saturating"):
    adversarial.get("wasserstien")
