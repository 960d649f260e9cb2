"""gan.provenance: git revision in a repository the test makes, versions, devices, run records."""

import datetime
import json
import os
import shutil
import subprocess

import jax
import ml_collections
import numpy as np
import pytest

from gan import provenance

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(folder, *args):
  return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t",
                         "-c", "commit.gpgsign=false", *args],
                        capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
  folder = tmp_path / "repo"
  folder.mkdir()
  git(folder, "init", "-q")
  (folder / "a.txt").write_text("one\n")
  git(folder, "add", "a.txt")
  git(folder, "commit", "-q", "-m", "first")
  return folder


@needs_git
def test_revision_and_dirty_flag_in_a_fresh_repository(repo):
  head = git(repo, "rev-parse", "HEAD")
  assert len(head) == 40
  assert provenance.git_revision(repo) == {"revision": head, "dirty": False}
  (repo / "untracked.txt").write_text("new\n")      # untracked files do not make the code dirty
  assert provenance.git_revision(repo)["dirty"] is False
  (repo / "a.txt").write_text("two\n")
  assert provenance.git_revision(repo) == {"revision": head, "dirty": True}
  git(repo, "commit", "-q", "-am", "second")
  second = provenance.git_revision(repo)
  assert second == {"revision": git(repo, "rev-parse", "HEAD"), "dirty": False}
  assert second["revision"] != head
  # A sub-folder of the work tree reports the same revision.
  (repo / "sub").mkdir()
  assert provenance.git_revision(repo / "sub")["revision"] == second["revision"]


@needs_git
def test_revision_unknown_outside_a_repository_or_without_git(tmp_path, repo, monkeypatch):
  plain = tmp_path / "plain"
  plain.mkdir()
  assert provenance.git_revision(plain) == {"revision": "unknown", "dirty": None}
  assert provenance.git_revision(tmp_path / "missing") == {"revision": "unknown", "dirty": None}
  empty = tmp_path / "empty_repo"        # a repository without a commit has no HEAD
  empty.mkdir()
  git(empty, "init", "-q")
  assert provenance.git_revision(empty)["revision"] == "unknown"
  monkeypatch.setenv("PATH", str(tmp_path / "no_binaries_here"))
  assert provenance.git_revision(repo) == {"revision": "unknown", "dirty": None}


def test_default_revision_is_this_checkout_or_unknown():
  expected = "unknown"
  if shutil.which("git"):
    try:
      top = git(provenance.REPO_ROOT, "rev-parse", "--show-toplevel")
      if os.path.realpath(top) == str(provenance.REPO_ROOT):
        expected = git(provenance.REPO_ROOT, "rev-parse", "HEAD")
    except subprocess.CalledProcessError:
      pass
  assert provenance.git_revision()["revision"] == expected


def test_record_holds_versions_devices_seed_and_config():
  config = ml_collections.ConfigDict({"seed": 7, "train": {"steps": 3, "lr": np.float32(0.5)}})
  start = 1_700_000_000.25
  rec = provenance.record(config=config, command="python -m gan.main --x", start_time=start,
                          extra={"note": (1, 2)})
  assert rec["seed"] == 7                                   # taken from the config
  assert rec["config"] == {"seed": 7, "train": {"steps": 3, "lr": 0.5}}
  assert rec["packages"]["jax"] == jax.__version__
  assert rec["packages"]["numpy"] == np.__version__
  assert rec["packages"]["tensorflow-datasets"]             # a version or "not installed"
  assert rec["devices"]["device_count"] == jax.device_count()
  assert rec["devices"]["process_count"] == jax.process_count()
  assert rec["devices"]["device_kind"] == jax.devices()[0].device_kind
  assert rec["command"] == "python -m gan.main --x"
  assert rec["extra"] == {"note": [1, 2]}
  assert rec["cpu_count"] == os.cpu_count() and rec["cpu"] and rec["cpu"] != "unknown"
  if os.path.exists("/proc/cpuinfo"):                     # Linux: the model name line, as lscpu shows it
    with open("/proc/cpuinfo") as f:
      assert f"model name\t: {rec['cpu']}" in f.read()
  assert datetime.datetime.fromisoformat(rec["start_time"]).timestamp() == 1_700_000_000   # whole seconds
  assert rec["start_unix"] == start
  assert provenance.record(seed=3, devices=False)["seed"] == 3
  assert provenance.record(devices=False)["devices"] is None
  assert provenance.package_versions(["surely-not-a-package-xyz"]) == {
      "surely-not-a-package-xyz": "not installed"}


def test_finish_and_write_round_trip(tmp_path):
  rec = provenance.record(seed=1, start_time=1000.0, devices=False,
                          extra={"array": np.arange(3), "value": np.float64(2.5), "path": tmp_path,
                                 "nan": float("nan")})
  done = provenance.finish(rec, end_time=1012.5)
  assert done["wall_seconds"] == 12.5 and "wall_seconds" not in rec
  path = provenance.write(tmp_path / "deep" / "folder" / "p.json", done)
  loaded = provenance.read(path)
  assert loaded["extra"] == {"array": [0, 1, 2], "value": 2.5, "path": str(tmp_path), "nan": "nan"}
  assert loaded == json.loads(json.dumps(loaded))           # plain JSON, nothing lost on a reload
  assert {k: loaded[k] for k in ("seed", "start_unix", "wall_seconds")} == {
      "seed": 1, "start_unix": 1000.0, "wall_seconds": 12.5}
  assert [p.name for p in (tmp_path / "deep" / "folder").iterdir()] == ["p.json"]   # no temp file left


def test_run_record_over_attempts(tmp_path):
  config = ml_collections.ConfigDict({"seed": 0, "train": {"steps": 10}})
  path = tmp_path / provenance.RUN_RECORD
  running = provenance.write_run_record(tmp_path, config, 1000.0, step=0, status="running")
  assert running["wall_seconds"] is None and provenance.read(path)["status"] == "running"
  # The same attempt finishing replaces its own entry (no previous attempt).
  first = provenance.write_run_record(tmp_path, config, 1000.0, step=6, status="stopped")
  assert first["previous_attempts"] == [] and first["step"] == 6
  assert first["wall_seconds"] == pytest.approx(first["total_wall_seconds"])
  # A second process resumes: the first attempt is summarised, wall times add up.
  second = provenance.write_run_record(tmp_path, config, 2000.0, step=10)
  on_disk = provenance.read(path)
  assert on_disk["status"] == "finished" and on_disk["config"] == config.to_dict()
  assert [a["status"] for a in on_disk["previous_attempts"]] == ["stopped"]
  assert on_disk["previous_attempts"][0]["wall_seconds"] == first["wall_seconds"]
  assert second["total_wall_seconds"] == pytest.approx(first["wall_seconds"] + second["wall_seconds"],
                                                       abs=2e-3)
  # A third attempt killed after its "running" record: kept as "interrupted", its time unknown.
  provenance.write_run_record(tmp_path, config, 3000.0, step=10, status="running")
  fourth = provenance.write_run_record(tmp_path, config, 4000.0, step=10)
  assert [a["status"] for a in fourth["previous_attempts"]] == ["stopped", "finished", "interrupted"]
  assert fourth["previous_attempts"][2]["wall_seconds"] is None
  assert fourth["total_wall_seconds"] == pytest.approx(
      first["wall_seconds"] + second["wall_seconds"] + fourth["wall_seconds"], abs=3e-3)


def test_sweep_records_revisions_and_shard_files(tmp_path):
  from experiments import benchmark  # pylint: disable=g-import-not-at-top  (imports the train loop)
  assert benchmark.sweep_record_name(0, 1, -1) == "provenance.json"
  assert benchmark.sweep_record_name(3, 8, -1) == "provenance_shard_3_of_8.json"
  assert benchmark.sweep_record_name(0, 1, 5) == "provenance_index_5.json"
  metrics = {"fid": 1.0, "kid": 0.0, "precision": 0.5, "recall": 0.5, "recognition_accuracy": 0.9,
             "classes_covered": 10}

  def result(seed, revision, dirty):
    return {"group": "hinge", "seed": seed, "train_wall_seconds": 60.0, "steps": 10, "metrics": metrics,
            "real_data_floor": metrics, "provenance": {"git": {"revision": revision, "dirty": dirty}}}

  markdown = benchmark.write_report(str(tmp_path), [result(0, "a" * 40, False), result(1, "a" * 40, False),
                                                    result(2, "b" * 40, True)], "cmd")
  assert f"Code: {'a' * 12} (2 runs), {'b' * 12} (modified) (1 runs);" in markdown
