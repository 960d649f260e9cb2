"""Discriminator gradient penalties as pure functions of a discriminator closure.

`d_apply` maps images (N, H, W, C) to logits (N,). It closes over the discriminator's variables
(and labels / cond for conditional models), e.g.

  d_apply = lambda x: discriminator.apply({"params": d_params, **state}, x, labels, train=False)

so differentiating a penalty w.r.t. d_params goes through the input gradient (double backprop).
For a discriminator with mutable state (spectral-norm vectors), either apply with train=False or
take `[0]` of the `mutable=["batch_stats"]` result and drop those updates.

Both penalties take the input gradient of sum(d_apply(x)), which is the per-example gradient only
when each logit depends on its own image alone; a discriminator that mixes examples (batch norm in
train mode, minibatch standard deviation) gets the cross-example terms too (StyleGAN2 accepts
this for minibatch stddev).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

DApply = Callable[[jax.Array], jax.Array]


def _input_gradients(d_apply: DApply, images: jax.Array) -> jax.Array:
  """d sum(logits) / d images: (N, H, W, C), flattened to (N, H * W * C)."""
  grads = jax.grad(lambda x: jnp.sum(d_apply(x).astype(jnp.float32)))(images)
  return grads.reshape(grads.shape[0], -1).astype(jnp.float32)


def r1_penalty(d_apply: DApply, real_images: jax.Array) -> jax.Array:
  """R1 = E_x[||grad_x D(x)||^2] on real images (Mescheder et al. 2018).

  Args:
    d_apply: images (N, H, W, C) -> logits (N,).
    real_images: (N, H, W, C) in [-1, 1]; no gradient flows to them (they are data).

  Returns:
    Scalar float32: the squared L2 norm of the input gradient, summed over pixels and channels of
    each example and averaged over the batch. The caller adds (gamma / 2) * R1 to the D loss;
    with lazy regularisation (StyleGAN2) it does so every k-th D step only, scaled by k,
    i.e. adds k * (gamma / 2) * R1, so the expected penalty per step is unchanged.
  """
  grads = _input_gradients(d_apply, jax.lax.stop_gradient(real_images))
  return jnp.mean(jnp.sum(jnp.square(grads), axis=1))


def gradient_penalty(d_apply: DApply, real_images: jax.Array, fake_images: jax.Array,
                     key: jax.Array) -> jax.Array:
  """WGAN-GP: E[(||grad D(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017).

  x_hat = eps * real + (1 - eps) * fake, one eps ~ U(0, 1) per example.

  Args:
    d_apply: images (N, H, W, C) -> logits (N,).
    real_images: (N, H, W, C) in [-1, 1].
    fake_images: same shape as real_images.
    key: PRNG key for eps.

  Returns:
    Scalar float32. The caller adds lambda * GP to the critic loss (lambda = 10 in the paper).
  """
  if real_images.shape != fake_images.shape:
    raise ValueError(f"real_images {real_images.shape} and fake_images {fake_images.shape} differ in shape.")
  eps_shape = (real_images.shape[0],) + (1,) * (real_images.ndim - 1)
  eps = jax.random.uniform(key, eps_shape, real_images.dtype)
  interpolates = eps * real_images + (1.0 - eps) * fake_images
  grads = _input_gradients(d_apply, interpolates)
  # The tiny constant keeps the norm's derivative finite at a zero gradient (sqrt'(0) = inf).
  norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=1) + 1e-12)
  return jnp.mean(jnp.square(norms - 1.0))
