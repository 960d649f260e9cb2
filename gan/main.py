"""Command line: train a config in a workdir (resuming from its latest checkpoint).

  python -m gan.main --config configs/dcgan_fashion_mnist.py --workdir runs/dcgan \
      [--config.train.steps=2000 ...]

Several hosts: start the same command once per host with --coordinator_address, --num_processes
and --process_id (or the environment variables of gan/distributed.py; README "Multi-host and
faults" has the SLURM command). Errors caused by the input or the machine print one paragraph
"error: ..." on stderr and exit with code 1 (SIGTERM or Ctrl-C: a checkpoint at the current step, exit 0;
Ctrl-C twice: exit 130 at once).
"""

import errno
import os
from typing import Optional

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags

from gan import checkpointing
from gan import cli
from gan import distributed
from gan import host_memory
from gan import train

# Errors caused by the user's input or the machine: reported as one message, not a traceback.
# (cli.UserError covers runs.ConfigError / RunError and data.DataError.)
USER_ERRORS = (cli.UserError, checkpointing.CheckpointMismatchError, checkpointing.CheckpointCorruptError,
               checkpointing.CheckpointWriteError, train.NonFiniteLossError, distributed.DistributedError)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS, sys_argv: Optional[list[str]] = None) -> None:
  """Command-line flags, defined only when run as a program (the module is also a library).

  flag_values / sys_argv: another flag set and its command line (tests); the config flag reads its
  --config.* overrides from sys_argv (default sys.argv).
  """
  config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).", flag_values=flag_values,
                                  lock_config=True, sys_argv=sys_argv)
  flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and samples.", flag_values=flag_values)
  flags.DEFINE_string("coordinator_address", None, "Multi-host: HOST:PORT of process 0, the same on "
                      "every process (default $JAX_COORDINATOR_ADDRESS).", flag_values=flag_values)
  flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes (default $JAX_NUM_PROCESSES, "
                       "under srun $SLURM_NTASKS, under mpirun $OMPI_COMM_WORLD_SIZE; else 1).",
                       flag_values=flag_values)
  flags.DEFINE_integer("process_id", None, "Multi-host: this process's id in [0, num_processes) (default "
                       "$JAX_PROCESS_ID, $SLURM_PROCID, $OMPI_COMM_WORLD_RANK).", flag_values=flag_values)
  flags.mark_flags_as_required(["config", "workdir"], flag_values=flag_values)


def run(config: ml_collections.ConfigDict, workdir: str, coordinator_address: Optional[str] = None,
        num_processes: Optional[int] = None, process_id: Optional[int] = None) -> None:
  """Joins the other processes (if any) and trains; user and machine errors end in `fail`.

  SIGTERM / SIGINT are handled from here on, so one arriving during the setup (joining, loading
  data, restoring, which can take a while) also ends the run cleanly (exit code 0).
  """
  try:
    if not workdir:
      cli.fail("--workdir is empty: pass the folder of the run (it is created if missing).")
    if os.path.exists(workdir) and not os.path.isdir(workdir):
      cli.fail(f"--workdir {workdir} is a file, not a folder: pass a folder (it is created if missing).")
    with train.stop_on_signals() as stop:
      distributed.initialize(coordinator_address, num_processes, process_id)
      train.train_and_evaluate(config, workdir, stop)
  except USER_ERRORS as e:
    cli.fail(str(e))
  except OSError as e:
    # Logs, samples or config.json (checkpoint writes say so themselves: CheckpointWriteError).
    if e.errno in DISK_FULL:
      cli.fail(f"No space left on the device writing {e.filename or workdir}: free some space (or move the "
           "run to a larger disk with --workdir) and rerun the same command; it resumes from the latest "
           "complete checkpoint.")
    if e.errno in NOT_WRITABLE:
      cli.fail(f"Cannot write {e.filename or workdir}: {e.strerror}. Pass a --workdir you can write to.")
    raise
  except KeyboardInterrupt:
    # Ctrl-C twice (the first one asks for a clean stop, the second one stops at once).
    cli.fail("Interrupted: rerun the same command to resume from the latest complete checkpoint.", code=130)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  cli.quiet_library_info_logs()
  f = flags.FLAGS
  run(f.config, f.workdir, f.coordinator_address, f.num_processes, f.process_id)


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # before XLA starts its threads (gan/host_memory.py says why)
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
