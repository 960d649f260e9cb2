"""The studio's Flask app: server-rendered pages (gan/studio/pages.py) and a JSON API.

  create_app(runs_dir, db_path) -> flask.Flask

Pages: /  (runs), /runs/<run>/sample, /studies (create), /s/<study> (the rater's page, the link to
share), /studies/<study>/results.
API (JSON in and out; errors are {"error": message} with a 4xx status, and store nothing):
  GET  /api/runs                                   run summaries (unreadable runs with their error)
  GET  /api/runs/<run>/samples.png?num&seed&label&text&attributes&ema   fresh samples, a PNG grid
  GET  /api/runs/<run>/grid.png                    the run's newest training sample grid
  POST /api/studies {name, kind, runs, num_trials, seed?, time_limit_ms?, ema?}  -> 201 {id, url}
  GET  /api/studies/<id>                           the study
  GET  /api/studies/<id>/next?session=S            the next trial of rater S (recorded as served)
  GET  /api/studies/<id>/trials/<t>/<0|1>.png      an image of a trial, rendered from its stored seed
  POST /api/studies/<id>/answers {trial, session, choice, response_ms}  -> 201 once committed;
                                                   409 duplicate, 410 finished, 404 unknown study
  POST /api/studies/<id>/finish                    closes the study
  GET  /api/studies/<id>/results                   Bradley-Terry / fool-rate results
  POST /api/studies/<id>/export                    CSV + JSON + figure into <runs>/studio_exports/<id>/
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
import secrets
import threading
from typing import Any, Optional

import flask
from werkzeug import exceptions

from gan import checkpointing
from gan import cli
from gan import conditioning
from gan import data
from gan.studio import analysis
from gan.studio import pages
from gan.studio import render
from gan.studio import store

MAX_BODY_BYTES = 16 * 1024     # an answer is ~150 bytes; a study ~1 KB
MAX_SAMPLES = 64
# What drawing or opening a run may raise because of the run or the request, not a bug: a 400 / 404.
RUN_ERRORS = (cli.UserError, conditioning.ConditionError, checkpointing.CheckpointMismatchError,
              checkpointing.CheckpointCorruptError, data.DataError)


LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def create_app(runs_dir: str | os.PathLike, db_path: str | os.PathLike | None = None,
               trusted_hosts: Optional[list[str]] = LOCAL_HOSTS) -> flask.Flask:
  """The studio over `runs_dir`; answers in `db_path` (default <runs_dir>/studio.sqlite).

  trusted_hosts: the Host headers served (others: 400), so a web page elsewhere cannot reach a
  studio on localhost through DNS rebinding; None serves any (a studio bound to a public address).
  """
  runs_dir = Path(runs_dir).resolve()
  if not runs_dir.is_dir():
    raise cli.UserError(f"--runs {runs_dir} is not a folder.")
  db_path = Path(db_path) if db_path else runs_dir / "studio.sqlite"
  store.init(db_path)
  renderer = render.Renderer(runs_dir)
  export_lock = threading.Lock()
  app = flask.Flask(__name__)
  app.url_map.merge_slashes = False    # "/api/runs//etc/..." is a 404, not a redirect to another URL
  app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES    # larger bodies: 413 before anything is read
  app.config["TRUSTED_HOSTS"] = trusted_hosts
  app.config["STUDIO"] = {"runs_dir": runs_dir, "db_path": db_path, "renderer": renderer}

  @contextlib.contextmanager
  def db():
    conn = store.connect(db_path)
    try:
      yield conn
    finally:
      conn.close()

  def error(status: int, message: str) -> flask.Response:
    response = flask.jsonify({"error": message})
    response.status_code = status
    return response

  @app.before_request
  def json_posts_only():
    """POSTs to the API must say Content-Type: application/json. A browser cannot send that to
    another origin without a CORS preflight (which this app never grants), so another site's page
    cannot create studies, answer or finish them in a rater's or researcher's browser (CSRF)."""
    if flask.request.method == "POST" and flask.request.mimetype != "application/json":
      return error(415, "POST requests take a JSON body with Content-Type: application/json.")
    return None

  @app.errorhandler(store.StoreError)
  def store_error(e: store.StoreError):
    return error(e.status, str(e))

  @app.errorhandler(render.RunAccessError)
  def run_access_error(e):
    return error(404, str(e))

  @app.errorhandler(exceptions.HTTPException)
  def http_error(e: exceptions.HTTPException):
    if flask.request.path.startswith("/api/"):
      return error(e.code or 500, e.description or e.name)
    return e

  def json_body() -> dict[str, Any]:
    """The request's JSON object; 400 for anything else (413 for an oversized body, by Flask)."""
    if flask.request.content_length is None and flask.request.headers.get("Transfer-Encoding") == "chunked":
      flask.abort(411, "Send a Content-Length.")
    raw = flask.request.get_data(cache=True)     # raises 413 past MAX_CONTENT_LENGTH
    try:
      body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
      flask.abort(400, "The body is not valid JSON.")
    if not isinstance(body, dict):
      flask.abort(400, "The body must be a JSON object.")
    return body

  def session_id() -> str:
    """The rater's anonymous id: the cookie of an earlier visit when it is well-formed, else new."""
    cookie = flask.request.cookies.get("studio_session", "")
    return cookie if store.SESSION_PATTERN.match(cookie) else secrets.token_urlsafe(12)

  # --- Pages -----------------------------------------------------------------------------------

  @app.get("/")
  def runs_page():
    summaries = [render.summarize_run(runs_dir, name) for name in render.run_names(runs_dir)]
    return flask.render_template_string(pages.RUNS, runs=summaries, runs_dir=str(runs_dir), svg=pages.fid_svg)

  @app.get("/runs/<name>/sample")
  def sample_page(name: str):
    summary = render.summarize_run(runs_dir, name)
    if not summary["readable"]:
      flask.abort(404)
    return flask.render_template_string(pages.SAMPLE, run=summary, args=flask.request.args)

  @app.get("/studies")
  def studies_page():
    with db() as conn:
      studies = store.list_studies(conn)
    readable = [s for s in (render.summarize_run(runs_dir, n) for n in render.run_names(runs_dir))
                if s["readable"] and s["task"] == "generation"]
    return flask.render_template_string(pages.STUDIES, studies=studies, runs=readable)

  @app.get("/s/<study_id>")
  def rater_page(study_id: str):
    with db() as conn:
      study = store.get_study(conn, study_id)
    session = session_id()
    response = flask.make_response(flask.render_template_string(pages.RATER, study=study, session=session,
                                                                question=pages.QUESTIONS[study["kind"]]))
    response.set_cookie("studio_session", session, max_age=30 * 86400, samesite="Lax", httponly=True)
    return response

  @app.get("/studies/<study_id>/results")
  def results_page(study_id: str):
    study, results = study_results(study_id)
    return flask.render_template_string(pages.RESULTS, study=study, results=results)

  # --- API: runs -------------------------------------------------------------------------------

  @app.get("/api/runs")
  def api_runs():
    return flask.jsonify([render.summarize_run(runs_dir, name) for name in render.run_names(runs_dir)])

  @app.get("/api/runs/<name>/grid.png")
  def api_run_grid(name: str):
    summary = render.summarize_run(runs_dir, name)
    if not summary.get("grid"):
      flask.abort(404, f"Run {name!r} has no sample grid yet.")
    return flask.send_file(render.run_dir(runs_dir, name) / "samples" / summary["grid"], mimetype="image/png")

  @app.get("/api/runs/<name>/samples.png")
  def api_samples(name: str):
    args = flask.request.args
    try:
      num, seed = int(args.get("num", 16)), int(args.get("seed", 0))
    except ValueError:
      flask.abort(400, "num and seed must be integers.")
    if not 1 <= num <= MAX_SAMPLES or not 0 <= seed < 2**31:
      flask.abort(400, f"num must be in [1, {MAX_SAMPLES}] and seed in [0, 2^31).")
    try:
      path = renderer.grid_png(name, num, seed, args.get("ema", "1") not in ("0", "false"),
                               args.get("label") or None, args.get("text") or None, args.get("attributes") or None)
    except render.RunAccessError:
      raise
    except RUN_ERRORS as e:
      flask.abort(400, cli.one_line(e))
    return flask.send_file(path, mimetype="image/png")

  # --- API: studies ----------------------------------------------------------------------------

  @app.post("/api/studies")
  def api_create_study():
    body = json_body()
    name, kind, run_list = body.get("name"), body.get("kind"), body.get("runs")
    num_trials, seed = body.get("num_trials"), body.get("seed", secrets.randbelow(2**31))
    time_limit_ms, use_ema = body.get("time_limit_ms", 0), body.get("ema", True)
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
      flask.abort(400, "name must be a non-empty string of at most 200 characters.")
    if kind not in store.KINDS:
      flask.abort(400, f"kind must be one of {store.KINDS}, got {kind!r}.")
    if not isinstance(run_list, list) or not all(isinstance(r, str) for r in run_list) or \
        len(set(run_list)) != len(run_list):
      flask.abort(400, "runs must be a list of distinct run names.")
    if len(run_list) < (2 if kind == "preference" else 1):
      flask.abort(400, f"A {kind} study needs at least {2 if kind == 'preference' else 1} runs.")
    for value, what, high in ((num_trials, "num_trials", store.MAX_TRIALS), (seed, "seed", 2**31 - 1),
                              (time_limit_ms, "time_limit_ms", 60_000)):
      if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high or \
          (what == "num_trials" and value < 1):
        flask.abort(400, f"{what} must be an integer in [{int(what == 'num_trials')}, {high}], got {value!r}.")
    if not isinstance(use_ema, bool):
      flask.abort(400, "ema must be true or false.")
    configs, num_classes, held_out = {}, {}, {}
    for run in run_list:
      render.run_dir(runs_dir, run)    # 404 for names outside the folder
      try:
        configs[run] = renderer.config(run)
        renderer.loaded(run)           # the checkpoint must open now, not when a rater arrives
        num_classes[run] = renderer.num_classes(run)
        if kind == "real_vs_generated":
          held_out[run] = len(renderer.held_out(run))
      except RUN_ERRORS as e:
        flask.abort(400, f"Run {run!r} cannot be used: {cli.one_line(e)}")
    if kind == "preference" and len({render.data_key(c) for c in configs.values()}) > 1:
      flask.abort(400, "A preference study compares runs of the same data; these runs were trained on "
                       "different data (data.source / name / dir / image_size / channels differ).")
    trials = store.draw_trials(kind, run_list, num_trials, seed, num_classes, held_out)
    with db() as conn:
      study_id = store.create_study(conn, name.strip(), kind, run_list, trials, seed, time_limit_ms, use_ema)
    return flask.jsonify({"id": study_id, "url": flask.url_for("rater_page", study_id=study_id, _external=True),
                          "results": flask.url_for("results_page", study_id=study_id, _external=True)}), 201

  @app.get("/api/studies")
  def api_studies():
    with db() as conn:
      return flask.jsonify(store.list_studies(conn))

  @app.get("/api/studies/<study_id>")
  def api_study(study_id: str):
    with db() as conn:
      return flask.jsonify(store.get_study(conn, study_id))

  @app.get("/api/studies/<study_id>/next")
  def api_next(study_id: str):
    session = flask.request.args.get("session") or flask.request.cookies.get("studio_session")
    with db() as conn:
      study = store.get_study(conn, study_id)
      if study["status"] != "open":
        raise store.StudyFinishedError(f"Study {study_id!r} is finished.")
      trial = store.next_trial(conn, study, session)
    if trial is None:
      return flask.jsonify({"done": True, "total": study["num_trials"]})
    slots = 2 if study["kind"] == "preference" else 1
    return flask.jsonify({"done": False, "trial": trial["trial"], "answered": trial["answered"],
                          "total": study["num_trials"], "kind": study["kind"],
                          "time_limit_ms": study["time_limit_ms"],
                          "images": [flask.url_for("api_trial_image", study_id=study_id, trial=trial["trial"],
                                                   slot=s) for s in range(slots)]})

  @app.get("/api/studies/<study_id>/trials/<int:trial>/<int:slot>.png")
  def api_trial_image(study_id: str, trial: int, slot: int):
    with db() as conn:
      study = store.get_study(conn, study_id)
      row = store.get_trial(conn, study_id, trial)
    side = "ab"[slot] if slot in (0, 1) else None
    if side is None or row[f"{side}_run"] is None:
      flask.abort(404, f"Trial {trial} has no image {slot}.")
    try:
      path = renderer.image_png(row[f"{side}_run"], row[f"{side}_source"], row[f"{side}_seed"],
                                bool(study["use_ema"]), row["label"])
    except render.RunAccessError:
      raise
    except RUN_ERRORS as e:
      flask.abort(409, f"The run of this trial cannot be rendered any more: {cli.one_line(e)}")
    # No file name or seed in the response: the rater must not learn which image is which.
    return flask.send_file(path, mimetype="image/png", max_age=3600)

  @app.post("/api/studies/<study_id>/answers")
  def api_answer(study_id: str):
    body = json_body()
    session = body.get("session") or flask.request.cookies.get("studio_session")
    with db() as conn:
      answer_id = store.add_answer(conn, study_id, body.get("trial"), session, body.get("choice"),
                                   body.get("response_ms"))
    return flask.jsonify({"id": answer_id, "stored": True}), 201    # after the commit: acknowledged

  @app.post("/api/studies/<study_id>/finish")
  def api_finish(study_id: str):
    with db() as conn:
      store.finish_study(conn, study_id)
      return flask.jsonify(store.get_study(conn, study_id))

  def study_results(study_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with db() as conn:
      study = store.get_study(conn, study_id)
      rows = store.answers(conn, study_id)
    if study["kind"] == "preference":
      results = analysis.preference_results(rows, study["runs"], seed=study["seed"])
    else:
      results = analysis.fool_results(rows, study["runs"])
    results["sessions"] = len({r["session"] for r in rows})
    return study, results

  @app.get("/api/studies/<study_id>/results")
  def api_results(study_id: str):
    study, results = study_results(study_id)
    return flask.jsonify({"study": study, "results": results})

  @app.post("/api/studies/<study_id>/export")
  def api_export(study_id: str):
    study, results = study_results(study_id)
    with db() as conn:
      rows = store.answers(conn, study_id)
    with export_lock:
      files = export(runs_dir / render.EXPORTS / study_id, study, results, rows)
    return flask.jsonify({"files": [str(Path(f).relative_to(runs_dir)) for f in files]})

  return app


def export(folder: Path, study: dict[str, Any], results: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
  """answers.csv (one row per answer, with the trial's runs / sources / seeds: enough to re-render
  and audit), results.json, results.csv and results_figure.{pdf,png,json} (a figure, when matplotlib is
  installed). Returns the paths written."""
  folder.mkdir(parents=True, exist_ok=True)
  written = []

  def write_text(name: str, text: str) -> None:
    cli.write_atomically(folder / name, lambda f: f.write(text.encode()))
    written.append(str(folder / name))

  columns = ["id", "trial", "session", "choice", "response_ms", "created_at", "served_at", "a_run", "a_source",
             "a_seed", "b_run", "b_source", "b_seed", "label"]
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, columns, lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  write_text("answers.csv", buffer.getvalue())
  write_text("results.json", json.dumps({"study": study, "results": results}, indent=2) + "\n")
  buffer = io.StringIO()
  keys = ["run", "wins", "comparisons", "score", "low", "high"] if results["kind"] == "preference" else \
      ["run", "fooled", "n", "rate", "low", "high"]
  writer = csv.DictWriter(buffer, keys, extrasaction="ignore", lineterminator="\n")
  writer.writeheader()
  writer.writerows(results["runs"])
  write_text("results.csv", buffer.getvalue())
  try:
    from gan.studio import figure  # pylint: disable=g-import-not-at-top  (matplotlib: an optional dependency)
  except ImportError:
    return written
  written += figure.save_results_figure(folder / "results_figure", study, results)   # + its .json sidecar
  return written
