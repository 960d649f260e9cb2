"""gan.studio: the HTTP API (Flask test client) on tiny runs, the statistics against closed forms /
scipy, bad input and path traversal, and a kill -9 of the server mid-study."""

import http.client
import io
import json
import os
from pathlib import Path
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image
import pytest
from scipy import optimize
from scipy import stats

from gan.studio import analysis
from gan.studio import store

from conftest import write_idx_files

REPO = Path(__file__).resolve().parents[1]


def make_runs_folder(root: Path, tiny_run, tiny_data_dir: str) -> Path:
  """<root>/runs with two copies of the tiny run ("dcgan_a", "dcgan_b", whose data folder gains a
  held-out test split and whose metrics.jsonl gains an FID curve and a half-written last line),
  a run with a corrupt config.json and a folder that is no run."""
  data_dir = root / "data"
  shutil.copytree(tiny_data_dir, data_dir)
  rng = np.random.default_rng(1)
  write_idx_files(data_dir, rng.integers(0, 255, (24, 28, 28), dtype=np.uint8), np.arange(24) % 10, split="test")
  runs_dir = root / "runs"
  for name in ("dcgan_a", "dcgan_b"):
    run = runs_dir / name
    shutil.copytree(tiny_run[0], run)
    config = json.loads((run / "config.json").read_text())
    config["data"]["dir"] = str(data_dir)
    (run / "config.json").write_text(json.dumps(config))
    with open(run / "metrics.jsonl", "a") as f:
      for step, fid in ((2, 90.0), (4, 70.5)):
        f.write(json.dumps({"step": step, "eval/fid": fid}) + "\n")
      f.write('{"step": 6, "eval/f')     # a run being written
  (runs_dir / "broken").mkdir()
  (runs_dir / "broken" / "config.json").write_text('{"model": {"name": "dc')
  (runs_dir / "empty").mkdir()
  return runs_dir


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_run, tiny_data_dir):
  """(Flask test client, runs folder) of a studio over make_runs_folder."""
  from gan.studio import app as studio_app  # pylint: disable=g-import-not-at-top
  runs_dir = make_runs_folder(tmp_path_factory.mktemp("studio"), tiny_run, tiny_data_dir)
  web_app = studio_app.create_app(runs_dir)
  web_app.testing = True
  return web_app.test_client(), runs_dir


def create(client, **overrides):
  body = {"name": "pref", "kind": "preference", "runs": ["dcgan_a", "dcgan_b"], "num_trials": 6, "seed": 3,
          **overrides}
  return client.post("/api/studies", json=body)


def serve(client, study_id: str, session: str) -> int:
  """The next trial of `session` (the server records it as served): what the rater page asks first."""
  reply = client.get(f"/api/studies/{study_id}/next?session={session}").get_json()
  assert not reply["done"], reply
  return reply["trial"]


def count_rows(runs_dir: Path, study_id: str) -> int:
  with sqlite3.connect(runs_dir / "studio.sqlite") as conn:
    return conn.execute("SELECT COUNT(*) FROM answers WHERE study_id = ?", (study_id,)).fetchone()[0]


# --- Statistics ----------------------------------------------------------------------------------


def test_bradley_terry_two_players_is_the_log_odds():
  """Two players: the MLE score difference is log(wins_a / wins_b) exactly."""
  scores = analysis.bradley_terry(np.array([[0.0, 7.0], [3.0, 0.0]]))
  np.testing.assert_allclose(scores[0] - scores[1], np.log(7 / 3), rtol=1e-10)
  np.testing.assert_allclose(scores.mean(), 0.0, atol=1e-12)


def test_bradley_terry_three_players_maximizes_the_likelihood():
  """Three players: the MM fixed point equals a direct numerical maximization of the likelihood."""
  wins = np.array([[0, 6, 3], [2, 0, 5], [4, 1, 0]], float)

  def negative_log_likelihood(free):
    s = np.array([free[0], free[1], -free[0] - free[1]])
    diff = s[:, None] - s[None, :]
    return -(wins * (diff - np.logaddexp(0, diff))).sum()

  best = optimize.minimize(negative_log_likelihood, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
  expected = np.array([best.x[0], best.x[1], -best.x.sum()])
  np.testing.assert_allclose(analysis.bradley_terry(wins), expected, atol=1e-6)


def test_bradley_terry_without_an_mle_needs_a_prior():
  wins = np.array([[0, 4], [0, 0]], float)   # b never won: the MLE is at infinity
  assert not analysis.mle_exists(wins)
  with pytest.raises(ValueError, match="does not exist"):
    analysis.bradley_terry(wins)
  scores = analysis.bradley_terry(wins, prior=0.5)   # 4.5 vs 0.5 pseudo-wins
  np.testing.assert_allclose(scores[0] - scores[1], np.log(4.5 / 0.5), rtol=1e-9)


def test_bootstrap_interval_covers_the_estimate_and_is_seeded():
  rng = np.random.default_rng(0)
  winners = (rng.random(200) < 0.3).astype(int)     # player 1 wins 30%
  losers = 1 - winners
  a = analysis.bootstrap_bradley_terry(winners, losers, 2, num_resamples=300, seed=5)
  b = analysis.bootstrap_bradley_terry(winners, losers, 2, num_resamples=300, seed=5)
  np.testing.assert_array_equal(a["low"], b["low"])
  assert np.all(a["low"] < a["score"]) and np.all(a["score"] < a["high"])
  # The score difference is a logit: its interval ~ the delta-method one, 2 * 1.96 * sd of log-odds / 2.
  p = winners.mean()
  half_width = 1.96 * np.sqrt(1 / (len(winners) * p * (1 - p))) / 2
  np.testing.assert_allclose((a["high"][0] - a["low"][0]) / 2, half_width, rtol=0.2)


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (57, 200), (1, 1)])
def test_binomial_intervals_match_scipy(k, n):
  expected = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
  np.testing.assert_allclose(analysis.wilson_interval(k, n), (expected.low, expected.high), atol=1e-12)
  expected = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
  np.testing.assert_allclose(analysis.clopper_pearson_interval(k, n), (expected.low, expected.high), atol=1e-10)


def test_trials_are_a_pure_function_of_the_seed_and_balanced():
  args = ("preference", ["a", "b", "c"], 30, 7, {"a": 0, "b": 0, "c": 0}, {})
  trials = store.draw_trials(*args)
  assert trials == store.draw_trials(*args)
  pairs = [frozenset((t["a_run"], t["b_run"])) for t in trials]
  assert {pairs.count(p) for p in set(pairs)} == {10}    # 3 pairs, 10 each
  rvg = store.draw_trials("real_vs_generated", ["a"], 200, 1, {"a": 10}, {"a": 24})
  real = [t for t in rvg if t["a_source"] == "real"]
  assert 70 < len(real) < 130 and all(0 <= t["a_seed"] < 24 and t["label"] is None for t in real)
  assert all(0 <= t["label"] < 10 for t in rvg if t["a_source"] == "generated")


# --- The HTTP API --------------------------------------------------------------------------------


def test_runs_listing_reports_unreadable_runs_and_serves_the_others(studio):
  client, _ = studio
  runs = {r["name"]: r for r in client.get("/api/runs").get_json()}
  assert set(runs) == {"dcgan_a", "dcgan_b", "broken", "empty"}
  assert runs["dcgan_a"]["readable"] and runs["dcgan_a"]["step"] == 4
  assert runs["dcgan_a"]["fid"] == [[2, 90.0], [4, 70.5]]     # the half-written last line is skipped
  assert not runs["broken"]["readable"] and "damaged" in runs["broken"]["error"]
  assert not runs["empty"]["readable"] and "config.json" in runs["empty"]["error"]
  page = client.get("/").get_data(as_text=True)
  assert "unreadable" in page and "<svg" in page and "/api/runs/dcgan_a/grid.png" in page
  assert client.get("/api/runs/dcgan_a/grid.png").mimetype == "image/png"


def test_sample_endpoint_is_deterministic_in_the_seed(studio):
  client, _ = studio
  one = client.get("/api/runs/dcgan_a/samples.png?num=4&seed=1")
  assert one.status_code == 200 and one.mimetype == "image/png"
  assert client.get("/api/runs/dcgan_a/samples.png?num=4&seed=1&ema=0").data != one.data
  assert client.get("/api/runs/dcgan_a/samples.png?num=4&seed=2").data != one.data
  bad = client.get("/api/runs/dcgan_a/samples.png?label=sneaker")
  assert bad.status_code == 400 and "unconditional" in bad.get_json()["error"]
  assert client.get("/api/runs/dcgan_a/samples.png?num=9999").status_code == 400
  assert client.get("/runs/dcgan_a/sample").status_code == 200


def test_preference_study_end_to_end(studio):
  client, runs_dir = studio
  created = create(client)
  assert created.status_code == 201, created.get_json()
  study_id = created.get_json()["id"]
  assert f"/s/{study_id}" in created.get_json()["url"]
  assert client.get(f"/s/{study_id}").status_code == 200
  session = "rater-one-0001"
  answered = []
  for _ in range(6):
    trial = client.get(f"/api/studies/{study_id}/next?session={session}").get_json()
    assert not trial["done"] and len(trial["images"]) == 2
    assert client.get(trial["images"][0]).mimetype == "image/png"
    reply = client.post(f"/api/studies/{study_id}/answers",
                        json={"trial": trial["trial"], "session": session, "choice": "a", "response_ms": 812})
    assert reply.status_code == 201, reply.get_json()
    answered.append(trial["trial"])
  assert sorted(answered) == list(range(6))
  assert client.get(f"/api/studies/{study_id}/next?session={session}").get_json()["done"]
  results = client.get(f"/api/studies/{study_id}/results").get_json()["results"]
  assert results["answers"] == 6 and sum(r["wins"] for r in results["runs"]) == 6
  assert all(r["score"] is not None for r in results["runs"])
  assert "Bradley-Terry" in client.get(f"/studies/{study_id}/results").get_data(as_text=True)
  files = client.post(f"/api/studies/{study_id}/export", json={}).get_json()["files"]
  assert f"studio_exports/{study_id}/answers.csv" in files
  assert f"studio_exports/{study_id}/results.json" in files and f"studio_exports/{study_id}/results.csv" in files
  assert json.loads((runs_dir / "studio_exports" / study_id / "results.json").read_text())["results"]["answers"] == 6
  csv_lines = (runs_dir / "studio_exports" / study_id / "answers.csv").read_text().splitlines()
  assert len(csv_lines) == 7 and "a_seed" in csv_lines[0]


def test_rater_page_gives_an_anonymous_session_kept_across_visits(studio):
  from flask.testing import FlaskClient  # pylint: disable=g-import-not-at-top
  client, _ = studio
  study_id = create(client, num_trials=2).get_json()["id"]
  fresh = FlaskClient(client.application)
  fresh.get(f"/s/{study_id}")
  session = fresh.get_cookie("studio_session").value
  assert store.SESSION_PATTERN.match(session) and session in fresh.get(f"/s/{study_id}").get_data(as_text=True)
  assert fresh.get_cookie("studio_session").value == session
  fresh.set_cookie("studio_session", "</script><b>x")     # malformed: replaced, never echoed
  page = fresh.get(f"/s/{study_id}").get_data(as_text=True)
  assert "</script><b>" not in page and store.SESSION_PATTERN.match(fresh.get_cookie("studio_session").value)


def test_study_images_are_rendered_from_the_stored_seeds(studio):
  """The same trial renders the same pixels, and a pair differs (different seeds)."""
  client, runs_dir = studio
  study_id = create(client, num_trials=2).get_json()["id"]
  def pixels(trial, side):
    return np.asarray(Image.open(io.BytesIO(client.get(f"/api/studies/{study_id}/trials/{trial}/{side}.png").data)))
  first = pixels(0, 0)
  shutil.rmtree(runs_dir / ".studio_cache")          # re-render from scratch: an audit
  np.testing.assert_array_equal(pixels(0, 0), first)   # the bytes differ: the record has the time
  assert not np.array_equal(pixels(0, 1), first)
  assert client.get(f"/api/studies/{study_id}/trials/0/2.png").status_code == 404
  assert client.get(f"/api/studies/{study_id}/trials/99/0.png").status_code == 404


def test_real_vs_generated_study_and_fool_rate(studio):
  client, runs_dir = studio
  created = create(client, kind="real_vs_generated", runs=["dcgan_a"], num_trials=8, time_limit_ms=500)
  assert created.status_code == 201, created.get_json()
  study_id = created.get_json()["id"]
  with sqlite3.connect(runs_dir / "studio.sqlite") as conn:
    sources = dict(conn.execute("SELECT trial, a_source FROM trials WHERE study_id = ?", (study_id,)).fetchall())
  assert set(sources.values()) == {"real", "generated"}
  for _ in sources:   # a rater fooled by every generated image
    trial = serve(client, study_id, "rater-two-0002")
    assert client.get(f"/api/studies/{study_id}/trials/{trial}/0.png").status_code == 200
    reply = client.post(f"/api/studies/{study_id}/answers",
                        json={"trial": trial, "session": "rater-two-0002", "choice": "real"})
    assert reply.status_code == 201
  results = client.get(f"/api/studies/{study_id}/results").get_json()["results"]
  generated = sum(s == "generated" for s in sources.values())
  assert results["overall"]["fooled"] == generated and results["overall"]["rate"] == 1.0
  low, high = analysis.wilson_interval(generated, generated)
  assert results["overall"]["low"] == pytest.approx(low) and high == 1.0
  assert results["real"] == {"called_real": 8 - generated, "n": 8 - generated, "rate": 1.0}


def test_duplicate_unknown_and_finished_answers_store_nothing(studio):
  client, runs_dir = studio
  study_id = create(client, num_trials=3).get_json()["id"]
  answer = {"trial": serve(client, study_id, "rater-dup-0003"), "session": "rater-dup-0003", "choice": "b"}
  assert client.post(f"/api/studies/{study_id}/answers", json=answer).status_code == 201
  unserved = client.post(f"/api/studies/{study_id}/answers", json={**answer, "trial": (answer["trial"] + 1) % 3})
  assert unserved.status_code == 409 and "not served" in unserved.get_json()["error"]
  duplicate = client.post(f"/api/studies/{study_id}/answers", json={**answer, "choice": "a"})
  assert duplicate.status_code == 409 and "already answered" in duplicate.get_json()["error"]
  assert count_rows(runs_dir, study_id) == 1
  assert client.post("/api/studies/nosuchstudy/answers", json=answer).status_code == 404
  for bad in ({**answer, "trial": 3}, {**answer, "trial": -1}, {**answer, "trial": "0"}, {**answer, "choice": "real"},
              {**answer, "session": "x"}, {**answer, "response_ms": -5}, {**answer, "trial": True}):
    reply = client.post(f"/api/studies/{study_id}/answers", json={**bad, "session": bad["session"] + "9"}
                        if bad["session"] != "x" else bad)
    assert reply.status_code == 400, bad
  assert client.post(f"/api/studies/{study_id}/finish", json={}).get_json()["status"] == "finished"
  finished = client.post(f"/api/studies/{study_id}/answers", json={**answer, "trial": 1})
  assert finished.status_code == 410 and "finished" in finished.get_json()["error"]
  assert count_rows(runs_dir, study_id) == 1


def test_malformed_and_oversized_bodies_are_4xx(studio):
  client, runs_dir = studio
  study_id = create(client, num_trials=2).get_json()["id"]
  url = f"/api/studies/{study_id}/answers"
  for body in (b"{not json", b"[1, 2]", b"\xff\xfe", b""):
    reply = client.post(url, data=body, content_type="application/json")
    assert reply.status_code == 400 and "error" in reply.get_json(), body
  huge = json.dumps({"trial": 0, "session": "rater-big-0004", "choice": "a", "pad": "x" * 100_000})
  reply = client.post(url, data=huge, content_type="application/json")
  assert reply.status_code == 413
  assert count_rows(runs_dir, study_id) == 0
  for body in ({"kind": "preference"}, {"name": "x", "kind": "nope", "runs": ["dcgan_a"], "num_trials": 2},
               {"name": "x", "kind": "preference", "runs": ["dcgan_a"], "num_trials": 2},
               {"name": "x", "kind": "preference", "runs": ["dcgan_a", "dcgan_a"], "num_trials": 2},
               {"name": "x", "kind": "preference", "runs": ["dcgan_a", "dcgan_b"], "num_trials": 0},
               {"name": "x", "kind": "preference", "runs": ["dcgan_a", "broken"], "num_trials": 2}):
    assert client.post("/api/studies", json=body).status_code == 400, body


def test_cross_site_requests_are_refused(studio):
  """A form on another site can POST text/plain (no CORS preflight): 415, nothing stored; a Host
  header other than localhost (DNS rebinding) is a 400."""
  client, runs_dir = studio
  study_id = create(client, num_trials=2).get_json()["id"]
  body = json.dumps({"trial": 0, "session": "rater-csrf-0005", "choice": "a"})
  for mimetype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
    assert client.post(f"/api/studies/{study_id}/answers", data=body, content_type=mimetype).status_code == 415
  assert client.post(f"/api/studies/{study_id}/finish").status_code == 415
  assert count_rows(runs_dir, study_id) == 0
  assert client.get(f"/api/studies/{study_id}").get_json()["status"] == "open"
  assert client.get("/api/runs", headers={"Host": "attacker.example"}).status_code == 400
  assert client.get("/api/runs", headers={"Host": "127.0.0.1:8765"}).status_code == 200


def test_real_vs_generated_needs_the_runs_held_out_split(tmp_path, tiny_run, tiny_data_dir):
  """The original tiny run's data folder has no test split: a clear 400 naming it, no study."""
  from gan.studio import app as studio_app  # pylint: disable=g-import-not-at-top
  (tmp_path / "runs").mkdir()
  shutil.copytree(tiny_run[0], tmp_path / "runs" / "no_test_split")
  client = studio_app.create_app(tmp_path / "runs").test_client()
  reply = create(client, kind="real_vs_generated", runs=["no_test_split"])
  assert reply.status_code == 400 and "t10k" in reply.get_json()["error"], reply.get_json()
  assert client.get("/api/studies").get_json() == []


@pytest.mark.parametrize("name", ["..", "../..", "..%2F..%2Fetc", "%2Fetc", "%2e%2e", "/etc/passwd",
                                  "dcgan_a%2F..%2F..%2F", ".studio_cache", "studio_exports", "..%5C.."])
def test_run_names_cannot_leave_the_runs_folder(studio, name):
  client, _ = studio
  for url in (f"/api/runs/{name}/samples.png?num=1", f"/api/runs/{name}/grid.png", f"/runs/{name}/sample"):
    assert client.get(url).status_code in (400, 404), url
  reply = create(client, runs=["dcgan_a", urllib.request.unquote(name)])
  assert reply.status_code in (400, 404), name


def test_run_dir_refuses_symlinks_out_of_the_folder(studio, tmp_path):
  from gan.studio import render  # pylint: disable=g-import-not-at-top
  _, runs_dir = studio
  link = runs_dir / "escape"
  link.symlink_to(tmp_path)
  try:
    with pytest.raises(render.RunAccessError):
      render.run_dir(runs_dir, "escape")
    for name in ("../runs", str(tmp_path), "a/b", "", None, "dcgan_a/../dcgan_b"):
      with pytest.raises(render.RunAccessError):
        render.run_dir(runs_dir, name)
  finally:
    link.unlink()


def test_concurrent_answers_are_all_stored_once(studio):
  """Threads answering the same trials (each twice) through one app: one row per (trial, rater)."""
  client_app = studio[0].application
  runs_dir = studio[1]
  study_id = create(studio[0], num_trials=10).get_json()["id"]
  codes = []

  def rater(k):
    client, session = client_app.test_client(), f"rater-thread-{k:04d}"
    for _ in range(10):
      answer = {"trial": serve(client, study_id, session), "session": session, "choice": "a"}
      for _ in range(2):   # a double click
        codes.append(client.post(f"/api/studies/{study_id}/answers", json=answer).status_code)

  threads = [threading.Thread(target=rater, args=(k,)) for k in range(6)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert codes.count(201) == 60 and codes.count(409) == 60
  assert count_rows(runs_dir, study_id) == 60


# --- The command: a real server, killed with kill -9 ---------------------------------------------


def start_server(runs_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
  process = subprocess.Popen([sys.executable, "-m", "gan.studio", f"--runs={runs_dir}", "--port=0"], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
  line = process.stdout.readline()
  assert line.startswith("Studio at http://127.0.0.1:"), (line, log.read_text()[-2000:])
  return process, line.split()[2]


def post(url: str, body: dict) -> tuple[int, dict]:
  request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
  try:
    with urllib.request.urlopen(request, timeout=30) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


@pytest.mark.slow
def test_kill_9_mid_study_loses_no_acknowledged_answer(tmp_path, tiny_run, tiny_data_dir):
  runs_dir = make_runs_folder(tmp_path, tiny_run, tiny_data_dir)
  shutil.rmtree(runs_dir / "dcgan_b")
  process, address = start_server(runs_dir, tmp_path / "server.log")
  acknowledged = []
  try:
    status, study = post(address + "api/studies", {"name": "kill", "kind": "real_vs_generated",
                                                   "runs": ["dcgan_a"], "num_trials": 400, "seed": 1})
    assert status == 201, study
    stop = threading.Event()

    def rater(k):
      session = f"rater-kill-{k:04d}"
      for _ in range(400):
        if stop.is_set():
          return
        try:
          with urllib.request.urlopen(address + f"api/studies/{study['id']}/next?session={session}",
                                      timeout=30) as response:
            trial = json.loads(response.read())["trial"]
          status, _ = post(address + f"api/studies/{study['id']}/answers",
                           {"trial": trial, "session": session, "choice": "real"})
        except (OSError, ValueError, http.client.HTTPException):   # the server died under us: not acknowledged
          return
        if status == 201:
          acknowledged.append((trial, session))

    threads = [threading.Thread(target=rater, args=(k,)) for k in range(4)]
    for t in threads:
      t.start()
    wait_until = time.time() + 60
    while len(acknowledged) < 40 and time.time() < wait_until:
      time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)    # mid-study, with requests in flight
    process.wait()
    stop.set()
    for t in threads:
      t.join()
  finally:
    if process.poll() is None:
      process.kill()
  assert len(acknowledged) >= 40
  process, address = start_server(runs_dir, tmp_path / "server2.log")
  try:
    with urllib.request.urlopen(address + f"api/studies/{study['id']}/results", timeout=30) as response:
      results = json.loads(response.read())["results"]
    with sqlite3.connect(runs_dir / "studio.sqlite") as conn:
      stored = set(conn.execute("SELECT trial, session FROM answers WHERE study_id = ?", (study["id"],)))
    assert set(acknowledged) <= stored                       # every acknowledged answer survived
    assert len(stored) <= len(acknowledged) + 4              # at most one unacknowledged in flight per rater
    assert results["answers"] == len(stored)
  finally:
    process.send_signal(signal.SIGINT)     # Ctrl-C: a clean stop
    assert process.wait(timeout=30) == 0
    assert "Stopped" in process.stdout.read()


def test_command_refuses_bad_flags_and_warns_on_a_public_host(tmp_path, capsys, monkeypatch):
  import waitress  # pylint: disable=g-import-not-at-top
  from gan import cli  # pylint: disable=g-import-not-at-top
  from gan.studio import __main__ as command  # pylint: disable=g-import-not-at-top
  assert cli.call(command.define_flags, command.main, [f"--runs={tmp_path / 'nope'}"]) == 1
  assert "is not a folder" in capsys.readouterr().err
  assert cli.call(command.define_flags, command.main, ["--port=70000"]) == 1
  assert "--port" in capsys.readouterr().err
  assert cli.call(command.define_flags, command.main, ["--bogus"]) == 1
  assert "error:" in capsys.readouterr().err

  def refuse(*args, **kwargs):
    raise OSError(98, "Address already in use")

  monkeypatch.setattr(waitress, "create_server", refuse)
  assert cli.call(command.define_flags, command.main, [f"--runs={tmp_path}", "--host=0.0.0.0"]) == 1
  out, err = capsys.readouterr()
  assert "warning: --host 0.0.0.0" in out and "without authentication" in out
  assert "Address already in use" in err
