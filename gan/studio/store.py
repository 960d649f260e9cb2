"""The studio's SQLite file: studies, their trials (drawn up front from a stored seed), the trials
served to each rater, and every answer.

Durability: WAL journal with synchronous=FULL and one transaction per answer; the HTTP handler
acknowledges an answer only after `add_answer` returned, i.e. after the commit reached the disk, so
a crash (kill -9, power loss after the fsync) loses no acknowledged answer. A UNIQUE constraint on
(study, trial, session) makes a repeated submission an `DuplicateAnswerError` and never a second row,
whichever thread or process sends it.

Trials are a pure function of (kind, runs, number of trials, seed, run facts) (`draw_trials`), so a
study can be re-rendered and audited from the database alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import sqlite3
import time
from typing import Any, Iterator, Optional, Sequence

import numpy as np

KINDS = ("preference", "real_vs_generated")
CHOICES = {"preference": ("a", "b"), "real_vs_generated": ("real", "generated")}
SESSION_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
STUDY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{6,32}$")
MAX_TRIALS = 100_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('preference', 'real_vs_generated')),
  runs TEXT NOT NULL,                 -- JSON list of run names
  num_trials INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  time_limit_ms INTEGER NOT NULL,     -- 0: no limit (HYPE-style exposure otherwise)
  use_ema INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'finished')),
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
  study_id TEXT NOT NULL REFERENCES studies(id),
  trial INTEGER NOT NULL,
  a_run TEXT NOT NULL, a_source TEXT NOT NULL, a_seed INTEGER NOT NULL,  -- source 'generated': seed; 'real': index
  b_run TEXT, b_source TEXT, b_seed INTEGER,                             -- preference only
  label INTEGER,                                                          -- class of both images, conditional runs
  PRIMARY KEY (study_id, trial)
);
CREATE TABLE IF NOT EXISTS served (
  study_id TEXT NOT NULL, trial INTEGER NOT NULL, session TEXT NOT NULL, served_at REAL NOT NULL,
  PRIMARY KEY (study_id, trial, session)
);
CREATE TABLE IF NOT EXISTS answers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  study_id TEXT NOT NULL, trial INTEGER NOT NULL, session TEXT NOT NULL,
  choice TEXT NOT NULL,
  response_ms INTEGER,                -- as measured by the rater's page (image shown -> click)
  created_at REAL NOT NULL,
  UNIQUE (study_id, trial, session),
  FOREIGN KEY (study_id, trial) REFERENCES trials(study_id, trial)
);
"""


class StoreError(ValueError):
  """A request the store refuses; `status` is the HTTP status the web app answers with."""
  status = 400


class NotFoundError(StoreError):
  status = 404


class DuplicateAnswerError(StoreError):
  status = 409


class StudyFinishedError(StoreError):
  status = 410


class NotServedError(StoreError):
  """An answer to a trial this session was never shown (its page asks for trials one by one)."""
  status = 409


def connect(db_path: str | os.PathLike) -> sqlite3.Connection:
  """A connection in WAL mode with synchronous=FULL (a commit is on disk when it returns).

  One connection per request/thread: sqlite3 connections are not shared across threads here.
  """
  conn = sqlite3.connect(os.fspath(db_path), timeout=30.0, isolation_level=None)   # explicit BEGIN/COMMIT
  conn.row_factory = sqlite3.Row
  conn.execute("PRAGMA journal_mode=WAL")
  conn.execute("PRAGMA synchronous=FULL")
  conn.execute("PRAGMA foreign_keys=ON")
  conn.execute("PRAGMA busy_timeout=30000")
  return conn


def init(db_path: str | os.PathLike) -> None:
  """Creates the tables if missing (idempotent: a restarted server reopens the same file)."""
  with contextlib.closing(connect(db_path)) as conn:
    conn.executescript(SCHEMA)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
  """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): the write lock is taken up front, so two
  writers never deadlock upgrading read locks."""
  conn.execute("BEGIN IMMEDIATE")
  try:
    yield conn
  except BaseException:
    conn.execute("ROLLBACK")
    raise
  conn.execute("COMMIT")


def draw_trials(kind: str, runs: Sequence[str], num_trials: int, seed: int,
                num_classes: dict[str, int], held_out_sizes: dict[str, int]) -> list[dict[str, Any]]:
  """The trials of a study, a pure function of its arguments.

  preference: each trial a pair of different runs (pairs cycled in a shuffled order so every pair
    comes up equally often), each image its own latent seed, left/right order random.
  real_vs_generated: each trial one image, real (an index into the run's held-out split) or
    generated (a latent seed) with probability 1/2 each, from a run drawn uniformly.
  Conditional runs (num_classes[run] > 0): one class label per trial, shared by both images.

  Returns:
    [{"trial", "a_run", "a_source", "a_seed", "b_run", "b_source", "b_seed", "label"}], len num_trials.
  """
  rng = np.random.default_rng(seed)
  trials = []
  pairs = [(i, j) for i in range(len(runs)) for j in range(i + 1, len(runs))]
  order: list[tuple[int, int]] = []
  for t in range(num_trials):
    row: dict[str, Any] = {"trial": t, "b_run": None, "b_source": None, "b_seed": None, "label": None}
    if kind == "preference":
      if not order:
        order = [pairs[k] for k in rng.permutation(len(pairs))]
      i, j = order.pop()
      if rng.random() < 0.5:
        i, j = j, i
      row.update(a_run=runs[i], a_source="generated", a_seed=int(rng.integers(2**31)),
                 b_run=runs[j], b_source="generated", b_seed=int(rng.integers(2**31)))
      classes = min(num_classes[runs[i]], num_classes[runs[j]])
    else:
      run = runs[int(rng.integers(len(runs)))]
      real = bool(rng.random() < 0.5)
      row.update(a_run=run, a_source="real" if real else "generated",
                 a_seed=int(rng.integers(held_out_sizes[run])) if real else int(rng.integers(2**31)))
      classes = 0 if real else num_classes[run]
    if classes:
      row["label"] = int(rng.integers(classes))
    trials.append(row)
  return trials


def create_study(conn: sqlite3.Connection, name: str, kind: str, runs: Sequence[str],
                 trials: Sequence[dict[str, Any]], seed: int, time_limit_ms: int, use_ema: bool) -> str:
  """Stores a study and its trials in one transaction; returns its id (random, URL-safe)."""
  study_id = secrets.token_urlsafe(9)
  with transaction(conn):
    conn.execute("INSERT INTO studies (id, name, kind, runs, num_trials, seed, time_limit_ms, use_ema, created_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (study_id, name, kind, json.dumps(list(runs)), len(trials), seed, time_limit_ms, int(use_ema),
                  time.time()))
    conn.executemany("INSERT INTO trials VALUES (:study_id, :trial, :a_run, :a_source, :a_seed, :b_run, "
                     ":b_source, :b_seed, :label)", [{**t, "study_id": study_id} for t in trials])
  return study_id


def get_study(conn: sqlite3.Connection, study_id: str) -> dict[str, Any]:
  """The study as a dict (runs decoded); NotFoundError when there is none."""
  row = conn.execute("SELECT * FROM studies WHERE id = ?", (study_id,)).fetchone() if \
      STUDY_ID_PATTERN.match(study_id or "") else None
  if row is None:
    raise NotFoundError(f"No study {study_id!r}.")
  study = dict(row)
  study["runs"] = json.loads(study["runs"])
  return study


def list_studies(conn: sqlite3.Connection) -> list[dict[str, Any]]:
  """All studies, newest first, each with its number of answers."""
  rows = conn.execute("SELECT s.*, (SELECT COUNT(*) FROM answers a WHERE a.study_id = s.id) AS answers "
                      "FROM studies s ORDER BY created_at DESC").fetchall()
  return [{**dict(r), "runs": json.loads(r["runs"])} for r in rows]


def get_trial(conn: sqlite3.Connection, study_id: str, trial: int) -> dict[str, Any]:
  row = conn.execute("SELECT * FROM trials WHERE study_id = ? AND trial = ?", (study_id, trial)).fetchone()
  if row is None:
    raise NotFoundError(f"Study {study_id!r} has no trial {trial}.")
  return dict(row)


def next_trial(conn: sqlite3.Connection, study: dict[str, Any], session: str) -> Optional[dict[str, Any]]:
  """The next trial for `session` (recorded as served), or None when it answered them all.

  Every rater walks all trials in its own order (a permutation seeded by the study seed and the
  session), so concurrent raters spread over the trials instead of all rating trial 0 first.
  """
  check_session(session)
  answered = {r[0] for r in conn.execute("SELECT trial FROM answers WHERE study_id = ? AND session = ?",
                                         (study["id"], session))}
  if len(answered) >= study["num_trials"]:
    return None
  session_key = int.from_bytes(hashlib.sha256(session.encode()).digest()[:8], "big")
  order = np.random.default_rng([study["seed"], session_key]).permutation(study["num_trials"])
  trial = next(int(t) for t in order if int(t) not in answered)
  with transaction(conn):
    conn.execute("INSERT OR IGNORE INTO served VALUES (?, ?, ?, ?)", (study["id"], trial, session, time.time()))
  return {**get_trial(conn, study["id"], trial), "answered": len(answered)}


def check_session(session: Any) -> str:
  if not isinstance(session, str) or not SESSION_PATTERN.match(session):
    raise StoreError("session must be 8-64 characters of A-Z a-z 0-9 _ - (the page makes one).")
  return session


def add_answer(conn: sqlite3.Connection, study_id: str, trial: Any, session: Any, choice: Any,
               response_ms: Any = None) -> int:
  """Validates and commits one answer; returns its row id. Only returns once the row is on disk.

  Raises:
    NotFoundError: unknown study or trial; StudyFinishedError: the study is closed;
    DuplicateAnswerError: this session already answered this trial (nothing stored);
    NotServedError: the trial was never served to this session (`next_trial`), so no answer to it
      can be a rater's judgement of its images;
    StoreError: a malformed field.
  """
  study = get_study(conn, study_id)
  if study["status"] != "open":
    raise StudyFinishedError(f"Study {study_id!r} is finished: it takes no more answers.")
  if not isinstance(trial, int) or isinstance(trial, bool) or not 0 <= trial < study["num_trials"]:
    raise StoreError(f"trial must be an integer in [0, {study['num_trials']}), got {trial!r}.")
  check_session(session)
  if choice not in CHOICES[study["kind"]]:
    raise StoreError(f"choice must be one of {CHOICES[study['kind']]} for a {study['kind']} study, got {choice!r}.")
  if response_ms is not None and (not isinstance(response_ms, (int, float)) or isinstance(response_ms, bool)
                                  or not 0 <= response_ms < 86_400_000):
    raise StoreError(f"response_ms must be a number of milliseconds in [0, 1 day), got {response_ms!r}.")
  if conn.execute("SELECT 1 FROM served WHERE study_id = ? AND trial = ? AND session = ?",
                  (study_id, trial, session)).fetchone() is None:
    raise NotServedError(f"Trial {trial} of study {study_id!r} was not served to session {session!r}: ask "
                         f"for the next trial first (GET /api/studies/{study_id}/next?session=...).")
  try:
    with transaction(conn):
      cursor = conn.execute("INSERT INTO answers (study_id, trial, session, choice, response_ms, created_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (study_id, trial, session, choice,
                                                          None if response_ms is None else int(response_ms),
                                                          time.time()))
  except sqlite3.IntegrityError:
    raise DuplicateAnswerError(f"Session {session!r} already answered trial {trial} of study {study_id!r}; "
                               "the first answer is kept.") from None
  return int(cursor.lastrowid)


def finish_study(conn: sqlite3.Connection, study_id: str) -> None:
  get_study(conn, study_id)
  with transaction(conn):
    conn.execute("UPDATE studies SET status = 'finished' WHERE id = ?", (study_id,))


def answers(conn: sqlite3.Connection, study_id: str) -> list[dict[str, Any]]:
  """Every answer of a study joined with its trial (runs, sources, seeds), in the order given."""
  rows = conn.execute("SELECT a.id, a.trial, a.session, a.choice, a.response_ms, a.created_at, s.served_at, "
                      "t.a_run, t.a_source, t.a_seed, t.b_run, t.b_source, t.b_seed, t.label "
                      "FROM answers a JOIN trials t ON t.study_id = a.study_id AND t.trial = a.trial "
                      "LEFT JOIN served s ON s.study_id = a.study_id AND s.trial = a.trial AND s.session = a.session "
                      "WHERE a.study_id = ? ORDER BY a.id", (study_id,)).fetchall()
  return [dict(r) for r in rows]
