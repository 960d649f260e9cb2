"""Provenance inside image files (gan/provenance.py): the record round-trips through PNG and JPEG,
stripped files and photos say they carry none, bad files are one-paragraph errors, and the
commands (sample, edit, training's sample grids) record what was asked. gan.stylize's records are
checked in tests/test_stylize.py, gan.edit's latent ops in tests/test_edit_latent.py (their fixtures)."""

import errno
import json
from pathlib import Path
import subprocess
import sys

import numpy as np
from PIL import Image
from PIL import PngImagePlugin
import pytest

from gan import cli
from gan import edit
from gan import provenance
from gan import sample


def image(channels: int = 3) -> np.ndarray:
  return np.random.default_rng(0).integers(0, 256, (12, 10, channels), dtype=np.uint8)


def record() -> dict:
  return provenance.image_record("edited", run="runs/stylegan_products", step=9000, seed=3,
                                 operations=["invert (W+, 300 steps from the mean w, perceptual lpips_vgg)",
                                             "direction size +2", "ünïcode ✓"],
                                 extra={"source": "shoe.jpg"})


def show(argv, capsys) -> tuple[int, str, str]:
  """`python -m gan.provenance ARGV` in-process: (exit code, stdout, stderr)."""
  capsys.readouterr()
  code = cli.call(provenance.define_flags, provenance.main, [str(a) for a in argv])
  out = capsys.readouterr()
  return code, out.out, out.err


def test_the_record_holds_what_the_issue_asks():
  rec = record()
  assert rec["generator"] == "productgan" and rec["kind"] == "edited"
  assert (rec["run"], rec["step"], rec["seed"]) == ("runs/stylegan_products", 9000, 3)
  assert rec["git"] == provenance.git_revision() and rec["time"].endswith("+00:00")
  assert isinstance(rec["command"], str) and json.loads(json.dumps(rec)) == rec
  with pytest.raises(ValueError, match="Unknown image kind 'photo'; valid: generated, edited"):
    provenance.image_record("photo")


@pytest.mark.parametrize("name,channels", [("a.png", 3), ("grey.png", 1), ("a.jpg", 3), ("a.JPEG", 1)])
def test_round_trip_through_png_and_jpeg(tmp_path, name, channels):
  rec = record()
  provenance.write_image(tmp_path / "new" / name, image(channels), rec)   # the folder is created
  assert provenance.read_image_record(tmp_path / "new" / name) == rec
  with Image.open(tmp_path / "new" / name) as written:
    pixels = np.asarray(written)
    if written.format == "PNG":     # lossless; the standard chunks other viewers show
      np.testing.assert_array_equal(pixels, image(channels)[..., 0] if channels == 1 else image(channels))
      assert written.text["Software"].startswith("productgan (git ")
      assert written.text["Description"] == provenance.describe(rec)
      assert written.text["Description"].startswith("Edited by productgan: invert (W+, 300 steps")
      assert "then direction size +2" in written.text["Description"]
      assert written.text["Source"] == "productgan run runs/stylegan_products, step 9000"
    else:                           # EXIF for the usual tools, XMP for the Adobe-style ones
      assert written.format == "JPEG" and pixels.shape[:2] == (12, 10)
      exif = written.getexif()
      assert exif[0x0131].startswith("productgan (git ") and exif[0x010E].startswith("Edited by productgan")
      assert b"<productgan:record>" in written.info["xmp"] and b"dc:description" in written.info["xmp"]


def test_a_jpeg_that_lost_its_exif_is_read_from_its_xmp(tmp_path):
  rec = record()
  provenance.write_image(tmp_path / "a.jpg", image(), rec)
  with Image.open(tmp_path / "a.jpg") as written:
    written.save(tmp_path / "xmp_only.jpg", xmp=written.info["xmp"])    # no exif= : EXIF dropped
  with Image.open(tmp_path / "xmp_only.jpg") as copy:
    assert not copy.getexif()
  assert provenance.read_image_record(tmp_path / "xmp_only.jpg") == rec


def test_stripped_files_and_photos_carry_none_and_show_says_so(tmp_path, capsys):
  provenance.write_image(tmp_path / "a.png", image(), record())
  provenance.write_image(tmp_path / "a.jpg", image(), record())
  for name in ("a.png", "a.jpg"):             # an editor re-saving without the metadata
    with Image.open(tmp_path / name) as written:
      written.save(tmp_path / f"stripped_{name}")
    assert provenance.read_image_record(tmp_path / f"stripped_{name}") is None
  code, out, err = show(["show", tmp_path / "a.png", tmp_path / "stripped_a.jpg"], capsys)
  assert code == 1 and err == ""
  assert f"{tmp_path / 'a.png'}:\n  productgan image, edited\n  run:        runs/stylegan_products" in out
  assert "  operations: invert (W+, 300 steps from the mean w, perceptual lpips_vgg)\n" \
         "              direction size +2\n" in out
  assert (f"{tmp_path / 'stripped_a.jpg'} carries no productgan provenance (a photo, or metadata stripped by "
          "an editor)") in out
  code, out, _ = show(["show", tmp_path / "a.jpg"], capsys)
  assert code == 0 and "step:       9000" in out and "seed:       3" in out and 'source:     "shoe.jpg"' in out
  code, out, _ = show(["--json", "show", tmp_path / "a.png", tmp_path / "stripped_a.png"], capsys)
  lines = [json.loads(line) for line in out.splitlines()]
  assert code == 1 and lines[0]["provenance"]["operations"][1] == "direction size +2"
  assert lines[1] == {"file": str(tmp_path / "stripped_a.png"), "provenance": None}


@pytest.mark.parametrize("case,message", [
    ("missing", "missing.png not found: give the path of a PNG or JPEG image"),
    ("folder", "is a folder: pass the image files in it"),
    ("text", "notes.png is not an image that can be read (cannot identify image file"),
    ("empty", "empty.jpg is not an image that can be read"),
    ("damaged", "damaged.png has a damaged productgan provenance record"),
    ("no command", "Say what to do: python -m gan.provenance show FILE"),
    ("other command", "Say what to do (got 'print')"),
    ("no files", "Give the image files to read"),
])
def test_bad_input_is_one_paragraph_and_exit_1(tmp_path, capsys, case, message):
  (tmp_path / "notes.png").write_text("not an image")
  (tmp_path / "empty.jpg").write_bytes(b"")
  info = PngImagePlugin.PngInfo()
  info.add_itxt("productgan", '{"generator": "productgan", "run": ')    # cut short
  Image.fromarray(image()).save(tmp_path / "damaged.png", pnginfo=info)
  provenance.write_image(tmp_path / "good.png", image(), record())
  argv = {"missing": ["show", tmp_path / "missing.png"], "folder": ["show", tmp_path],
          "text": ["show", tmp_path / "good.png", tmp_path / "notes.png"], "empty": ["show", tmp_path / "empty.jpg"],
          "damaged": ["show", tmp_path / "damaged.png"], "no command": [], "other command": ["print", "x.png"],
          "no files": ["show"]}[case]
  code, out, err = show(argv, capsys)
  assert code == 1 and out == ""            # nothing printed before a bad file is found
  assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_write_image_is_atomic_and_refuses_other_formats_and_floats(tmp_path, monkeypatch):
  path = tmp_path / "out.png"
  provenance.write_image(path, image(), record())

  def disk_full(self, fp, *args, **kwargs):   # half a file, then the disk is full
    del self, args, kwargs
    fp.write(b"\x89PNG\r\n\x1a\n half")
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(Image.Image, "save", disk_full)
  for target in (path, tmp_path / "other.jpg"):          # replacing a file, a new file
    with pytest.raises(OSError, match="No space left"):
      provenance.write_image(target, 255 - image(), record())
  monkeypatch.undo()
  assert [p.name for p in tmp_path.iterdir()] == ["out.png"]      # no partial file, no temporary
  np.testing.assert_array_equal(np.asarray(Image.open(path)), image())   # the old file intact
  with pytest.raises(cli.UserError, match=r"images are written as .png, .jpg, .jpeg"):
    provenance.write_image(tmp_path / "out.gif", image(), record())
  with pytest.raises(TypeError, match="uint8"):
    provenance.write_image(path, image() / 255.0, record())


def test_sample_and_the_training_grids_record_run_step_seed_and_what_was_drawn(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  grid = provenance.read_image_record(workdir / "samples" / "step_000004.png")
  assert (grid["kind"], grid["run"], grid["step"], grid["seed"]) == ("generated", str(workdir), 4, 0)
  assert grid["operations"] == ["generation sample grid at fixed inputs"]
  out = tmp_path / "grid.jpg"
  capsys.readouterr()
  code = cli.call(sample.define_flags, sample.main, ["--workdir", str(workdir), "--num", "4", "--seed", "7",
                                                     "--noema", "--out", str(out)])
  assert code == 0, capsys.readouterr().err
  rec = provenance.read_image_record(out)
  assert (rec["kind"], rec["run"], rec["step"], rec["seed"]) == ("generated", str(workdir), 4, 7)
  assert rec["operations"] == ["sample 4 images from the raw generator, z ~ N(0, I) of seed 7", "grid of 2 columns"]


def test_edit_records_the_op_and_the_source_per_output(tmp_path, capsys):
  (tmp_path / "photos").mkdir()
  product = np.full((16, 16, 3), 255, np.uint8)
  product[4:12, 3:13] = (170, 30, 40)
  for name in ("a.png", "b.jpg"):
    Image.fromarray(product).save(tmp_path / "photos" / name)
  capsys.readouterr()
  code = cli.call(edit.define_flags, edit.main, ["--op", "background", "--image", str(tmp_path / "photos"),
                                                 "--background", "#88aaff", "--out", str(tmp_path / "out")])
  assert code == 0, capsys.readouterr().err
  for name in ("a", "b"):
    rec = provenance.read_image_record(tmp_path / "out" / f"{name}.png")
    assert (rec["kind"], rec["run"], rec["step"], rec["seed"]) == ("edited", None, None, None)
    assert rec["operations"] == ["background #88aaff (feather 1 px, photo backdrop white)"]
    assert rec["extra"] == {"source": f"{name}.{'png' if name == 'a' else 'jpg'}"}


def test_the_real_command_line(tmp_path):
  """`python -m gan.provenance show` as a program: importing it is cheap (no JAX) and it exits as documented."""
  provenance.write_image(tmp_path / "a.png", image(), record())
  Image.fromarray(image()).save(tmp_path / "photo.jpg")
  run = lambda *files: subprocess.run([sys.executable, "-m", "gan.provenance", "show", *map(str, files)],
                                      cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                                      timeout=120)
  good, photo, bad = run(tmp_path / "a.png"), run(tmp_path / "photo.jpg"), run(tmp_path / "none.png")
  assert good.returncode == 0 and "direction size +2" in good.stdout and good.stderr == ""
  assert photo.returncode == 1 and "carries no productgan provenance" in photo.stdout and photo.stderr == ""
  assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
