"""Adaptive discriminator augmentation in training: p follows D's real logits (hand-computed steps),
lives in the checkpointed state (exact resume), is logged, runs data-parallel, and bad options are
refused. The augmentation ops themselves are tested in test_augment.py."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from configs import default
from configs import tiny
from gan import input_pipeline
from gan import runs
from gan import train
from gan import writers
from gan.tasks import generation

from conftest import assert_states_equal

REPO = Path(__file__).resolve().parents[1]
# The 2-step run and the resumed run compile the same train step as the 4-step one: cache reads.
pytestmark = pytest.mark.usefixtures("persistent_compilation_cache")
# p_init 0.5 so every transform is exercised; kimg 0.08: each update moves p by (reals) / 80.
ADA = {"reg.ada.enabled": True, "reg.ada.p_init": 0.5, "reg.ada.interval": 2, "reg.ada.kimg": 0.08}


def ada_config(data_dir, **overrides):
  return default.apply_overrides(tiny.get_config(), {"data.dir": data_dir, **ADA, **overrides})


def with_real_logits(host_state, sign: float, shardings):
  """A device copy of a host state with D's output bias set to 50 x sign, so every logit has that
  sign, laid out as the step expects (`shardings`; another layout would compile the step again)."""
  (name,) = [k for k in host_state.d_params if k.startswith("Dense")]
  d_params = dict(host_state.d_params)
  d_params[name] = {**d_params[name], "bias": np.full_like(d_params[name]["bias"], 50.0 * sign)}
  return jax.device_put(host_state.replace(d_params=d_params), shardings)


def test_p_moves_towards_the_target_every_interval_by_the_reals_shown(tiny_data_dir):
  # The config of the runs below: the same train step, compiled once for the module (cache).
  config = ada_config(tiny_data_dir)
  batch = config.train.batch_size
  mesh = runs.make_mesh()
  _, state, step = generation.create_state_and_step(config, mesh)
  host, shardings = jax.device_get(state), jax.tree.map(lambda a: a.sharding, state)
  assert float(host.ada["p"]) == 0.5
  batches = [input_pipeline.random_device_batch(config, mesh, start_step=i) for i in range(2)]
  for sign in (1.0, -1.0):
    state = with_real_logits(host, sign, shardings)   # a fresh copy: the step donates its state
    state, metrics = step(state, batches[0])
    # Step 1 of an interval of 2: r_t accumulated (16 reals, all of one sign), p unchanged.
    assert float(metrics["ada_rt"]) == sign and float(metrics["ada_p"]) == 0.5
    assert float(state.ada["sign_sum"]) == batch * sign and float(state.ada["count"]) == batch
    state, metrics = step(state, batches[1])
    # Step 2: r_t = sign vs target 0.6: p += sign(r_t - 0.6) x 32 reals / (0.08 x 1000) = +-0.4; reset.
    expected = 0.5 + sign * 2 * batch / 80
    assert float(metrics["ada_p"]) == pytest.approx(expected) and float(state.ada["p"]) == pytest.approx(expected)
    assert float(state.ada["sign_sum"]) == 0 and float(state.ada["count"]) == 0


def test_ada_off_adds_nothing_to_the_state():
  config = tiny.get_config()
  abstract = generation.abstract_state(config)
  assert abstract.ada == {}
  assert not [path for path, _ in jax.tree_util.tree_leaves_with_path(abstract)
              if "ada" in jax.tree_util.keystr(path)]


@pytest.mark.parametrize("overrides, message", [
    ({"reg.diff_augment": "color"}, "reg.ada.enabled and reg.diff_augment='color' are both on: use one augmentation at a time"),
    ({"reg.ada.target": 1.5}, "reg.ada.target must be in (0, 1)"),
    ({"reg.ada.interval": 0}, "reg.ada.interval must be an int >= 1"),
    ({"reg.ada.kimg": 0.0}, "reg.ada.kimg must be > 0"),
    ({"reg.ada.p_init": 1.5}, "reg.ada.p_init must be in [0, 1]"),
    ({"reg.ada.groups": "blit,colour"}, "Unknown reg.ada.groups 'blit,colour'; valid: a comma list of ['blit', 'geom', 'color']"),
    ({"reg.ada.groups": " , "}, "reg.ada.groups is empty"),
])
def test_bad_ada_options_are_refused_with_the_fix(tmp_path, overrides, message):
  config = default.apply_overrides(tiny.get_config(), {**ADA, **overrides})
  with pytest.raises(runs.ConfigError) as error:
    train.train_and_evaluate(config, str(tmp_path / "w"))
  assert message in str(error.value)
  assert not (tmp_path / "w").exists()


@pytest.fixture(scope="module")
def straight_ada_run(tmp_path_factory, tiny_data_dir):
  """4 steps of the tiny config with ADA (all groups): (workdir, final state)."""
  workdir = str(tmp_path_factory.mktemp("ada_straight"))
  return workdir, train.train_and_evaluate(ada_config(tiny_data_dir), workdir)


@pytest.fixture(scope="module")
def half_ada_run(tmp_path_factory, tiny_data_dir):
  """The same run stopped after 2 steps: (workdir, state); copy the folder before changing it."""
  workdir = str(tmp_path_factory.mktemp("ada_half"))
  return workdir, train.train_and_evaluate(ada_config(tiny_data_dir, **{"train.steps": 2}), workdir)


def test_ada_run_logs_p_and_resumes_exactly(tmp_path, tiny_data_dir, straight_ada_run, half_ada_run):
  workdir, state = straight_ada_run
  records = [r for r in writers.read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "ada_p" in r]
  assert [r["step"] for r in records] == [2, 4]
  assert all(0.0 <= r["ada_p"] <= 1.0 and -1.0 <= r["ada_rt"] <= 1.0 for r in records)
  # p moved by +-32 / 80 = 0.4 at steps 2 and 4 (16 reals x interval 2), clipped to [0, 1].
  assert any(abs(float(state.ada["p"]) - v) < 1e-6 for v in (0.0, 0.1, 0.9, 1.0, 0.5))
  assert abs(float(half_ada_run[1].ada["p"]) - 0.5) == pytest.approx(0.4)
  resumed_dir = tmp_path / "resumed"
  shutil.copytree(half_ada_run[0], resumed_dir)
  resumed = train.train_and_evaluate(ada_config(tiny_data_dir), str(resumed_dir))
  assert_states_equal(state, resumed, exact=True)


@pytest.mark.slow
def test_ada_on_four_devices_matches_one_device(tmp_path, tiny_data_dir, half_ada_run):
  workdir = str(tmp_path / "four")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
  overrides = [f"--config.{k}={v}" for k, v in ADA.items()]
  result = subprocess.run([sys.executable, "-m", "gan.main", "--config", "configs/tiny.py", "--workdir", workdir,
                           f"--config.data.dir={tiny_data_dir}", "--config.train.steps=2", *overrides],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "on 4 device(s)" in result.stderr
  _, _, state, _ = generation.load(workdir)
  assert_states_equal(half_ada_run[1], state, exact=False)
