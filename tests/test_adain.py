"""AdaIN (gan/style/adain.py, task "adain_decoder" in gan/tasks/adain_decoder.py): decoder,
training, the alpha / blending identities, runs of the shared loop (resume after SIGTERM, load).

A tiny stand-in encoder keeps everything fast: conv1 (3x3, 8 channels, full resolution), pool1
(2x2 average), conv2 (3x3, 16 channels, half resolution, the AdaIN layer); decoders for it are
trained in memory (`adain_decoder.fit`). Runs in a workdir use a small random-feature extractor,
which `adain.load` rebuilds from its name.
"""

import dataclasses
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from configs import adain_products
from configs import default
from gan import checkpointing
from gan import runs
from gan import tasks
from gan import train
from gan.losses import style as style_losses
from gan.style import adain
from gan.style import controls
from gan.style import random_features
from gan.style import vgg
from gan.style.features import FeatureExtractor
from gan.tasks import adain_decoder


def standin_extractor(seed: int = 0, name: str = "standin") -> FeatureExtractor:
  rng = np.random.default_rng(seed)
  k1 = jnp.asarray(rng.normal(0, (2 / 27) ** 0.5, (3, 3, 3, 8)), jnp.float32)
  k2 = jnp.asarray(rng.normal(0, (2 / 72) ** 0.5, (3, 3, 8, 16)), jnp.float32)

  def conv(x, kernel):
    return jax.nn.relu(jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME",
                                                    dimension_numbers=("NHWC", "HWIO", "NHWC")))

  def apply(images, layers):
    out = {"conv1": conv(jnp.asarray(images, jnp.float32), k1)}
    n, h, w, c = out["conv1"].shape
    out["pool1"] = out["conv1"][:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).mean((2, 4))
    out["conv2"] = conv(out["pool1"], k2)
    return {layer: out[layer] for layer in layers}

  return FeatureExtractor(name, ("conv1", "pool1", "conv2"), apply, ("conv2",), ("conv1", "conv2"))


EXTRACTOR = standin_extractor()
_rng = np.random.default_rng(0)
_yy, _xx = np.mgrid[0:16, 0:16] / 16
# Six smooth colour images and three noise "paintings" of other sizes and colour ranges.
CONTENTS = np.stack([np.clip((np.stack([np.sin(a * _xx + b), np.cos(c * _yy), a * _xx * _yy - 1], -1)
                              + 1) * 127.5, 0, 255)
                     for a, b, c in _rng.uniform(1, 6, (6, 3))]).astype(np.uint8)
PAINTINGS = [_rng.integers(lo, hi, (h, w, 3)).astype(np.uint8)
             for lo, hi, h, w in ((0, 256, 24, 20), (100, 160, 20, 28), (0, 90, 30, 30))]
CONTENT = CONTENTS.astype(np.float32) / 127.5 - 1.0
STYLE_A = PAINTINGS[0].astype(np.float32) / 127.5 - 1.0
STYLE_B = PAINTINGS[2].astype(np.float32) / 127.5 - 1.0


def psnr(a, b):
  """PSNR in dB of [-1, 1] images (peak-to-peak 2)."""
  return float(10 * np.log10(4.0 / np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def tiny_config(steps: int, **overrides):
  """configs/adain_products.py at 16 px, batch 4, style weight 1 and a one-conv-per-level decoder,
  with dotted-key `overrides`."""
  return default.apply_overrides(adain_products.get_config(), {
      "data.image_size": 16, "train.steps": steps, "train.batch_size": 4, "train.log_every": max(1, steps // 4),
      "adain.style_weight": 1.0, "adain.decoder.width": 8, "adain.decoder.convs_per_level": 1, **overrides})


@pytest.fixture(scope="module")
def style_model():
  """30 steps on noise paintings (the ordinary use)."""
  return adain_decoder.fit(tiny_config(30, **{"optimizer.lr": 1e-2}), EXTRACTOR, CONTENTS, PAINTINGS)


@pytest.fixture(scope="module")
def recon_model():
  """400 steps with the content images as their own styles (whole-image crops): the decoder
  learns to invert the encoder on this tiny set. tanh output: the bound below was measured with it
  (the products config's straight-through clip reaches 13.1 dB here in 400 steps)."""
  config = tiny_config(400, **{"optimizer.lr": 3e-3, "adain.style_scale": 1.0, "adain.decoder.width": 16,
                               "adain.encoder_layer": "conv2", "adain.decoder.output": "tanh"})
  config.adain.style_layers = ("conv1", "conv2")
  return adain_decoder.fit(config, EXTRACTOR, CONTENTS, list(CONTENTS))


# --- Decoder ----------------------------------------------------------------------------------


def test_decoder_widths_and_nearest_upsampling():
  assert adain.decoder_widths(3, 64) == (256, 128, 64, 64)  # Huang & Belongie's relu4_1 decoder
  assert adain.decoder_widths(1, 8) == (8, 8)
  assert adain.decoder_widths(0, 8) == (8,)
  assert adain.decoder_widths(6, 64) == (512, 512, 512, 256, 128, 64, 64)  # capped at 512
  x = jnp.arange(8.0).reshape(1, 2, 2, 2)
  up = adain.upsample_nearest(x)
  assert up.shape == (1, 4, 4, 2)
  np.testing.assert_array_equal(up[0, :, :, 1], [[1, 1, 3, 3], [1, 1, 3, 3], [5, 5, 7, 7], [5, 5, 7, 7]])


def test_decoder_shape_range_and_parameter_names():
  decoder = adain.Decoder(widths=(8, 4, 4), convs_per_level=2)
  features = np.random.default_rng(0).normal(0, 100, (2, 4, 5, 16))  # saturating inputs
  params = adain.init_decoder_params(decoder, 16, seed=1)
  assert set(params) == {"conv0_0", "conv0_1", "conv1_0", "conv1_1", "conv2_0", "conv2_1", "rgb"}
  assert params["conv0_0"]["kernel"].shape == (3, 3, 16, 8)
  assert params["rgb"]["kernel"].shape == (3, 3, 4, 3)
  out = jax.jit(decoder.apply)({"params": params}, features)
  assert out.shape == (2, 16, 20, 3)  # two nearest x2 upsamplings
  assert float(jnp.abs(out).max()) <= 1.0 and float(jnp.abs(out).max()) > 0.99  # tanh saturates


def test_clip_output_is_in_range_with_a_straight_through_gradient():
  features = np.random.default_rng(0).normal(0, 100, (1, 4, 4, 4))
  decoder = adain.Decoder(widths=(4,), convs_per_level=1, output="clip")
  params = adain.init_decoder_params(decoder, 4, seed=1)
  out = jax.jit(decoder.apply)({"params": params}, features)
  assert float(jnp.abs(out).max()) == 1.0
  assert float(jnp.mean(jnp.abs(out) == 1.0)) > 0.5  # most pixels clipped
  grad = jax.jit(jax.grad(lambda p: jnp.sum(decoder.apply({"params": p}, features))))(params)
  # A plain clip would give zero gradients on every clipped pixel; straight-through does not.
  assert float(jnp.abs(grad["rgb"]["bias"]).min()) > 0


def test_reflect_and_zero_padding_differ_only_at_the_border():
  features = np.random.default_rng(0).normal(0, 1, (1, 8, 8, 4))
  reflect = adain.Decoder(widths=(4,), convs_per_level=1, padding="reflect")
  same = adain.Decoder(widths=(4,), convs_per_level=1, padding="same")
  params = {"params": adain.init_decoder_params(reflect, 4, seed=1)}
  a, b = jax.jit(reflect.apply)(params, features), jax.jit(same.apply)(params, features)
  # Two 3x3 convs: pixels at least 2 away from the border never see the padding.
  np.testing.assert_allclose(a[:, 2:-2, 2:-2], b[:, 2:-2, 2:-2], atol=1e-6)
  assert float(jnp.abs(a - b)[:, 0].max()) > 1e-3


@pytest.mark.parametrize("field,value", [("padding", "circular"), ("output", "sigmoid")])
def test_decoder_rejects_unknown_options(field, value):
  decoder = adain.Decoder(widths=(4,), **{field: value})
  with pytest.raises(ValueError, match="valid"):
    adain.init_decoder_params(decoder, 2)


def test_encoder_geometry():
  assert adain.encoder_geometry(EXTRACTOR, "conv2") == (2, 16)
  assert adain.encoder_geometry(EXTRACTOR, "conv1") == (1, 8)
  rand = random_features.random_extractor(num_scales=3, features=4)
  assert adain.encoder_geometry(rand, "scale3") == (4, 4)
  assert adain.encoder_geometry(rand, "content") == (2, 4)
  assert adain.default_layers(rand) == ("content", ("scale1", "scale2", "scale3"))
  with pytest.raises(ValueError, match="valid: conv1, pool1, conv2"):
    adain.encoder_geometry(EXTRACTOR, "relu4_1")


def test_adain_target_from_statistics_matches_controls_adain_alpha():
  f_c = EXTRACTOR.apply(CONTENT[:2], ("conv2",))["conv2"]
  f_s = EXTRACTOR.apply(STYLE_A[None], ("conv2",))["conv2"]
  mean, std = style_losses.mean_std(f_s)
  for alpha in (0.0, 0.3, 1.0):
    np.testing.assert_allclose(adain.adain_target(f_c, mean, std, alpha),
                               controls.adain_alpha(f_c, f_s, alpha), atol=1e-5)


# --- Training ---------------------------------------------------------------------------------


def test_random_crops_are_windows_of_the_paintings():
  crops = adain.random_crops(PAINTINGS, np.random.default_rng(0), 12, 16)
  assert crops.shape == (12, 16, 16, 3) and crops.dtype == np.uint8
  for crop in crops:
    assert any(np.array_equal(crop, p[y:y + 16, x:x + 16]) for p in PAINTINGS
               for y in range(p.shape[0] - 15) for x in range(p.shape[1] - 15))
  again = adain.random_crops(PAINTINGS, np.random.default_rng(0), 12, 16)
  np.testing.assert_array_equal(crops, again)


def test_training_reduces_the_loss(style_model):
  # The per-step losses are noisy (other images every step): compare on fixed pairs instead,
  # the same initialisation (same seed) before and after the 30 steps.
  untrained = adain.init_model(EXTRACTOR, seed=0, width=8, convs_per_level=1)
  np.testing.assert_array_equal(untrained.params["rgb"]["kernel"].shape,
                                style_model.params["rgb"]["kernel"].shape)
  styles = adain.random_crops(PAINTINGS, np.random.default_rng(1), len(CONTENTS), 16)
  before = adain.evaluate(untrained, CONTENTS, styles, style_weight=1.0)
  after = adain.evaluate(style_model, CONTENTS, styles, style_weight=1.0)
  # Measured: total 0.154 -> 0.089, style 0.125 -> 0.059 (content stays at 0.03).
  assert after["total"] < 0.75 * before["total"], (before, after)
  assert after["style"] < 0.6 * before["style"], (before, after)
  assert style_model.encoder_layer == "conv2" and style_model.style_layers == ("conv1", "conv2")
  assert style_model.decoder["widths"] == [8, 8] and style_model.downsampling == 2
  assert style_model.info["steps"] == 30


def test_the_task_validates_its_inputs():
  config = tiny_config(1)
  config.data.image_size = 15
  with pytest.raises(runs.ConfigError, match="data.image_size 15 must be a multiple of 2"):
    adain_decoder.fit(config, EXTRACTOR, CONTENTS[:, :15, :15], PAINTINGS)
  with pytest.raises(ValueError, match="uint8"):
    adain_decoder.fit(tiny_config(1), EXTRACTOR, CONTENT, PAINTINGS)
  config = tiny_config(1)
  config.adain.style_layers = ("relu1_1",)
  with pytest.raises(ValueError, match="valid: conv1, pool1, conv2"):
    adain_decoder.fit(config, EXTRACTOR, CONTENTS, PAINTINGS)
  config = tiny_config(1, **{"adain.style_scale": 0.5, "adain.decoder.padding": "circular"})
  config.adain.extractor = "resnet"
  problems = adain_decoder.config_problems(config)
  assert len(problems) == 3, problems
  for problem, key in zip(problems, ("adain.extractor 'resnet'", "adain.style_scale", "adain.decoder.padding")):
    assert key in problem, problems
  assert adain_decoder.config_problems(adain_products.get_config()) == []


# --- Stylize ----------------------------------------------------------------------------------


def test_alpha_zero_decodes_the_content_features_and_reconstructs(recon_model):
  out = recon_model.stylize(CONTENT, [STYLE_A], alpha=0.0)
  expected = recon_model.decode(recon_model.encode(CONTENT))
  np.testing.assert_allclose(out, expected, atol=1e-5)
  np.testing.assert_allclose(recon_model.stylize(CONTENT, [STYLE_B], alpha=0.0), out, atol=1e-6)
  # Reconstruction bound on the 6 training images after 400 steps, measured 15.6 dB (their mean
  # image: 11.5 dB). The ReLU encoder (16 channels at half resolution) loses information, so
  # pixels are only approximately recovered; in feature space E(D(E(c))) is within ~12% of E(c)
  # (relative L2). Not a claim about unseen photos.
  baseline = psnr(np.broadcast_to(CONTENT.mean(0), CONTENT.shape), CONTENT)
  assert psnr(out, CONTENT) >= 14.0 and psnr(out, CONTENT) > baseline + 3.0, (psnr(out, CONTENT), baseline)
  f = recon_model.encode(CONTENT)
  relative = float(jnp.linalg.norm(recon_model.encode(out) - f) / jnp.linalg.norm(f))
  assert relative < 0.2, relative


def test_alpha_one_gives_the_decoder_input_the_style_statistics(style_model):
  eps = 1e-5
  f_c = style_model.encode(CONTENT)
  _, std_c = style_losses.mean_std(f_c, eps)
  live = np.asarray(std_c > 0.05)  # AdaIN cannot give a constant (dead ReLU) channel a spread
  assert live.mean() > 0.5

  def expected_std(std_s):
    # std(t)^2 = std_s^2 var_c / (var_c + eps) + eps, with var_c = std_c^2 - eps: the style's std
    # up to eps on every channel, sqrt(eps) on constant ones.
    return np.sqrt(np.asarray(std_s) ** 2 * (np.asarray(std_c) ** 2 - eps) / np.asarray(std_c) ** 2 + eps)

  stats = [style_losses.mean_std(style_model.encode(s[None]), eps) for s in (STYLE_A, STYLE_B)]
  t = style_model.targets(CONTENT, [STYLE_A], alpha=1.0)
  mean_t, std_t = style_losses.mean_std(t, eps)
  np.testing.assert_allclose(mean_t, jnp.broadcast_to(stats[0][0], mean_t.shape), atol=1e-5)
  np.testing.assert_allclose(std_t, expected_std(stats[0][1]), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(np.asarray(std_t)[live],
                             np.broadcast_to(stats[0][1], std_t.shape)[live], rtol=1e-2)
  # Blending interpolates the statistics with the weights.
  t = style_model.targets(CONTENT, [STYLE_A, STYLE_B], alpha=1.0, style_weights=[0.25, 0.75])
  mean_t, std_t = style_losses.mean_std(t, eps)
  np.testing.assert_allclose(mean_t, jnp.broadcast_to(0.25 * stats[0][0] + 0.75 * stats[1][0],
                                                      mean_t.shape), atol=1e-5)
  np.testing.assert_allclose(std_t, expected_std(0.25 * stats[0][1] + 0.75 * stats[1][1]),
                             rtol=1e-4, atol=1e-6)
  # alpha interpolates between the content features and the full AdaIN target.
  half = style_model.targets(CONTENT, [STYLE_A], alpha=0.5)
  full = style_model.targets(CONTENT, [STYLE_A], alpha=1.0)
  np.testing.assert_allclose(half, 0.5 * full + 0.5 * f_c, atol=1e-5)
  # And stylize decodes exactly that target.
  np.testing.assert_allclose(style_model.stylize(CONTENT, [STYLE_A], alpha=0.5),
                             style_model.decode(half), atol=1e-5)


def test_blend_weights_one_zero_equal_the_single_style(style_model):
  single_a = style_model.stylize(CONTENT[:2], [STYLE_A])
  single_b = style_model.stylize(CONTENT[:2], [STYLE_B])
  np.testing.assert_array_equal(style_model.stylize(CONTENT[:2], [STYLE_A, STYLE_B], style_weights=[1, 0]),
                                single_a)
  np.testing.assert_array_equal(style_model.stylize(CONTENT[:2], [STYLE_A, STYLE_B], style_weights=[0, 1]),
                                single_b)
  assert np.abs(single_a - single_b).mean() > 0.01  # the styles do differ
  with pytest.raises(ValueError, match="1 style weights for 2 styles"):
    style_model.stylize(CONTENT[:1], [STYLE_A, STYLE_B], style_weights=[1.0])
  with pytest.raises(ValueError, match="sum to 1"):
    style_model.stylize(CONTENT[:1], [STYLE_A, STYLE_B], style_weights=[0.5, 0.6])
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    style_model.stylize(CONTENT[:1], [STYLE_A], alpha=1.5)


def test_sizes_that_are_not_multiples_of_the_downsampling_are_padded(style_model):
  odd = CONTENT[0, :15, :13]
  out = style_model.stylize(odd, [STYLE_A])
  assert out.shape == (15, 13, 3) and out.dtype == np.float32
  padded = np.pad(odd, ((0, 1), (0, 1), (0, 0)), mode="edge")
  np.testing.assert_allclose(out, style_model.stylize(padded, [STYLE_A])[:15, :13], atol=1e-6)
  assert np.all(np.abs(out) <= 1.0)


# --- Runs of the shared loop -------------------------------------------------------------------

RANDOM_NAME = "random(seed=0,scales=2,features=8,kernel=3)"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
  """(photos folder: the six content images as PNGs, styles folder: the three paintings)."""
  root = tmp_path_factory.mktemp("adain_data")
  (root / "photos").mkdir()
  (root / "styles").mkdir()
  for i, image in enumerate(CONTENTS):
    Image.fromarray(image).save(root / "photos" / f"{i}.png")
  for i, painting in enumerate(PAINTINGS):
    Image.fromarray(painting).save(root / "styles" / f"{i}.png")
  return root / "photos", root / "styles"


def run_config(folders, steps: int = 8, extractor: str = RANDOM_NAME):
  """tiny_config on the folders with the random extractor; logs every 2 steps, checkpoints, samples
  and evaluation (4 photos) every 4."""
  config = tiny_config(steps)
  config.data.update(source="image_folder", dir=str(folders[0]), max_examples=0)
  config.adain.update(extractor=extractor, styles_dir=str(folders[1]))
  config.train.update(log_every=2, sample_every=4, checkpoint_every=4)
  config.eval.update(every=4, num_images=4)
  config.sample.grid_rows = 3
  return config


@pytest.fixture(scope="module")
def adain_run(tmp_path_factory, folders):
  """An 8-step decoder run: (workdir, final AdainState)."""
  workdir = tmp_path_factory.mktemp("adain_run")
  return workdir, train.train_and_evaluate(run_config(folders), str(workdir))


def test_a_run_loads_with_its_extractor_rebuilt_from_its_name(adain_run, tmp_path):
  workdir, state = adain_run
  loaded = adain.load(workdir)
  assert loaded.extractor_name == RANDOM_NAME and loaded.encoder_layer == "content"
  assert loaded.info["steps"] == 8 and loaded.info["eval"]["step"] == 8
  _, restored, _ = tasks.restore(str(workdir))         # opened like a run of any task
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored), jax.device_get(state))
  assert set(loaded.info["eval"]) == {"content", "style", "total", "step"}
  np.testing.assert_array_equal(loaded.history["step"], [2, 4, 6, 8])
  np.testing.assert_allclose(loaded.history["total"], loaded.history["content"] + loaded.history["style"],
                             rtol=1e-5)                  # style_weight 1
  extractor = random_features.random_extractor(seed=0, num_scales=2, features=8, kernel_size=3)
  by_hand = dataclasses.replace(adain.init_model(extractor, **adain.model_options(runs.load_config(str(workdir)))),
                                params=jax.device_get(state.params))
  np.testing.assert_array_equal(loaded.stylize(CONTENT[:2], [STYLE_A, STYLE_B], alpha=0.7),
                                by_hand.stylize(CONTENT[:2], [STYLE_A, STYLE_B], alpha=0.7))
  grid = np.asarray(Image.open(workdir / "samples" / "step_000008.png"))
  assert grid.shape == (3 * 18 + 2, 3 * 18 + 2, 3)      # photo | style crop | stylized, 3 photos
  assert json.loads((workdir / "config.json").read_text())["adain"]["extractor"] == RANDOM_NAME


def test_load_refuses_another_extractor(adain_run, tmp_path):
  workdir, _ = adain_run
  extractor = random_features.random_extractor(seed=0, num_scales=2, features=8, kernel_size=3)
  with pytest.raises(ValueError, match=re.escape(f"trained with extractor '{RANDOM_NAME}', but 'other' was given")):
    adain.load(workdir, extractor._replace(name="other"))
  other_weights = random_features.random_extractor(seed=1, num_scales=2, features=8, kernel_size=3)
  with pytest.raises(ValueError, match="other features"):  # same name, other weights
    adain.load(workdir, other_weights._replace(name=RANDOM_NAME))
  with pytest.raises(FileNotFoundError, match="python -m gan.main --config configs/adain_products.py"):
    adain.load(tmp_path / "missing")


def test_auto_extractor_is_resolved_once_and_recorded(folders, tmp_path, monkeypatch):
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(tmp_path / "no_weights"))   # auto: random features
  config = run_config(folders, steps=1, extractor="auto")
  config.adain.decoder.width = 4
  train.train_and_evaluate(config, str(tmp_path / "run"))
  recorded = json.loads((tmp_path / "run" / "config.json").read_text())["adain"]["extractor"]
  assert recorded == random_features.random_extractor().name
  assert config.adain.extractor == recorded


def test_stopped_by_sigterm_and_rerun_it_ends_with_the_uninterrupted_weights(adain_run, folders, tmp_path,
                                                                             preempted):
  stopped, resumed = preempted(run_config(folders), tmp_path, "total")
  # SIGTERM while step 2's losses were logged: the run saved step 3 and stopped.
  assert int(stopped.step) == 3 and int(resumed.step) == 8
  assert sorted(int(s) for s in os.listdir(tmp_path / "checkpoints")) == [3, 4, 8]
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed), jax.device_get(adain_run[1]))


def test_a_config_of_other_shapes_is_refused(adain_run, folders):
  workdir, _ = adain_run
  config = run_config(folders, steps=12)
  config.adain.decoder.width = 16
  with pytest.raises(checkpointing.CheckpointMismatchError, match="adain.decoder.width: checkpoint 8 vs config 16"):
    train.train_and_evaluate(config, str(workdir))


def test_extractor_from_name(monkeypatch, tmp_path):
  original = random_features.random_extractor(seed=3, num_scales=2, features=4, kernel_size=3)
  rebuilt = adain.extractor_from_name(original.name)
  assert rebuilt.name == original.name
  np.testing.assert_array_equal(rebuilt.apply(CONTENT[:1], ("scale2",))["scale2"],
                                original.apply(CONTENT[:1], ("scale2",))["scale2"])
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(tmp_path))
  with pytest.raises(vgg.WeightsNotFoundError):
    adain.extractor_from_name("vgg19-torchvision")
  with pytest.raises(FileNotFoundError, match=r"python -m gan\.weights fetch vgg16"):   # MissingWeightsError
    adain.extractor_from_name("vgg16")
  with pytest.raises(ValueError, match="Cannot rebuild"):
    adain.extractor_from_name("resnet")
