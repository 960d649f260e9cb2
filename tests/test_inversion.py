"""GAN inversion: projection of generated images back into W / W+ / Z reaches stated PSNRs, the
StyleGAN2 projector's schedule and noise regulariser against hand-computed values, noise plumbing,
the encoder (training lowers its loss, refinement helps) and error messages."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from configs import inversion_encoder_products
from gan import sampling
from gan.editing import inversion
from gan.metrics import image as image_metrics
from gan.models import dcgan
from gan.models import stylegan
from gan.tasks import inversion_encoder

W_DIM, N = 16, 4
# Stated thresholds (measured on this fixture: W+ >= 35 dB, W ~100 dB, i.e. exact up to float32).
W_PLUS_PSNR, W_PSNR = 30.0, 40.0


def _key(seed):
  # unsafe_rbg keys compile much faster on CPU than threefry.
  return jax.random.key(seed, impl="unsafe_rbg")


def _psnr(a, b):
  return np.asarray(image_metrics.psnr(a, b, data_range=2.0))


@pytest.fixture(scope="module")
def tiny():
  """A random 16x16 RGB StyleGAN with nonzero noise strengths, its W statistics and N targets
  rendered noise-free from known w."""
  g = stylegan.Generator(image_size=16, channels=3, width=8, w_dim=W_DIM)
  variables = jax.jit(lambda key: g.init(key, jnp.zeros((2, W_DIM)), train=False))(_key(0))
  flat = flax.traverse_util.flatten_dict(variables["params"])
  flat = {k: (jnp.full_like(v, 0.3) if k[-1] == "noise_strength" else v) for k, v in flat.items()}
  variables = {**variables, "params": flax.traverse_util.unflatten_dict(flat)}
  stats = inversion.w_statistics(g, variables, _key(1), 2000)
  z = jnp.asarray(np.random.default_rng(2).normal(size=(N, W_DIM)), jnp.float32)
  w = g.apply(variables, z, method=g.mapping, train=False)
  targets = inversion.render(g, variables, w, "w")
  return g, variables, stats, w, targets


@pytest.mark.parametrize("space,threshold", [("w+", W_PLUS_PSNR), ("w", W_PSNR)])
def test_projection_recovers_a_generated_image(tiny, space, threshold):
  g, variables, stats, _, targets = tiny
  start = inversion.render(g, variables, inversion.initial_latents(g, variables, space, N, _key(3), stats), space)
  assert _psnr(start, targets).max() < 20          # the mean w is far from every target
  options = inversion.ProjectionOptions(steps=300, noise="none")
  result = inversion.project(g, variables, targets, _key(4), space=space, options=options, stats=stats)
  assert result.latents.shape == ((N, g.num_ws, W_DIM) if space == "w+" else (N, W_DIM))
  assert _psnr(result.images, targets).min() >= threshold
  # The returned images are the latents' renders, and the loss went down.
  np.testing.assert_allclose(inversion.render(g, variables, result.latents, space), result.images, atol=1e-5)
  assert result.losses.shape == (300,) and result.losses[-1] < 0.01 * result.losses[0]


def test_optimized_noise_stays_white_and_fits_what_w_cannot(tiny):
  g, variables, stats, w, _ = tiny
  true_noise = inversion.draw_noise(g, variables, N, _key(5))
  targets = inversion.render(g, variables, w, "w", noise=true_noise)
  wrong_noise = inversion.draw_noise(g, variables, N, _key(6))
  # Even the true w renders the targets poorly with other noise maps (~12.5 dB here): the noise
  # strengths are large, so only optimizing the maps can fit them.
  baseline = _psnr(inversion.render(g, variables, w, "w", noise=wrong_noise), targets)
  options = inversion.ProjectionOptions(steps=100, noise="optimize")
  result = inversion.project(g, variables, targets, _key(7), space="w", options=options, stats=stats,
                             noise=wrong_noise)
  assert (_psnr(result.images, targets) > baseline + 8.0).all()
  for n in jax.tree_util.tree_leaves(result.noise):     # renormalised after every step
    np.testing.assert_allclose(n.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.square(n).mean(axis=(1, 2, 3)), 1.0, atol=1e-4)
  # Still white: far below the regulariser's value for the same maps blurred.
  blurred = jax.tree_util.tree_map(lambda n: (n + jnp.roll(n, 1, 1) + jnp.roll(n, 1, 2)) / 3, result.noise)
  assert inversion.noise_regularization(result.noise) < 0.1 * inversion.noise_regularization(blurred)


def test_z_projection_works_for_dcgan():
  g = dcgan.Generator(image_size=8, channels=1, width=8)
  variables = jax.jit(lambda key: g.init(key, jnp.zeros((2, 8)), train=False))(_key(8))
  z_true = jnp.asarray(np.random.default_rng(9).normal(size=(2, 8)), jnp.float32)
  targets = inversion.render(g, variables, z_true, "z")
  options = inversion.ProjectionOptions(steps=200, learning_rate=0.05)
  result = inversion.project(g, variables, targets, _key(10), space="z", options=options, z_dim=8)
  start = inversion.render(g, variables, inversion.initial_latents(g, variables, "z", 2, jax.random.split(_key(10), 4)[0],
                                                                   z_dim=8), "z")
  assert result.noise is None
  assert (_psnr(result.images, targets) > _psnr(start, targets) + 10).all()
  with pytest.raises(ValueError, match="needs a StyleGAN generator"):
    inversion.project(g, variables, targets, _key(0), space="w+")


def test_learning_rate_schedule_matches_stylegan2_projector():
  options = inversion.ProjectionOptions(steps=1000, learning_rate=0.1, rampup=0.05, rampdown=0.25)
  lr = lambda step: float(inversion.projector_learning_rate(step, options))
  assert lr(0) == 0.0
  assert lr(25) == pytest.approx(0.05, rel=1e-6)                 # half way up the linear warm-up
  assert lr(50) == lr(500) == pytest.approx(0.1, rel=1e-6)       # flat top
  # t = 0.875: (1 - t) / 0.25 = 0.5 -> 1/2 - 1/2 cos(pi / 2) = 1/2
  assert lr(875) == pytest.approx(0.05, rel=1e-5)
  assert lr(1000) == pytest.approx(0.0, abs=1e-9)


def _noise_reg_reference(maps):
  """The StyleGAN2 projector's loop, per image, in numpy (maps: list of (H, W) arrays)."""
  total = 0.0
  for n in maps:
    while True:
      total += np.mean(n * np.roll(n, 1, axis=1)) ** 2 + np.mean(n * np.roll(n, 1, axis=0)) ** 2
      if n.shape[0] <= 8:
        break
      n = n.reshape(n.shape[0] // 2, 2, n.shape[1] // 2, 2).mean(axis=(1, 3))
  return total


def test_noise_regularization_against_hand_values_and_reference():
  ones = {"a": {"noise": jnp.ones((1, 16, 16, 1))}}
  # Constant maps: mean product 1 along both axes at scales 16 and 8 -> 4.
  assert float(inversion.noise_regularization(ones)) == pytest.approx(4.0)
  rng = np.random.default_rng(0)
  maps = [rng.normal(size=(3, 32, 32, 1)), rng.normal(size=(3, 4, 4, 1))]
  maps[0] = maps[0] + np.roll(maps[0], 1, axis=1)          # some autocorrelation
  tree = {"x": {"noise": jnp.asarray(maps[0], jnp.float32)}, "y": {"noise": jnp.asarray(maps[1], jnp.float32)}}
  expected = sum(_noise_reg_reference([m[i, ..., 0] for m in maps]) for i in range(3))
  assert float(inversion.noise_regularization(tree)) == pytest.approx(expected, rel=1e-4)
  normalized = inversion.normalize_noise(tree)
  for n in jax.tree_util.tree_leaves(normalized):
    np.testing.assert_allclose(n.mean(axis=(1, 2, 3)), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.square(n).mean(axis=(1, 2, 3)), 1.0, rtol=1e-5)


def test_drawn_noise_equals_the_noise_rng(tiny):
  g, variables, _, w, _ = tiny
  ws = inversion.broadcast_w(w, g.num_ws)
  noise = inversion.draw_noise(g, variables, N, _key(11))
  assert sorted(noise["synthesis_network"]) == ["b16_conv0", "b16_conv1", "b4_conv1", "b8_conv0", "b8_conv1"]
  assert noise["synthesis_network"]["b8_conv0"]["noise"].shape == (N, 8, 8, 1)
  with_rng = jax.jit(lambda v, ws, key: g.apply(v, ws, method=g.synthesis, train=False, rngs={"noise": key}))(
      variables, ws, _key(11))
  np.testing.assert_allclose(inversion.render(g, variables, ws, "w+", noise=noise), with_rng, atol=1e-5)
  assert np.abs(inversion.render(g, variables, ws, "w+") - with_rng).max() > 1e-3   # noise matters


class Recorder:
  """A metric writer keeping what it is given: records [{"step", metric: value}]."""

  def __init__(self):
    self.records = []

  def write_scalars(self, step, scalars):
    self.records.append({"step": step, **scalars})


def test_encoder_trains_and_refines(tiny):
  g, variables, _, _, targets = tiny
  config = default.apply_overrides(inversion_encoder_products.get_config(), {
      "data.image_size": 16, "train.steps": 60, "train.batch_size": 8, "train.log_every": 10,
      "encoder.width": 8, "encoder.hidden": 64, "optimizer.lr": 3e-3, "encoder.real_weight": 0.0,
      "encoder.stats_samples": 2000})
  photos = sampling.to_uint8(np.concatenate([np.asarray(targets)] * 2))   # drawn, unused (real_weight 0)
  history = Recorder()
  trained = inversion_encoder.fit(config, g, variables, photos, writer=history)   # in memory, the task's step
  history = history.records
  assert [h["step"] for h in history] == [10, 20, 30, 40, 50, 60]
  assert history[-1]["latent"] < 0.8 * history[0]["latent"]
  assert history[-1]["reconstruction"] < history[0]["reconstruction"]
  ws = inversion.encode(trained, targets)
  assert ws.shape == (N, g.num_ws, W_DIM)

  encoded = inversion.render(g, variables, ws, "w+")
  stats = tiny[2]
  # The options of test_projection_recovers_a_generated_image: the cached projector is reused.
  refined = inversion.project(g, variables, targets, _key(13), space="w+", init=ws, stats=stats,
                              options=inversion.ProjectionOptions(steps=300, noise="none"))
  assert _psnr(refined.images, targets).mean() > _psnr(encoded, targets).mean() + 3
  # Trained encoders are runs of task "inversion_encoder": tests/test_edit_latent.py.


def test_bad_inputs_give_clear_errors(tiny):
  g, variables, stats, _, targets = tiny
  with pytest.raises(ValueError, match="Unknown latent space 'x'"):
    inversion.project(g, variables, targets, _key(0), space="x")
  with pytest.raises(ValueError, match="targets must be images"):
    inversion.project(g, variables, targets[0], _key(0), stats=stats)
  with pytest.raises(ValueError, match="resize the images to the generator's resolution"):
    inversion.project(g, variables, targets[:, :8, :8], _key(0), stats=stats)
  with pytest.raises(ValueError, match="Unknown noise mode"):
    inversion.make_projector(g, "w", inversion.ProjectionOptions(noise="random"))
  with pytest.raises(ValueError, match="rampdown is a fraction"):
    inversion.make_projector(g, "w", inversion.ProjectionOptions(rampdown=0.0))


def test_perceptual_term_choice(monkeypatch, tmp_path):
  """auto: LPIPS-VGG when fetched (StyleGAN2's projector), else the domain classifier, else none;
  an explicit choice that cannot be had is an error naming the fix."""
  from gan.metrics import lpips  # pylint: disable=g-import-not-at-top
  classifier_dir = tmp_path / "classifier"
  (classifier_dir / "checkpoints").mkdir(parents=True)
  monkeypatch.setattr(lpips, "available", lambda net="alex": True)
  assert inversion.resolve_perceptual("auto", str(classifier_dir)) == "lpips_vgg"
  monkeypatch.setattr(lpips, "available", lambda net="alex": False)
  assert inversion.resolve_perceptual("auto", str(classifier_dir)) == "classifier"
  assert inversion.resolve_perceptual("auto", str(tmp_path / "none")) == "none"
  assert inversion.resolve_perceptual("none", None) == "none"
  with pytest.raises(ValueError, match="python -m gan.weights fetch lpips"):
    inversion.resolve_perceptual("lpips_vgg", str(classifier_dir))
  with pytest.raises(ValueError, match="needs a trained domain classifier"):
    inversion.resolve_perceptual("classifier", str(tmp_path / "none"))
  with pytest.raises(ValueError, match="Unknown perceptual term 'vgg'"):
    inversion.resolve_perceptual("vgg", None)


def test_lpips_perceptual_upsamples_small_images_to_lpips_minimum():
  from gan.metrics import lpips  # pylint: disable=g-import-not-at-top
  if not lpips.available("vgg"):
    pytest.skip("LPIPS-VGG weights not fetched: python -m gan.weights fetch lpips")
  rng = np.random.default_rng(0)
  a = jnp.asarray(rng.uniform(-1, 1, (2, 8, 8, 1)), jnp.float32)
  b = jnp.asarray(rng.uniform(-1, 1, (2, 8, 8, 1)), jnp.float32)
  got = inversion.lpips_perceptual("vgg")(a, b)
  up = lambda x: jax.image.resize(x, (2, 16, 16, 1), "bilinear")
  want = lpips.distance(lpips.cached("vgg"), up(a), up(b))
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
  assert np.all(np.asarray(got) > 0) and got.shape == (2,)
  np.testing.assert_allclose(np.asarray(inversion.lpips_perceptual("vgg")(a, a)), 0.0, atol=1e-6)
  # Differentiable, as the projection needs.
  grad = jax.grad(lambda x: jnp.sum(inversion.lpips_perceptual("vgg")(x, b)))(a)
  assert np.all(np.isfinite(np.asarray(grad))) and np.abs(np.asarray(grad)).max() > 0
