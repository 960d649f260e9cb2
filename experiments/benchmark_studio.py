"""Load and fault benchmark of the studio (gan.studio), on loopback only.

  python experiments/benchmark_studio.py [--raters 24] [--answers_per_rater 50] [--num_trials 500]

Builds a runs folder with two copies of a tiny trained run (configs/tiny.py on synthetic data, the
tests' data; ~30 s), starts `python -m gan.studio --port 0` as a subprocess and:

1. Load: a `--num_trials` preference study; `--raters` simulated raters (threads, one anonymous
   session each) each answer `--answers_per_rater` trials like the page does (GET next trial, GET
   both images, POST the answer) and re-send a `--resend` fraction of their answers (a double
   click: must be 409 and never a second row). Bounded by `--max_seconds`. Counted afterwards in
   SQLite: rows, duplicate rows, acknowledged answers missing. Latency percentiles per request kind.
2. Faults: a second study; raters answer until `--kill_after` answers were acknowledged, then the
   server is killed with SIGKILL mid-study (requests in flight) and restarted on the same files;
   every acknowledged answer must be in the database, and the restarted server takes new answers.

Writes experiments/results/studio_load.json (or --out) and prints the numbers.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
from pathlib import Path
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Optional
import urllib.error
import urllib.request

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from gan import cli  # pylint: disable=g-import-not-at-top
from gan import provenance  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
flags.DEFINE_integer("raters", 24, "Concurrent simulated raters (threads, one session each).")
flags.DEFINE_integer("answers_per_rater", 50, "Answers each rater gives in the load phase.")
flags.DEFINE_integer("num_trials", 500, "Trials of each study.")
flags.DEFINE_float("resend", 0.1, "Fraction of answers sent a second time (must be 409, no row).")
flags.DEFINE_float("max_seconds", 600.0, "Time bound of each phase (raters stop when it passes).")
flags.DEFINE_integer("kill_after", 300, "Acknowledged answers before the server is killed with SIGKILL.")
flags.DEFINE_integer("threads", 8, "Request threads of the server (gan.studio --threads).")
flags.DEFINE_string("workdir", None, "Folder for the runs and the database (default: a temporary one).")
flags.DEFINE_string("out", str(REPO / "experiments" / "results" / "studio_load.json"), "Results JSON.")


def make_runs(root: Path) -> Path:
  """root/runs with run_a and run_b: copies of one configs/tiny.py run (4 steps) on the tests'
  synthetic data, which also gets a held-out test split."""
  from configs import default  # pylint: disable=g-import-not-at-top
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from gan import train  # pylint: disable=g-import-not-at-top
  from tests.conftest import write_idx_files  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  data_dir = root / "data"
  for split, n in (("train", 256), ("test", 64)):
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, (n, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
      images[i, 2 * c + 2:2 * c + 6, 4:24] = 230
    write_idx_files(data_dir, images, labels, split=split)
  runs_dir = root / "runs"
  config = default.apply_overrides(tiny.get_config(), {"data.dir": str(data_dir)})
  train.train_and_evaluate(config, str(runs_dir / "run_a"))
  shutil.copytree(runs_dir / "run_a", runs_dir / "run_b")
  return runs_dir


def start_server(runs_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
  process = subprocess.Popen([sys.executable, "-m", "gan.studio", f"--runs={runs_dir}", "--port=0",
                              f"--threads={FLAGS.threads}"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=open(log_path, "a"), text=True)
  line = process.stdout.readline()
  if not line.startswith("Studio at "):
    raise RuntimeError(f"the server did not start: {line!r}; see {log_path}")
  return process, line.split()[2]


def request(url: str, body: Optional[dict] = None) -> tuple[int, bytes]:
  data = None if body is None else json.dumps(body).encode()
  req = urllib.request.Request(url, data, {"Content-Type": "application/json"} if data else {})
  try:
    with urllib.request.urlopen(req, timeout=120) as response:
      return response.status, response.read()
  except urllib.error.HTTPError as e:
    return e.code, e.read()


class Rater(threading.Thread):
  """One simulated rater: next trial, its images, the answer (and sometimes the answer again)."""

  def __init__(self, base: str, study_id: str, index: int, num_answers: int, deadline: float, resend: float,
               stop: threading.Event, counter: "Counter"):
    super().__init__(daemon=True)
    self.base, self.study_id, self.session = base, study_id, f"rater-{study_id[:6]}-{index:04d}"
    self.num_answers, self.deadline, self.stop, self.counter = num_answers, deadline, stop, counter
    self.rng = np.random.default_rng(index)
    self.resend = resend
    self.latency: dict[str, list[float]] = {"next": [], "image": [], "answer": []}
    self.sent = self.acknowledged_count = self.resent = self.rejected_as_duplicate = 0
    self.acknowledged: list[int] = []
    self.errors: list[str] = []
    self.unacknowledged: list[int] = []    # sent, but the server died before answering

  def timed(self, kind: str, url: str, body: Optional[dict] = None) -> tuple[int, bytes]:
    start = time.perf_counter()
    result = request(url, body)
    self.latency[kind].append(time.perf_counter() - start)
    return result

  def run(self) -> None:
    api = f"{self.base}api/studies/{self.study_id}"
    while len(self.acknowledged) < self.num_answers and time.time() < self.deadline and not self.stop.is_set():
      try:
        status, raw = self.timed("next", f"{api}/next?session={self.session}")
        trial = json.loads(raw)
        if status != 200:
          self.errors.append(f"next: {status} {raw[:100]!r}")
          return
        if trial.get("done"):
          return
        for image in trial["images"]:
          status, _ = self.timed("image", self.base.rstrip("/") + image)
          if status != 200:
            self.errors.append(f"image: {status}")
        answer = {"trial": trial["trial"], "session": self.session, "choice": str(self.rng.choice(["a", "b"])),
                  "response_ms": int(self.rng.integers(300, 3000))}
        self.sent += 1
        self.unacknowledged.append(trial["trial"])
        status, raw = self.timed("answer", f"{api}/answers", answer)
        self.unacknowledged.pop()
        if status == 201:
          self.acknowledged.append(trial["trial"])
          self.counter.add()
        else:
          self.errors.append(f"answer: {status} {raw[:100]!r}")
        if self.rng.random() < self.resend:
          self.resent += 1
          status, _ = self.timed("answer", f"{api}/answers", answer)
          self.rejected_as_duplicate += status == 409
      except (OSError, ValueError, http.client.HTTPException) as e:   # refused / reset / cut short: the server is down
        self.errors.append(f"{type(e).__name__}: {e}")
        return


class Counter:
  def __init__(self):
    self.value, self.lock = 0, threading.Lock()

  def add(self) -> None:
    with self.lock:
      self.value += 1


def percentiles(values: list[float]) -> dict[str, Any]:
  if not values:
    return {"n": 0}
  ms = np.asarray(values) * 1000
  return {"n": len(values), "p50_ms": round(float(np.percentile(ms, 50)), 1),
          "p90_ms": round(float(np.percentile(ms, 90)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
          "max_ms": round(float(ms.max()), 1)}


def stored(db_path: Path, study_id: str) -> tuple[set[tuple[int, str]], int]:
  """({(trial, session)} of the stored answers, number of duplicate (trial, session) groups)."""
  with sqlite3.connect(db_path) as conn:
    rows = conn.execute("SELECT trial, session FROM answers WHERE study_id = ?", (study_id,)).fetchall()
    duplicates = conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM answers WHERE study_id = ? "
                              "GROUP BY trial, session HAVING COUNT(*) > 1)", (study_id,)).fetchone()[0]
  return set(rows), duplicates


def create_study(base: str, name: str) -> str:
  status, raw = request(base + "api/studies", {"name": name, "kind": "preference", "runs": ["run_a", "run_b"],
                                               "num_trials": FLAGS.num_trials, "seed": 0})
  if status != 201:
    raise RuntimeError(f"study creation failed: {status} {raw!r}")
  return json.loads(raw)["id"]


def phase_summary(raters: list[Rater], rows: set, duplicates: int, seconds: float) -> dict[str, Any]:
  acknowledged = {(t, r.session) for r in raters for t in r.acknowledged}
  return {
      "raters": len(raters), "seconds": round(seconds, 2),
      "answers_sent": sum(r.sent for r in raters),
      "acknowledged": sum(len(r.acknowledged) for r in raters),
      "rows_in_sqlite": len(rows), "duplicate_rows": duplicates,
      "acknowledged_missing": len(acknowledged - rows),
      "stored_not_acknowledged": len(rows - acknowledged),
      "resent": sum(r.resent for r in raters), "resent_rejected_409": sum(r.rejected_as_duplicate for r in raters),
      "errors": sum(len(r.errors) for r in raters), "error_examples": [e for r in raters for e in r.errors][:5],
      "answers_per_second": round(sum(len(r.acknowledged) for r in raters) / seconds, 1),
      "latency": {kind: percentiles([x for r in raters for x in r.latency[kind]])
                  for kind in ("next", "image", "answer")},
  }


def main(argv):
  cli.check_no_arguments(argv[1:])
  start_time = time.time()
  root = Path(FLAGS.workdir or tempfile.mkdtemp(prefix="studio_bench_"))
  root.mkdir(parents=True, exist_ok=True)
  runs_dir = root / "runs" if (root / "runs" / "run_a").is_dir() else make_runs(root)
  db_path, log = runs_dir / "studio.sqlite", root / "server.log"
  results: dict[str, Any] = {
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "machine": {"cpu": provenance.cpu_model(), "cores": os.cpu_count(),
                  "note": "loopback only; the 2 cores were shared with a training job running beside it"},
      "flags": {k: getattr(FLAGS, k) for k in ("raters", "answers_per_rater", "num_trials", "resend",
                                               "max_seconds", "kill_after", "threads")}}
  process, base = start_server(runs_dir, log)
  try:
    # 1. Load.
    study_id = create_study(base, "load")
    stop, counter = threading.Event(), Counter()
    start = time.time()
    raters = [Rater(base, study_id, k, FLAGS.answers_per_rater, start + FLAGS.max_seconds, FLAGS.resend, stop, counter)
              for k in range(FLAGS.raters)]
    for r in raters:
      r.start()
    for r in raters:
      r.join()
    rows, duplicates = stored(db_path, study_id)
    results["load"] = phase_summary(raters, rows, duplicates, time.time() - start)
    print(json.dumps({"load": results["load"]}, indent=2), flush=True)

    # 2. kill -9 mid-study, restart.
    study_id = create_study(base, "kill")
    stop, counter = threading.Event(), Counter()
    start = time.time()
    raters = [Rater(base, study_id, 1000 + k, FLAGS.num_trials, start + FLAGS.max_seconds, 0.0, stop, counter)
              for k in range(FLAGS.raters)]
    for r in raters:
      r.start()
    while counter.value < FLAGS.kill_after and time.time() < start + FLAGS.max_seconds:
      time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = counter.value
    stop.set()
    for r in raters:
      r.join()
    process, base = start_server(runs_dir, log)
    rows, duplicates = stored(db_path, study_id)
    summary = phase_summary(raters, rows, duplicates, time.time() - start)
    summary["in_flight_at_kill"] = sum(len(r.unacknowledged) for r in raters)
    summary["acknowledged_when_killed"] = killed_at
    _, raw = request(f"{base}api/studies/{study_id}/next?session=rater-after-restart")
    status, _ = request(f"{base}api/studies/{study_id}/answers",
                        {"trial": json.loads(raw)["trial"], "session": "rater-after-restart", "choice": "a"})
    summary["answer_after_restart_status"] = status
    status, raw = request(f"{base}api/studies/{study_id}/results")
    summary["results_answers_after_restart"] = json.loads(raw)["results"]["answers"]
    results["kill_9"] = summary
    print(json.dumps({"kill_9": summary}, indent=2), flush=True)
  finally:
    if process.poll() is None:
      process.send_signal(signal.SIGINT)
      process.wait(timeout=60)
  results["provenance"] = provenance.finish(provenance.record(config=results["flags"], seed=0, devices=False,
                                                              start_time=start_time))
  Path(FLAGS.out).parent.mkdir(parents=True, exist_ok=True)
  Path(FLAGS.out).write_text(json.dumps(results, indent=2) + "\n")
  ok = (results["load"]["acknowledged_missing"] == 0 and results["load"]["duplicate_rows"] == 0
        and results["kill_9"]["acknowledged_missing"] == 0 and results["kill_9"]["duplicate_rows"] == 0)
  print(f"Wrote {FLAGS.out}: {'no acknowledged answer lost, no duplicate row' if ok else 'FAILED'}")
  if not ok:
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
