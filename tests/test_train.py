"""End to end: train the tiny config, resume exactly, 1 vs 4 devices, kill -9, bad inputs, sampling."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import jax
import numpy as np
import pytest

from configs import default
from configs import tiny
from gan import checkpointing
from gan import data
from gan import sample
from gan import train
from gan import writers
from gan.tasks import generation
from gan import runs

from conftest import assert_states_equal
from conftest import assert_studio_samples

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, write_idx):
  """256 synthetic 28x28 'products': class c is a bright bar at row 2c, plus noise."""
  rng = np.random.default_rng(0)
  labels = np.arange(256) % 10
  images = rng.integers(0, 40, (256, 28, 28), dtype=np.uint8)
  for i, c in enumerate(labels):
    images[i, 2 * c + 2:2 * c + 6, 4:24] = 230
  folder = tmp_path_factory.mktemp("idx")
  write_idx(folder, images, labels, split="train")
  return str(folder)


def tiny_config(data_dir, **overrides):
  return default.apply_overrides(tiny.get_config(), {"data.dir": data_dir, **overrides})


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, data_dir):
  """An uninterrupted 4-step run: (workdir, final state)."""
  workdir = str(tmp_path_factory.mktemp("straight"))
  return workdir, train.train_and_evaluate(tiny_config(data_dir), workdir)


def test_run_writes_samples_checkpoints_and_logs(straight_run):
  workdir, state = straight_run
  assert int(state.step) == 4
  assert sorted(os.listdir(os.path.join(workdir, "samples"))) == ["step_000002.png", "step_000004.png"]
  assert sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))) == [2, 4]
  records = writers.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  losses = [r for r in records if "d_loss" in r]
  assert [r["step"] for r in losses] == [2, 4]
  assert all(np.isfinite(r["d_loss"]) and r["d_loss"] > 0 for r in losses)
  # Fixed shapes: the train step compiled exactly once in the run.
  assert [r["train_step_compilations"] for r in records if "train_step_compilations" in r] == [1]
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(workdir))
  from PIL import Image
  grid = np.asarray(Image.open(os.path.join(workdir, "samples", "step_000004.png")))
  assert grid.shape == (4 * 34 + 2, 4 * 34 + 2)        # 4x4 grid of 32x32 with 2px padding
  # The EMA generator moved away from its initial weights (warm-up decay (1+t)/(10+t)).
  assert json.load(open(os.path.join(workdir, "config.json")))["train"]["steps"] == 4


def test_resume_continues_exactly(tmp_path, data_dir, straight_run):
  workdir = str(tmp_path)
  half = train.train_and_evaluate(tiny_config(data_dir, **{"train.steps": 2}), workdir)
  assert int(half.step) == 2
  resumed = train.train_and_evaluate(tiny_config(data_dir), workdir)
  assert int(resumed.step) == 4
  assert_states_equal(straight_run[1], resumed, exact=True)


def test_ema_generator_lags_the_raw_generator(straight_run):
  _, state = straight_run
  g = jax.tree.leaves(state.g_params)[0]
  ema = jax.tree.leaves(state.ema_g_params)[0]
  assert not np.allclose(g, ema)


def run_cli(args, devices=1, timeout=300, **kwargs):
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=timeout, **kwargs)


@pytest.mark.slow
def test_four_devices_match_one_device(tmp_path, data_dir, straight_run):
  workdir = str(tmp_path / "four")
  result = run_cli(["-m", "gan.main", "--config", "configs/tiny.py", "--workdir", workdir,
                    f"--config.data.dir={data_dir}"], devices=4)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "on 4 device(s)" in result.stderr
  _, _, state, _ = generation.load(workdir)
  assert_states_equal(straight_run[1], state, exact=False)


@pytest.mark.slow
def test_batch_not_divisible_by_devices_is_a_clear_error(tmp_path, data_dir):
  result = run_cli(["-m", "gan.main", "--config", "configs/tiny.py", "--workdir", str(tmp_path),
                    f"--config.data.dir={data_dir}", "--config.train.batch_size=10"], devices=4)
  assert result.returncode == 1
  assert "batch_size (10) must be divisible by the number of devices (4)" in result.stderr
  assert "Traceback" not in result.stderr


# kill -9 (mid-checkpoint, after one, while training) then resume: tests/test_faults.py.


def test_sigterm_saves_a_checkpoint_and_stops(tmp_path, data_dir, monkeypatch):
  config = tiny_config(data_dir, **{"train.steps": 1000, "train.checkpoint_every": 1000})
  original = writers.create_writer

  def create_writer(workdir, is_main):
    """A writer that sends this process SIGTERM once the first losses are logged (mid-run)."""
    writer = original(workdir, is_main)
    write_scalars = writer.write_scalars

    def write_and_signal(step, scalars):
      write_scalars(step, scalars)
      if "d_loss" in scalars:
        os.kill(os.getpid(), signal.SIGTERM)
    writer.write_scalars = write_and_signal
    return writer

  monkeypatch.setattr(writers, "create_writer", create_writer)
  state = train.train_and_evaluate(config, str(tmp_path))
  step = int(state.step)
  assert 2 <= step < 1000
  assert os.listdir(tmp_path / "checkpoints") == [str(step)]


@pytest.mark.parametrize("override,message", [
    ({"train.batch_size": 0}, "train.batch_size must be positive, got 0"),
    ({"train.steps": -5}, "train.steps must be >= 0, got -5"),
    ({"loss.name": "wgan"}, "Unknown loss.name 'wgan'; valid names: \\['hinge', 'least_squares', 'minimax', "
                           "'non_saturating', 'relativistic_average', 'wasserstein'\\]"),
    ({"model.name": "unet"}, "Unknown model.name 'unet'; valid names: \\['dcgan', 'resnet', 'stylegan'\\]"),
])
def test_bad_config_values_are_clear_errors(tmp_path, data_dir, override, message):
  with pytest.raises(runs.ConfigError, match=message):
    train.train_and_evaluate(tiny_config(data_dir, **override), str(tmp_path))


def test_missing_data_folder_is_a_clear_error(tmp_path):
  with pytest.raises(data.DataError, match="train-images-idx3-ubyte"):
    train.train_and_evaluate(tiny_config(str(tmp_path / "nowhere")), str(tmp_path / "w"))


def test_checkpoint_of_another_architecture_is_refused(tmp_path, data_dir, straight_run):
  workdir, _ = straight_run
  with pytest.raises(checkpointing.CheckpointMismatchError, match="model.g_width: checkpoint 8 vs config 16"):
    train.train_and_evaluate(tiny_config(data_dir, **{"model.g_width": 16, "train.steps": 6}), workdir)
  assert sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))) == [2, 4]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, data_dir):
  workdir = str(tmp_path)
  train.train_and_evaluate(tiny_config(data_dir, **{"train.steps": 2}), workdir)
  # An infinite learning rate turns D's weights into inf/NaN at step 3; step 4's loss is NaN.
  bad = tiny_config(data_dir, **{"optimizer.d_lr": float("inf"), "train.steps": 6,
                                 "train.checkpoint_every": 4})
  with pytest.raises(train.NonFiniteLossError, match=r"at step [34].*last good checkpoint is step 2"):
    train.train_and_evaluate(bad, workdir)
  # The error path closed the data thread too (a rollback starts a new one in the same process).
  assert not [t for t in threading.enumerate() if t.name == "prefetch_to_mesh" and t.is_alive()]
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["2"]
  _, _, state, _ = generation.load(workdir)
  assert int(state.step) == 2
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.d_params))


def test_sample_cli_conditional(tmp_path, data_dir):
  workdir = str(tmp_path)
  train.train_and_evaluate(tiny_config(data_dir, **{"model.conditional": True, "train.steps": 2}), workdir)
  images, columns, step, operations = sample.sample_images(workdir, 6, label="sneaker")
  assert images.shape == (6, 32, 32, 1) and images.dtype == np.uint8 and columns == 3
  assert step == 2 and operations[1] == "label Sneaker (class 7)", operations
  same = sample.sample_images(workdir, 6, label="7").images
  np.testing.assert_array_equal(images, same)            # name and id pick the same class
  other = sample.sample_images(workdir, 6, label="bag").images
  assert not np.array_equal(images, other)
  from gan.studio import app as studio_app   # the studio's Sample page: the same images by label
  client = studio_app.create_app(tmp_path.parent).test_client()
  assert b'name="label"' in client.get(f"/runs/{tmp_path.name}/sample").data
  assert_studio_samples(client, tmp_path.name, {"num": 6, "seed": 0, "label": "sneaker"}, images, 3)
  out = tmp_path / "grid.png"
  result = run_cli(["-m", "gan.sample", "--workdir", workdir, "--num", "20", "--out", str(out)])
  assert result.returncode == 0, result.stderr[-2000:]
  from PIL import Image
  assert np.asarray(Image.open(out)).shape == (10 * 34 + 2, 2 * 34 + 2)   # one row per class
  result = run_cli(["-m", "gan.sample", "--workdir", workdir, "--label", "boots"])
  assert result.returncode == 1 and "Valid labels: 0 T-shirt/top" in result.stderr


def test_parse_label():
  names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]
  assert sample.parse_label("sneaker", names) == 7
  assert sample.parse_label("Ankle", names) == 9
  assert sample.parse_label("tshirt", names) == 0
  assert sample.parse_label("3", names) == 3
  with pytest.raises(sample.SampleError, match="ambiguous"):
    sample.parse_label("s", names)
  with pytest.raises(sample.SampleError, match="out of range"):
    sample.parse_label("10", names)


def test_time_budget_ends_the_run_like_its_last_step_and_is_kept_across_restarts(tmp_path, data_dir):
  # A budget far below one step's time: the run ends at the first log_every step (2), not at train.steps
  # (8), with the last step's checkpoint and final evaluation; a rerun finds the budget used and trains
  # nothing more.
  config = tiny_config(data_dir, **{"train.steps": 8, "train.time_budget_minutes": 1e-6})
  workdir = str(tmp_path / "budget")
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 2
  manager = checkpointing.make_manager(workdir, 3)
  meta = checkpointing.latest_meta(manager)
  manager.close()
  assert meta["step"] == 2 and meta["train_seconds"] > 0
  with open(os.path.join(workdir, "provenance.json")) as f:
    assert json.load(f)["status"] == "finished"
  again = train.train_and_evaluate(config, workdir)
  assert int(again.step) == 2
  assert_states_equal(state, again)


def test_negative_time_budget_is_refused(tmp_path, data_dir):
  config = tiny_config(data_dir, **{"train.time_budget_minutes": -1.0})
  with pytest.raises(runs.ConfigError, match="time_budget_minutes"):
    train.train_and_evaluate(config, str(tmp_path / "bad"))
