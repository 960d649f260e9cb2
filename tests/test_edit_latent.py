"""gan.edit's GAN-inversion ops on a tiny StyleGAN run: --op invert and --op direction; the
inversion encoder of that run (task "inversion_encoder"): resume after SIGTERM, load, gan.edit."""

import json
import os
import shutil

import jax
import numpy as np
from PIL import Image
import pytest

from configs import default
from configs import inversion_encoder_products
from configs import stylegan_products
from gan import checkpointing
from gan import cli
from gan import edit
from gan import provenance
from gan import sampling
from gan import runs
from gan import tasks
from gan import train
from gan.editing import directions
from gan.editing import edits
from gan.editing import inversion
from gan.metrics import image as image_metrics
from gan.tasks import generation
from test_translation import write_products

# The encoder's resume test compiles the programs of the run it resumes again (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("persistent_compilation_cache")


@pytest.fixture(scope="module")
def stylegan_run(tmp_path_factory):
  """A 2-step 16x16 StyleGAN run on synthetic product photos, its PCA directions saved like
  experiments/benchmark_editing.py does, and one of its own images as a PNG (a perfect target)."""
  root = tmp_path_factory.mktemp("products")
  write_products(root, "train", range(1, 41))
  write_products(root, "val", range(1, 9))
  workdir = tmp_path_factory.mktemp("stylegan_run")
  config = default.apply_overrides(stylegan_products.get_config(), {
      "data.dir": str(root), "data.image_size": 16, "model.z_dim": 16, "model.g_width": 8,
      "model.d_width": 8, "model.generator.w_dim": 16, "model.generator.mapping_layers": 2,
      "train.batch_size": 8, "train.steps": 2, "train.log_every": 1, "train.checkpoint_every": 2,
      "train.sample_every": 2, "sample.grid_rows": 2, "sample.grid_columns": 2, "eval.classifier_dir": "",
      "reg.r1_gamma": 0.0, "reg.diff_augment": ""})   # a smaller train step to compile
  train.train_and_evaluate(config, str(workdir))
  _, generator, state, _ = generation.load(str(workdir))
  variables = {"params": state.ema_g_params, "batch_stats": state.g_batch_stats}
  ws = directions.sample_w(generator, variables, jax.random.PRNGKey(3), 500)
  found = directions.pca_directions(directions.fit_pca(ws, 4), 4)
  os.makedirs(workdir / "editing")
  directions.save_directions(str(workdir / "editing" / directions.DIRECTIONS_FILE), found)
  target = inversion.render(generator, variables, inversion.broadcast_w(ws[:1], generator.num_ws), "w+",
                            noise=inversion.draw_noise(generator, variables, 1, jax.random.PRNGKey(5)))
  Image.fromarray(sampling.to_uint8(np.asarray(target[0]))).save(workdir / "own.png")
  return workdir, found


def run_edit(args, capsys):
  capsys.readouterr()
  code = cli.call(edit.define_flags, edit.main, [str(a) for a in args])
  out = capsys.readouterr()
  return code, out.out, out.err


def read(path):
  return np.asarray(Image.open(path), np.float32) / 127.5 - 1.0


def test_directions_round_trip(tmp_path):
  saved = [directions.Direction("pc0", np.array([0.6, 0.8]), 1.5, None),
           directions.Direction("size|brightness@2-4", np.array([1.0, 0.0]), 0.25, (2, 4))]
  directions.save_directions(str(tmp_path / "d.npz"), saved)
  loaded = directions.load_directions(str(tmp_path / "d.npz"))
  assert list(loaded) == ["pc0", "size|brightness@2-4"]
  for want in saved:
    got = loaded[want.name]
    np.testing.assert_array_equal(got.vector, want.vector)
    assert (got.scale, got.layers) == (want.scale, want.layers)
  (tmp_path / "bad.npz").write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="not a directions file"):
    directions.load_directions(str(tmp_path / "bad.npz"))


def test_invert_reconstructs_the_generators_own_image_and_saves_the_latent(stylegan_run, tmp_path, capsys):
  workdir, _ = stylegan_run
  code, _, err = run_edit(["--op", "invert", "--workdir", workdir, "--image", workdir / "own.png",
                           "--steps", 200, "--save-latent", tmp_path / "w.npy", "--out", tmp_path / "inv.png"], capsys)
  assert code == 0, err
  reconstruction, target = read(tmp_path / "inv.png"), read(workdir / "own.png")
  assert reconstruction.shape == (16, 16, 3)
  # Without inversion (the mean w) the image is far; after 200 W+ steps it is close.
  psnr = float(image_metrics.psnr(reconstruction[None], target[None], data_range=2.0)[0])
  assert psnr > 25.0, psnr
  assert np.load(tmp_path / "w.npy").shape == (generation.load(str(workdir))[1].num_ws, 16)


def test_direction_strength_zero_is_the_inversion_and_strength_moves_along_it(stylegan_run, tmp_path, capsys):
  workdir, found = stylegan_run
  common = ["--workdir", workdir, "--image", workdir / "own.png", "--steps", 20]
  assert run_edit(["--op", "invert", *common, "--out", tmp_path / "inv.png"], capsys)[0] == 0
  code, out, err = run_edit(["--op", "direction", "--direction", "pc0", "--strength", 0, *common,
                             "--out", tmp_path / "zero.png"], capsys)
  assert code == 0, err
  np.testing.assert_array_equal(read(tmp_path / "zero.png"), read(tmp_path / "inv.png"))
  assert "pc0 x0: brightness" in out
  code, _, err = run_edit(["--op", "direction", "--direction", "pc0", "--strength", 3, *common,
                           "--out", tmp_path / "three.png"], capsys)
  assert code == 0, err
  assert np.abs(read(tmp_path / "three.png") - read(tmp_path / "inv.png")).mean() > 0.01
  # Inside the PNG (python -m gan.provenance show): the run, its step, the seed and the two operations.
  rec = provenance.read_image_record(tmp_path / "three.png")
  assert (rec["kind"], rec["run"], rec["step"], rec["seed"]) == ("edited", str(workdir), 2, 0)
  assert rec["operations"][0].startswith("invert (W+, 20 steps ") and ", perceptual " in rec["operations"][0]
  assert rec["operations"][1:] == ["direction pc0 +3"] and rec["extra"] == {"source": "own.png"}


@pytest.mark.parametrize("args,message", [
    (["--direction", "pc9"], "Unknown direction 'pc9'; closest: pc3, pc2, pc1, pc0. The 4 directions"),
    (["--direction", "pc0", "--strength", "11"], "within [-10, 10]"),
    ([], "needs --direction NAME"),
    (["--direction", "pc0", "--steps", "-1"], "--steps (projection steps) must be >= 0"),
])
def test_direction_bad_input(stylegan_run, tmp_path, capsys, args, message):
  workdir, _ = stylegan_run
  code, _, err = run_edit(["--op", "direction", "--workdir", workdir, "--image", workdir / "own.png", *args,
                           "--out", tmp_path / "x.png"], capsys)
  assert code == 1 and message in err, err
  assert not (tmp_path / "x.png").exists()


def test_orientation_directions_found_as_the_benchmark_does_and_gan_edit_applies_them(stylegan_run, tmp_path, capsys):
  """The attribute probes of experiments/benchmark_editing.py (directions.fit_attribute_probes /
  attribute_directions) on the tiny run's samples give plain and conditional orientation directions;
  gan.edit --direction orientation applies them and prints the measured orientation before and after."""
  workdir, _ = stylegan_run
  _, generator, state, _ = generation.load(str(workdir))
  variables = {"params": state.ema_g_params, "batch_stats": state.g_batch_stats}
  ws = directions.sample_w(generator, variables, jax.random.PRNGKey(7), 160)
  noise = inversion.draw_noise(generator, variables, 160, jax.random.PRNGKey(8))
  measured = edits.measure(inversion.render(generator, variables, inversion.broadcast_w(ws, generator.num_ws), "w+",
                                            noise=noise))
  probes = directions.fit_attribute_probes(ws, measured)
  constant = {n for n in directions.ATTRIBUTE_PROBES if np.ptp(measured[n]) == 0}   # skipped: no direction
  assert set(probes) == set(directions.ATTRIBUTE_PROBES) - constant and "orientation" in probes, constant
  found = directions.attribute_directions(probes, ws)
  plain, conditional = found["orientation"]
  held = [h for h in directions.HELD if h in probes]
  assert (plain.name, conditional.name) == ("orientation", f"orientation|{','.join(held)}") and held
  for name in held:   # the conditional one keeps the held probes' scores
    np.testing.assert_allclose(probes[name].weight @ conditional.vector, 0.0, atol=1e-9)
  run = tmp_path / "run"
  shutil.copytree(workdir, run)
  directions.save_directions(str(run / "editing" / directions.DIRECTIONS_FILE), [plain, conditional])
  # 20 steps as in the test above: the same programs, read from the persistent compilation cache.
  code, out, err = run_edit(["--op", "direction", "--direction", conditional.name, "--strength", 2, "--workdir", run,
                             "--image", run / "own.png", "--steps", 20, "--out", tmp_path / "tilted.png"], capsys)
  assert code == 0, err
  assert f"{conditional.name} x2: " in out and ", orientation " in out and ", facing " in out
  rec = provenance.read_image_record(tmp_path / "tilted.png")
  assert rec["operations"][1] == f"direction {conditional.name} +2" and rec["run"] == str(run)


def test_latent_ops_need_a_stylegan_run_and_its_directions(stylegan_run, tiny_run, tmp_path, capsys):
  workdir, _ = stylegan_run
  image = ["--image", workdir / "own.png", "--out", tmp_path / "x.png"]
  code, _, err = run_edit(["--op", "invert", "--workdir", tiny_run[0], *image], capsys)
  assert code == 1 and "W+ space of an unconditional StyleGAN" in err, err
  code, _, err = run_edit(["--op", "direction", "--direction", "pc0", "--workdir", tmp_path / "none", *image], capsys)
  assert code == 1 and "python experiments/benchmark_editing.py" in err, err
  assert not (tmp_path / "x.png").exists()


def test_weighted_reconstruction_loss_by_hand():
  options = inversion.ProjectionOptions(perceptual_weight=0.0)
  images = np.zeros((1, 2, 2, 3), np.float32)
  targets = np.array([[[[1, 1, 1], [0, 0, 0]], [[0, 0, 0], [5, 5, 5]]]], np.float32)
  ones = np.ones((1, 2, 2, 1), np.float32)
  np.testing.assert_allclose(inversion.reconstruction_loss(images, targets, options, weights=ones),
                             inversion.reconstruction_loss(images, targets, options), rtol=1e-6)
  # Weight 0 on the pixel holding 5: the mean squared error over the 3 others is 1/3.
  weights = np.array([[[[1], [1]], [[1], [0]]]], np.float32)
  np.testing.assert_allclose(inversion.reconstruction_loss(images, targets, options, weights=weights), [1 / 3],
                             rtol=1e-6)


def test_masked_inversion_ignores_the_hole_keeps_the_rest_and_fills_it(stylegan_run):
  from gan.editing import inpaint
  workdir, _ = stylegan_run
  _, generator, state, _ = generation.load(str(workdir))
  variables = {"params": state.ema_g_params, "batch_stats": state.g_batch_stats}
  truth = read(workdir / "own.png")
  hole = np.zeros((16, 16, 1), np.float32)
  hole[4:12, 4:12] = 1
  scribbled = np.where(hole > 0, np.float32(-1.0), truth)           # black box over the product
  options = inversion.ProjectionOptions(steps=150, perceptual_weight=0.0)
  key = jax.random.PRNGKey(0)
  noise = inversion.draw_noise(generator, variables, 1, jax.random.PRNGKey(5))
  filled, _ = inpaint.masked_inversion(generator, variables, scribbled, hole, key, options=options, noise=noise)
  other, _ = inpaint.masked_inversion(generator, variables, np.where(hole > 0, np.float32(1.0), truth), hole, key,
                                      options=options, noise=noise)
  np.testing.assert_array_equal(filled, other)                        # nothing of the hole is used
  np.testing.assert_array_equal(filled[hole[..., 0] == 0], truth[hole[..., 0] == 0])
  inside = hole[..., 0] > 0
  error = np.mean(np.square(filled[inside] - truth[inside]))
  # Baselines: the known pixels' mean colour; the generator's average product (mean w), unfitted.
  mean_fill = np.mean(np.square(truth[~inside].mean(0) - truth[inside]))
  mean_ws = inversion.initial_latents(generator, variables, "w+", 1, key)
  average = np.asarray(inversion.render(generator, variables, mean_ws, "w+", noise=noise))[0]
  average_fill = np.mean(np.square(average[inside] - truth[inside]))
  # Measured: 0.107 vs 0.221 (mean colour); the thresholds leave room for other CPUs' rounding.
  assert error < 0.7 * mean_fill and error < 0.7 * average_fill, (error, mean_fill, average_fill)


def test_cli_inpaint_by_inversion_keeps_unmasked_pixels(stylegan_run, tmp_path, capsys):
  workdir, _ = stylegan_run
  code, _, err = run_edit(["--op", "inpaint", "--method", "inversion", "--workdir", workdir, "--steps", 30,
                           "--image", workdir / "own.png", "--box", "4,4,12,12", "--out", tmp_path / "f.png"], capsys)
  assert code == 0, err
  out, truth = read(tmp_path / "f.png"), read(workdir / "own.png")
  keep = np.ones((16, 16), bool)
  keep[4:12, 4:12] = False
  np.testing.assert_array_equal(out[keep], truth[keep])
  code, _, err = run_edit(["--op", "inpaint", "--method", "magic", "--workdir", workdir, "--image",
                           workdir / "own.png", "--box", "4,4,12,12", "--out", tmp_path / "g.png"], capsys)
  assert code == 1 and "Unknown --method 'magic' for inpaint; valid: model, inversion" in err, err


# --- The inversion encoder: task "inversion_encoder" through the shared loop --------------------


def encoder_config(generator_workdir, steps=6, **overrides):
  """A tiny encoder of `generator_workdir` on its own photos: logs every 2 steps, checkpoints,
  samples and evaluation (4 held-out photos) every 3."""
  return default.apply_overrides(inversion_encoder_products.get_config(), {
      "encoder.generator_workdir": str(generator_workdir), "data.dir": runs.load_config(str(generator_workdir)).data.dir,
      "data.image_size": 16, "encoder.width": 8, "encoder.hidden": 32, "encoder.perceptual": "none",
      "encoder.stats_samples": 500, "train.steps": steps, "train.batch_size": 8, "train.log_every": 2,
      "train.checkpoint_every": 3, "train.sample_every": 3, "eval.every": 3, "eval.num_images": 4,
      "sample.grid_rows": 2, **overrides})


@pytest.fixture(scope="module")
def encoder_run(stylegan_run, tmp_path_factory):
  """A 6-step encoder of the StyleGAN run, in a workdir of its own: (workdir, final EncoderState)."""
  workdir = tmp_path_factory.mktemp("encoder")
  return workdir, train.train_and_evaluate(encoder_config(stylegan_run[0]), str(workdir))


def test_the_encoder_run_records_its_generator_and_gan_edit_starts_from_it(stylegan_run, encoder_run, tmp_path,
                                                                         capsys):
  workdir, state = encoder_run
  trained, meta = inversion.load_encoder(str(workdir))
  jax.tree.map(np.testing.assert_array_equal, trained.params, jax.device_get(state.params))
  _, restored, _ = tasks.restore(str(workdir))         # opened like a run of any task
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored), jax.device_get(state))
  _, generator, _, _ = generation.load(str(stylegan_run[0]))
  config = runs.load_config(str(workdir))
  assert (config.encoder.num_ws, config.encoder.w_dim) == (generator.num_ws, 16)
  assert config.encoder.generator_step == 2 and meta["step"] == 6
  assert meta["eval"]["step"] == 6 and meta["eval"]["neg_psnr"] == -meta["eval"]["psnr"]
  grid = np.asarray(Image.open(workdir / "samples" / "step_000006.png"))
  assert grid.shape == (2 * 18 + 2, 2 * 18 + 2, 3)     # photo | reconstruction, 2 photos
  # In <StyleGAN run>/encoder, gan.edit starts from the encoder's guess: 0 projection steps keep it.
  run = tmp_path / "stylegan"
  shutil.copytree(stylegan_run[0], run)
  shutil.copytree(workdir, run / "encoder")
  code, _, err = run_edit(["--op", "invert", "--workdir", run, "--image", run / "own.png", "--steps", 0,
                           "--save-latent", tmp_path / "w.npy", "--out", tmp_path / "inv.png"], capsys)
  assert code == 0, err
  np.testing.assert_allclose(np.load(tmp_path / "w.npy"), inversion.encode(trained, read(run / "own.png")[None])[0],
                             atol=1e-5)
  with pytest.raises(FileNotFoundError, match="configs/inversion_encoder_products.py"):
    inversion.load_encoder(str(tmp_path / "none"))


def test_the_encoder_stopped_by_sigterm_and_rerun_ends_with_the_uninterrupted_weights(stylegan_run, encoder_run,
                                                                                      tmp_path, preempted):
  stopped, resumed = preempted(encoder_config(stylegan_run[0]), tmp_path, "latent")
  # SIGTERM while step 2's losses were logged: the run saved step 3 and stopped.
  assert int(stopped.step) == 3 and int(resumed.step) == 6
  assert sorted(int(s) for s in os.listdir(tmp_path / "checkpoints")) == [3, 6]
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed), jax.device_get(encoder_run[1]))


def test_the_encoder_refuses_other_shapes_and_a_generator_that_trained_on(stylegan_run, encoder_run, tmp_path):
  workdir, _ = encoder_run
  with pytest.raises(checkpointing.CheckpointMismatchError, match="encoder.width: checkpoint 8 vs config 16"):
    train.train_and_evaluate(encoder_config(stylegan_run[0], steps=9, **{"encoder.width": 16}), str(workdir))
  # As if the generator had trained on after the encoder started: its recorded step is older.
  moved = tmp_path / "encoder"
  shutil.copytree(workdir, moved)
  saved = json.loads((moved / "config.json").read_text())
  saved["encoder"]["generator_step"] = 1
  (moved / "config.json").write_text(json.dumps(saved))
  with pytest.raises(runs.ConfigError, match="trained against step 1 of .*now step 2"):
    train.train_and_evaluate(encoder_config(stylegan_run[0], steps=9), str(moved))
