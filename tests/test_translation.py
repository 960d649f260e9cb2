"""Image translation (pix2pix, CycleGAN): networks, losses, the image pool, steps, and end-to-end runs
through gan/train.py's loop, evaluation, `translation.load` / `translate` and `gan.stylize`."""

import json
import os
from pathlib import Path
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P
from PIL import Image

from configs import cyclegan_products
from configs import default
from configs import pix2pix_products
from gan import evaluate
from gan import cli
from gan import provenance
from gan import stylize
from gan import train
from gan import writers
from gan.losses import adversarial
from gan.metrics import image as image_metrics
from gan.models import translation as nets
from gan.tasks import translation
from gan import runs
from gan.metrics import evaluation

from conftest import assert_states_equal

KEY = jax.random.PRNGKey(0)


# --------------------------------------------------------------------------- synthetic products


def _product(rng: np.random.Generator, bag: bool, side: int = 32) -> tuple[np.ndarray, np.ndarray]:
  """(photo, edge map) (side, side, 3) uint8: a coloured shape on white and its black outline on white."""
  photo = np.full((side, side, 3), 255, np.uint8)
  edges = np.full((side, side, 3), 255, np.uint8)
  top, left = rng.integers(2, 8, 2)
  h, w = (18, 18) if bag else (10, 24)
  top = top + (0 if bag else 12)               # shoes sit low and wide, bags are square
  colour = rng.integers(0, 120, 3) + (np.array([0, 0, 130]) if bag else np.array([130, 0, 0]))
  photo[top:top + h, left:left + w] = colour
  edges[top:top + h, left:left + w] = 0
  edges[top + 2:top + h - 2, left + 2:left + w - 2] = 255
  return photo, edges


def write_products(root: Path, split: str, numbers, seed: int = 0) -> None:
  """<root>/edges2shoes_edges2handbags/<split>/<n>_AB.jpg, photo left, edges right (gan/data.py layout)."""
  rng = np.random.default_rng([seed, len(split)])
  folder = root / "edges2shoes_edges2handbags" / split
  folder.mkdir(parents=True, exist_ok=True)
  for number in numbers:
    bag = number > (1000 if split == "train" else 200)
    photo, edges = _product(rng, bag)
    Image.fromarray(np.concatenate([photo, edges], axis=1)).save(folder / f"{number}_AB.jpg", quality=95)


# The resume test compiles the same train step as the run it resumes (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("persistent_compilation_cache")


@pytest.fixture(scope="module")
def products_root(tmp_path_factory) -> str:
  root = tmp_path_factory.mktemp("products")
  write_products(root, "train", list(range(1, 9)) + list(range(1001, 1009)))
  write_products(root, "val", [1, 2, 3, 201, 202, 203])
  return str(root)


def tiny(module, data_dir: str, **overrides):
  return default.apply_overrides(module.get_config("tiny"), {"data.dir": data_dir, **overrides})


# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize("size", [32, 64])
def test_network_output_shapes(size):
  x = jnp.zeros((2, size, size, 3))
  unet = nets.UNet(channels=3, width=4, depth=5)
  out, _ = jax.eval_shape(lambda: unet.init_with_output({"params": KEY, "dropout": KEY}, x, train=True))
  assert out.shape == (2, size, size, 3)
  resnet = nets.ResNetGenerator(channels=3, width=4, blocks=2)
  out, _ = jax.eval_shape(lambda: resnet.init_with_output(KEY, x, train=True))
  assert out.shape == (2, size, size, 3)
  for layers in (1, 2, 3):
    d = nets.PatchDiscriminator(width=4, num_layers=layers)
    logits, _ = jax.eval_shape(lambda: d.init_with_output(KEY, jnp.zeros((2, size, size, 6)), train=True))
    side = nets.patch_grid(size, layers)
    assert logits.shape == (2, side, side)


def test_unet_values_are_in_range_and_use_the_skips():
  unet = nets.UNet(channels=3, width=4, depth=4)
  x = jax.random.uniform(KEY, (2, 16, 16, 3), minval=-1, maxval=1)
  params = jax.jit(lambda: unet.init({"params": KEY}, x, train=False)["params"])()

  @jax.jit
  def outputs(params, x):
    eval_mode = unet.apply({"params": params}, x, train=False)
    return eval_mode, unet.apply({"params": params}, x, train=True, rngs={"dropout": KEY})

  y, y_train = outputs(params, x)
  assert float(jnp.max(jnp.abs(y))) <= 1.0
  # Eval mode is deterministic; train mode draws dropout masks.
  np.testing.assert_array_equal(y, outputs(params, x)[0])
  assert not np.allclose(y, y_train)
  # Skip connections: every decoder layer but the innermost reads its input concatenated with the
  # encoder map of the same size (transposed-conv kernels are (k, k, out, in)).
  widths = nets.unet_widths(4, 4)   # 4, 8, 16, 32
  kernels = [v["kernel"].shape for k, v in sorted(params.items()) if k.startswith("ConvTranspose")]
  assert [k[2:] for k in kernels] == [(16, 32), (8, 2 * 16), (4, 2 * 8), (3, 2 * 4)]
  assert widths == [4, 8, 16, 32]


def test_patch_grid_and_receptive_field():
  # The paper's 70x70 PatchGAN gives a 30x30 grid on 256 px images.
  assert nets.receptive_field(3) == 70 and nets.patch_grid(256, 3) == 30
  assert (nets.receptive_field(2), nets.patch_grid(64, 2)) == (34, 14)
  assert (nets.receptive_field(1), nets.patch_grid(64, 1)) == (16, 30)
  for layers in (1, 2):
    # Without instance norm (which couples every position) a logit sees exactly its patch.
    d = nets.PatchDiscriminator(width=4, num_layers=layers, norm="none")
    x = jax.random.normal(KEY, (1, 64, 64, 3))
    params = jax.jit(lambda: d.init(KEY, x, train=False))()
    mid = nets.patch_grid(64, layers) // 2
    grad = jax.jit(jax.grad(lambda x: d.apply(params, x, train=False)[0, mid, mid]))(x)
    rows = np.nonzero(np.abs(np.asarray(grad[0])).sum(axis=(1, 2)))[0]
    cols = np.nonzero(np.abs(np.asarray(grad[0])).sum(axis=(0, 2)))[0]
    for seen in (rows, cols):
      assert len(seen) == nets.receptive_field(layers) and seen[-1] - seen[0] + 1 == len(seen)


# --------------------------------------------------------------------------- losses


def test_pix2pix_l1_term_hand_computed():
  loss = adversarial.get("least_squares")
  fake = jnp.zeros((1, 2, 2, 1))
  target = jnp.array([0.5, -1.0, 0.25, 0.0]).reshape(1, 2, 2, 1)
  total, terms = translation.pix2pix_generator_loss(loss, None, jnp.array([0.0, 2.0]), fake, target, 100.0)
  # least squares: 0.5 * mean((l - 1)^2) = 0.5; L1: (0.5 + 1 + 0.25 + 0) / 4 = 0.4375.
  np.testing.assert_allclose(terms["g_adv_loss"], 0.5, rtol=1e-6)
  np.testing.assert_allclose(terms["l1"], 0.4375, rtol=1e-6)
  np.testing.assert_allclose(total, 0.5 + 100 * 0.4375, rtol=1e-6)


def test_cycle_and_identity_losses():
  loss = adversarial.get("least_squares")
  a, b = jnp.full((1, 2, 2, 3), 0.6), jnp.full((1, 2, 2, 3), -0.4)
  zero_logits = lambda x: jnp.zeros((x.shape[0] * 4,))
  kwargs = dict(loss=loss, lambda_cycle=10.0, lambda_identity=0.5)
  identity = lambda x: x
  total, terms, fakes = translation.cyclegan_generator_loss(identity, identity, zero_logits, zero_logits, a, b,
                                                            **kwargs)
  assert float(terms["cycle"]) == 0.0 and float(terms["identity"]) == 0.0
  np.testing.assert_allclose(total, 1.0)   # adversarial only: 2 x 0.5 * (0 - 1)^2
  np.testing.assert_array_equal(fakes["b"], a)
  # Inverse generators: the cycle closes, the identity term does not.
  _, terms, _ = translation.cyclegan_generator_loss(lambda x: 2 * x, lambda x: x / 2, zero_logits, zero_logits,
                                                    a, b, **kwargs)
  np.testing.assert_allclose(terms["cycle"], 0.0, atol=1e-7)
  np.testing.assert_allclose(terms["identity"], 0.4 + 0.3, rtol=1e-6)   # |2b - b| + |a/2 - a|
  # G_AB(x) = x / 2, G_BA(x) = x + 0.1: rec_a = 0.4 (|.| 0.2), rec_b = -0.15 (0.25);
  # identity |G_AB(b) - b| = 0.2, |G_BA(a) - a| = 0.1.
  total, terms, _ = translation.cyclegan_generator_loss(lambda x: x / 2, lambda x: x + 0.1, zero_logits,
                                                        zero_logits, a, b, **kwargs)
  np.testing.assert_allclose(terms["cycle"], 0.45, rtol=1e-5)
  np.testing.assert_allclose(terms["identity"], 0.3, rtol=1e-5)
  np.testing.assert_allclose(total, 1.0 + 10 * (0.45 + 0.5 * 0.3), rtol=1e-5)


# --------------------------------------------------------------------------- image pool


def numpy_pool(stored, count, images, u, slots):
  """CycleGAN's ImagePool.query (pytorch-CycleGAN-and-pix2pix util/image_pool.py) with given draws."""
  stored, out = stored.copy(), []
  for image, u_i, slot in zip(images, u, slots):
    if count < len(stored):
      stored[count] = image
      count += 1
      out.append(image)
    elif u_i > 0.5:
      out.append(stored[slot].copy())
      stored[slot] = image
    else:
      out.append(image)
  return stored, count, np.stack(out)


def test_pool_matches_numpy_reference_after_k_pushes():
  size, shape = 5, (2, 2, 1)
  pool = translation.empty_pool(size, shape)
  ref_stored, ref_count = np.zeros((size, *shape), np.float32), 0
  query = jax.jit(translation.query_pool)
  for k in range(6):
    images = jnp.arange(3 * k, 3 * k + 3, dtype=jnp.float32)[:, None, None, None] * jnp.ones((3, *shape))
    key = jax.random.fold_in(KEY, k)
    pool, out = query(pool, images, key)
    u, slots = translation.pool_draws(key, 3, size)
    ref_stored, ref_count, ref_out = numpy_pool(ref_stored, ref_count, np.asarray(images), np.asarray(u),
                                                np.asarray(slots))
    assert pool.images.shape == (size, *shape) and out.shape == images.shape   # fixed shapes
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(pool.images, ref_stored)
    assert int(pool.count) == ref_count == min(3 * (k + 1), size)
  # The first `size` images fill the pool in order and come back unchanged.
  assert sorted(np.asarray(pool.images)[:, 0, 0, 0].tolist()) != list(range(size))  # swaps happened
  first = translation.query_pool(translation.empty_pool(size, shape), jnp.arange(4.0)[:, None, None, None], KEY)
  np.testing.assert_array_equal(first[1][:, 0, 0, 0], np.arange(4.0))
  np.testing.assert_array_equal(first[0].images[:4, 0, 0, 0], np.arange(4.0))


def test_full_pool_returns_a_stored_image_half_the_time():
  size, n = 8, 200
  pool, _ = translation.query_pool(translation.empty_pool(size, (1, 1, 1)), -jnp.ones((size, 1, 1, 1)), KEY)
  query = jax.jit(translation.query_pool)
  from_pool = 0
  for k in range(10):
    images = jnp.arange(k * n, (k + 1) * n, dtype=jnp.float32).reshape(n, 1, 1, 1)  # unique ids
    pool, out = query(pool, images, jax.random.fold_in(KEY, k + 1))
    from_pool += int(jnp.sum(out != images))
  # 2000 Bernoulli(1/2) draws: std 0.011, so 0.45-0.55 fails with probability ~1e-5.
  assert 0.45 < from_pool / 2000 < 0.55


def test_pool_of_size_zero_passes_images_through():
  pool = translation.empty_pool(0, (2, 2, 3))
  images = jax.random.normal(KEY, (4, 2, 2, 3))
  new_pool, out = translation.query_pool(pool, images, KEY)
  np.testing.assert_array_equal(out, images)
  assert new_pool.images.shape == (0, 2, 2, 3)


# --------------------------------------------------------------------------- steps


def test_pix2pix_steps_decrease_l1_on_a_fixed_batch(products_root):
  config = tiny(pix2pix_products, products_root, **{"optimizer.g_lr": 2e-3, "optimizer.d_lr": 2e-3,
                                                    "translation.dropout": 0.0})
  mesh = runs.make_mesh()
  generator, state, step = translation.create_state_and_step(config, mesh)
  dataset = translation.load_pairs(config.data, "train")
  host = next(translation.pix2pix_batches(dataset, global_batch_size=8, seed=0, random_flip=False))
  batch = jax.tree.map(lambda x: jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), x), host)
  l1 = lambda params: float(translation.l1(translation.apply_generator(generator, params, host["input"]),
                                           host["target"]))
  before = l1(state.g_params)
  for _ in range(25):
    state, metrics = step(state, batch)
  assert int(state.step) == 25 and np.isfinite(float(metrics["d_loss"]))
  assert l1(state.g_params) < 0.6 * before, (before, l1(state.g_params))
  assert step._cache_size() == 1


def test_cyclegan_batches_are_unpaired_and_deterministic(products_root):
  config = tiny(cyclegan_products, products_root)
  domain_a, domain_b = translation.load_domains(config.data, "train", 0, 1)
  assert len(domain_a) == len(domain_b) == 8
  assert np.all(domain_a.labels == 0) and np.all(domain_b.labels == 1)
  kwargs = dict(global_batch_size=2, seed=0, random_flip=False)
  first = list(zip(range(8), translation.cyclegan_batches(domain_a, domain_b, **kwargs)))
  again = list(zip(range(4), translation.cyclegan_batches(domain_a, domain_b, start_step=4, **kwargs)))
  for (_, x), (_, y) in zip(first[4:], again):
    np.testing.assert_array_equal(x["a"], y["a"])
    np.testing.assert_array_equal(x["b"], y["b"])
  # Each domain has its own order: the k-th A image is not always shown with the k-th B image.
  index = lambda dataset, images: [int(np.argmin(np.abs(translation.to_float(dataset.images) - im).sum((1, 2, 3))))
                                   for im in images]
  pairs = [(i, j) for _, b in first for i, j in zip(index(domain_a, b["a"]), index(domain_b, b["b"]))]
  assert any(i != j for i, j in pairs)


# --------------------------------------------------------------------------- end to end


MODULES = {"pix2pix": pix2pix_products, "cyclegan": cyclegan_products}


@pytest.fixture(scope="module")
def trained(products_root, tmp_path_factory):
  """task -> (workdir, final state) of a 3-step tiny run, trained once per module on first use.

  eval.every=3 without a domain classifier: pix2pix still evaluates PSNR / SSIM, CycleGAN is off.
  """
  runs = {}

  def get(task: str):
    if task not in runs:
      workdir = tmp_path_factory.mktemp(task)
      config = tiny(MODULES[task], products_root, **{"eval.every": 3, "eval.classifier_dir": str(workdir / "none")})
      runs[task] = (workdir, config, train.train_and_evaluate(config, str(workdir)))
    return runs[task]

  return get


@pytest.mark.parametrize("task", ["pix2pix", "cyclegan"])
def test_train_resume_samples_and_compile_once(task, trained, tmp_path):
  workdir, config, straight = trained(task)
  assert int(straight.step) == 3
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints")) == [2, 3]
  assert sorted(os.listdir(workdir / "samples")) == ["step_000002.png", "step_000003.png"]
  grid = np.asarray(Image.open(workdir / "samples" / "step_000003.png"))
  assert grid.shape == (4 * 18 + 2, 3 * 18 + 2, 3)   # 4 rows of input | output | target, 16 px + 2 px padding
  records = writers.read_jsonl(str(workdir / "metrics.jsonl"))
  assert [r["train_step_compilations"] for r in records if "train_step_compilations" in r] == [1]
  losses = [r for r in records if "g_loss" in r]
  assert [r["step"] for r in losses] == [1, 2, 3] and all(np.isfinite(r["d_loss"]) for r in losses)
  evals = [r for r in records if "eval/psnr" in r]
  if task == "pix2pix":
    assert "l1" in losses[0] and [r["step"] for r in evals] == [3] and 0 < evals[0]["eval/ssim"] <= 1
    assert straight.pools == {}
  else:
    assert "cycle" in losses[0] and not evals
    # 3 steps x batch 2 fakes per domain into pools of 3: full, and never more.
    assert int(straight.pools["a"].count) == int(straight.pools["b"].count) == 3
  assert json.load(open(workdir / "config.json"))["task"] == task

  if task == "pix2pix":
    return   # resuming is the same code for both tasks; CycleGAN's state (pools, two G and D) is the richer one
  # Resume: the same run stopped after step 2 (its step-3 checkpoint removed) continues exactly.
  resumed_dir = tmp_path / "resumed"
  shutil.copytree(workdir, resumed_dir)
  shutil.rmtree(resumed_dir / "checkpoints" / "3")
  resumed = train.train_and_evaluate(config, str(resumed_dir))
  assert int(resumed.step) == 3
  assert_states_equal(straight, resumed)   # params, Adam states, pools, rng


def test_translation_config_errors(products_root):
  bad = tiny(pix2pix_products, products_root, **{"data.view": "photo", "translation.unet_depth": 5,
                                                  "translation.norm": "batch"})
  with pytest.raises(runs.ConfigError) as error:
    train.check_config(bad)
  for message in ("data.view=pair", "divisible by 2^translation.unet_depth = 32", "unet_depth=4",
                  "Unknown translation.norm 'batch'"):
    assert message in str(error.value)
  with pytest.raises(runs.ConfigError, match="Unknown task 'pix2vid'"):
    train.check_config(default.apply_overrides(default.get_config(), {"task": "pix2vid"}))


# --------------------------------------------------------------------------- evaluation and inference


def test_pix2pix_evaluation_without_classifier_reports_psnr_ssim_and_baselines(trained, caplog):
  workdir, config, state = trained("pix2pix")
  with caplog.at_level("WARNING"):
    record = evaluate.evaluate_translation_run(str(workdir))
  assert "FID / KID are skipped" in caplog.text and "configs/classifier_products.py" in caplog.text
  val = translation.load_pairs(config.data, "val")
  inputs, targets = translation.to_float(val.pairs), translation.to_float(val.images)
  outputs = translation.apply_generator(translation.build(config)[0], state.g_params, inputs)
  # PSNR = 10 log10(range^2 / MSE) per image, then the mean; range 2 for [-1, 1] images.
  mse = ((np.asarray(outputs, np.float64) - targets) ** 2).mean(axis=(1, 2, 3))
  np.testing.assert_allclose(record["model"]["psnr"], np.mean(10 * np.log10(4 / mse)), rtol=1e-4)
  edge_mse = ((inputs.astype(np.float64) - targets) ** 2).mean(axis=(1, 2, 3))
  np.testing.assert_allclose(record["baselines"]["edge_map"]["psnr"], np.mean(10 * np.log10(4 / edge_mse)),
                             rtol=1e-4)
  np.testing.assert_allclose(record["model"]["ssim"],
                             np.mean(image_metrics.ssim(outputs, targets, data_range=2.0)), rtol=1e-5)
  assert set(record["baselines"]) == {"edge_map", "mean_train_photo"} and record["real_data_floor"] == {}
  assert json.load(open(workdir / "metrics.json"))["model"] == record["model"]
  from gan import weights
  from gan.metrics import lpips
  if weights.is_present("lpips_alex") and outputs.shape[1] >= lpips.MIN_SIZE["alex"]:   # CI fetches them
    np.testing.assert_allclose(record["model"]["lpips_alex"],
                               np.mean(lpips.distance(lpips.load("alex"), outputs, targets)), rtol=1e-5)
  else:
    assert "lpips_alex" not in record["model"]
  table = evaluate.format_table(record)
  assert "| psnr |" in table and "baseline: edge_map" in table


def toy_network(cache_dir: str) -> evaluation.FeatureNetwork:
  """Features = mean colour and its spread per channel; logits: blue minus red (shoe / bag)."""
  def extract(variables, images):
    del variables
    features = jnp.concatenate([images.mean((1, 2)), images.std((1, 2))], axis=-1)
    return jnp.stack([features[:, 0] - features[:, 2], features[:, 2] - features[:, 0]], -1), features
  return evaluation.FeatureNetwork("toy", extract, None, ("shoe", "handbag"), cache_dir, 4, "toy features")


def test_cyclegan_evaluation_fid_per_direction_with_floor(trained, tmp_path, monkeypatch):
  workdir, config, state = trained("cyclegan")
  with pytest.raises(FileNotFoundError, match="python -m gan.main --config configs/classifier_products.py"):
    evaluate.evaluate_translation_run(str(workdir), str(tmp_path / "no_classifier"))
  net = toy_network(str(tmp_path / "cache"))
  monkeypatch.setattr(translation, "domain_classifier_or_none", lambda classifier_dir, who: net)
  record = evaluate.evaluate_translation_run(str(workdir))
  # Reference computation: FID of G_AB(val shoes) against the training handbags' toy features.
  generator = translation.build(config)[0]
  val_a, _ = translation.load_domains(config.data, "val", 0, 1)
  train_a, train_b = translation.load_domains(config.data, "train", 0, 1)
  fake_b = translation.apply_generator(generator, state.g_params["a2b"], translation.to_float(val_a.images))
  feats = lambda x: np.asarray(net.extract(None, jnp.asarray(x, jnp.float32))[1], np.float64)
  real_b = feats(translation.to_float(train_b.images))
  from gan.metrics import fid
  want = fid.frechet_distance(real_b.mean(0), np.cov(real_b, rowvar=False), feats(fake_b).mean(0),
                              np.cov(feats(fake_b), rowvar=False))
  np.testing.assert_allclose(record["model"]["fid_a2b"], want, rtol=1e-4)
  for part in (record["model"], record["real_data_floor"], record["baselines"]["input_unchanged"]):
    assert set(part) == {"fid_a2b", "kid_a2b", "fid_b2a", "kid_b2a", "fid"}
  # Untranslated shoes are far from handbags (red vs blue); real held-out handbags are close.
  assert record["baselines"]["input_unchanged"]["fid_a2b"] > 10 * record["real_data_floor"]["fid_a2b"]


def test_cyclegan_evaluation_in_another_feature_space(trained, tmp_path, monkeypatch):
  """--features inception: the translation evaluation takes the named network (here a toy stand-in
  for InceptionV3, whose real weights the inception tests cover) and records its protocol."""
  workdir, _, _ = trained("cyclegan")
  net = toy_network(str(tmp_path / "cache"))._replace(protocol={"resizer": "nvidia"})
  monkeypatch.setattr(evaluation, "inception_network", lambda weights_dir, resizer: net)
  record = evaluate.evaluate_translation_run(str(workdir), str(tmp_path / "no_classifier"), features="inception")
  assert record["computed_with"]["protocol"] == {"resizer": "nvidia"}
  assert np.isfinite(record["model"]["fid_a2b"]) and np.isfinite(record["real_data_floor"]["fid_b2a"])


def test_load_and_translate(trained, products_root):
  workdir, config, state = trained("cyclegan")
  model = translation.load(str(workdir))
  assert model.task == "cyclegan" and model.step == 3 and model.domains["a2b"] == ("shoe", "handbag")
  val_a, _ = translation.load_domains(config.data, "val", 0, 1)
  out = translation.translate(model, val_a.images, "b2a")           # uint8 in
  same = translation.translate(model, translation.to_float(val_a.images), "b2a", batch_size=2)
  want = translation.apply_generator(translation.build(config)[0], state.g_params["b2a"],
                                     translation.to_float(val_a.images))
  np.testing.assert_allclose(out, want, atol=1e-5)
  np.testing.assert_allclose(same, want, atol=1e-5)
  with pytest.raises(translation.TranslationError, match=r"a2b \(shoe -> handbag\)"):
    translation.translate(model, val_a.images, "edges2photo")
  with pytest.raises(translation.TranslationError, match=r"\(N, 16, 16, 3\)"):
    translation.translate(model, np.zeros((1, 32, 32, 3), np.uint8))
  with pytest.raises(translation.TranslationError, match=r"\[-1, 1\]"):
    translation.translate(model, np.full((1, 16, 16, 3), 3.0, np.float32))
  with pytest.raises(translation.TranslationError, match="not a training workdir"):
    translation.load(products_root)


def run_stylize(argv) -> int:
  """`python -m gan.stylize ARGV` in-process: the exit code."""
  return cli.call(stylize.define_flags, stylize.main, argv)


def test_stylize_cli_translates_with_alpha_mask_and_errors(trained, tmp_path, capsys):
  workdir, _, _ = trained("cyclegan")
  photo, _ = _product(np.random.default_rng(3), bag=False, side=32)
  content = tmp_path / "shoe.png"
  Image.fromarray(photo).save(content)
  model = translation.load(str(workdir))
  from gan.style import controls
  loaded = controls.load_image(content, 16)
  base = ["--method", "cyclegan", "--workdir", str(workdir), "--content", str(content)]
  assert run_stylize(base + ["--out", str(tmp_path / "bag.png")]) == 0
  out = np.asarray(Image.open(tmp_path / "bag.png"))
  want = np.clip(np.rint((translation.translate(model, loaded, "a2b")[0] + 1) * 127.5), 0, 255)
  np.testing.assert_array_equal(out, want)
  # alpha 0 gives the content back; a background mask keeps the product pixels of the content.
  assert run_stylize(base + ["--alpha", "0", "--out", str(tmp_path / "same.png")]) == 0
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "same.png")),
                                np.rint((loaded + 1) * 127.5).astype(np.uint8))
  assert run_stylize(base + ["--mask", "background", "--direction", "b2a", "--size", "24",
                             "--out", str(tmp_path / "masked.png")]) == 0
  masked = np.asarray(Image.open(tmp_path / "masked.png"))
  product = controls.product_mask(controls.load_image(content, 24)) == 1.0
  assert masked.shape == (24, 24, 3) and product.any()
  np.testing.assert_array_equal(masked[product], np.rint((controls.load_image(content, 24)[product] + 1) * 127.5))
  rec = provenance.read_image_record(tmp_path / "masked.png")   # what was done, inside the PNG
  assert (rec["kind"], rec["run"], rec["step"], rec["extra"]) == ("stylized", str(workdir), 3, {"source": "shoe.png"})
  assert rec["operations"] == ["cyclegan translation b2a (handbag -> shoe)", "strength (alpha) 1",
                               "restyle the background only", "size 24"]
  capsys.readouterr()
  errors = {
      "needs --workdir": ["--method", "cyclegan", "--content", str(content)],
      "is a cyclegan run: use --method cyclegan": ["--method", "pix2pix", *base[2:]],
      "Unknown --direction 'x'": base + ["--direction", "x"],
      "takes no --style": base + ["--style", str(content)],
      "not a training workdir": ["--method", "cyclegan", "--workdir", str(tmp_path), "--content", str(content)],
  }
  for message, argv in errors.items():
    assert run_stylize(argv + ["--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, (message, err)
  pix2pix_dir, _, _ = trained("pix2pix")
  assert run_stylize(["--method", "pix2pix", "--workdir", str(pix2pix_dir), "--content", str(content),
                      "--preserve-color", "luminance", "--out", str(tmp_path / "x.png")]) == 1
  assert "no colours to keep" in capsys.readouterr().err
  assert not (tmp_path / "x.png").exists()
