"""Multi-process training for real: 2 processes x 2 CPU devices (gloo over loopback) vs 1 process x 4.

Also: who-is-who resolution from flags / environment variables, and the row layout each process
feeds to the mesh.
"""

import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
from jax.sharding import NamedSharding, PartitionSpec as P
import numpy as np
import pytest

from gan import distributed
from gan import input_pipeline
from gan import writers
from gan.tasks import generation

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ resolve (pure)


def test_single_process_when_nothing_is_set():
  setup = distributed.resolve(environ={})
  assert (setup.num_processes, setup.process_id, setup.coordinator_address) == (1, 0, None)


def test_flags_take_precedence_over_environment():
  env = {"JAX_NUM_PROCESSES": "8", "JAX_PROCESS_ID": "7", "JAX_COORDINATOR_ADDRESS": "envhost:1"}
  setup = distributed.resolve("flaghost:2", 2, 1, environ=env)
  assert (setup.coordinator_address, setup.num_processes, setup.process_id) == ("flaghost:2", 2, 1)
  setup = distributed.resolve(environ=env)
  assert (setup.coordinator_address, setup.num_processes, setup.process_id) == ("envhost:1", 8, 7)


def test_slurm_variables_only_inside_srun():
  job = {"SLURM_NTASKS": "4", "SLURM_PROCID": "2", "JAX_COORDINATOR_ADDRESS": "node001:12345"}
  # In the batch script itself (no srun step) a lone process must not wait for 3 partners.
  assert distributed.resolve(environ=job).num_processes == 1
  setup = distributed.resolve(environ={**job, "SLURM_STEP_NODELIST": "node[001-004]"})
  assert (setup.num_processes, setup.process_id, setup.source) == (4, 2, "SLURM_NTASKS")
  mpi = {"OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_RANK": "1", "JAX_COORDINATOR_ADDRESS": "h:1"}
  assert distributed.resolve(environ=mpi).process_id == 1


@pytest.mark.parametrize("kwargs,env,message", [
    (dict(num_processes=2, process_id=0), {}, "need the coordinator's address: pass --coordinator_address"),
    (dict(num_processes=2), {"JAX_COORDINATOR_ADDRESS": "h:1"}, "this process's id is unknown"),
    (dict(num_processes=2, process_id=2, coordinator_address="h:1"), {}, r"--process_id 2 must be in \[0, 2\)"),
    (dict(process_id=3), {}, r"--process_id 3 must be in \[0, 1\)"),
    (dict(num_processes=0), {}, "must be >= 1, got 0"),
    (dict(num_processes=2, process_id=1, coordinator_address="nohost"), {}, "must be HOST:PORT"),
    ({}, {"JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}, "JAX_NUM_PROCESSES must be an integer, got 'two'"),
])
def test_inconsistent_setups_are_clear_errors(kwargs, env, message):
  with pytest.raises(distributed.DistributedError, match=message):
    distributed.resolve(**kwargs, environ=env)


def test_single_process_helpers():
  assert distributed.any_process(True) and not distributed.any_process(False)
  stop = threading.Event()
  assert not distributed.stop_requested(stop, 3, 2)
  stop.set()
  assert distributed.stop_requested(stop, 3, 2)    # one process: at once, not at the next multiple
  distributed.barrier("noop")


def test_process_rows_of_a_batch_sharding():
  mesh = jax.make_mesh((jax.device_count(),), ("data",))
  assert input_pipeline.process_rows(NamedSharding(mesh, P("data")), 16) == (0, 16)
  input_pipeline.check_process_rows(NamedSharding(mesh, P("data")), 16)


# ------------------------------------------------------------------ 2 processes for real


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def launch(args, devices, log_path):
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
  with open(log_path, "w") as log:
    return subprocess.Popen([sys.executable, "-m", "gan.main", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=log)


def leaves_close(a, b, **tolerance):
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path), **tolerance)


@pytest.mark.slow
def test_two_processes_match_one_process_with_four_devices_and_stop_together(tmp_path, tiny_data_dir):
  """2 processes x 2 devices train; SIGTERM reaches only process 1; both save at the same step and
  exit 0; the state equals a 1-process 4-device run of that many steps; only process 0 wrote logs."""
  workdir, reference = tmp_path / "two_processes", tmp_path / "one_process"
  common = ["--config", "configs/tiny.py", f"--config.data.dir={tiny_data_dir}", "--config.train.checkpoint_every=1000"]
  address = f"127.0.0.1:{free_port()}"
  procs = [launch([*common, f"--workdir={workdir}", "--config.train.steps=100000",
                   f"--coordinator_address={address}", "--num_processes=2", f"--process_id={i}"],
                  devices=2, log_path=tmp_path / f"process_{i}.log") for i in range(2)]
  try:
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (metrics.exists() and "d_loss" in metrics.read_text()):
      assert all(p.poll() is None for p in procs), (tmp_path / "process_0.log").read_text()[-3000:]
      time.sleep(0.2)
    procs[1].send_signal(signal.SIGTERM)      # preemption notice reaching one host first
    codes = [p.wait(timeout=120) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  logs = [(tmp_path / f"process_{i}.log").read_text() for i in range(2)]
  assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
  assert "Process 1 of 2 (flags), coordinator" in logs[1] and "on 4 device(s)" in logs[1]
  checkpoints = [int(p.name) for p in (workdir / "checkpoints").iterdir()]
  assert len(checkpoints) == 1, checkpoints      # the one written (collectively) at the stop
  stopped = checkpoints[0]
  assert stopped % 2 == 0                       # agreed at a multiple of log_every (tiny: 2)
  assert all(f"Stopped at step {stopped} after a signal" in log for log in logs)

  # Process 0 alone wrote the logs: one record per step and one TensorBoard file.
  steps = [r["step"] for r in writers.read_jsonl(str(metrics)) if "d_loss" in r]
  assert steps == sorted(set(steps)) and steps[-1] == stopped
  assert len([n for n in os.listdir(workdir) if n.startswith("events.out.tfevents")]) == 1

  one = launch([*common, f"--workdir={reference}", f"--config.train.steps={stopped}"], devices=4,
               log_path=tmp_path / "reference.log")
  assert one.wait(timeout=300) == 0, (tmp_path / "reference.log").read_text()[-3000:]
  _, _, two_state, _ = generation.load(str(workdir))
  _, _, one_state, _ = generation.load(str(reference))
  assert int(two_state.step) == int(one_state.step) == stopped
  leaves_close(two_state, one_state, rtol=2e-4, atol=2e-5)
