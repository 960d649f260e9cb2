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


# (D loss, G loss) at REAL, FAKE, worked out by hand. A loss added to LOSSES without an entry here
# fails test_every_loss_has_hand_computed_values.
# mean(REAL) = 0.5, mean(FAKE) = -1.25; REAL - mean(FAKE) = [3.25, 0.25], FAKE - mean(REAL) = [0, -3.5].
HAND_COMPUTED = {
    # D: -log sigmoid(r) - log(1 - sigmoid(f)) = softplus(-r) + softplus(f); G: softplus(-f).
    "non_saturating": ((softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2,
                       (softplus(-0.5) + softplus(3.0)) / 2),
    # D: max(0, 1 - r): (0 + 2) / 2 = 1; max(0, 1 + f): (1.5 + 0) / 2 = 0.75.  G: -mean(f) = 1.25.
    "hinge": (1.75, 1.25),
    # D as non_saturating; G: log(1 - sigmoid(f)) = -softplus(f).
    "minimax": ((softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2,
                -(softplus(0.5) + softplus(-3.0)) / 2),
    # D: 0.5 * ((2-1)^2 + (-1-1)^2) / 2 + 0.5 * (0.5^2 + 3^2) / 2 = 1.25 + 2.3125.
    # G: 0.5 * ((0.5-1)^2 + (-3-1)^2) / 2 = 0.5 * 16.25 / 2.
    "least_squares": (3.5625, 4.0625),
    # D: mean(f) - mean(r) = -1.25 - 0.5.  G: -mean(f).
    "wasserstein": (-1.75, 1.25),
    # D: BCE([3.25, 0.25], 1) + BCE([0, -3.5], 0);  G: BCE([0, -3.5], 1) + BCE([3.25, 0.25], 0).
    "relativistic_average": ((softplus(-3.25) + softplus(-0.25)) / 2 + (softplus(0.0) + softplus(-3.5)) / 2,
                             (softplus(-0.0) + softplus(3.5)) / 2 + (softplus(3.25) + softplus(0.25)) / 2),
}


def test_every_loss_has_hand_computed_values():
  assert set(HAND_COMPUTED) == set(adversarial.LOSSES)


@pytest.mark.parametrize("name", sorted(adversarial.LOSSES))
def test_hand_computed_values(name):
  loss = adversarial.get(name)
  expected_d, expected_g = HAND_COMPUTED[name]
  np.testing.assert_allclose(loss.discriminator(REAL, FAKE), expected_d, rtol=1e-6)
  np.testing.assert_allclose(loss.generator(REAL, FAKE), expected_g, rtol=1e-6)


def test_non_saturating_at_undecided_discriminator():
  # At logits 0 (D undecided) the D loss is 2 log 2.
  np.testing.assert_allclose(adversarial.non_saturating_d(jnp.zeros(3), jnp.zeros(3)), 2 * math.log(2), rtol=1e-6)


def test_relativistic_average_matches_sigmoid_form():
  # The paper's form with D~(x) = sigmoid(C(x) - E[C(G(z))]), on random logits.
  kr, kf = jax.random.split(jax.random.PRNGKey(0))
  real, fake = jax.random.normal(kr, (5,)), jax.random.normal(kf, (5,))
  d_real = jax.nn.sigmoid(real - jnp.mean(fake))
  d_fake = jax.nn.sigmoid(fake - jnp.mean(real))
  expected_d = -jnp.mean(jnp.log(d_real)) - jnp.mean(jnp.log(1 - d_fake))
  expected_g = -jnp.mean(jnp.log(d_fake)) - jnp.mean(jnp.log(1 - d_real))
  np.testing.assert_allclose(adversarial.relativistic_average_d(real, fake), expected_d, rtol=1e-5)
  np.testing.assert_allclose(adversarial.relativistic_average_g(real, fake), expected_g, rtol=1e-5)


def test_relativistic_average_is_shift_invariant():
  # Only differences between real and fake logits matter: adding a constant to all logits is a no-op.
  for fn in (adversarial.relativistic_average_d, adversarial.relativistic_average_g):
    np.testing.assert_allclose(fn(REAL + 7.0, FAKE + 7.0), fn(REAL, FAKE), rtol=1e-6)


# Gradient signs at logits where every loss is active: real < 1 (hinge and LSGAN push real logits
# up only below their margin / target 1) and 0 < fake < 1 (LSGAN pulls fake logits to 0 from both
# sides, so below 0 its D gradient w.r.t. a fake logit is negative; hinge is flat below -1).
SIGN_POINTS = [
    (jnp.array([0.8, 0.5]), jnp.array([0.2, 0.1])),   # D winning: real logits above fake ones.
    (jnp.array([-0.5, 0.2]), jnp.array([0.6, 0.9])),  # D losing.
]


@pytest.mark.parametrize("name", sorted(adversarial.LOSSES))
@pytest.mark.parametrize("real,fake", SIGN_POINTS)
def test_gradient_signs(name, real, fake):
  loss = adversarial.get(name)
  d_real, d_fake = jax.grad(loss.discriminator, (0, 1))(real, fake)
  # Descending the D loss raises real logits and lowers fake ones; the G loss raises fake logits.
  assert np.all(d_real < 0) and np.all(d_fake > 0)
  assert np.all(jax.grad(loss.generator, 1)(real, fake) < 0)


def test_least_squares_pulls_fake_scores_to_zero_from_both_sides():
  d_fake = jax.grad(adversarial.least_squares_d, 1)(jnp.zeros(2), jnp.array([-0.5, 0.5]))
  np.testing.assert_allclose(d_fake, [-0.25, 0.25], rtol=1e-6)  # f / N


def test_non_saturating_generator_does_not_saturate():
  # When D confidently rejects fakes (logit -10), -log D(G(z)) still has gradient ~ -1/N.
  g = jax.grad(adversarial.non_saturating_g, 1)(jnp.zeros(2), jnp.full((2,), -10.0))
  np.testing.assert_allclose(g, -0.5, rtol=1e-3)


def test_minimax_generator_saturates():
  # ... while log(1 - D(G(z))) has gradient -sigmoid(-10) / N ~ -2.3e-5: the reason it is not used.
  g = jax.grad(adversarial.minimax_g, 1)(jnp.zeros(2), jnp.full((2,), -10.0))
  np.testing.assert_allclose(g, -jax.nn.sigmoid(-10.0) / 2, rtol=1e-5)


def test_relativistic_generator_depends_on_real_logits():
  fake = jnp.array([0.1, -0.4])
  g_real = jax.grad(adversarial.relativistic_average_g, 0)(jnp.array([0.3, -0.2]), fake)
  # Raising the real logits makes the fakes look relatively worse, so the G loss increases.
  assert np.all(g_real > 0)
  for name in ("non_saturating", "hinge", "minimax", "least_squares", "wasserstein"):
    np.testing.assert_array_equal(jax.grad(adversarial.get(name).generator, 0)(jnp.array([0.3, -0.2]), fake), 0.0)
  # The flag the train step reads to recompute real logits for the G update says the same.
  assert [n for n, l in adversarial.LOSSES.items() if l.generator_uses_real] == ["relativistic_average"]


def test_unknown_loss_lists_valid_names():
  with pytest.raises(ValueError, match="hinge.*least_squares.*wasserstein"):
    adversarial.get("wasserstien")
