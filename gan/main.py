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
import logging as std_logging
import os
import sys
from typing import Optional

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from gan import checkpointing
from gan import data
from gan import distributed
from gan import recovery
from gan import train

# Errors caused by the user's input or the machine: reported as one message, not a traceback.
USER_ERRORS = (data.DataError, checkpointing.CheckpointMismatchError, checkpointing.CheckpointCorruptError,
               checkpointing.CheckpointWriteError, train.ConfigError, train.NonFiniteLossError,
               distributed.DistributedError)
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


def _one_paragraph(text: str) -> str:
  """Library messages as one line: no embedded traceback (kept: its last line), no escaped newlines."""
  if "Traceback (most recent call last)" in text:
    head, _, tail = text.partition("Traceback (most recent call last)")
    text = f"{head} {tail.strip().splitlines()[-1]}"
  return " ".join(text.replace("\\n", " ").split()).rstrip(". ")


def _config_file(argv: list[str]) -> Optional[str]:
  """The path given to the last --config (without a ":argument"), or None."""
  path = None
  for i, arg in enumerate(argv):
    if arg.startswith(("--config=", "-config=")):
      path = arg.split("=", 1)[1].split(":", 1)[0]
    elif arg in ("--config", "-config") and i + 1 < len(argv):
      path = argv[i + 1].split(":", 1)[0]
  return path


def parse_flags(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """absl's flag parsing, plus the config errors it would show as a traceback: an override of a
  key the config lacks, a config file that is missing or does not load. One paragraph, exit 1."""
  path = _config_file(argv)
  if path and not os.path.isfile(path):
    fail(f"Config file {path} not found (relative paths start at {os.getcwd()}); the configs are in "
         "configs/.", log=False)
  try:
    argv = flag_values(argv)
    ml_collections.ConfigDict(flag_values.config)     # a config that failed to load raises on access
  except flags.Error as e:
    fail(f"{_one_paragraph(str(e))}. See --helpfull for the flags; configs/default.py documents every "
         "--config.* key.", log=False)
  except (AttributeError, KeyError) as e:    # raised by ml_collections for an unknown override key
    while isinstance(e.args[0] if e.args else None, BaseException):
      e = e.args[0]
    fail(f"A --config.* override names a key the config does not have: "
         f"{_one_paragraph(str(e.args[0] if e.args else e))} (configs/default.py lists every key).", log=False)
  except Exception as e:  # pylint: disable=broad-except  (the config file's own code raised)
    fail(f"Cannot load --config {path}: {type(e).__name__}: {_one_paragraph(str(e))}.", log=False)
  return argv


def quiet_library_info_logs() -> None:
  """Keep Orbax's per-save INFO lines out of the progress log (warnings still show)."""
  def keep(record) -> bool:
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname
  logging.get_absl_handler().addFilter(keep)


def fail(message: str, code: int = 1, log: bool = True) -> None:
  """Prints `message` as one paragraph "error: ..." on stderr (and logs it: the run's log ends with
  why it stopped), then exits with `code` (SystemExit)."""
  if log:
    logging.error("%s", message)
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def run(config: ml_collections.ConfigDict, workdir: str, coordinator_address: Optional[str] = None,
        num_processes: Optional[int] = None, process_id: Optional[int] = None) -> None:
  """Joins the other processes (if any) and trains; user and machine errors end in `fail`.

  SIGTERM / SIGINT are handled from here on, so one arriving during the setup (joining, loading
  data, restoring, which can take a while) also ends the run cleanly (exit code 0).
  """
  try:
    if not workdir:
      fail("--workdir is empty: pass the folder of the run (it is created if missing).")
    if os.path.exists(workdir) and not os.path.isdir(workdir):
      fail(f"--workdir {workdir} is a file, not a folder: pass a folder (it is created if missing).")
    with train.stop_on_signals() as stop:
      distributed.initialize(coordinator_address, num_processes, process_id)
      recovery.train_and_evaluate(config, workdir, stop)
  except USER_ERRORS as e:
    fail(str(e))
  except OSError as e:
    # Logs, samples or config.json (checkpoint writes say so themselves: CheckpointWriteError).
    if e.errno in DISK_FULL:
      fail(f"No space left on the device writing {e.filename or workdir}: free some space (or move the "
           "run to a larger disk with --workdir) and rerun the same command; it resumes from the latest "
           "complete checkpoint.")
    if e.errno in NOT_WRITABLE:
      fail(f"Cannot write {e.filename or workdir}: {e.strerror}. Pass a --workdir you can write to.")
    raise
  except KeyboardInterrupt:
    # Ctrl-C twice (the first one asks for a clean stop, the second one stops at once).
    fail("Interrupted: rerun the same command to resume from the latest complete checkpoint.", code=130)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  quiet_library_info_logs()
  f = flags.FLAGS
  run(f.config, f.workdir, f.coordinator_address, f.num_processes, f.process_id)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=parse_flags)
