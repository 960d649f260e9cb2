"""A corpus of bad inputs for every entry point: each must give one paragraph naming the problem and
the fix, a non-zero exit code, and leave the workdir exactly as it was (so the next run can use it).

Entry points run in-process the way their command line runs them:
  train     gan.cli.parse_flags + gan.main.run (flag parsing, then training): SystemExit code + stderr
  sample    gan.sample.check_output_path + sample_images, errors in gan.sample.USER_ERRORS
  evaluate  gan.sample.load_config + gan.evaluate.evaluate_run, errors gan.evaluate.main catches
  stylize   gan.cli.call(gan.stylize's define_flags and main, argv): its exit code + stderr
  edit      the same for gan.edit (bad files only; its option checks live in tests/test_enhance.py)
  provenance  the same for `gan.provenance show` (a photo or stripped file: exit 1 too, said on stdout)
A few rows also run as real subprocesses to check the exit code and the absence of a traceback.
"""

import json
import os
from pathlib import Path
import shutil
import subprocess
import sys
import zlib

from absl import flags
import numpy as np
from PIL import Image
import pytest

from configs import default
from gan import cli
from gan import data
from gan import evaluate
from gan import main
from gan import provenance
from gan import sample
from gan import stylize
from gan.style import controls
from gan import runs

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "tiny.py")


def snapshot(folder) -> dict[str, tuple[int, int]]:
  """Every file and folder under `folder` with its size and modification time."""
  folder = Path(folder)
  if not folder.exists():
    return {}
  return {str(p.relative_to(folder)): (p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns)
          for p in folder.rglob("*")}


def record(entry: str, name: str, code: int, message: str) -> None:
  """Appends the outcome to $PRODUCTGAN_BAD_INPUTS_REPORT (JSON lines) when set: docs/faults.md's table."""
  path = os.environ.get("PRODUCTGAN_BAD_INPUTS_REPORT")
  if path:
    with open(path, "a", encoding="utf-8") as f:
      f.write(json.dumps({"entry": entry, "input": name, "exit_code": code, "message": message.strip()}) + "\n")


def assert_one_paragraph(text: str) -> None:
  """"error: ..." with no traceback and no blank line (a list of problems may span a few lines)."""
  assert "Traceback" not in text, text
  assert text.startswith("error: ") and "\n\n" not in text.strip(), text
  assert len(text) < 2000 and len(text.strip().splitlines()) <= 12, text


# ------------------------------------------------------------------ bad files


def png_header_with_size(path: Path, width: int, height: int) -> Path:
  """A PNG whose header claims width x height (a decompression bomb; the file itself is tiny)."""
  Image.new("L", (8, 8)).save(path)
  raw = bytearray(path.read_bytes())
  raw[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")   # IHDR width, height
  raw[29:33] = zlib.crc32(bytes(raw[12:29])).to_bytes(4, "big")        # IHDR CRC
  path.write_bytes(bytes(raw))
  return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, write_idx):
  """Bad data folders and image files (one of each kind)."""
  root = tmp_path_factory.mktemp("bad_files")
  rng = np.random.default_rng(0)
  images, labels = rng.integers(0, 255, (64, 28, 28), dtype=np.uint8), np.arange(64) % 10
  out = {"empty_dir": root / "empty"}
  out["empty_dir"].mkdir()
  out["missing_dir"] = root / "missing"

  def idx_folder(name, images=images, labels=labels, **kwargs):
    folder = root / name
    write_idx(folder, images, labels, **kwargs)
    return folder

  out["corrupt_gz"] = idx_folder("corrupt_gz")
  (out["corrupt_gz"] / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00" + rng.bytes(500))
  out["truncated_gz"] = idx_folder("truncated_gz")
  content = (out["truncated_gz"] / "train-images-idx3-ubyte.gz").read_bytes()
  (out["truncated_gz"] / "train-images-idx3-ubyte.gz").write_bytes(content[:len(content) // 2])
  out["truncated_raw"] = idx_folder("truncated_raw", compress=False)
  content = (out["truncated_raw"] / "train-images-idx3-ubyte").read_bytes()
  (out["truncated_raw"] / "train-images-idx3-ubyte").write_bytes(content[:-100])
  out["swapped"] = idx_folder("swapped")
  a, b = out["swapped"] / "train-images-idx3-ubyte.gz", out["swapped"] / "train-labels-idx1-ubyte.gz"
  a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
  a.write_bytes(b_bytes)
  b.write_bytes(a_bytes)
  out["count_mismatch"] = idx_folder("count_mismatch", labels=labels[:40])
  out["wrong_size"] = idx_folder("wrong_size", images=rng.integers(0, 255, (64, 40, 40), dtype=np.uint8))

  def class_folders(name, files_by_class):
    folder = root / name
    for cls, names in files_by_class.items():
      (folder / cls).mkdir(parents=True)
      for i in range(4):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / cls / f"ok_{i}.png")
      for file_name, writer in names:
        writer(folder / cls / file_name)
    return folder

  out["non_image"] = class_folders("non_image", {"shoe": [("notes.png", lambda p: p.write_text("not an image"))]})
  out["empty_file"] = class_folders("empty_file", {"shoe": [("empty.jpg", lambda p: p.write_bytes(b""))]})
  out["huge_image"] = class_folders("huge_image", {"shoe": [("huge.png", lambda p: png_header_with_size(p, 20000, 20000))]})
  out["empty_class"] = class_folders("empty_class", {"shoe": []})
  (out["empty_class"] / "bag").mkdir()

  # Single files for the image entry points.
  out["text_file"] = root / "text.jpg"
  out["text_file"].write_text("hello")
  out["zero_bytes"] = root / "zero.png"
  out["zero_bytes"].write_bytes(b"")
  out["huge_png"] = png_header_with_size(root / "huge.png", 20000, 20000)
  out["photo"] = root / "photo.png"
  Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(out["photo"])
  out["tiny_png"] = root / "tiny.png"
  Image.fromarray(rng.integers(0, 255, (6, 40, 3), dtype=np.uint8)).save(out["tiny_png"])
  out["animated_gif"] = root / "animated.gif"
  frames = [Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)) for _ in range(3)]
  frames[0].save(out["animated_gif"], save_all=True, append_images=frames[1:], duration=100)
  out["garbled_json"] = root / "profile.json"
  out["garbled_json"].write_text("{styles: [")
  return out


# ------------------------------------------------------------------ train


@pytest.fixture(scope="module")
def train_workdir(tmp_path_factory, tiny_run):
  """A copy of the tiny 4-step run that every bad training input is tried on, in turn."""
  workdir = tmp_path_factory.mktemp("bad_train") / "run"
  shutil.copytree(tiny_run[0], workdir)
  return workdir


def run_train(argv, capsys) -> tuple[int, str]:
  """`python -m gan.main ARGV` in-process: (exit code, stderr)."""
  argv = ["gan.main", *argv]
  flag_values = flags.FlagValues()
  main.define_flags(flag_values, sys_argv=argv)
  capsys.readouterr()
  try:
    cli.parse_flags(argv, flag_values)
    f = flag_values
    main.run(f.config, f.workdir, f.coordinator_address, f.num_processes, f.process_id)
    code = 0
  except SystemExit as e:
    code = e.code
  return code, capsys.readouterr().err


# (id, extra argv, substrings the message must contain). {data}: the tiny data; {files[k]}: bad files.
TRAIN_ROWS = [
    # Malformed overrides and wrong types (absl / ml_collections parsing).
    ("override not a number", ["--config.train.steps=abc"], ["--config.train.steps=abc", "invalid literal for int()"]),
    ("override float for int", ["--config.train.batch_size=1.5"], ["batch_size=1.5", "invalid literal for int()"]),
    ("override not a bool", ["--config.data.random_flip=maybe"], ["random_flip=maybe", "Non-boolean"]),
    ("override unknown key", ["--config.train.stpes=5"], ["does not have", "'stpes'", 'Did you mean "steps"']),
    ("override unknown section", ["--config.modle.name=dcgan"], ["does not have", "'modle'"]),
    ("override without value", ["--config.train.steps"], ["--config.train.steps"]),
    ("config file missing", ["--config=configs/nope.py"], ["Config file configs/nope.py not found"]),
    ("config file not python", [f"--config={REPO / 'README.md'}"], ["Cannot load --config", "SyntaxError"]),
    ("config takes no argument", [f"--config={TINY}:smoke"], ["get_config() takes 0 positional arguments"]),
    ("empty workdir", ["--workdir="], ["--workdir is empty"]),
    ("workdir is a file", ["--workdir={workdir}/config.json"], ["is a file, not a folder"]),
    # Out-of-range values.
    ("batch size zero", ["--config.train.batch_size=0"], ["train.batch_size must be positive, got 0"]),
    ("negative steps", ["--config.train.steps=-3"], ["train.steps must be >= 0, got -3"]),
    ("ema decay 1.5", ["--config.train.ema_decay=1.5"], ["train.ema_decay must be in [0, 1)"]),
    ("log every zero", ["--config.train.log_every=0"], ["train.log_every must be positive"]),
    ("keep no checkpoints", ["--config.train.keep_checkpoints=0"], ["train.keep_checkpoints must be positive"]),
    ("zero D steps", ["--config.loss.d_steps=0"], ["loss.d_steps must be an int >= 1"]),
    ("negative R1", ["--config.reg.r1_gamma=-1.0"], ["reg.r1_gamma must be >= 0"]),
    ("image size 4", ["--config.data.image_size=4"], ["data.image_size must be an int >= 8"]),
    ("two channels", ["--config.data.channels=2"], ["data.channels must be 1 (grayscale) or 3 (RGB)"]),
    ("batch larger than data", ["--config.train.batch_size=512"], ["larger than the dataset", "lower the batch size"]),
    ("unknown architecture", ["--config.model.name=unet"], ["Unknown model.name 'unet'; valid names"]),
    ("unknown loss", ["--config.loss.name=wgan"], ["Unknown loss.name 'wgan'; valid names"]),
    ("unknown data source", ["--config.data.source=csv"], ["Unknown data.source 'csv'"]),
    ("unknown optimizer", ["--config.optimizer.name=sgd"], ["Unknown optimizer.name 'sgd'", "'adam'"]),
    ("no prefetch", ["--config.data.prefetch=0"], ["data.prefetch must be >= 1"]),
    ("unknown fault policy", ["--config.train.on_non_finite=ignore"], ["Unknown train.on_non_finite 'ignore'"]),
    ("rollback factor 0", ["--config.train.rollback_lr_factor=0.0"], ["train.rollback_lr_factor must be in (0, 1)"]),
    # Data files.
    ("data folder missing", ["--config.data.dir={files[missing_dir]}"], ["is not a folder", "fashion-mnist"]),
    ("data folder empty", ["--config.data.dir={files[empty_dir]}"], ["Missing IDX file train-images-idx3-ubyte.gz"]),
    ("corrupt gzip", ["--config.data.dir={files[corrupt_gz]}"], ["Cannot decompress", "Download it again"]),
    ("truncated gzip", ["--config.data.dir={files[truncated_gz]}"], ["corrupt or truncated gzip", "Download it again"]),
    ("truncated idx", ["--config.data.dir={files[truncated_raw]}"], ["truncated or corrupt", "Download it again"]),
    ("images and labels swapped", ["--config.data.dir={files[swapped]}"], ["magic number", "swapped"]),
    ("label count differs", ["--config.data.dir={files[count_mismatch]}"], ["holds 64 images but", "40"]),
    ("images too large to pad", ["--config.data.dir={files[wrong_size]}"], ["cannot shrink 40x40 images",
                                                                              "data.resize='resize'"]),
    ("non-image file", ["--config.data.source=image_folder", "--config.data.dir={files[non_image]}"],
     ["Cannot decode image", "notes.png", "Remove or replace the file"]),
    ("empty image file", ["--config.data.source=image_folder", "--config.data.dir={files[empty_file]}"],
     ["Cannot decode image", "empty.jpg", "Remove or replace the file"]),
    ("huge image", ["--config.data.source=image_folder", "--config.data.dir={files[huge_image]}"],
     ["Cannot decode image", "huge.png", "exceeds limit", "Remove or replace the file"]),
    ("empty class folder", ["--config.data.source=image_folder", "--config.data.dir={files[empty_class]}"],
     ["Class folder", "has no images"]),
    # Checkpoints, run files and processes.
    ("incompatible checkpoint", ["--config.model.g_width=16"], ["does not match this config",
                                                               "model.g_width: checkpoint 8 vs config 16",
                                                               "Use a new --workdir"]),
    ("garbled rollback log", ["--config.train.steps=6", "ROLLBACKS"], ["rollbacks.jsonl is not valid JSON lines",
                                                                     "Fix or delete it"]),
    ("two processes, no coordinator", ["--num_processes=2", "--process_id=0"], ["--coordinator_address=HOST:PORT"]),
    ("process id out of range", ["--num_processes=2", "--process_id=2", "--coordinator_address=127.0.0.1:1"],
     ["--process_id 2 must be in [0, 2)"]),
]


@pytest.mark.parametrize("name,extra,expected", TRAIN_ROWS, ids=[r[0] for r in TRAIN_ROWS])
def test_train_bad_input(name, extra, expected, train_workdir, tiny_data_dir, files, capsys):
  rollbacks = train_workdir / "rollbacks.jsonl"
  if "ROLLBACKS" in extra:
    extra = [a for a in extra if a != "ROLLBACKS"]
    rollbacks.write_text('{"rollback": 1, "lr_scale": 0.5}\n{"rollb')
  fill = {"workdir": train_workdir, "files": {k: str(v) for k, v in files.items()}}
  extra = [a.format(**fill) for a in extra]
  argv = [f"--config={TINY}", f"--workdir={train_workdir}", f"--config.data.dir={tiny_data_dir}", *extra]
  before = snapshot(train_workdir)
  try:
    code, err = run_train(argv, capsys)
    after = snapshot(train_workdir)
  finally:
    rollbacks.unlink(missing_ok=True)
  record("train", name, code, err)
  assert code == 1, err
  assert_one_paragraph(err)
  for text in expected:
    assert text in err, f"{text!r} not in {err!r}"
  assert after == before          # the bad run changed nothing in the workdir


def test_workdir_still_usable_after_the_bad_inputs(train_workdir, tiny_data_dir, capsys):
  """After every bad training input above, the same workdir resumes normally (step 4 -> 6)."""
  code, err = run_train([f"--config={TINY}", f"--workdir={train_workdir}", f"--config.data.dir={tiny_data_dir}",
                         "--config.train.steps=6"], capsys)
  assert code == 0, err
  assert sorted(int(s) for s in os.listdir(train_workdir / "checkpoints")) == [4, 6]


# ------------------------------------------------------------------ sample and evaluate


@pytest.fixture(scope="module")
def sample_workdirs(tmp_path_factory, tiny_run):
  """Damaged copies of the tiny run, by name."""
  root = tmp_path_factory.mktemp("bad_sample")
  out = {"missing": root / "missing", "empty": root / "empty", "good": tiny_run[0]}
  out["empty"].mkdir()

  def copy(name, change):
    folder = root / name
    shutil.copytree(tiny_run[0], folder)
    change(folder)
    out[name] = folder

  copy("garbled_config", lambda f: (f / "config.json").write_text('{"model": {"name": '))
  copy("list_config", lambda f: (f / "config.json").write_text("[1, 2]"))
  copy("no_checkpoints", lambda f: shutil.rmtree(f / "checkpoints"))

  def truncate_all(folder):
    for step in ("2", "4"):
      for path in (folder / "checkpoints" / step / "state").rglob("*"):
        if path.is_file() and path.stat().st_size > 200:
          path.write_bytes(path.read_bytes()[:100])
  copy("corrupt_checkpoints", truncate_all)

  def wider_config(folder):
    config = json.loads((folder / "config.json").read_text())
    config["model"]["g_width"] = 16
    (folder / "config.json").write_text(json.dumps(config))
  copy("incompatible", wider_config)
  return out


# (id, sample_images / check_output_path arguments, substrings). {w[name]}: a workdir above.
SAMPLE_ROWS = [
    ("workdir missing", dict(workdir="missing"), ["not a training workdir", "Train first"]),
    ("workdir not a run", dict(workdir="empty"), ["not a training workdir"]),
    ("config garbled", dict(workdir="garbled_config"), ["config.json", "damaged", "Restore it from a copy"]),
    ("config not an object", dict(workdir="list_config"), ["does not hold a config"]),
    ("no checkpoints", dict(workdir="no_checkpoints"), ["No checkpoints in", "train first"]),
    ("every checkpoint corrupt", dict(workdir="corrupt_checkpoints"), ["No checkpoint in", "can be read",
                                                                       "Restore the folder from a backup"]),
    ("incompatible checkpoint", dict(workdir="incompatible"), ["does not match this config",
                                                               "model.g_width: checkpoint 8 vs config 16"]),
    ("zero images", dict(num=0), ["--num must be positive, got 0"]),
    ("label on unconditional", dict(label="sneaker"), ["--label needs a class-conditional model"]),
    ("text on unconditional", dict(text="a red bag"), ["--text needs a model trained with data.condition='text'"]),
    ("attributes on unconditional", dict(attribute_spec="size=2"), ["--attributes one with 'attributes'"]),
    ("output folder missing", dict(out="nowhere/grid.png"), ["does not exist", "create it"]),
    ("output extension unknown", dict(out="grid.xyz"), ["unknown image extension", ".png"]),
    ("output is a folder", dict(out="."), ["is a folder", "samples.png"]),
]


@pytest.mark.parametrize("name,kwargs,expected", SAMPLE_ROWS, ids=[r[0] for r in SAMPLE_ROWS])
def test_sample_bad_input(name, kwargs, expected, sample_workdirs, tmp_path):
  kwargs = dict(kwargs)
  workdir = str(sample_workdirs[kwargs.pop("workdir", "good")])
  out = str(tmp_path / kwargs.pop("out", "grid.png"))
  before = snapshot(workdir)
  with pytest.raises(sample.USER_ERRORS) as error:     # what `python -m gan.sample` reports as "error: ..."
    sample.check_output_path(out)
    sample.sample_images(workdir, **{"num": 4, **kwargs})
  message = f"error: {error.value}"
  record("sample", name, 1, message)
  assert_one_paragraph(message)
  for text in expected:
    assert text in message, f"{text!r} not in {message!r}"
  assert snapshot(workdir) == before


EVALUATE_USER_ERRORS = (FileNotFoundError, ValueError)     # what gan.evaluate.main reports as "error: ..."
EVALUATE_ROWS = [
    ("workdir missing", dict(workdir="missing"), ["not a training workdir"]),
    ("classifier missing", dict(classifier_dir="nowhere"), ["No classifier checkpoint in", "Train one with"]),
    ("unknown feature network", dict(features="clip"), ["Unknown --features 'clip'", "valid"]),
    ("inception weights missing", dict(features="inception", weights_dir="nowhere"),
     ["nowhere", "python -m gan.weights fetch inception"]),
    ("unknown reference split", dict(reference_split="val"), ["Unknown reference split 'val'", "train, test"]),
]


@pytest.mark.parametrize("name,kwargs,expected", EVALUATE_ROWS, ids=[r[0] for r in EVALUATE_ROWS])
def test_evaluate_bad_input(name, kwargs, expected, sample_workdirs, tmp_path):
  kwargs = {"classifier_dir": str(tmp_path / "no_classifier"), "num_samples": 10, **kwargs}
  workdir = str(sample_workdirs[kwargs.pop("workdir", "good")])
  before = snapshot(workdir)
  with pytest.raises(EVALUATE_USER_ERRORS) as error:
    runs.load_config(workdir)
    evaluate.evaluate_run(workdir, **kwargs)
  message = f"error: {error.value}"
  record("evaluate", name, 1, message)
  assert_one_paragraph(message)
  for text in expected:
    assert text in message, f"{text!r} not in {message!r}"
  assert snapshot(workdir) == before


# ------------------------------------------------------------------ stylize


STYLIZE_ROWS = [
    ("content missing", ["--content", "{root}/none.jpg", "--style", "{photo}"], ["--content", "not found"]),
    ("content not an image", ["--content", "{text_file}", "--style", "{photo}"], ["Cannot read image"]),
    ("content empty file", ["--content", "{zero_bytes}", "--style", "{photo}"], ["Cannot read image"]),
    ("content huge", ["--content", "{huge_png}", "--style", "{photo}"], ["too large", "Resize it"]),
    ("style missing", ["--content", "{photo}", "--style", "{root}/none.jpg"], ["style image 1", "not found"]),
    ("style not an image", ["--content", "{photo}", "--style", "{text_file}"], ["style image 1", "Cannot read image"]),
    ("style tiny", ["--content", "{photo}", "--style", "{tiny_png}"], ["style image 1", "40x6 px", "at least 16"]),
    ("style animated", ["--content", "{photo}", "--style", "{animated_gif}"],
     ["style image 1", "animated (3 frames)", "Save the frame"]),
    ("no style", ["--content", "{photo}"], ["Give at least one --style"]),
    ("alpha out of range", ["--content", "{photo}", "--style", "{photo}", "--alpha", "2"], ["alpha"]),
    ("alpha not a number", ["--content", "{photo}", "--style", "{photo}", "--alpha", "strong"],
     ["--alpha=strong", "could not convert string to float"]),
    ("weights not numbers", ["--content", "{photo}", "--style", "{photo}", "--weights", "a,b"],
     ["--weights must be comma-separated numbers"]),
    ("weights do not match styles", ["--content", "{photo}", "--style", "{photo}", "--weights", "0.5,0.5"],
     ["weight"]),
    ("size too small", ["--content", "{photo}", "--style", "{photo}", "--size", "4"], ["size must be >= 8"]),
    ("zero steps", ["--content", "{photo}", "--style", "{photo}", "--steps", "0"], ["steps must be >= 1"]),
    ("cyclegan without a run", ["--content", "{photo}", "--style", "{photo}", "--method", "cyclegan"],
     ["--method cyclegan needs --workdir RUN", "python -m gan.main"]),
    ("unknown method", ["--content", "{photo}", "--style", "{photo}", "--method", "magic"], ["magic"]),
    ("unknown mask", ["--content", "{photo}", "--style", "{photo}", "--mask", "sky"], ["Unknown mask 'sky'"]),
    ("unknown colour mode", ["--content", "{photo}", "--style", "{photo}", "--preserve-color", "hue"],
     ["Unknown preserve-color 'hue'"]),
    ("unknown extractor", ["--content", "{photo}", "--style", "{photo}", "--extractor", "resnet"],
     ["Unknown extractor 'resnet'"]),
    ("adain without decoder", ["--content", "{photo}", "--style", "{photo}", "--method", "adain",
                               "--adain_dir", "{root}/no_decoder"], ["needs a trained decoder", "Train one with"]),
    ("output not png or jpeg", ["--content", "{photo}", "--style", "{photo}", "--out", "{out}/x.gif"], ["must end in .png"]),
    ("content folder empty", ["--content", "{empty_dir}", "--style", "{photo}"], ["No images"]),
    ("profile missing", ["--content", "{photo}", "--profile", "{root}/none.json"], ["Cannot read the profile"]),
    ("profile garbled", ["--content", "{photo}", "--profile", "{garbled_json}"], ["Invalid profile"]),
    ("unknown flag", ["--content", "{photo}", "--style", "{photo}", "--colour", "red"],
     ["Unknown command line flag 'colour'"]),
]


@pytest.mark.parametrize("name,argv,expected", STYLIZE_ROWS, ids=[r[0] for r in STYLIZE_ROWS])
def test_stylize_bad_input(name, argv, expected, files, tmp_path, capsys):
  fill = {"root": files["photo"].parent, "out": tmp_path, **{k: str(v) for k, v in files.items()}}
  argv = [a.format(**fill) for a in argv]
  if "--out" not in argv:
    argv += ["--out", str(tmp_path / "out.png")]
  capsys.readouterr()
  code = cli.call(stylize.define_flags, stylize.main, argv)
  err = capsys.readouterr().err
  record("stylize", name, code, err)
  assert code == 1, err
  assert_one_paragraph(err)
  for text in expected:
    assert text in err, f"{text!r} not in {err!r}"
  assert not (tmp_path / "out.png").exists()


# ------------------------------------------------------------------ edit

# gan.edit (being written alongside; its own option checks are in tests/test_enhance.py): the bad
# files every image entry point must survive, through its main(argv). Add rows for new ops here.
EDIT_ROWS = [
    ("image missing", ["--op", "background", "--image", "{root}/none.png"], ["not found"]),
    ("image not an image", ["--op", "background", "--image", "{text_file}"], ["text.jpg"]),
    ("image empty file", ["--op", "background", "--image", "{zero_bytes}"], ["zero.png"]),
    ("image huge", ["--op", "background", "--image", "{huge_png}"], ["huge.png", "too large"]),
    ("image folder empty", ["--op", "background", "--image", "{empty_dir}"], ["empty"]),
    ("background image not an image", ["--op", "background", "--image", "{photo}", "--background", "{text_file}"],
     ["text.jpg"]),
]


@pytest.mark.parametrize("name,argv,expected", EDIT_ROWS, ids=[r.values[0] if hasattr(r, "values") else r[0]
                                                                for r in EDIT_ROWS])
def test_edit_bad_input(name, argv, expected, files, tmp_path, capsys):
  edit = pytest.importorskip("gan.edit")
  fill = {"root": files["photo"].parent, **{k: str(v) for k, v in files.items()}}
  argv = [a.format(**fill) for a in argv] + ["--out", str(tmp_path / "out.png")]
  capsys.readouterr()
  code = cli.call(edit.define_flags, edit.main, argv)
  err = capsys.readouterr().err
  record("edit", name, code, err)
  assert code == 1, err
  assert_one_paragraph(err)
  for text in expected:
    assert text in err, f"{text!r} not in {err!r}"
  assert not (tmp_path / "out.png").exists()


# ------------------------------------------------------------------ provenance show

PROVENANCE_ROWS = [
    ("file missing", ["show", "{root}/none.png"], ["none.png not found"]),
    ("not an image", ["show", "{text_file}"], ["text.jpg is not an image that can be read"]),
    ("empty file", ["show", "{zero_bytes}"], ["zero.png is not an image that can be read"]),
    ("a folder", ["show", "{empty_dir}"], ["is a folder: pass the image files in it"]),
    ("no files", ["show"], ["Give the image files to read"]),
    ("no command", ["{photo}"], ["Say what to do (got '"]),
    ("unknown flag", ["--format", "xml", "show", "{photo}"], ["Unknown command line flag 'format'"]),
]


@pytest.mark.parametrize("name,argv,expected", PROVENANCE_ROWS, ids=[r[0] for r in PROVENANCE_ROWS])
def test_provenance_bad_input(name, argv, expected, files, capsys):
  fill = {"root": files["photo"].parent, **{k: str(v) for k, v in files.items()}}
  capsys.readouterr()
  code = cli.call(provenance.define_flags, provenance.main, [a.format(**fill) for a in argv])
  out, err = capsys.readouterr()
  record("provenance", name, code, err)
  assert code == 1 and out == "", (out, err)
  assert_one_paragraph(err)
  for text in expected:
    assert text in err, f"{text!r} not in {err!r}"


def test_provenance_of_a_photo_is_exit_1_said_on_stdout(files, capsys):
  """A photo is not an error of the input: the answer ("no provenance") goes to stdout, exit 1."""
  capsys.readouterr()
  assert cli.call(provenance.define_flags, provenance.main, ["show", str(files["photo"])]) == 1
  out, err = capsys.readouterr()
  record("provenance", "photo without provenance", 1, out)
  assert out == f"{files['photo']} {provenance.NO_RECORD}\n" and err == ""


# ------------------------------------------------------------------ images that are fine


def test_alpha_and_16_bit_images_load_with_the_right_values(tmp_path):
  """Not errors: transparency is composited on white, 16-bit depth scaled (not clipped) to 8 bits."""
  rgba = np.zeros((16, 16, 4), np.uint8)
  rgba[..., 0] = 255                      # red ...
  rgba[:8, :, 3] = 255                    # ... opaque on the top half, transparent below
  grey16 = np.full((16, 16), 32896, np.uint16)          # 32896 / 65535 * 255 = 128
  for cls in ("a", "b"):
    (tmp_path / "folder" / cls).mkdir(parents=True)
    Image.fromarray(rgba).save(tmp_path / "folder" / cls / "alpha.png")
    Image.fromarray(grey16).save(tmp_path / "folder" / cls / "deep.png")
  config = default.get_config().data
  config.update(source="image_folder", dir=str(tmp_path / "folder"), image_size=16, channels=3, num_classes=2)
  alpha, deep = data.load_dataset(config).images[:2]     # class "a": alpha.png, deep.png (sorted)
  np.testing.assert_array_equal(alpha[2:6, 2:14], [[[255, 0, 0]] * 12] * 4)      # opaque red
  np.testing.assert_array_equal(alpha[10:14, 2:14], [[[255, 255, 255]] * 12] * 4)  # white behind
  np.testing.assert_array_equal(deep, np.full((16, 16, 3), 128))
  # The stylize loader ([-1, 1]): the same two images.
  np.testing.assert_allclose(controls.load_image(tmp_path / "folder" / "a" / "deep.png", 16),
                             np.full((16, 16, 3), 128 / 127.5 - 1), atol=1e-6)
  loaded = controls.load_image(tmp_path / "folder" / "a" / "alpha.png", 16)
  np.testing.assert_allclose(loaded[12, 8], [1, 1, 1])
  np.testing.assert_allclose(loaded[3, 8], [1, -1, -1])


def test_edit_reads_16_bit_images_scaled(tmp_path):
  edit = pytest.importorskip("gan.edit")
  Image.fromarray(np.full((8, 8), 32896, np.uint16)).save(tmp_path / "deep.png")
  np.testing.assert_allclose(edit.read_image(tmp_path / "deep.png"), np.full((8, 8, 3), 128 / 127.5 - 1), atol=1e-6)


# ------------------------------------------------------------------ real command lines


def command_line(args, timeout=180):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("args,expected", [
    (["gan.main", "--config", "configs/tiny.py", "--workdir", "{tmp}/w", "--config.train.stpes=5"], "'stpes'"),
    (["gan.sample", "--workdir", "{tmp}/missing"], "is not a training workdir"),
    (["gan.evaluate", "--workdir", "{tmp}/missing"], "is not a training workdir"),
], ids=["train", "sample", "evaluate"])
def test_command_lines_exit_1_with_one_paragraph(args, expected, tmp_path):
  result = command_line([a.format(tmp=tmp_path) for a in args])
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and expected in errors[0], result.stderr[-3000:]
  assert not (tmp_path / "w").exists() or not os.listdir(tmp_path / "w")
