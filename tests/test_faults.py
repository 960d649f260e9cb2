"""Faults during training: signals, kill -9 (also mid-checkpoint), damaged checkpoints, a full disk,
non-finite losses (stop or roll back with lower learning rates)."""

import errno
import glob
import json
import os
from pathlib import Path
import random
import re
import shutil
import signal
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint._src.handlers import json_checkpoint_handler
import pytest

from conftest import assert_states_equal
from conftest import launch_command
from conftest import wait_for
from configs import default
from configs import tiny
from gan import checkpointing
from gan import main
from gan import train
from gan import writers
from gan.tasks import generation
from gan import runs

REPO = Path(__file__).resolve().parents[1]
TMP_SUFFIX = ".orbax-checkpoint-tmp"


def tiny_config(data_dir, **overrides):
  return default.apply_overrides(tiny.get_config(), {"data.dir": data_dir, **overrides})


def steps_in(folder) -> list[int]:
  return sorted(int(p.name) for p in Path(folder).iterdir() if p.name.isdigit())


@pytest.fixture
def template(tiny_run):
  """The shared 4-step tiny run (checkpoints 2 and 4): (workdir, final state); never changed."""
  return tiny_run


@pytest.fixture
def run(tmp_path, template):
  """A fresh copy of the template run."""
  workdir = tmp_path / "run"
  shutil.copytree(template[0], workdir)
  return workdir


def restore(workdir, target, writer=True):
  """(state, meta) of the newest readable checkpoint, restored as the training run (writer=True,
  moving unreadable ones aside) or `gan.sample` (writer=False) does."""
  config = runs.load_config(str(workdir))
  manager = checkpointing.make_manager(str(workdir), 10, writer=writer)
  try:
    return checkpointing.restore_latest(manager, target, generation.shape_signature(config),
                                        move_aside_unreadable=writer)
  finally:
    manager.close()


@pytest.fixture(scope="module")
def state_at_2(tiny_run):
  manager = checkpointing.make_manager(str(tiny_run[0]), 10)
  try:
    return manager.restore(2, args=ocp.args.Composite(state=ocp.args.StandardRestore(tiny_run[1]))).state
  finally:
    manager.close()


# ------------------------------------------------------------------ damaged checkpoints


def largest_file(folder):
  return max((f for f in glob.glob(f"{folder}/**", recursive=True) if os.path.isfile(f)), key=os.path.getsize)


def truncate(path):
  data = Path(path).read_bytes()
  Path(path).write_bytes(data[:len(data) // 2])


def garble(path):
  data = bytearray(Path(path).read_bytes())
  rng = np.random.default_rng(0)
  data[len(data) // 3:] = rng.integers(0, 256, len(data) - len(data) // 3, dtype=np.uint8).tobytes()
  Path(path).write_bytes(bytes(data))


DAMAGES = {
    # What a crash or a bad disk leaves: half-written array data, random bytes, a lost file.
    "truncated array data": lambda step: truncate(largest_file(f"{step}/state")),
    "garbled array data": lambda step: garble(largest_file(f"{step}/state")),
    "garbled array index": lambda step: garble(f"{step}/state/manifest.ocdbt"),
    "truncated tree metadata": lambda step: truncate(f"{step}/state/_METADATA"),
    "truncated run metadata": lambda step: truncate(f"{step}/meta/metadata"),
    "missing tree metadata": lambda step: os.remove(f"{step}/state/_METADATA"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_latest_checkpoint_falls_back_to_the_previous(run, damage, template, state_at_2, caplog):
  DAMAGES[damage](run / "checkpoints" / "4")
  state, meta = restore(run, template[1], writer=False)   # as gan.sample: falls back, renames nothing
  assert meta["step"] == int(state.step) == 2
  assert_states_equal(state_at_2, state)
  assert any(f"{run / 'checkpoints' / '4'} is unreadable" in r.getMessage() for r in caplog.records)
  assert steps_in(run / "checkpoints") == [2, 4]


def test_training_resumes_past_a_garbled_checkpoint_and_keeps_it_aside(run, tiny_data_dir, template, caplog):
  garble(largest_file(run / "checkpoints" / "4" / "state"))
  os.makedirs(run / "checkpoints" / f"6{TMP_SUFFIX}")            # a save killed half-way
  state = train.train_and_evaluate(tiny_config(tiny_data_dir), str(run))
  messages = "\n".join(r.getMessage() for r in caplog.records)
  assert "Resuming from step 2, the newest readable checkpoint" in messages
  assert f"moved aside to {run / 'checkpoints' / '4.corrupt'}" in messages
  assert sorted(os.listdir(run / "checkpoints")) == ["2", "4", "4.corrupt"]   # tmp folder cleaned up
  assert_states_equal(template[1], state)      # steps 3-4 redone exactly


def test_every_checkpoint_unreadable_is_a_clear_error_then_a_fresh_start(run, template, caplog):
  for step in (2, 4):
    truncate(largest_file(run / "checkpoints" / str(step) / "state"))
  with pytest.raises(checkpointing.CheckpointCorruptError,
                     match=r"No checkpoint in .*checkpoints can be read \(step 4: .*; step 2: .*\)\. "
                           r"They were moved aside to .*4\.corrupt, .*2\.corrupt"):
    restore(run, template[1])
  assert sorted(os.listdir(run / "checkpoints")) == ["2.corrupt", "4.corrupt"]
  caplog.clear()
  assert restore(run, template[1]) is None               # the next run starts from step 0 ...
  assert any("2.corrupt, 4.corrupt were moved aside earlier as unreadable: starting from step 0"
             in r.getMessage() for r in caplog.records)  # ... and says so


# ------------------------------------------------------------------ disk full


def test_disk_full_while_saving_is_a_clear_error_and_keeps_earlier_checkpoints(run, tiny_data_dir, template,
                                                                               monkeypatch, capsys):
  save_json = json_checkpoint_handler.JsonCheckpointHandler._save_fn

  async def disk_full_from_step_6(self, item, directory):
    if item.get("step", 0) >= 6:     # the metadata JSON of checkpoint 6 hits a full disk
      raise OSError(errno.ENOSPC, "No space left on device", str(directory))
    return await save_json(self, item, directory)

  monkeypatch.setattr(json_checkpoint_handler.JsonCheckpointHandler, "_save_fn", disk_full_from_step_6)
  config = tiny_config(tiny_data_dir, **{"train.steps": 8})
  with pytest.raises(SystemExit) as exit_info:
    main.run(config, str(run))
  assert exit_info.value.code == 1
  err = capsys.readouterr().err
  assert err.startswith("error: No space left on the device while writing checkpoint step 6 in "
                        f"{run / 'checkpoints'}"), err
  assert "Free some space on that disk" in err
  assert "The earlier checkpoints (steps [2, 4]) are intact; rerun the same command to resume from step 4" in err
  assert "Traceback" not in err and len(err.strip().splitlines()) == 1
  monkeypatch.undo()
  # Intact and restorable; the partial step 6 is no checkpoint (the next run removes it: see
  # test_training_resumes_past_a_garbled_checkpoint_and_keeps_it_aside).
  assert sorted(os.listdir(run / "checkpoints")) == ["2", "4", f"6{TMP_SUFFIX}"]
  state, meta = restore(run, template[1], writer=False)
  assert meta["step"] == int(state.step) == 4
  assert_states_equal(template[1], state)


# ------------------------------------------------------------------ signals and kill -9


def test_sigint_saves_a_checkpoint_at_the_current_step_and_stops(run, tiny_data_dir, monkeypatch):
  original = writers.create_writer
  interrupted = []

  def create_writer(workdir, is_main):
    writer = original(workdir, is_main)
    write_scalars = writer.write_scalars

    def write_and_interrupt(step, scalars):
      write_scalars(step, scalars)
      if "d_loss" in scalars and not interrupted:
        interrupted.append(step)
        os.kill(os.getpid(), signal.SIGINT)      # Ctrl-C mid-run (once: twice stops at once)
    writer.write_scalars = write_and_interrupt
    return writer

  monkeypatch.setattr(writers, "create_writer", create_writer)
  config = tiny_config(tiny_data_dir, **{"train.steps": 1000, "train.checkpoint_every": 1000})
  state = train.train_and_evaluate(config, str(run))
  # Resumed at 4; interrupted while step 6's losses were logged; stops (and saves) after step 7.
  assert int(state.step) == 7
  assert steps_in(run / "checkpoints") == [4, 7]
  _, _, restored, _ = generation.load(str(run))
  assert_states_equal(state, restored)


def launch(args, log_path):
  return launch_command("gan.main", args, log_path)


@pytest.mark.slow
def test_sigterm_to_the_program_during_setup_and_mid_run_exits_cleanly(run, tiny_data_dir, tmp_path):
  """Preemption sends SIGTERM whenever it likes: during setup (data, init, restore) the program
  stops before compiling with exit code 0 and the checkpoints as they were; mid-run it saves the
  current step and exits 0; the next start resumes from there."""
  args = ["--config", "configs/tiny.py", "--workdir", str(run), f"--config.data.dir={tiny_data_dir}",
          "--config.train.steps=100000", "--config.train.checkpoint_every=100000", "--config.train.log_every=5"]
  # During setup: the workdir's samples/ folder is (re)made first thing in train_and_evaluate.
  shutil.rmtree(run / "samples")
  proc = launch(args, tmp_path / "setup.log")
  wait_for(lambda: (run / "samples").exists())
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=180) == 0, (tmp_path / "setup.log").read_text()[-3000:]
  log = (tmp_path / "setup.log").read_text()
  assert "Stopped before training after a signal" in log and "resume from step 4" in log, log[-3000:]
  assert steps_in(run / "checkpoints") == [2, 4]
  # Mid-run: after the first logged losses (step 5: resumed from 4, log_every 5).
  proc = launch(args, tmp_path / "run.log")
  def losses_logged_after_resuming():
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return any(r["step"] > 4 and "d_loss" in r for r in records)
  wait_for(losses_logged_after_resuming)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=180) == 0, (tmp_path / "run.log").read_text()[-3000:]
  log = (tmp_path / "run.log").read_text()
  stopped = int(re.search(r"Stopped at step (\d+) after a signal", log).group(1))
  assert stopped >= 5 and steps_in(run / "checkpoints") == [4, stopped]
  _, _, state, meta = generation.load(str(run))
  assert int(state.step) == stopped and meta["data_position"] == stopped


@pytest.mark.slow
def test_kill9_at_random_moments_resumes_from_the_last_complete_checkpoint(tmp_path, tiny_data_dir, template):
  """Three kill -9 (the first while a checkpoint is being written), then a run to the end, which
  equals an uninterrupted run exactly."""
  steps = 24
  workdir = tmp_path / "killed"
  checkpoints = workdir / "checkpoints"
  args = ["--config", "configs/tiny.py", f"--workdir={workdir}", f"--config.data.dir={tiny_data_dir}",
          f"--config.train.steps={steps}", "--config.train.checkpoint_every=1", "--config.train.keep_checkpoints=3",
          "--config.train.sample_every=1000"]
  rng = random.Random(0)

  def partial():
    return [p.name for p in checkpoints.iterdir() if TMP_SUFFIX in p.name] if checkpoints.exists() else []

  def newest():
    return (steps_in(checkpoints) or [0])[-1] if checkpoints.exists() else 0

  def resumed_at(log):
    return [int(s) for s in re.findall(r"Resumed from \S+ at step (\d+)\.", log)]

  kills = [
      ("mid-checkpoint", lambda start: bool(partial())),
      ("random, after a checkpoint", lambda start: newest() > start and time.sleep(rng.uniform(0, 1.5)) is None),
      ("random, while starting or training", lambda start: time.sleep(rng.uniform(2, 12)) is None),
  ]
  last, report = None, []
  for k, (name, ready) in enumerate(kills):
    start, log_path = newest(), tmp_path / f"run_{k}.log"
    proc = launch(args, log_path)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not ready(start):
      time.sleep(0.005)
    assert proc.poll() is None, f"run ended before the kill ({name}): {log_path.read_text()[-3000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Resumed from the newest complete checkpoint of the previous kill (if it got that far).
    assert set(resumed_at(log_path.read_text())) <= ({last} if last else set()), log_path.read_text()[-3000:]
    complete, left = steps_in(checkpoints) if checkpoints.exists() else [], partial()
    report.append((name, complete, left))
    if name == "mid-checkpoint":
      assert left, "the kill did not interrupt a checkpoint write"
    if complete:
      state, meta = restore(workdir, template[1], writer=False)   # the newest complete one is readable
      assert meta["step"] == int(state.step) == complete[-1]
      last = complete[-1]
  assert last is not None and last < steps, report
  final = launch(args, tmp_path / "final.log")
  assert final.wait(timeout=300) == 0, (tmp_path / "final.log").read_text()[-3000:]
  assert resumed_at((tmp_path / "final.log").read_text()) == [last]
  assert not partial() and not any(".corrupt" in n for n in os.listdir(checkpoints))
  reference = tmp_path / "reference"
  shutil.copytree(template[0], reference)
  expected = train.train_and_evaluate(tiny_config(tiny_data_dir, **{"train.steps": steps}), str(reference))
  state, _ = restore(workdir, template[1], writer=False)
  assert int(state.step) == steps
  assert_states_equal(expected, state)
  print("kill -9 report (kind, complete checkpoints, partial folders):", report)


# ------------------------------------------------------------------ non-finite losses


def test_rollback_policy_logic(tmp_path, monkeypatch, tiny_data_dir):
  """train.train_and_evaluate with a stand-in for training that fails a given number of times."""
  calls = []

  def fake_training(fail_times):
    def train_and_evaluate(config, workdir, stop=None):
      calls.append((config.optimizer.g_lr, config.optimizer.d_lr))
      if fail_times is None or len(calls) <= fail_times:
        raise train.NonFiniteLossError(f"Non-finite d_loss at step {len(calls)}.")
      return "state"
    return train_and_evaluate

  config = tiny_config(tiny_data_dir, **{"train.on_non_finite": "rollback", "train.max_rollbacks": 2,
                                         "optimizer.g_lr": 1e-3, "optimizer.d_lr": 4e-3})
  monkeypatch.setattr(train, "train_once", fake_training(2))
  assert train.train_and_evaluate(config, str(tmp_path)) == "state"
  np.testing.assert_allclose(calls, [(1e-3, 4e-3), (5e-4, 2e-3), (2.5e-4, 1e-3)])
  records = train.read_rollbacks(str(tmp_path))
  assert [(r["rollback"], r["lr_scale"], r["resumed_from_step"]) for r in records] == [(1, 0.5, None),
                                                                                       (2, 0.25, None)]
  assert records[1]["optimizer.d_lr"] == pytest.approx(1e-3) and "Non-finite d_loss at step 2" in records[1]["error"]

  calls.clear()     # a later start of the run keeps the lowered rates
  monkeypatch.setattr(train, "train_once", fake_training(0))
  train.train_and_evaluate(config, str(tmp_path))
  np.testing.assert_allclose(calls, [(2.5e-4, 1e-3)])

  calls.clear()     # the cap: 2 rollbacks already used
  monkeypatch.setattr(train, "train_once", fake_training(None))
  with pytest.raises(train.NonFiniteLossError, match=r"Gave up after 2 rollback\(s\) \(train.max_rollbacks=2, "
                                                     r"learning rates now x0.25"):
    train.train_and_evaluate(config, str(tmp_path))
  assert len(calls) == 1

  calls.clear()     # "stop" (the default) never retries
  stop_dir = tmp_path / "stop"
  with pytest.raises(train.NonFiniteLossError, match="step 1"):
    train.train_and_evaluate(tiny_config(tiny_data_dir), str(stop_dir))
  assert len(calls) == 1 and not os.path.exists(stop_dir / train.ROLLBACK_LOG)


@pytest.mark.parametrize("override,message", [
    ({"train.on_non_finite": "ignore"}, r"Unknown train.on_non_finite 'ignore'; valid: \['stop', 'rollback'\]"),
    ({"train.rollback_lr_factor": 1.5}, r"train.rollback_lr_factor must be in \(0, 1\)"),
    ({"train.max_rollbacks": -1}, "train.max_rollbacks must be an int >= 0, got -1"),
])
def test_bad_fault_config_values(override, message, tiny_data_dir):
  with pytest.raises(runs.ConfigError, match=message):
    train.check_config(tiny_config(tiny_data_dir, **override))


def test_rollback_resumes_from_the_last_good_checkpoint_with_lower_learning_rates(run, tiny_data_dir, tmp_path,
                                                                                   template, caplog):
  # Learning rate 1e30 turns the weights into inf/NaN at the first step after the checkpoint; the
  # rollback resumes from step 4 with 1e30 * 1e-33 = 1e-3.
  bad = {"optimizer.g_lr": 1e30, "optimizer.d_lr": 1e30, "train.steps": 6,
         "train.on_non_finite": "rollback", "train.rollback_lr_factor": 1e-33}
  state = train.train_and_evaluate(tiny_config(tiny_data_dir, **bad), str(run))
  assert int(state.step) == 6 and all(np.isfinite(x).all() for x in jax.tree.leaves(state))
  [record] = train.read_rollbacks(str(run))
  assert record["resumed_from_step"] == 4 and record["optimizer.g_lr"] == pytest.approx(1e-3)
  assert re.search(r"Non-finite \w+ at step [56]", record["error"])
  assert any("Rollback 1 of at most 3" in r.getMessage() for r in caplog.records)
  assert json.loads((run / "config.json").read_text())["optimizer"]["d_lr"] == pytest.approx(1e-3)
  # The same as resuming step 4 with learning rate 1e-3 directly: the lowered rate is the one used.
  reference = tmp_path / "reference"
  shutil.copytree(template[0], reference)
  expected = train.train_and_evaluate(
      tiny_config(tiny_data_dir, **{"optimizer.g_lr": 1e-3, "optimizer.d_lr": 1e-3, "train.steps": 6}),
      str(reference))
  assert_states_equal(expected, state)
