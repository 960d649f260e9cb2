"""Command line: the studio, a local web app over a runs folder (runs, samples, human studies).

  python -m gan.studio --runs runs/                 # http://127.0.0.1:8765/
  python -m gan.studio --runs runs/ --port 0        # any free port (printed)
  python -m gan.studio --runs runs/ --host 0.0.0.0  # reachable from other machines: a warning, no auth

Answers go to <runs>/studio.sqlite (--db to change); exports to <runs>/studio_exports/<study>/.
Served by waitress (a threaded WSGI server); Ctrl-C stops it, and every acknowledged answer is
already committed to disk.
"""

from __future__ import annotations

from typing import Sequence

from absl import app
from absl import flags
from absl import logging

from gan import cli

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Command-line flags, defined only when run as a program."""
  flags.DEFINE_string("runs", "runs", "The folder of runs to browse and study.", flag_values=flag_values)
  flags.DEFINE_string("host", "127.0.0.1", "Address to bind. Anything but localhost exposes the studio "
                      "(no authentication) to the network: a warning is printed.", flag_values=flag_values)
  flags.DEFINE_integer("port", 8765, "Port (0 = any free port; the address is printed).", flag_values=flag_values)
  flags.DEFINE_string("db", None, "SQLite file of the studies (default <runs>/studio.sqlite).",
                      flag_values=flag_values)
  flags.DEFINE_integer("threads", 8, "Request threads of the server.", flag_values=flag_values)


def run_cli(f: flags.FlagValues, argv: Sequence[str]) -> None:
  cli.check_no_arguments(argv[1:])
  import waitress  # pylint: disable=g-import-not-at-top  (slow imports after the flags are checked)
  from gan.studio import app as studio_app  # pylint: disable=g-import-not-at-top
  if not 0 <= f.port <= 65535:
    raise cli.UserError(f"--port must be in [0, 65535], got {f.port}.")
  if f.threads < 1:
    raise cli.UserError(f"--threads must be positive, got {f.threads}.")
  if f.host not in LOCAL_HOSTS:
    message = (f"--host {f.host}: the studio is reachable from other machines, without authentication; "
               "anyone who can reach it can read the runs' samples and add answers.")
    logging.warning("%s", message)
    print(f"warning: {message}", flush=True)
  web_app = studio_app.create_app(f.runs, f.db, studio_app.LOCAL_HOSTS if f.host in LOCAL_HOSTS else None)
  try:
    server = waitress.create_server(web_app, host=f.host, port=f.port, threads=f.threads)
  except OSError as e:
    raise cli.UserError(f"Cannot listen on {f.host}:{f.port}: {e.strerror or e} (another program uses the "
                        "port? try --port 0).") from None
  host = f"[{f.host}]" if ":" in f.host else f.host
  print(f"Studio at http://{host}:{server.effective_port}/ (runs: {f.runs}; Ctrl-C stops)", flush=True)
  server.run()   # returns on Ctrl-C / SIGINT (waitress closes its sockets)
  print("Stopped; every acknowledged answer is in the database.", flush=True)


def main(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """`python -m gan.studio`: user errors print one paragraph "error: ..." and exit with code 1."""
  cli.run_command(lambda: run_cli(flag_values, argv), interrupted="Stopped (every acknowledged answer is saved).")


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
