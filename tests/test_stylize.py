"""gan/stylize.py: stylize_image, the CLI (in-process, and once or twice as a real subprocess)."""

import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from configs import adain_products
from configs import default
from gan import cli
from gan import provenance
from gan import sampling
from gan import stylize
from gan import train
from gan.style import adain
from gan.style import controls
from gan.style import random_features

REPO = Path(__file__).resolve().parents[1]
SIZE = 16
TINY_RANDOM = random_features.random_extractor(num_scales=2, features=8)


def _product_photo() -> np.ndarray:
  """24x24 white with a dark red product (rows 6..17, columns 5..18)."""
  image = np.full((24, 24, 3), 255, np.uint8)
  image[6:18, 5:19] = (170, 30, 40)
  return image


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  root = tmp_path_factory.mktemp("stylize")
  rng = np.random.default_rng(0)
  Image.fromarray(_product_photo()).save(root / "shoe.png")
  Image.fromarray(rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)).save(root / "noise.jpg")
  stripes = np.zeros((24, 24, 3), np.uint8)
  stripes[::4] = (30, 60, 220)
  Image.fromarray(stripes).save(root / "stripes.png")
  (root / "broken.jpg").write_text("not an image")
  # A tiny AdaIN decoder run on the random extractor (rebuilt from its name by load): 3 steps.
  (root / "photos").mkdir()
  (root / "styles").mkdir()
  for i, photo in enumerate([_product_photo()[4:20, 4:20], _product_photo()[:16, 8:]]):
    Image.fromarray(photo).save(root / "photos" / f"{i}.png")
  Image.open(root / "noise.jpg").save(root / "styles" / "noise.png")
  config = default.apply_overrides(adain_products.get_config(), {
      "data.source": "image_folder", "data.dir": str(root / "photos"), "data.image_size": SIZE,
      "adain.extractor": TINY_RANDOM.name, "adain.styles_dir": str(root / "styles"),
      "adain.decoder.width": 4, "adain.decoder.convs_per_level": 1, "train.steps": 3, "train.batch_size": 2,
      "eval.every": 0, "sample.grid_rows": 2})
  train.train_and_evaluate(config, str(root / "adain"))
  return root


def run_cli(argv) -> int:
  """`python -m gan.stylize ARGV` in-process: the exit code."""
  return cli.call(stylize.define_flags, stylize.main, argv)


def loaded(path) -> np.ndarray:
  return sampling.to_uint8(controls.load_image(path, SIZE))


def read_png(path) -> tuple[np.ndarray, dict]:
  with Image.open(path) as image:
    assert image.format == "PNG"
    return np.asarray(image), dict(image.text)   # text: the provenance chunks (gan.provenance.write_image)


def test_gatys_cli_writes_a_png_of_the_right_size(files, tmp_path, capsys):
  out = tmp_path / "out.png"
  code = run_cli(["--content", str(files / "shoe.png"), "--style", str(files / "noise.jpg"),
                  "--method", "gatys", "--extractor", "random", "--size", str(SIZE),
                  "--steps", "3", "--out", str(out)])
  assert code == 0
  image, text = read_png(out)
  assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
  rec = provenance.read_image_record(out)   # what was done, inside the PNG
  assert rec["kind"] == "stylized" and rec["run"] is None and rec["extra"] == {"source": "shoe.png"}
  assert rec["operations"][0].startswith("gatys style transfer, 3 steps, extractor random(seed=0")
  assert rec["operations"][1:] == ["styles noise.jpg", "strength (alpha) 1", f"size {SIZE}"]
  assert "extractor random(seed=0" in capsys.readouterr().out
  assert np.abs(image.astype(int) - loaded(files / "shoe.png")).max() > 0  # the style did something


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_grey_and_cmyk_styles_are_read_as_their_rgb_conversion(mode, files, tmp_path):
  """A grey or CMYK style image is no error: it stylizes exactly as PIL's RGB conversion of it."""
  styled = Image.open(files / "stripes.png").convert(mode)
  styled.save(tmp_path / f"style.{'jpg' if mode == 'CMYK' else 'png'}", quality=100)
  source = tmp_path / f"style.{'jpg' if mode == 'CMYK' else 'png'}"
  with Image.open(source) as image:
    assert image.mode == mode
    image.convert("RGB").save(tmp_path / "style_rgb.png")
  outputs = []
  for style in (source, tmp_path / "style_rgb.png"):
    out = tmp_path / f"out_{style.stem}.png"
    assert run_cli(["--content", str(files / "shoe.png"), "--style", str(style), "--method", "gatys",
                    "--extractor", "random", "--size", str(SIZE), "--steps", "2", "--out", str(out)]) == 0
    outputs.append(read_png(out)[0])
  np.testing.assert_array_equal(outputs[0], outputs[1])


def test_adain_cli_uses_the_saved_decoder(files, tmp_path, capsys):
  out = tmp_path / "out.png"
  code = run_cli(["--content", str(files / "shoe.png"), "--style", str(files / "noise.jpg"),
                  "--style", str(files / "stripes.png"), "--weights", "0.7,0.3",
                  "--method", "adain", "--alpha", "0.8", "--adain_dir", str(files / "adain"),
                  "--size", str(SIZE), "--out", str(out)])
  assert code == 0, capsys.readouterr().err
  image, text = read_png(out)
  assert image.shape == (SIZE, SIZE, 3)
  rec = provenance.read_image_record(out)
  assert (rec["kind"], rec["run"], rec["step"]) == ("stylized", str(files / "adain"), 3)
  assert rec["operations"] == [f"adain style transfer (decoder of {files / 'adain'}), extractor {TINY_RANDOM.name}",
                               "styles noise.jpg (0.7), stripes.png (0.3)", "strength (alpha) 0.8", f"size {SIZE}"]
  # The same as the model applied by hand (alpha in feature space, then no pixel blend).
  model = adain.load(files / "adain")
  styles = [controls.load_image(files / name, SIZE) for name in ("noise.jpg", "stripes.png")]
  expected = model.stylize(controls.load_image(files / "shoe.png", SIZE), styles, alpha=0.8,
                           style_weights=[0.7, 0.3])
  np.testing.assert_array_equal(image, sampling.to_uint8(expected))


def test_alpha_zero_returns_the_content(files):
  out = stylize.stylize_image(files / "shoe.png", files / "noise.jpg", "gatys", alpha=0.0,
                              size=SIZE, steps=2, extractor="random")
  assert out.dtype == np.uint8 and out.shape == (SIZE, SIZE, 3)
  np.testing.assert_array_equal(out, loaded(files / "shoe.png"))


def test_mask_restricts_the_style_to_one_region(files):
  content = controls.load_image(files / "shoe.png", SIZE)
  mask = controls.product_mask(content)
  assert (mask == 1).any() and (mask == 0).mean() > 0.1
  common = dict(size=SIZE, steps=3, extractor=TINY_RANDOM, adain_dir=files / "adain")
  product = stylize.stylize_image(files / "shoe.png", [files / "noise.jpg"], "adain", mask="product",
                                  **common)
  background = stylize.stylize_image(files / "shoe.png", [files / "noise.jpg"], "adain",
                                     mask="background", **common)
  original = loaded(files / "shoe.png")
  np.testing.assert_array_equal(product[mask == 0], original[mask == 0])
  np.testing.assert_array_equal(background[mask == 1], original[mask == 1])
  assert not np.array_equal(product[mask > 0], original[mask > 0])
  assert not np.array_equal(background[mask == 0], original[mask == 0])


def test_luminance_preservation_keeps_the_content_chroma(files):
  out = stylize.stylize_image(files / "shoe.png", [files / "stripes.png"], "adain",
                              preserve_color="luminance", size=SIZE, extractor="auto",
                              adain_dir=files / "adain")
  content = controls.load_image(files / "shoe.png", SIZE)
  out = out.astype(np.float32) / 127.5 - 1
  inside = np.all((out > -1) & (out < 1), axis=-1)  # unclipped pixels
  assert inside.mean() > 0.5
  chroma = lambda x: controls.rgb_to_yiq(x)[..., 1:][inside]
  np.testing.assert_allclose(chroma(out), chroma(content), atol=0.02)  # uint8 rounding


def test_profile_supplies_defaults_and_flags_override_it(files, tmp_path):
  profile = tmp_path / "profile.json"
  os.symlink(files / "noise.jpg", tmp_path / "noise.jpg")
  profile.write_text(json.dumps({"styles": ["noise.jpg"], "alpha": 0.0, "method": "gatys"}))
  args = ["--content", str(files / "shoe.png"), "--profile", str(profile), "--extractor", "random",
          "--size", str(SIZE), "--steps", "2"]
  assert run_cli(args + ["--out", str(tmp_path / "a.png")]) == 0
  np.testing.assert_array_equal(read_png(tmp_path / "a.png")[0], loaded(files / "shoe.png"))
  assert run_cli(args + ["--alpha", "1", "--out", str(tmp_path / "b.png")]) == 0
  assert not np.array_equal(read_png(tmp_path / "b.png")[0], loaded(files / "shoe.png"))


def test_auto_extractor_falls_back_to_random_with_a_warning(monkeypatch, tmp_path, caplog):
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(tmp_path))
  with caplog.at_level("WARNING"):
    extractor = stylize.resolve_extractor("auto")
  assert extractor.name.startswith("random(")
  assert "No VGG weights found" in caplog.text and extractor.name in caplog.text
  assert "python -m gan.weights fetch vgg16" in caplog.text


def _errors(files, tmp_path):
  shoe, noise = str(files / "shoe.png"), str(files / "noise.jpg")
  base = ["--content", shoe, "--style", noise, "--size", str(SIZE), "--steps", "1",
          "--extractor", "random"]
  return {
      "missing content": (["--content", str(tmp_path / "nope.jpg"), "--style", noise], "not found"),
      "unreadable content": (["--content", str(files / "broken.jpg"), "--style", noise],
                             "Cannot read image"),
      "missing style": (["--content", shoe, "--style", str(tmp_path / "nope.png")], "style image 1"),
      "alpha": (base + ["--alpha", "1.5"], "[0, 1]"),
      "alpha not a number": (base + ["--alpha", "strong"], "--alpha=strong: could not convert string to float"),
      "weights count": (base + ["--style", noise, "--weights", "1"], "1 style weights for 2 styles"),
      "weights sum": (base + ["--style", noise, "--weights", "0.5,0.6"], "sum to 1"),
      "unknown method": (base + ["--method", "neural"], "Unknown method 'neural'"),
      "cyclegan": (base + ["--method", "cyclegan"], "needs --workdir"),
      "mask": (base + ["--mask", "shoe"], "Unknown mask 'shoe'"),
      "colour": (base + ["--preserve-color", "sepia"], "Unknown preserve-color"),
      "extractor": (base[:-1] + ["resnet"], "Unknown extractor 'resnet'"),
      "no vgg weights": (base[:-1] + ["vgg"], "VGG-19 weights not found"),
      "no vgg16 weights": (base[:-1] + ["vgg16"], "Weights 'vgg16' not found"),
      "no vgg16 weights, --features": (base[:-2] + ["--features", "vgg16"], "python -m gan.weights fetch vgg16"),
      "no adain model": (base + ["--method", "adain", "--adain_dir", str(tmp_path / "none")],
                         "python -m gan.main --config configs/adain_products.py"),
      "adain extractor mismatch": (base[:-1] + ["vgg", "--method", "adain", "--adain_dir",
                                                str(files / "adain")], "does not match"),
      "adain vgg16 mismatch": (base[:-1] + ["vgg16", "--method", "adain", "--adain_dir", str(files / "adain")],
                               "--extractor vgg16 does not match"),
      "not png": (base + ["--out", str(tmp_path / "x.gif")], "must end in .png"),
      "unknown flag": (base + ["--colour", "red"], "Unknown command line flag 'colour'"),
      "no out": (base, "Flag --out must have a value"),
      "stray argument": (base + ["wave.jpg"], "Unexpected arguments 'wave.jpg'"),
  }


@pytest.mark.parametrize("case", ["missing content", "unreadable content", "missing style", "alpha",
                                  "alpha not a number", "weights count", "weights sum",
                                  "unknown method", "cyclegan", "mask", "colour", "extractor",
                                  "no vgg weights", "no vgg16 weights", "no vgg16 weights, --features",
                                  "no adain model",
                                  "adain extractor mismatch", "adain vgg16 mismatch", "not png",
                                  "unknown flag", "no out", "stray argument"])
def test_errors_print_one_line_and_exit_1(case, files, tmp_path, capsys, monkeypatch):
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(tmp_path))
  argv, message = _errors(files, tmp_path)[case]
  if "--out" not in argv and case != "no out":
    argv = argv + ["--out", str(tmp_path / "out.png")]
  code = run_cli(argv)
  err = capsys.readouterr().err
  assert code == 1
  assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
  assert not list(tmp_path.glob("*.png"))


def test_cli_subprocess_batch_mode_and_an_error(files, tmp_path):
  folder = tmp_path / "photos"
  folder.mkdir()
  Image.fromarray(_product_photo()).save(folder / "a.png")
  Image.fromarray(_product_photo()[::-1]).save(folder / "b.jpg")
  (folder / "notes.txt").write_text("not an image, skipped")
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO),
             PRODUCTGAN_WEIGHTS_DIR=str(tmp_path))  # no weights: auto falls back to random
  result = subprocess.run(
      [sys.executable, "-m", "gan.stylize", "--content", str(folder), "--style",
       str(files / "noise.jpg"), "--method", "adain", "--adain_dir", str(files / "adain"),
       "--size", str(SIZE), "--out", str(tmp_path / "out")],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
  for name in ("a.png", "b.png"):
    assert read_png(tmp_path / "out" / name)[0].shape == (SIZE, SIZE, 3)
  assert result.stdout.count(f"extractor {TINY_RANDOM.name}") == 2
  # One error through the real entry point: exit code 1, one line, no traceback.
  result = subprocess.run(
      [sys.executable, "-m", "gan.stylize", "--content", str(folder / "a.png"), "--style",
       str(files / "noise.jpg"), "--alpha", "-0.5", "--out", str(tmp_path / "x.png")],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert result.stderr.startswith("error: alpha") and "Traceback" not in result.stderr
  assert result.stderr.count("\n") == 1, result.stderr
