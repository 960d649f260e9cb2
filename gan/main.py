"""Command line: train a config in a workdir (resuming from its latest checkpoint).

  python -m gan.main --config configs/dcgan_fashion_mnist.py --workdir runs/dcgan \
      [--config.train.steps=2000 ...]
"""

import logging as std_logging
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from gan import checkpointing
from gan import data
from gan import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and samples.")
flags.mark_flags_as_required(["config", "workdir"])

# Errors caused by the user's input: reported as one message, not a traceback.
USER_ERRORS = (data.DataError, checkpointing.CheckpointMismatchError, train.ConfigError,
               train.NonFiniteLossError)


def quiet_library_info_logs() -> None:
  """Keep Orbax's per-save INFO lines out of the progress log (warnings still show)."""
  def keep(record) -> bool:
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname
  logging.get_absl_handler().addFilter(keep)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  quiet_library_info_logs()
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except USER_ERRORS as e:
    logging.error("%s: %s", type(e).__name__, e)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
