"""Adversarial losses as pure functions of discriminator logits.

Every loss is a pair of functions with the same signature,
  discriminator(real_logits, fake_logits) -> scalar,  generator(real_logits, fake_logits) -> scalar,
logits of shape (N,). Adding a loss is writing two functions and one line in `LOSSES`.
The generator loss takes real logits too (relativistic losses need them); most ignore them.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax


class AdversarialLoss(NamedTuple):
  discriminator: Callable[[jax.Array, jax.Array], jax.Array]
  generator: Callable[[jax.Array, jax.Array], jax.Array]
  # The generator loss depends on the real logits (relativistic losses): the train step then
  # recomputes them with the current D for the G update.
  generator_uses_real: bool = False


def non_saturating_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """-log D(x) - log(1 - D(G(z))), D = sigmoid(logit) (Goodfellow et al. 2014)."""
  return (jnp.mean(optax.sigmoid_binary_cross_entropy(real_logits, jnp.ones_like(real_logits)))
          + jnp.mean(optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits))))


def non_saturating_g(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """-log D(G(z)) = softplus(-logit): the 'non-saturating' generator loss."""
  del real_logits
  return jnp.mean(jax.nn.softplus(-fake_logits))


def hinge_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """max(0, 1 - D(x)) + max(0, 1 + D(G(z))) (Lim & Ye 2017; SNGAN, BigGAN)."""
  return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_g(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """-D(G(z))."""
  del real_logits
  return -jnp.mean(fake_logits)


def minimax_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """The same binary cross-entropy as `non_saturating_d`; only the generator differs."""
  return non_saturating_d(real_logits, fake_logits)


def minimax_g(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """log(1 - D(G(z))) = log sigmoid(-logit) = -softplus(logit) (Goodfellow et al. 2014, Eq. 1).

  Kept as a baseline: its gradient -sigmoid(logit) vanishes when D confidently rejects the fakes,
  which is why the non-saturating loss is used in practice. The loss is <= 0 and unbounded below.
  """
  del real_logits
  return -jnp.mean(jax.nn.softplus(fake_logits))


def least_squares_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2]: LSGAN with a=0, b=1, c=1 (Mao et al. 2017).

  The raw logit is the score (no sigmoid). The loss pulls fake scores to 0 from either side,
  so its gradient w.r.t. a fake logit is negative when that logit is already below 0.
  """
  return 0.5 * jnp.mean(jnp.square(real_logits - 1.0)) + 0.5 * jnp.mean(jnp.square(fake_logits))


def least_squares_g(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """0.5 E[(D(G(z)) - 1)^2]."""
  del real_logits
  return 0.5 * jnp.mean(jnp.square(fake_logits - 1.0))


def wasserstein_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """E[D(G(z))] - E[D(x)]: the WGAN critic loss (Arjovsky et al. 2017).

  Only meaningful with a Lipschitz constraint on D (`regularizers.gradient_penalty` or spectral
  normalisation); without one the critic's logits grow without bound.
  """
  return jnp.mean(fake_logits) - jnp.mean(real_logits)


def wasserstein_g(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """-E[D(G(z))]."""
  del real_logits
  return -jnp.mean(fake_logits)


def _relativistic_average(favoured: jax.Array, disfavoured: jax.Array) -> jax.Array:
  """BCE(favoured - E[disfavoured], 1) + BCE(disfavoured - E[favoured], 0), BCE on logits.

  BCE(l, 1) = -log sigmoid(l) = softplus(-l) and BCE(l, 0) = -log(1 - sigmoid(l)) = softplus(l).
  """
  return (jnp.mean(jax.nn.softplus(jnp.mean(disfavoured) - favoured))
          + jnp.mean(jax.nn.softplus(disfavoured - jnp.mean(favoured))))


def relativistic_average_d(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """Relativistic average GAN, non-saturating form (Jolicoeur-Martineau 2018).

  BCE(D(x) - E[D(G(z))], 1) + BCE(D(G(z)) - E[D(x)], 0), BCE on logits, E = mean over the batch:
  real data should look more realistic than the average fake, fakes less than the average real.
  """
  return _relativistic_average(real_logits, fake_logits)


def relativistic_average_g(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """The D loss with the roles swapped: BCE(D(G(z)) - E[D(x)], 1) + BCE(D(x) - E[D(G(z))], 0).

  Both terms depend on the fakes (the second through E[D(G(z))]), so G also learns from the real
  logits; the train step passes them with the gradient stopped.
  """
  return _relativistic_average(fake_logits, real_logits)


LOSSES = {
    "non_saturating": AdversarialLoss(non_saturating_d, non_saturating_g),
    "hinge": AdversarialLoss(hinge_d, hinge_g),
    "minimax": AdversarialLoss(minimax_d, minimax_g),
    "least_squares": AdversarialLoss(least_squares_d, least_squares_g),
    "wasserstein": AdversarialLoss(wasserstein_d, wasserstein_g),
    "relativistic_average": AdversarialLoss(relativistic_average_d, relativistic_average_g, generator_uses_real=True),
}


def get(name: str) -> AdversarialLoss:
  if name not in LOSSES:
    raise ValueError(f"Unknown loss.name {name!r}; valid names: {sorted(LOSSES)}.")
  return LOSSES[name]
