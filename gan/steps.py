"""The pure train step: `loss.d_steps` discriminator updates, then one generator update. No I/O."""

from __future__ import annotations

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gan import augment
from gan.losses import adversarial
from gan.losses import regularizers
from gan.state import GanState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
Params = Any

def ema_decay(step: jax.Array, decay: float, warmup: bool) -> jax.Array:
  """EMA decay at `step`; with warm-up it ramps as (1 + t) / (10 + t) so early EMA tracks the weights."""
  if not warmup:
    return jnp.asarray(decay, jnp.float32)
  t = step.astype(jnp.float32)
  return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with the loss and regularizer keys the step reads (one message per key)."""
  problems = []
  if config.loss.name not in adversarial.LOSSES:
    problems.append(f"Unknown loss.name {config.loss.name!r}; valid names: {sorted(adversarial.LOSSES)}.")
  if not isinstance(config.loss.d_steps, int) or config.loss.d_steps < 1:
    problems.append(f"loss.d_steps must be an int >= 1, got {config.loss.d_steps!r}.")
  for key in ("r1_gamma", "gp_weight"):
    if config.reg[key] < 0:
      problems.append(f"reg.{key} must be >= 0 (0 = off), got {config.reg[key]}.")
  if config.reg.r1_every < 1:
    problems.append(f"reg.r1_every must be >= 1, got {config.reg.r1_every}.")
  unknown_ops = [op.strip() for op in config.reg.diff_augment.split(",")
                 if op.strip() and op.strip() not in augment.POLICIES]
  if unknown_ops:
    problems.append(f"Unknown reg.diff_augment ops {unknown_ops}; valid: a comma list of {sorted(augment.POLICIES)}.")
  return problems + ada_config_problems(config)


def ada_config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with reg.ada (adaptive discriminator augmentation), one message per key."""
  ada = config.reg.get("ada")
  if ada is None:
    return []
  problems = []
  if not isinstance(ada.enabled, bool):
    problems.append(f"reg.ada.enabled must be True or False, got {ada.enabled!r}.")
  if not isinstance(ada.target, (int, float)) or not 0.0 < ada.target < 1.0:
    problems.append(f"reg.ada.target must be in (0, 1): the wanted E[sign(D(real))], 0.6 in the paper; "
                    f"got {ada.target!r}.")
  if not isinstance(ada.interval, int) or isinstance(ada.interval, bool) or ada.interval < 1:
    problems.append(f"reg.ada.interval must be an int >= 1 (steps between updates of p, 4 in the paper), "
                    f"got {ada.interval!r}.")
  if not isinstance(ada.kimg, (int, float)) or not ada.kimg > 0:
    problems.append(f"reg.ada.kimg must be > 0 (thousands of real images over which p can go from 0 to 1, "
                    f"500 in the paper), got {ada.kimg!r}.")
  if not isinstance(ada.p_init, (int, float)) or not 0.0 <= ada.p_init <= 1.0:
    problems.append(f"reg.ada.p_init must be in [0, 1], got {ada.p_init!r}.")
  try:
    if not augment.parse_ada_groups(ada.groups):
      problems.append(f"reg.ada.groups is empty; use a comma list of {list(augment.ADA_GROUPS)}, e.g. "
                      "'blit,geom,color'.")
  except (ValueError, AttributeError):
    problems.append(f"Unknown reg.ada.groups {ada.groups!r}; valid: a comma list of {list(augment.ADA_GROUPS)}.")
  if ada.enabled is True and config.reg.diff_augment:
    problems.append(f"reg.ada.enabled and reg.diff_augment={config.reg.diff_augment!r} are both on: use one "
                    "augmentation at a time (--config.reg.diff_augment='' for ADA, or "
                    "--config.reg.ada.enabled=False for DiffAugment).")
  return problems


def make_train_step(config: ml_collections.ConfigDict, generator: nn.Module, discriminator: nn.Module,
                    g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation,
                    batch_sharding: Optional[jax.sharding.Sharding] = None
                    ) -> Callable[[GanState, Batch], tuple[GanState, Metrics]]:
  """Returns train_step(state, batch) -> (state, metrics).

  batch: {"image": float32 (B, S, S, C) in [-1, 1], "label": int32 (B,), optionally "cond": float32
  (B, cond_dim)}; with loss.d_steps = n > 1 every array has an extra axis after the batch axis,
  (B, n, ...): one real batch per D update (the batch axis stays first so it stays sharded).

  With one D update per step, the generator runs once (as in the PyTorch DCGAN reference): its output
  feeds the D update (gradient stopped) and, through the updated D, the G update (pulled back with the
  VJP of that same forward pass). With n D updates (WGAN-GP's critic iterations), each draws its own
  fakes and the G update draws fresh ones. Fake images use the real batch's labels and conditions, so
  conditional models see the data's distribution of them.
  `batch_sharding` constrains the latent noise to be laid out like the batch, so each device draws
  and processes only its share (with partitionable threefry the values do not depend on the layout).
  """
  if problems := config_problems(config):
    raise ValueError(" ".join(problems))
  loss = adversarial.get(config.loss.name)
  d_steps = int(config.loss.d_steps)
  conditional = bool(config.model.conditional)
  use_cond = bool(config.model.cond_dim)
  z_dim = config.model.z_dim
  reg = config.reg
  policy = reg.diff_augment
  ada = reg.get("ada")
  ada_on = ada is not None and ada.enabled

  def g_forward(g_params, g_stats, z, labels, cond, key):
    return generator.apply({"params": g_params, "batch_stats": g_stats}, z, labels, cond, train=True,
                           mutable=["batch_stats"], rngs={"noise": key})

  def d_forward(d_params, d_stats, images, labels, cond):
    logits, updates = discriminator.apply({"params": d_params, "batch_stats": d_stats}, images, labels, cond,
                                          train=True, mutable=["batch_stats"])
    return logits, updates.get("batch_stats", {})

  def maybe_augment(images, key, p):
    """DiffAugment, or ADA with probability p (a traced scalar, None when ADA is off), or nothing."""
    if ada_on:
      return augment.ada_augment(images, key, p, ada.groups)
    return augment.diff_augment(images, key, policy) if policy else images

  def ada_update(ada_state, real_logits, step):
    """Accumulates sign(D(real)) and, every ada.interval steps, moves p (augment.ada_adjust).
    Returns the new GanState.ada and the metrics ada_p (after this step) and ada_rt (this step's
    E[sign(D(real))]; averaged over train.log_every steps by the loop)."""
    signs = jnp.sign(real_logits.astype(jnp.float32))
    sign_sum = ada_state["sign_sum"] + jnp.sum(signs)
    count = ada_state["count"] + signs.size
    due = (step + 1) % int(ada.interval) == 0
    # The reals shown in the interval (batch x interval x d_steps) set the step size, as the paper's
    # batch x interval / (kimg x 1000) when loss.d_steps = 1.
    p = jnp.where(due, augment.ada_adjust(ada_state["p"], sign_sum, count, ada.target, count, ada.kimg),
                  ada_state["p"])
    zero = jnp.zeros((), jnp.float32)
    new = {"p": p, "sign_sum": jnp.where(due, zero, sign_sum), "count": jnp.where(due, zero, count)}
    return new, {"ada_p": p, "ada_rt": jnp.mean(signs)}

  def sample_z(key, n):
    z = jax.random.normal(key, (n, z_dim), jnp.float32)
    return jax.lax.with_sharding_constraint(z, batch_sharding) if batch_sharding is not None else z

  def d_update(d_params, d_opt_state, d_stats, real, fake, labels, cond, key, step, p):
    """One D update on a real and a fake batch. Returns new (params, opt_state, stats), metrics."""
    real_key, fake_key, gp_key = jax.random.split(key, 3)

    def d_loss_fn(params):
      real_in, fake_in = maybe_augment(real, real_key, p), maybe_augment(fake, fake_key, p)
      real_logits, stats = d_forward(params, d_stats, real_in, labels, cond)
      fake_logits, stats = d_forward(params, stats, fake_in, labels, cond)
      total = loss.discriminator(real_logits, fake_logits)
      terms = {"d_adv_loss": total}
      # Penalties see the same (augmented) inputs as the loss; their BN / SN state updates are dropped.
      d_apply = lambda x: d_forward(params, stats, x, labels, cond)[0]
      if reg.gp_weight:
        terms["gp"] = regularizers.gradient_penalty(d_apply, real_in, fake_in, gp_key)
        total = total + reg.gp_weight * terms["gp"]
      if reg.r1_gamma:
        every = int(reg.r1_every)
        terms["r1"] = jax.lax.cond(step % every == 0, lambda: regularizers.r1_penalty(d_apply, real_in),
                                   lambda: jnp.zeros((), jnp.float32))
        total = total + 0.5 * reg.r1_gamma * every * terms["r1"]
      return total, (stats, real_logits, fake_logits, terms)

    (d_loss, (stats, real_logits, fake_logits, terms)), grads = jax.value_and_grad(
        d_loss_fn, has_aux=True)(d_params)
    updates, d_opt_state = d_tx.update(grads, d_opt_state, d_params)
    d_params = optax.apply_updates(d_params, updates)
    metrics = {"d_loss": d_loss, "d_real_logit": jnp.mean(real_logits), "d_fake_logit": jnp.mean(fake_logits),
               "d_grad_norm": optax.tree.norm(grads), **terms}
    return (d_params, d_opt_state, stats), real_logits, metrics

  def g_update(state, d_params, d_stats, fake, g_vjp, real, real_logits, labels, cond, key, p):
    """G update through the (updated) D, pulled back through the generator forward's VJP."""
    fake_key, real_key = jax.random.split(key)
    if loss.generator_uses_real:
      # Relativistic losses compare with the real logits of the current D.
      real_logits, _ = d_forward(d_params, d_stats, maybe_augment(real, real_key, p), labels, cond)

    def g_loss_fn(fake_images):
      logits, stats = d_forward(d_params, d_stats, maybe_augment(fake_images, fake_key, p), labels, cond)
      return loss.generator(jax.lax.stop_gradient(real_logits), logits), stats

    # D's running statistics advance in this pass too, as in PyTorch's train-mode forward.
    (g_loss, d_stats), fake_grad = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
    (g_grads,) = g_vjp(fake_grad)
    updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, updates)
    return g_params, g_opt_state, d_stats, {"g_loss": g_loss, "g_grad_norm": optax.tree.norm(g_grads)}

  def train_step(state: GanState, batch: Batch) -> tuple[GanState, Metrics]:
    images = batch["image"]
    labels = batch["label"] if conditional else None
    cond = batch["cond"] if use_cond else None
    n = images.shape[0]
    step_key = jax.random.fold_in(state.rng, state.step)
    g_key, d_key, g_update_key = jax.random.split(step_key, 3)
    p = state.ada["p"] if ada_on else None   # this step's augmentation probability

    def forward_with_vjp(key, g_stats, labels, cond):
      z_key, noise_key = jax.random.split(key)
      z = sample_z(z_key, n)
      return jax.vjp(lambda p: g_forward(p, g_stats, z, labels, cond, noise_key), state.g_params, has_aux=True)

    if d_steps == 1:
      fake, g_vjp, g_updates = forward_with_vjp(g_key, state.g_batch_stats, labels, cond)
      (d_params, d_opt_state, d_stats), real_logits, d_metrics = d_update(
          state.d_params, state.d_opt_state, state.d_batch_stats, images, jax.lax.stop_gradient(fake),
          labels, cond, d_key, state.step, p)
      seen_real_logits = real_logits
      g_stats = g_updates.get("batch_stats", {})
      last_real, last_labels, last_cond = images, labels, cond
    else:
      # Critic iterations: a scan over the n real batches (B, n, ...) -> (n, B, ...).
      per_step = lambda x: None if x is None else jnp.moveaxis(x, 1, 0)
      xs = (per_step(images), per_step(labels), per_step(cond), jnp.arange(d_steps))

      def critic(carry, x):
        d_params, d_opt_state, d_stats, g_stats = carry
        real, step_labels, step_cond, i = x
        z_key, noise_key, key = jax.random.split(jax.random.fold_in(d_key, i), 3)
        fake, g_updates = g_forward(state.g_params, g_stats, sample_z(z_key, n), step_labels, step_cond,
                                    noise_key)
        (d_params, d_opt_state, d_stats), real_logits, metrics = d_update(
            d_params, d_opt_state, d_stats, real, fake, step_labels, step_cond, key, state.step, p)
        return (d_params, d_opt_state, d_stats, g_updates.get("batch_stats", {})), (real_logits, metrics)

      carry = (state.d_params, state.d_opt_state, state.d_batch_stats, state.g_batch_stats)
      # Unrolled: XLA:CPU runs the convolutions of a rolled loop body ~30x slower (measured on the
      # WGAN-GP recipe: 55 s vs 1.8 s per step at batch 64, n = 5); n is small, so compile time is not.
      (d_params, d_opt_state, d_stats, g_stats), (all_real_logits, all_metrics) = jax.lax.scan(
          critic, carry, xs, unroll=True)
      d_metrics = jax.tree.map(jnp.mean, all_metrics)
      real_logits = all_real_logits[-1]
      seen_real_logits = all_real_logits
      last = lambda x: None if x is None else x[:, -1]
      last_real, last_labels, last_cond = images[:, -1], last(labels), last(cond)
      # G's running statistics continue from the critic iterations' forward passes.
      fake, g_vjp, g_updates = forward_with_vjp(g_key, g_stats, last_labels, last_cond)
      g_stats = g_updates.get("batch_stats", {})

    g_params, g_opt_state, d_stats, g_metrics = g_update(state, d_params, d_stats, fake, g_vjp, last_real,
                                                real_logits, last_labels, last_cond, g_update_key, p)
    decay = ema_decay(state.step, config.train.ema_decay, config.train.ema_warmup)
    ema_g_params = optax.incremental_update(g_params, state.ema_g_params, 1.0 - decay)
    ada_state, ada_metrics = (ada_update(state.ada, seen_real_logits, state.step) if ada_on
                              else (state.ada, {}))
    new_state = state.replace(
        step=state.step + 1, g_params=g_params, g_batch_stats=g_stats, g_opt_state=g_opt_state,
        d_params=d_params, d_batch_stats=d_stats, d_opt_state=d_opt_state, ema_g_params=ema_g_params,
        ada=ada_state)
    return new_state, {**d_metrics, **g_metrics, **ada_metrics}

  return train_step
