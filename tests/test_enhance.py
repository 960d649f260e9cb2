"""gan/editing/{superres,denoise,inpaint,background,enhance_train}.py, task "enhance"
(gan/tasks/enhance.py) and the gan.edit CLI.

Two tiny models are trained here (a few seconds each after compilation) on synthetic images: an
x2 super-resolution model, a run of the shared loop, that must beat bicubic upsampling (and, stopped
by SIGTERM and rerun, ends with the same weights), and a denoiser, trained in memory, that must beat
the best Gaussian filter, both on held-out images of the same family.
"""

import json
import os
import re
import types

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
from skimage import filters as sk_filters

from configs import enhance_products
from gan import checkpointing
from gan import cli
from gan import edit
from gan import provenance
from gan import runs
from gan import tasks
from gan import train
from gan.editing import background
from gan.editing import denoise
from gan.editing import enhance_train
from gan.editing import inpaint
from gan.editing import superres
from gan.metrics import image as image_metrics
from gan.tasks import auxiliary
from gan.tasks import enhance


def smooth_images(seed: int, num: int, size: int = 32) -> np.ndarray:
  """uint8 (num, size, size, 3): sums of three random low-frequency plane waves per channel."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size] / size
  out = np.zeros((num, size, size, 3))
  for i in range(num):
    for c in range(3):
      for _ in range(3):
        fy, fx = rng.uniform(0.5, 3.0, 2)
        out[i, :, :, c] += rng.uniform(0.2, 0.4) * np.sin(2 * np.pi * (fy * yy + fx * xx)
                                                          + rng.uniform(0, 2 * np.pi))
  return np.clip(np.round((0.8 * out + 1.0) * 127.5), 0, 255).astype(np.uint8)


def rectangle_images(seed: int, num: int, size: int = 32) -> np.ndarray:
  """uint8 (num, size, size, 3): flat light background with three flat random rectangles
  (edges: a Gaussian filter blurs them, a learned denoiser need not)."""
  rng = np.random.default_rng(seed)
  out = np.zeros((num, size, size, 3))
  for i in range(num):
    out[i] = rng.uniform(0.6, 1.0, 3)
    for _ in range(3):
      y0, x0 = rng.integers(0, size - 8, 2)
      h, w = rng.integers(6, 16, 2)
      out[i, y0:y0 + h, x0:x0 + w] = rng.uniform(0.0, 1.0, 3)
  return np.round(out * 255).astype(np.uint8)


def tiny_config(variant: str, steps: int, **model):
  config = enhance_products.get_config(variant)
  config.model.width = model.get("width", 8)
  config.model.num_blocks = model.get("num_blocks", 1)
  config.model.down = model.get("down", 0)
  config.model.max_width = 16
  config.loss.perceptual = "none"
  config.loss.perceptual_weight = 0.0
  config.loss.adversarial_weight = 0.0
  config.train.steps = steps
  config.train.batch_size = 8
  config.train.crop = 0
  config.optimizer.g_lr = 3e-3
  config.train.log_every = steps
  config.eval.every = 0
  return config


def untrained(variant: str, seed: int = 0, scale_params: float = 0.0, **model):
  """An Enhancer with initial parameters; scale_params > 0 adds noise to all of them (so that the
  zero-initialised last layer outputs something)."""
  config = tiny_config(variant, 1, **model)
  task = enhance_train.get_task(config)

  @jax.jit
  def init(key):
    params = enhance_train.init_params(task, key, 16)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
    leaves = [p + scale_params * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]
    return jax.tree.unflatten(tree, leaves)

  return enhance_train.Enhancer(config, task, init(jax.random.PRNGKey(seed)), {})


def folder_config(config, folder):
  """`config` reading the PNGs of `folder` (one class), whole 32x32 images with flips; the loop's
  logs, checkpoints, samples and evaluation (4 of the images) at small intervals."""
  config.data.update(source="image_folder", dir=str(folder), image_size=32, max_examples=0)
  config.train.update(log_every=10, sample_every=30, checkpoint_every=30)
  config.eval.update(every=30, num_images=4)
  config.sample.grid_rows = 3
  return config


@pytest.fixture(scope="module")
def sr_data(tmp_path_factory):
  folder = tmp_path_factory.mktemp("sr_photos")
  for i, image in enumerate(smooth_images(0, 32)):
    Image.fromarray(image).save(folder / f"{i:02d}.png")
  return folder


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory, sr_data):
  """A tiny x2 model trained 60 steps on smooth images by the shared loop: (workdir, final state)."""
  workdir = tmp_path_factory.mktemp("sr") / "superres_x2"
  config = folder_config(tiny_config("superres_x2", 60), sr_data)
  return workdir, train.train_and_evaluate(config, str(workdir))


@pytest.fixture(scope="module")
def sr_model_dir(sr_run):
  return sr_run[0]


# --- Compositing and background replacement ---------------------------------------------------


def test_composite_matches_hand_computed_alpha_blend():
  base = np.array([[[0.0, 0.5, -1.0], [1.0, 1.0, 1.0]]], np.float32)      # (1, 2, 3)
  over = np.array([[[1.0, -0.5, 1.0], [-1.0, 0.0, 0.2]]], np.float32)
  alpha = np.array([[0.25, 1.0]], np.float32)                               # (1, 2), no channel
  out = np.asarray(background.composite(base, over, alpha))
  np.testing.assert_allclose(out[0, 0], [0.25, 0.25, -0.5], atol=1e-7)     # 0.75 base + 0.25 over
  np.testing.assert_array_equal(out[0, 1], over[0, 1])                     # alpha 1: overlay exactly
  np.testing.assert_array_equal(np.asarray(background.composite(base, over, np.zeros((1, 2)))), base)


def _product_on(backdrop: tuple[int, int, int]) -> np.ndarray:
  """uint8 48x48 photo: a dark red 20x24 product on a uniform backdrop."""
  image = np.empty((48, 48, 3), np.uint8)
  image[:] = backdrop
  image[14:34, 12:36] = (150, 20, 30)
  return image


@pytest.mark.parametrize("backdrop, kind", [((255, 255, 255), "white"), ((90, 160, 90), "plain")])
def test_background_replacement_keeps_product_and_replaces_backdrop(backdrop, kind):
  photo = _product_on(backdrop).astype(np.float32) / 127.5 - 1.0
  new = background.linear_gradient("#0000ff", "#ffff00", 48, 48)
  out, alpha = background.replace_background(photo, new, feather=1.0, background=kind)
  assert alpha.dtype == np.float32 and alpha.min() >= 0.0 and alpha.max() <= 1.0
  far = np.ones((48, 48), bool)
  far[14 - 5:34 + 5, 12 - 5:36 + 5] = False          # > 4 sigma away from the product
  inside = np.zeros((48, 48), bool)
  inside[14 + 5:34 - 5, 12 + 5:36 - 5] = True
  np.testing.assert_array_equal(out[far], new[far])
  np.testing.assert_array_equal(out[inside], photo[inside])
  edge = alpha[14, 12:36]                           # the product's top row: soft, not 0 / 1
  assert np.all((edge > 0.05) & (edge < 0.95))


def test_gradient_solid_and_parse_background(tmp_path):
  g = background.parse_background("gradient:#000000,#ffffff", 5, 3)
  np.testing.assert_allclose(g[:, 0, 0], [-1.0, -0.5, 0.0, 0.5, 1.0], atol=1e-6)
  np.testing.assert_array_equal(g[:, 0], g[:, 2])   # vertical: constant along rows
  np.testing.assert_allclose(background.parse_background("#ff8000", 2, 2)[1, 1],
                             [1.0, 128 / 127.5 - 1.0, -1.0], atol=1e-6)
  Image.fromarray(np.full((10, 20, 3), (0, 255, 0), np.uint8)).save(tmp_path / "bg.png")
  img = background.parse_background(str(tmp_path / "bg.png"), 6, 4)
  assert img.shape == (6, 4, 3)
  np.testing.assert_allclose(img[..., 1], 1.0)
  with pytest.raises(ValueError, match="Unknown colour"):
    background.parse_background("not-a-colour", 2, 2)
  with pytest.raises(ValueError, match="gradient:TOP,BOTTOM"):
    background.parse_background("gradient:#fff", 2, 2)


# --- Degradations -------------------------------------------------------------------------------


def test_gaussian_noise_has_the_requested_std():
  grey = jnp.zeros((4, 64, 64, 3))
  noisy = np.asarray(denoise.add_gaussian_noise(jax.random.PRNGKey(0), grey, 0.1))
  # sigma 0.1 on [0, 1] is 0.2 on [-1, 1]; mid-grey never clips at 5 sigma.
  assert abs(noisy.std() - 0.2) < 0.004 and abs(noisy.mean()) < 0.004
  with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
    denoise.add_gaussian_noise(jax.random.PRNGKey(0), grey, 1.5)


@pytest.mark.parametrize("method", superres.DOWNSCALE_METHODS)
@pytest.mark.parametrize("scale", superres.SCALES)
def test_downscale_keeps_constant_images_constant(method, scale):
  image = jnp.full((2, 16, 16, 3), 0.3)
  small = np.asarray(superres.downscale(image, scale, method))
  assert small.shape == (2, 16 // scale, 16 // scale, 3)
  np.testing.assert_allclose(small, 0.3, atol=1e-6)


def test_area_downscale_is_the_block_mean():
  image = jnp.arange(16.0).reshape(1, 4, 4, 1)
  np.testing.assert_allclose(np.asarray(superres.downscale(image, 2, "area"))[0, ..., 0],
                             [[2.5, 4.5], [10.5, 12.5]])
  with pytest.raises(ValueError, match="multiples of the scale"):
    superres.downscale(jnp.zeros((1, 6, 6, 1)), 4)
  with pytest.raises(ValueError, match=r"one of \(2, 4\)"):
    superres.downscale(image, 3)


def test_jpeg_changes_the_image_but_keeps_shape_and_dtype():
  images = rectangle_images(0, 2)
  out = denoise.jpeg_compress(images, 10)
  assert out.shape == images.shape and out.dtype == np.uint8
  assert np.abs(out.astype(int) - images).mean() > 1.0
  better = denoise.jpeg_compress(images, 90)
  assert np.abs(better.astype(int) - images).mean() < np.abs(out.astype(int) - images).mean()
  with pytest.raises(ValueError, match="quality"):
    denoise.jpeg_compress(images, 0)


def test_masks_are_binary_and_boxes_are_rectangles():
  boxes = np.asarray(inpaint.box_masks(jax.random.PRNGKey(0), 8, 32))
  assert boxes.shape == (8, 32, 32, 1) and set(np.unique(boxes)) <= {0.0, 1.0}
  for m in boxes[..., 0]:
    rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
    assert m.sum() == len(rows) * len(cols)          # filled rectangle
    assert 8 <= len(rows) <= 16 and 8 <= len(cols) <= 16
  free = np.asarray(inpaint.free_form_masks(jax.random.PRNGKey(1), 8, 32))
  assert set(np.unique(free)) <= {0.0, 1.0} and np.all(free.sum(axis=(1, 2, 3)) > 0)
  box = inpaint.box_mask(4, 5, (1, 2, 4, 3))
  np.testing.assert_array_equal(np.argwhere(box[..., 0]), [[2, 1], [2, 2], [2, 3]])
  with pytest.raises(ValueError, match="must satisfy"):
    inpaint.box_mask(4, 5, (0, 0, 6, 2))


def test_batches_crop_aligned_windows_flip_both_images_alike_and_depend_only_on_the_step():
  images = np.arange(4 * 16 * 16 * 3, dtype=np.int64).reshape(4, 16, 16, 3).astype(np.uint8)
  aux = 255 - images
  kwargs = dict(global_batch_size=4, seed=0, random_flip=True, crop=8)
  stream = enhance.batches(images, aux, **kwargs)
  first = [next(stream) for _ in range(6)]
  for batch in first:
    clean = np.rint((batch["clean"] + 1) * 127.5)
    assert clean.shape == (4, 8, 8, 3) and batch["aux"].shape == (4, 8, 8, 3)
    np.testing.assert_allclose(batch["aux"], -batch["clean"], atol=1e-6)   # same window, same flip
    for crop in clean:
      hits = [(i, y, x) for i in range(4) for y in (0, 8) for x in (0, 8)
              if np.array_equal(images[i, y:y + 8, x:x + 8], crop)
              or np.array_equal(images[i, y:y + 8, x:x + 8, :][:, ::-1], crop)]
      assert hits
  # The batch of step 4 is the same whether the stream starts at 0 or at 4 (a resumed run).
  resumed = next(enhance.batches(images, aux, start_step=4, **kwargs))
  np.testing.assert_array_equal(resumed["clean"], first[4]["clean"])
  assert not np.array_equal(first[4]["clean"], first[5]["clean"])
  assert set(next(enhance.batches(images, None, **kwargs))) == {"clean"}


# --- Models ---------------------------------------------------------------------------------------


def test_inpainting_keeps_unmasked_pixels_exactly_and_ignores_the_hole():
  model = untrained("inpaint", scale_params=0.3, down=1, num_blocks=1)
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (2, 29, 25, 3)).astype(np.float32)   # odd sides: padded
  mask = inpaint.box_mask(29, 25, (5, 7, 25, 29))                  # touches the padded edges
  out = inpaint.inpaint(model, images, mask)
  keep = mask[..., 0] == 0
  np.testing.assert_array_equal(out[:, keep], images[:, keep])
  assert np.abs(out[:, ~keep] - images[:, ~keep]).mean() > 0.05      # the hole was filled
  other = images.copy()
  other[:, ~keep] = 0.9                                              # only the hole differs
  np.testing.assert_array_equal(inpaint.inpaint(model, other, mask), out)
  with pytest.raises(ValueError, match="must have the same size"):
    inpaint.inpaint(model, images, np.zeros((29, 24, 1)))


@pytest.mark.parametrize("scale", superres.SCALES)
def test_superres_output_shape_and_untrained_model_is_bicubic(scale):
  model = untrained(f"superres_x{scale}")
  lr = np.asarray(superres.downscale(enhance_train.to_float(smooth_images(3, 2, 16)), 2))
  out = superres.super_resolve(model, lr)
  assert out.shape == (2, 8 * scale, 8 * scale, 3)
  np.testing.assert_allclose(out, superres.upscale_bicubic(lr, scale), atol=1e-6)
  assert superres.super_resolve(model, lr[0]).shape == (8 * scale, 8 * scale, 3)


def _mean_psnr(a, b) -> float:
  return float(np.mean(image_metrics.psnr(a, b, data_range=2.0)))


def test_trained_superres_beats_bicubic_on_held_out_images(sr_model_dir):
  model = enhance_train.load(sr_model_dir, "superres")
  hr = enhance_train.to_float(smooth_images(1, 16))
  lr = superres.downscale(hr, 2)
  gain = _mean_psnr(superres.super_resolve(model, lr), hr) - _mean_psnr(
      superres.upscale_bicubic(lr, 2), hr)
  assert gain > 0.3, f"PSNR gain over bicubic {gain:.2f} dB"


def test_trained_denoiser_beats_the_best_gaussian_filter():
  config = tiny_config("denoise_gaussian", 100, width=16, num_blocks=2)
  model = enhance.fit(config, rectangle_images(0, 64))      # in memory, the task's own step
  assert model.meta["step"] == 100
  clean = enhance_train.to_float(rectangle_images(1, 16))
  noisy = np.asarray(denoise.add_gaussian_noise(jax.random.PRNGKey(5), clean, 0.1))
  best_sigma, best_gaussian = denoise.tune_baseline(denoise.gaussian_filter, noisy, clean, "sigma",
                                                    denoise.GAUSSIAN_SIGMAS)
  # The baseline is scikit-image's filter, per channel.
  unit = (noisy[0] + 1) / 2
  np.testing.assert_allclose(denoise.gaussian_filter(noisy[:1], best_sigma)[0],
                             np.clip(sk_filters.gaussian(unit, sigma=best_sigma, channel_axis=-1),
                                     0, 1) * 2 - 1, atol=1e-5)
  learned = _mean_psnr(denoise.denoise(model, noisy), clean)
  assert learned > best_gaussian + 0.5, (learned, best_gaussian)


def test_the_run_writes_samples_evaluations_and_loads(sr_run, tmp_path):
  workdir, state = sr_run
  model = enhance_train.load(workdir)
  assert model.meta["step"] == 60 == int(state.step) and superres.scale_of(model) == 2
  jax.tree.map(np.testing.assert_array_equal, model.params, jax.device_get(state.g_params))
  _, restored, _ = tasks.restore(str(workdir))         # opened like a run of any task
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored), jax.device_get(state))
  assert state.d_params == {}                          # adversarial_weight 0: no discriminator
  config = json.loads((workdir / "config.json").read_text())
  assert config["task"] == "enhance" and config["enhance"]["kind"] == "superres"
  assert sorted(os.listdir(workdir / "samples")) == ["step_000030.png", "step_000060.png"]
  grid = np.asarray(Image.open(workdir / "samples" / "step_000060.png"))
  assert grid.shape == (3 * 34 + 2, 3 * 34 + 2, 3)     # degraded | restored | original, 3 photos
  evaluation = model.meta["eval"]
  assert evaluation["step"] == 60 and evaluation["neg_psnr"] == -evaluation["psnr"] > -60
  assert 0 < evaluation["ssim"] <= 1
  assert os.listdir(workdir / "best_checkpoint")
  with pytest.raises(ValueError, match="holds a 'superres' model, not a 'denoise' one"):
    enhance_train.load(workdir, "denoise")
  with pytest.raises(FileNotFoundError, match="python -m gan.main --config configs/enhance_products.py:inpaint"):
    enhance_train.load(tmp_path / "nothing", "inpaint")


def test_stopped_by_sigterm_and_rerun_it_ends_with_the_uninterrupted_weights(sr_run, sr_data, tmp_path,
                                                                             preempted):
  config = folder_config(tiny_config("superres_x2", 60), sr_data)
  stopped, resumed = preempted(config, tmp_path, "pixel")
  # SIGTERM while step 10's losses were logged: the run saved step 11 and stopped.
  assert int(stopped.step) == 11 and int(resumed.step) == 60
  assert sorted(int(s) for s in os.listdir(tmp_path / "checkpoints")) == [11, 30, 60]
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed), jax.device_get(sr_run[1]))


def test_a_config_of_other_shapes_is_refused(sr_run, sr_data):
  workdir, _ = sr_run
  config = folder_config(tiny_config("superres_x2", 80, width=16), sr_data)
  with pytest.raises(checkpointing.CheckpointMismatchError, match="model.width: checkpoint 8 vs config 16"):
    train.train_and_evaluate(config, str(workdir))
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == [30, 60]


def test_config_problems_are_listed_and_refused_before_training(tmp_path):
  config = enhance_products.get_config("denoise_jpeg")
  config.train.crop = 12
  config.loss.adversarial = "nope"
  config.denoise.jpeg_quality = 0
  problems = enhance_train.config_problems(config)
  assert len(problems) == 3 and "train.crop must be 0" in problems[1] and "quality" in problems[0]
  assert "Unknown loss.adversarial 'nope'" in problems[2]
  with pytest.raises(runs.ConfigError, match="(?s)quality.*train.crop must be 0.*Unknown loss.adversarial"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run" / "config.json").exists()
  with pytest.raises(ValueError, match="Unknown enhancement variant 'sharpen'"):
    enhance_products.get_config("sharpen")
  for variant in enhance_products.VARIANTS:
    assert train.loop_config_problems(enhance_products.get_config(variant)) == []
    assert enhance_train.config_problems(enhance_products.get_config(variant)) == []


def test_auto_choices_are_resolved_once_per_run(tmp_path):
  config = enhance_products.get_config("superres_x2")
  assert auxiliary.recorded(config, str(tmp_path), "loss.perceptual") == "auto"      # no run yet
  (tmp_path / "config.json").write_text(json.dumps({"loss": {"perceptual": "random"}}))
  assert auxiliary.recorded(config, str(tmp_path), "loss.perceptual") == "random"    # the run's choice
  config.loss.perceptual = "none"
  assert auxiliary.recorded(config, str(tmp_path), "loss.perceptual") == "none"      # asked for explicitly
  assert enhance_train.resolve_perceptual("auto", tmp_path / "no_classifier") == "random"


# --- Command line -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory):
  root = tmp_path_factory.mktemp("edit")
  Image.fromarray(_product_on((255, 255, 255))).save(root / "shoe.png")
  folder = root / "photos"
  folder.mkdir()
  for i, image in enumerate(smooth_images(4, 2, 16)):
    Image.fromarray(image).save(folder / f"p{i}.png")
  Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "small_mask.png")
  return root


def run_cli(argv) -> int:
  """`python -m gan.edit ARGV` in-process: the exit code."""
  return cli.call(edit.define_flags, edit.main, argv)


def test_cli_background_and_batch_superres(photo_files, sr_model_dir, tmp_path, capsys):
  out = tmp_path / "new.png"
  assert run_cli(["--op", "background", "--image", str(photo_files / "shoe.png"),
                  "--background", "#00ff00", "--photo-background", "white", "--out", str(out)]) == 0
  result = np.asarray(Image.open(out))
  np.testing.assert_array_equal(result[2, 2], [0, 255, 0])          # backdrop replaced
  np.testing.assert_array_equal(result[24, 24], [150, 20, 30])      # product kept
  assert run_cli(["--op", "superres", "--workdir", str(sr_model_dir), "--scale", "2",
                  "--image", str(photo_files / "photos"), "--out", str(tmp_path / "big")]) == 0
  assert sorted(p.name for p in (tmp_path / "big").iterdir()) == ["p0.png", "p1.png"]
  assert Image.open(tmp_path / "big" / "p0.png").size == (32, 32)
  assert "Wrote" in capsys.readouterr().out
  rec = provenance.read_image_record(tmp_path / "big" / "p1.png")   # the model, its step, the input
  assert (rec["kind"], rec["run"], rec["operations"]) == ("edited", str(sr_model_dir), ["super-resolution x2"])
  assert rec["step"] == enhance_train.load(sr_model_dir).meta["step"] > 0 and rec["extra"] == {"source": "p1.png"}


@pytest.mark.parametrize("args, message", [
    (["--op", "sharpen"], "Unknown op 'sharpen'; valid: superres, denoise, inpaint, background"),
    (["--op", "background", "--image", "missing.png"], "Image file not found: missing.png"),
    (["--op", "superres", "--scale", "3"], r"--scale must be one of \(2, 4\), got 3"),
    (["--op", "superres", "--scale", "4", "--workdir", "SR"], "upscales x2, but --scale 4"),
    (["--op", "denoise", "--strength", "1.5"], r"--strength must be in \[0, 1\]"),
    (["--op", "denoise", "--workdir", "NOWHERE"], "holds no trained denoise model"),
    (["--op", "inpaint", "--mask", "MASK"], "The mask .* is 10x10 but the image is 48x48"),
    (["--op", "inpaint"], "needs exactly one of --mask"),
    (["--op", "inpaint", "--box", "1,2,3"], "four integers"),
    (["--op", "background", "--background", "gradient:#fff"], "gradient:TOP,BOTTOM"),
    (["--op", "background", "--out", "x.gif"], "must end in .png"),
    (["--op", "background", "--feather", "soft"], "flag --feather=soft: could not convert string to float"),
])
def test_cli_errors_are_one_line_and_exit_1(args, message, photo_files, sr_model_dir, tmp_path,
                                            capsys, monkeypatch):
  if "--mask" in args:   # the mask check happens on the image, after the model is loaded
    stub = types.SimpleNamespace(meta={"step": 0})   # a model never called (its step is recorded)
    monkeypatch.setattr(edit, "_load_model", lambda workdir, task: stub)
  args = [str(sr_model_dir) if a == "SR" else str(tmp_path / "nowhere") if a == "NOWHERE"
          else str(photo_files / "small_mask.png") if a == "MASK" else a for a in args]
  if "--image" not in args:
    args += ["--image", str(photo_files / "shoe.png")]
  if "--out" not in args:
    args += ["--out", str(tmp_path / "out.png")]
  assert run_cli(args) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1
  assert re.search(message, err), err


def test_vgg_feature_loss_is_the_relu2_2_feature_mse_of_vgg16():
  """loss.perceptual = "vgg16": per image, the mean squared difference of VGG16 relu2_2 features."""
  from gan import weights  # pylint: disable=g-import-not-at-top
  from gan.style import vgg  # pylint: disable=g-import-not-at-top
  if not weights.is_present("vgg16"):
    pytest.skip("VGG16 weights not fetched: python -m gan.weights fetch vgg16")
  rng = np.random.default_rng(0)
  a = jnp.asarray(rng.uniform(-1, 1, (2, 16, 16, 3)), jnp.float32)
  b = jnp.asarray(rng.uniform(-1, 1, (2, 16, 16, 3)), jnp.float32)
  perceptual = enhance_train.make_perceptual("vgg16")
  assert perceptual.name == "vgg16(relu2_2)"
  got = np.asarray(perceptual.distance(a, b))
  extractor = vgg.vgg16_extractor()
  fa, fb = (np.asarray(extractor.apply(x, ("relu2_2",))["relu2_2"], np.float64) for x in (a, b))
  np.testing.assert_allclose(got, ((fa - fb) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(perceptual.distance(a, a)), 0.0, atol=1e-7)
