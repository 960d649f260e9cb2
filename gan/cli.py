"""The command-line core shared by the `python -m gan.*` commands: flags, errors, image files.

A command module defines its flags in `define_flags(flag_values)`, called only when the module runs
as a program (it is also a library, and importing it must not change the process-wide flags):

  def main(argv, flag_values=flags.FLAGS):
    cli.run_command(lambda: run_cli(flag_values, argv))   # argv: the program, then what the flags left

  if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=cli.parse_flags)

Errors caused by the user's input or the machine (`UserError`, or the command's own list) print one
paragraph "error: ..." on stderr and exit with code 1, a bad flag included; Ctrl-C exits with 130;
anything else is a bug and keeps its traceback. `call` runs a command in-process (tests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import logging as std_logging
import os
from pathlib import Path
import sys
import tempfile
from typing import Any, BinaryIO, NoReturn, Optional, Union

from absl import flags
from absl import logging
import ml_collections

PathLike = Union[str, os.PathLike]

# What counts as an image file in a folder, for every reader (datasets, edit, stylize).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# What the commands write (= gan.provenance.IMAGE_FORMATS: the formats that carry a provenance record).
OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg")


class UserError(ValueError):
  """An error the user can fix from its message (bad input, missing file, full disk, no network).

  Commands report it as one paragraph "error: <message>" and exit with code 1, not a traceback.
  """


def one_line(error: BaseException, root_cause: bool = False) -> str:
  """The message of `error` on one line, to embed in another message.

  root_cause: report the explicit root cause (`raise ... from`) as "Type: message", at most 300
  characters instead; for errors of other libraries, whose outer message may only say "see
  details" (TensorStore). Our own messages already say what is wrong, and their cause is the
  detail they summarise, so by default it is not followed. Implicit contexts never are (they are
  internal, e.g. json's StopIteration).
  """
  if not root_cause:
    return " ".join(str(error).split())
  while error.__cause__ is not None:
    error = error.__cause__
  text = " ".join(str(error).split()).rstrip(".")
  return f"{type(error).__name__}: {text[:300]}{'...' if len(text) > 300 else ''}"


def one_paragraph(text: str) -> str:
  """Library messages as one line: no embedded traceback (kept: its last line), no escaped newlines."""
  if "Traceback (most recent call last)" in text:
    head, _, tail = text.partition("Traceback (most recent call last)")
    text = f"{head} {tail.strip().splitlines()[-1]}"
  return " ".join(text.replace("\\n", " ").split()).rstrip(". ")


def fail(message: str, code: int = 1, log: bool = True) -> NoReturn:
  """Prints `message` as one paragraph "error: ..." on stderr (and logs it: a run's log ends with
  why it stopped), then exits with `code` (SystemExit)."""
  if log:
    logging.error("%s", message)
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def run_command(main_fn: Callable[[], Any], user_errors: tuple[type[BaseException], ...] = (UserError,),
                log: bool = False, interrupted: str = "Interrupted.") -> None:
  """Runs `main_fn`; the one place where a command's errors become its output and exit code.

  user_errors: the errors reported as one paragraph "error: <message on one line>" with exit code 1
  (the rest are bugs: their traceback is kept). Ctrl-C prints "error: <interrupted>" and exits with
  130. log: also log the message (commands with a log file, see `fail`).
  """
  try:
    main_fn()
  except user_errors as e:
    fail(one_line(e), log=log)
  except KeyboardInterrupt:
    fail(interrupted, code=130, log=log)


def check_no_arguments(args: Sequence[str]) -> None:
  """UserError when there are positional arguments (what is left after the flags) where a command
  takes none: often a flag value with spaces that was not quoted."""
  if args:
    raise UserError(f"Unexpected arguments {' '.join(args)!r} (a flag value with spaces needs quotes). "
                    "See --help.")


def alias_dashes(names: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines --a-b for each flag --a_b in `names`: both spellings are documented and in use."""
  for name in names:
    flags.DEFINE_alias(name.replace("_", "-"), name, flag_values=flag_values)


def _config_file(argv: Sequence[str]) -> Optional[str]:
  """The path given to the last --config (without a ":argument"), or None."""
  path = None
  for i, arg in enumerate(argv):
    if arg.startswith(("--config=", "-config=")):
      path = arg.split("=", 1)[1].split(":", 1)[0]
    elif arg in ("--config", "-config") and i + 1 < len(argv):
      path = argv[i + 1].split(":", 1)[0]
  return path


def parse_flags(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """absl's flag parsing (returns the arguments left), but a bad flag is one paragraph and exit 1
  instead of absl's usage dump. With a --config flag (ml_collections' config_flags) also the config
  errors it would show as a traceback: an override of a key the config lacks, a config file that is
  missing or does not load."""
  has_config = "config" in flag_values
  path = _config_file(argv) if has_config else None
  if path and not os.path.isfile(path):
    fail(f"Config file {path} not found (relative paths start at {os.getcwd()}); the configs are in "
         "configs/.", log=False)
  config_errors = Exception if has_config else ()   # without a config, anything else is a bug
  try:
    argv = flag_values(argv)
    if has_config:
      ml_collections.ConfigDict(flag_values.config)     # a config that failed to load raises on access
  except flags.Error as e:
    message = one_paragraph(str(e))
    message += "" if message.endswith("?") else "."     # "Did you mean: num ?"
    keys = "; configs/default.py documents every --config.* key" if has_config else ""
    fail(f"{message} See --help for the flags{keys}.", log=False)
  except config_errors as e:  # pylint: disable=broad-except  (ml_collections, or the config file's code)
    fail(_config_error(e, path), log=False)
  return argv


def _config_error(error: Exception, path: Optional[str]) -> str:
  """The message for an exception raised while loading a --config and its overrides."""
  if isinstance(error, (AttributeError, KeyError)):   # ml_collections: an override of an unknown key
    while isinstance(error.args[0] if error.args else None, BaseException):
      error = error.args[0]
    return (f"A --config.* override names a key the config does not have: "
            f"{one_paragraph(str(error.args[0] if error.args else error))} (configs/default.py lists every key).")
  return f"Cannot load --config {path}: {type(error).__name__}: {one_paragraph(str(error))}."


def call(define_flags: Callable[[flags.FlagValues], None],
         main: Callable[[list[str], flags.FlagValues], Any], argv: Sequence[str]) -> int:
  """Runs a command in-process as its command line runs it (`python -m gan.X ARGV`): its flags on a
  fresh flag set, parse_flags, main. Returns the exit code; the output goes to stdout / stderr."""
  flag_values = flags.FlagValues()
  define_flags(flag_values)
  try:
    main(parse_flags(["gan", *argv], flag_values), flag_values)
  except SystemExit as e:
    return e.code if isinstance(e.code, int) else int(e.code is not None)
  return 0


def quiet_library_info_logs() -> None:
  """Keep Orbax's per-save INFO lines out of the progress log (warnings still show)."""
  def keep(record) -> bool:
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname
  logging.get_absl_handler().addFilter(keep)


# --- Image files in and out ------------------------------------------------------------------


def image_files(folder: PathLike) -> list[Path]:
  """The image files (IMAGE_EXTENSIONS, any case) directly in `folder`, sorted."""
  return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def image_outputs(source: PathLike, out: PathLike, flag: str) -> list[tuple[Path, Path]]:
  """[(input image, output image)] of a command that maps images to images; UserError when the pair
  makes no sense. A file -> `out` (ending in OUTPUT_EXTENSIONS, or an existing folder:
  out/<name>.png); a folder (the images in it, see image_files) -> out/<name>.png each. flag: the
  source's flag, for messages. (Outputs are written by gan.provenance.write_image, with their record.)
  """
  source, out = Path(source), Path(out)
  if source.is_dir():
    inputs = image_files(source)
    if not inputs:
      raise UserError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in the {flag} folder {source}.")
    if out.exists() and not out.is_dir():
      raise UserError(f"{flag} is a folder, so --out must be a folder; {out} is a file.")
    outputs = [out / f"{p.stem}.png" for p in inputs]
    clashes = sorted({o.name for o in outputs if outputs.count(o) > 1})   # shoe.jpg and shoe.png
    if clashes:
      raise UserError(f"Several inputs in {source} would be written to the same output "
                      f"{', '.join(clashes)}; rename them.")
    return list(zip(inputs, outputs))
  if not source.is_file():
    raise UserError(f"{flag}: Image file not found: {source}")
  if out.is_dir():
    return [(source, out / f"{source.stem}.png")]
  if out.suffix.lower() not in OUTPUT_EXTENSIONS:
    raise UserError(f"Outputs are PNG or JPEG (the formats that carry the provenance record): --out must end "
                    f"in .png, .jpg or .jpeg (or be a folder), got {out}.")
  return [(source, out)]


def write_atomically(path: PathLike, write: Callable[[BinaryIO], None]) -> None:
  """Calls write(file) on a temporary file in the same folder, fsyncs it and renames it to `path`:
  readers see the whole file or none, and a failed write (disk full, an exception in `write`)
  leaves nothing behind. The folder must exist."""
  path = Path(path)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)   # mkstemp makes it private; outputs and shared caches should be readable
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise
