"""Several processes (one per host) training one model: setup and the few cross-process decisions.

Every process runs the same program (JAX's multi-controller model): it reads its own rows of each
global batch (input_pipeline), the train step runs over the devices of all processes (gradients
and batch-norm statistics are reduced by XLA's collectives: NCCL on GPU, gloo over TCP on CPU),
process 0 alone writes logs, samples and config.json, and Orbax writes checkpoints collectively.

Who is who, in order of precedence (the first that is set wins):
  coordinator address  --coordinator_address, $JAX_COORDINATOR_ADDRESS ("host:port" of process 0)
  number of processes  --num_processes, $JAX_NUM_PROCESSES, $SLURM_NTASKS, $OMPI_COMM_WORLD_SIZE
  this process's id    --process_id, $JAX_PROCESS_ID, $SLURM_PROCID, $OMPI_COMM_WORLD_RANK
Nothing set: one process, no distributed setup. Each process sees all devices of its host (the
launcher starts one process per host; see README "Multi-host and faults").
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from typing import Optional

from absl import logging
import jax
import numpy as np

# (count, id, present only inside the launched step) environment variables, in order of precedence.
# SLURM_NTASKS alone is also set in a batch script outside `srun`, where a lone process would wait
# for partners that never come; SLURM_STEP_NODELIST exists only in the tasks srun started.
LAUNCHER_ENV = (("JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "JAX_NUM_PROCESSES"),
                ("SLURM_NTASKS", "SLURM_PROCID", "SLURM_STEP_NODELIST"),                    # srun
                ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"))   # mpirun
COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"


class DistributedError(ValueError):
  """The multi-process setup is inconsistent; the message says which value and how to fix it."""


@dataclasses.dataclass(frozen=True)
class ProcessSetup:
  """Where this process sits: `num_processes` = 1 means a plain single-process run."""
  coordinator_address: Optional[str]
  num_processes: int
  process_id: int
  source: str          # where the values came from, for the log ("flags", "SLURM_NTASKS", ...)


def _as_int(value, name: str) -> int:
  try:
    return int(value)
  except (TypeError, ValueError):
    raise DistributedError(f"{name} must be an integer, got {value!r}.") from None


def resolve(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
            process_id: Optional[int] = None, environ: Optional[Mapping[str, str]] = None
            ) -> ProcessSetup:
  """The process setup from explicit values (flags) and `environ` (default os.environ); pure.

  Raises:
    DistributedError: a count or id that is not an integer, an id outside [0, count), or several
      processes without a coordinator address.
  """
  environ = os.environ if environ is None else environ
  source = "flags"
  if num_processes is None:
    for count_name, id_name, marker in LAUNCHER_ENV:
      if count_name in environ and marker in environ:
        num_processes = _as_int(environ[count_name], count_name)
        if process_id is None and id_name in environ:
          process_id = _as_int(environ[id_name], id_name)
        source = count_name
        break
  num_processes = 1 if num_processes is None else _as_int(num_processes, "--num_processes")
  if num_processes < 1:
    raise DistributedError(f"The number of processes must be >= 1, got {num_processes} ({source}).")
  if num_processes == 1 and process_id in (None, 0):
    return ProcessSetup(None, 1, 0, source if source != "flags" else "single process")
  if process_id is None:
    raise DistributedError(f"{num_processes} processes ({source}) but this process's id is unknown: "
                           "pass --process_id (0 on the coordinator) or set JAX_PROCESS_ID.")
  process_id = _as_int(process_id, "--process_id")
  if not 0 <= process_id < num_processes:
    raise DistributedError(f"--process_id {process_id} must be in [0, {num_processes}) "
                           f"({num_processes} processes, {source}).")
  coordinator_address = coordinator_address or environ.get(COORDINATOR_ENV)
  if not coordinator_address:
    raise DistributedError(
        f"{num_processes} processes ({source}) need the coordinator's address: pass "
        f"--coordinator_address=HOST:PORT or set {COORDINATOR_ENV}=HOST:PORT, HOST being process 0's "
        "host and PORT any free port, the same on every process (SLURM: the first host of "
        "$SLURM_JOB_NODELIST, see README).")
  host, _, port = coordinator_address.rpartition(":")
  if not host or not port.isdigit():
    raise DistributedError(f"The coordinator address must be HOST:PORT (e.g. 10.0.0.1:12345), got "
                           f"{coordinator_address!r}.")
  return ProcessSetup(coordinator_address, num_processes, process_id, source)


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None, timeout_seconds: int = 300) -> ProcessSetup:
  """Joins the other processes (jax.distributed.initialize) unless this is a single-process run.

  Must run before anything touches a JAX device. On CPU, cross-process collectives use gloo over
  TCP. Every process sees all of its host's devices (no one-device-per-process auto-detection).
  """
  setup = resolve(coordinator_address, num_processes, process_id)
  if setup.num_processes == 1:
    return setup
  # The default since JAX 0.4.3x, set anyway: without it CPU processes cannot run collectives.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(setup.coordinator_address, setup.num_processes, setup.process_id,
                             cluster_detection_method="deactivate",
                             initialization_timeout=timeout_seconds)
  logging.info("Process %d of %d (%s), coordinator %s: %d local device(s) of %d.", setup.process_id,
               setup.num_processes, setup.source, setup.coordinator_address, jax.local_device_count(),
               jax.device_count())
  return setup


def is_main_process() -> bool:
  """True on the process that writes logs, samples and config files (process 0)."""
  return jax.process_index() == 0


def any_process(flag: bool) -> bool:
  """True on every process if `flag` is True on any of them (a collective: all must call it)."""
  if jax.process_count() == 1:
    return bool(flag)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.bool_))))


def barrier(name: str) -> None:
  """Waits until every process got here (no-op with one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)


def stop_requested(stop: threading.Event, step: int, every: int) -> bool:
  """Whether to stop after `step` because a signal set `stop`, the same answer on every process.

  One process: as soon as the event is set. Several: a signal may reach them at different steps,
  and a process leaving the loop alone would leave the others waiting in the step's collectives;
  so they agree (one small all-gather) every `every` steps and stop together.
  """
  if jax.process_count() == 1:
    return stop.is_set()
  return step % every == 0 and any_process(stop.is_set())
