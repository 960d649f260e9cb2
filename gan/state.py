"""GanState: everything a run needs to continue exactly, as one pytree."""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

Params = Any


@flax.struct.dataclass
class GanState:
  step: jax.Array            # int32 scalar: number of completed train steps (= data position)
  rng: jax.Array             # uint32 (2,): base key; step keys are fold_in(rng, step)
  g_params: Params
  g_batch_stats: Params      # generator batch-norm running statistics
  g_opt_state: optax.OptState
  d_params: Params
  d_batch_stats: Params
  d_opt_state: optax.OptState
  ema_g_params: Params       # exponential moving average of g_params (used for sampling)
  # Adaptive discriminator augmentation (reg.ada): {"p": augmentation probability, "sign_sum" /
  # "count": sum of sign(D(real)) and number of real logits since p was last adjusted}, float32
  # scalars; {} when ADA is off (no leaves: the state, its checkpoints and RNG streams are as before).
  ada: dict = flax.struct.field(default_factory=dict)


OPTIMIZERS = ("adam",)


def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with the optimizer and EMA keys this module reads (one message per key)."""
  problems = []
  if config.optimizer.name not in OPTIMIZERS:
    problems.append(f"Unknown optimizer.name {config.optimizer.name!r}; valid names: {list(OPTIMIZERS)}.")
  if not 0.0 <= config.train.ema_decay < 1.0:
    problems.append(f"train.ema_decay must be in [0, 1), got {config.train.ema_decay}.")
  return problems


def make_optimizers(config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation,
                                                                  optax.GradientTransformation]:
  """Adam for G and D; separate learning rates allow a two-timescale update rule (TTUR)."""
  opt = config.optimizer
  if opt.name not in OPTIMIZERS:
    raise ValueError(f"Unknown optimizer.name {opt.name!r}; valid names: {list(OPTIMIZERS)}.")
  g_tx = optax.adam(opt.g_lr, b1=opt.b1, b2=opt.b2)
  d_tx = optax.adam(opt.d_lr, b1=opt.b1, b2=opt.b2)
  return g_tx, d_tx


def init_ada(config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  """The initial `GanState.ada`: p = reg.ada.p_init and empty accumulators; {} when ADA is off."""
  ada = config.reg.get("ada")
  if ada is None or not ada.enabled:
    return {}
  zero = jnp.zeros((), jnp.float32)
  return {"p": jnp.asarray(ada.p_init, jnp.float32), "sign_sum": zero, "count": zero}


def init_state(config: ml_collections.ConfigDict, generator: nn.Module, discriminator: nn.Module,
               g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation) -> GanState:
  """Initialises parameters from `config.seed` (pure; jit it with the desired out_shardings)."""
  rng = jax.random.PRNGKey(config.seed)
  g_key, d_key, train_key = jax.random.split(rng, 3)
  size, channels = config.data.image_size, config.data.channels
  z = jnp.zeros((2, config.model.z_dim), jnp.float32)
  labels = jnp.zeros((2,), jnp.int32)
  cond_dim = config.model.get("cond_dim", 0)
  cond = jnp.zeros((2, cond_dim), jnp.float32) if cond_dim else None
  g_vars = generator.init(g_key, z, labels, cond, train=True)
  d_vars = discriminator.init(d_key, jnp.zeros((2, size, size, channels), jnp.float32), labels, cond,
                              train=True)
  g_params, d_params = g_vars["params"], d_vars["params"]
  return GanState(
      step=jnp.zeros((), jnp.int32),
      rng=train_key,
      g_params=g_params,
      g_batch_stats=g_vars.get("batch_stats", {}),
      g_opt_state=g_tx.init(g_params),
      d_params=d_params,
      d_batch_stats=d_vars.get("batch_stats", {}),
      d_opt_state=d_tx.init(d_params),
      ema_g_params=g_params,
      ada=init_ada(config),
  )
