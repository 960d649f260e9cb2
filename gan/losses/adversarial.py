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


LOSSES = {
    "non_saturating": AdversarialLoss(non_saturating_d, non_saturating_g),
    "hinge": AdversarialLoss(hinge_d, hinge_g),
}


def get(name: str) -> AdversarialLoss:
  if name not in LOSSES:
    raise ValueError(f"Unknown loss.name {name!r}; valid names: {sorted(LOSSES)}.")
  return LOSSES[name]
