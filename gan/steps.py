"""The pure train step: one discriminator update, then one generator update. No I/O."""

from __future__ import annotations

from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan.losses import adversarial
from gan.state import GanState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def ema_decay(step: jax.Array, decay: float, warmup: bool) -> jax.Array:
  """EMA decay at `step`; with warm-up it ramps as (1 + t) / (10 + t) so early EMA tracks the weights."""
  if not warmup:
    return jnp.asarray(decay, jnp.float32)
  t = step.astype(jnp.float32)
  return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def make_train_step(config: ml_collections.ConfigDict, generator: nn.Module, discriminator: nn.Module,
                    g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation,
                    batch_sharding: Optional[jax.sharding.Sharding] = None
                    ) -> Callable[[GanState, Batch], tuple[GanState, Metrics]]:
  """Returns train_step(state, batch) -> (state, metrics).

  batch: {"image": float32 (B, S, S, C) in [-1, 1], "label": int32 (B,)}.
  The generator runs once per step (as in the PyTorch DCGAN reference): its output feeds the D
  update (gradient stopped) and, through the updated D, the G update (pulled back with the VJP
  of that same forward pass). Fake images use the real batch's labels, so conditional models see
  the data's class distribution.
  `batch_sharding` constrains the latent noise to be laid out like the batch, so each device draws
  and processes only its share (with partitionable threefry the values do not depend on the layout).
  """
  loss = adversarial.get(config.loss.name)
  conditional = bool(config.model.conditional)
  z_dim = config.model.z_dim

  def train_step(state: GanState, batch: Batch) -> tuple[GanState, Metrics]:
    images = batch["image"]
    labels = batch["label"] if conditional else None
    step_key = jax.random.fold_in(state.rng, state.step)
    z = jax.random.normal(step_key, (images.shape[0], z_dim), jnp.float32)
    if batch_sharding is not None:
      z = jax.lax.with_sharding_constraint(z, batch_sharding)

    def generate(g_params):
      return generator.apply({"params": g_params, "batch_stats": state.g_batch_stats}, z, labels,
                             train=True, mutable=["batch_stats"])

    fake, g_vjp, g_updates = jax.vjp(generate, state.g_params, has_aux=True)

    # --- Discriminator update (real and fake in separate forward passes, like PyTorch DCGAN).
    def d_loss_fn(d_params):
      variables = {"params": d_params, "batch_stats": state.d_batch_stats}
      real_logits, updates = discriminator.apply(variables, images, labels, train=True, mutable=["batch_stats"])
      variables = {"params": d_params, **updates}
      fake_logits, updates = discriminator.apply(variables, jax.lax.stop_gradient(fake), labels, train=True,
                                                 mutable=["batch_stats"])
      return loss.discriminator(real_logits, fake_logits), (updates, real_logits, fake_logits)

    (d_loss, (d_updates, real_logits, fake_logits)), d_grads = jax.value_and_grad(
        d_loss_fn, has_aux=True)(state.d_params)
    d_param_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, d_param_updates)

    # --- Generator update through the updated discriminator.
    def g_loss_fn(fake_images):
      variables = {"params": d_params, **d_updates}
      logits, updates = discriminator.apply(variables, fake_images, labels, train=True, mutable=["batch_stats"])
      return loss.generator(jax.lax.stop_gradient(real_logits), logits), updates

    (g_loss, d_updates), fake_grad = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
    (g_grads,) = g_vjp(fake_grad)
    g_param_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_param_updates)

    decay = ema_decay(state.step, config.train.ema_decay, config.train.ema_warmup)
    ema_g_params = optax.incremental_update(g_params, state.ema_g_params, 1.0 - decay)

    new_state = state.replace(
        step=state.step + 1, g_params=g_params, g_batch_stats=g_updates.get("batch_stats", {}),
        g_opt_state=g_opt_state, d_params=d_params, d_batch_stats=d_updates.get("batch_stats", {}),
        d_opt_state=d_opt_state, ema_g_params=ema_g_params)
    metrics = {
        "d_loss": d_loss,
        "g_loss": g_loss,
        "d_real_logit": jnp.mean(real_logits),
        "d_fake_logit": jnp.mean(fake_logits),
        "d_grad_norm": optax.tree.norm(d_grads),
        "g_grad_norm": optax.tree.norm(g_grads),
    }
    return new_state, metrics

  return train_step
