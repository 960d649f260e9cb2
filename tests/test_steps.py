"""The train step's options: losses, D steps per G step, R1 / GP, DiffAugment, spectral norm,
mixed precision and continuous conditions."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from configs import tiny
from gan import input_pipeline
from gan import train
from gan.losses import adversarial
from gan import runs
from gan.tasks import generation


def tiny_config(**overrides):
  return default.apply_overrides(tiny.get_config(), {"train.batch_size": 8, **overrides})


def make_batch(config, mesh, step=0):
  return input_pipeline.random_device_batch(config, mesh, start_step=step)


def run_steps(config, num_steps=2):
  mesh = runs.make_mesh()
  _, state, step = generation.create_state_and_step(config, mesh)
  history = []
  for i in range(num_steps):
    state, metrics = step(state, make_batch(config, mesh, i))
    history.append(jax.device_get(metrics))
  return state, history, step


def adam_count(opt_state):
  return int(next(s.count for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
                  if isinstance(s, optax.ScaleByAdamState)))


@pytest.mark.parametrize("loss", sorted(adversarial.LOSSES))
def test_every_loss_trains_with_finite_metrics(loss):
  _, history, _ = run_steps(tiny_config(**{"loss.name": loss}), num_steps=2)
  for metrics in history:
    assert all(np.isfinite(v) for v in metrics.values()), metrics
  # The step reports the loss it optimised: D's loss at step 0 equals the named loss of its logits
  # only up to the regularizers, which are off here.
  np.testing.assert_allclose(history[0]["d_loss"], history[0]["d_adv_loss"], rtol=1e-6)


def test_d_steps_updates_d_n_times_per_g_update():
  state, history, _ = run_steps(tiny_config(**{"loss.d_steps": 3}), num_steps=2)
  assert adam_count(state.d_opt_state) == 6      # 3 D updates x 2 steps
  assert adam_count(state.g_opt_state) == 2
  assert int(state.step) == 2


def test_d_steps_one_matches_the_fused_single_forward_path_shapes():
  # d_steps=1 batches have no extra axis; d_steps=2 batches have (B, 2, ...).
  mesh = runs.make_mesh()
  assert make_batch(tiny_config(), mesh)["image"].shape == (8, 32, 32, 1)
  assert make_batch(tiny_config(**{"loss.d_steps": 2}), mesh)["image"].shape == (8, 2, 32, 32, 1)


def test_lazy_r1_runs_every_k_steps_and_gp_is_positive():
  _, history, _ = run_steps(tiny_config(**{"reg.r1_gamma": 10.0, "reg.r1_every": 2, "reg.gp_weight": 10.0,
                                           "model.d_norm": "none"}), num_steps=3)
  r1 = [m["r1"] for m in history]
  assert r1[0] > 0 and r1[1] == 0 and r1[2] > 0
  assert all(m["gp"] > 0 for m in history)
  # d_loss = adversarial + 10 * gp + gamma / 2 * k * r1.
  m = history[0]
  np.testing.assert_allclose(m["d_loss"], m["d_adv_loss"] + 10.0 * m["gp"] + 0.5 * 10.0 * 2 * m["r1"], rtol=1e-5)


def test_diff_augment_and_spectral_norm_train():
  state, history, _ = run_steps(tiny_config(**{"reg.diff_augment": "color,translation,cutout",
                                               "model.d_spectral_norm": True, "model.d_norm": "none"}))
  assert all(np.isfinite(v) for m in history for v in m.values())
  sigmas = [v for path, v in jax.tree_util.tree_leaves_with_path(state.d_batch_stats)
            if "sigma" in jax.tree_util.keystr(path)]
  assert len(sigmas) == 4                         # 3 convs + the output dense of the tiny DCGAN D
  assert all(float(s) > 0 for s in sigmas)


def test_bfloat16_compute_keeps_float32_params_and_finite_losses():
  state, history, _ = run_steps(tiny_config(**{"model.dtype": "bfloat16"}))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.g_params) + jax.tree.leaves(state.d_params))
  assert all(np.isfinite(v) and np.asarray(v).dtype == np.float32 for m in history for v in m.values())


def test_continuous_condition_reaches_the_generator():
  config = tiny_config(**{"model.cond_dim": 5, "data.condition": "attributes"})
  state, history, _ = run_steps(config)
  assert all(np.isfinite(v) for m in history for v in m.values())
  from gan import models
  generator, _ = models.build(config)
  z = jnp.ones((2, config.model.z_dim))
  cond = jnp.stack([jnp.zeros(5), jnp.ones(5)])
  variables = {"params": state.g_params, "batch_stats": state.g_batch_stats}
  images = generator.apply(variables, z, None, cond, train=False)
  assert float(jnp.max(jnp.abs(images[0] - images[1]))) > 1e-4


def test_bad_step_options_are_clear_config_errors():
  for overrides, message in [({"model.dtype": "float16"}, "Unknown model.dtype 'float16'"),
                             ({"loss.d_steps": 0}, "loss.d_steps must be an int >= 1"),
                             ({"reg.diff_augment": "color,blur"}, "Unknown reg.diff_augment ops \\['blur'\\]"),
                             ({"data.condition": "text"}, "data.condition='text' needs model.cond_dim > 0")]:
    with pytest.raises(runs.ConfigError, match=message):
      train.check_config(tiny_config(**overrides))


@pytest.mark.parametrize("name,overrides", [
    ("resnet", {"model.d_spectral_norm": True, "loss.name": "hinge", "model.conditional": True}),
    ("stylegan", {"reg.r1_gamma": 1.0, "reg.r1_every": 2, "model.generator": {"w_dim": 16, "mapping_layers": 2}}),
])
def test_every_architecture_trains_through_the_step(name, overrides):
  state, history, step = run_steps(tiny_config(**{"model.name": name, **overrides}), num_steps=2)
  assert all(np.isfinite(v) for m in history for v in m.values())
  assert int(state.step) == 2 and step._cache_size() == 1   # pylint: disable=protected-access
  if name == "stylegan":   # w_avg (truncation centre) is tracked in batch_stats by training
    w_avg = state.g_batch_stats["mapping_network"]["w_avg"]
    assert float(jnp.abs(w_avg).sum()) > 0
