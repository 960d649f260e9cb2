"""The GAN-inversion encoder (gan/editing/inversion.py `Encoder`) of a trained StyleGAN run.

config.task = "inversion_encoder" (configs/inversion_encoder_products.py). The generator is the EMA
generator of the latest checkpoint of config.encoder.generator_workdir (gan.tasks.generation.load),
fixed; the state is an `inversion.EncoderState` (encoder parameters, Adam state, the mean and
spread of w measured at the start); the step is `inversion.make_encoder_step`.

  python -m gan.main --config configs/inversion_encoder_products.py --workdir runs/stylegan_products/encoder
  trained, meta = inversion.load_encoder("runs/stylegan_products/encoder")      # in a notebook
  ws = inversion.encode(trained, photos)                                        # (N, num_ws, w_dim)

Batches: {"image": (B / P, S, S, C) float32 in [-1, 1]}, real training photos of config.data (the
generator's) from gan/input_pipeline.py; the drawn latents and noise come from fold_in(key, step)
inside the step. Both are pure functions of (data, seed, step): a resumed run continues exactly.

Sample grids: photo | reconstruction (the encoded W+ rendered without noise) of sample.grid_rows
held-out photos; evaluation: "psnr" / "ssim" of the eval.num_images held-out reconstructions, the
best checkpoint by "neg_psnr" (= -psnr).
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from gan import data
from gan import input_pipeline
from gan import runs
from gan.editing import edits
from gan.editing import inversion
from gan.metrics import image as image_metrics
from gan.tasks import auxiliary
from gan.tasks import common
from gan.tasks import generation
from gan.tasks import in_memory

TRAIN_COMMAND = inversion.ENCODER_TRAIN_COMMAND
PERCEPTUAL = inversion.PERCEPTUAL_TERMS
EVAL_CHUNK = 64        # held-out photos per jitted encode + render

abstract_state = inversion.encoder_abstract_state
shape_signature = inversion.encoder_shape_signature


def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with the config.encoder keys (and the optimizer / eval keys they read)."""
  e, problems = config.encoder, []
  if not e.generator_workdir:
    problems.append("encoder.generator_workdir is empty: set it to the StyleGAN run to invert, e.g. "
                    "--config.encoder.generator_workdir=runs/stylegan_products.")
  for key in ("width", "hidden", "stats_samples"):
    if not isinstance(e[key], int) or e[key] < 1:
      problems.append(f"encoder.{key} must be an int >= 1, got {e[key]!r}.")
  for key in ("latent_weight", "pixel_weight", "perceptual_weight", "real_weight"):
    if not e[key] >= 0:
      problems.append(f"encoder.{key} must be >= 0 (0 = off), got {e[key]}.")
  if not 0.0 <= e.mixing_prob <= 1.0:
    problems.append(f"encoder.mixing_prob must be in [0, 1], got {e.mixing_prob}.")
  if e.perceptual not in PERCEPTUAL:
    problems.append(f"Unknown encoder.perceptual {e.perceptual!r}; valid: {', '.join(PERCEPTUAL)}.")
  if not config.optimizer.lr > 0:
    problems.append(f"optimizer.lr must be > 0, got {config.optimizer.lr}.")
  if not isinstance(config.eval.num_images, int) or config.eval.num_images < 1:
    problems.append(f"eval.num_images must be an int >= 1 (held-out photos), got {config.eval.num_images!r}.")
  return problems


def make_task(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, generator: nn.Module, variables: Any,
              real_images: np.ndarray, held_out: np.ndarray, perceptual: Optional[inversion.Perceptual] = None,
              class_names: tuple[str, ...] = ("photo",)) -> common.Task:
  """The task of training an encoder for `generator` with `variables` ({"params", "batch_stats"}) on
  real photos `real_images` (N, S, S, C) uint8; grids of, and evaluation on, `held_out` (M, S, S, C)
  float32 in [-1, 1]. config.encoder.num_ws / w_dim must be the generator's."""
  stats = inversion.w_statistics(generator, variables, inversion.encoder_keys(config)[0], config.encoder.stats_samples)
  state, train_step = common.replicated_state_and_step(
      mesh, lambda: inversion.init_encoder_state(config, stats),
      inversion.make_encoder_step(config, generator, variables, perceptual))
  encoder = inversion.make_encoder(config)

  @jax.jit
  def reconstruct(params, w_mean, images):
    ws = encoder.apply({"params": params}, images) + w_mean
    return inversion.render(generator, variables, ws, "w+")

  def reconstructions(state: inversion.EncoderState, images: np.ndarray) -> np.ndarray:
    return auxiliary.apply_in_chunks(lambda x: reconstruct(state.params, state.w_mean, x), (images,), EVAL_CHUNK)

  pick = np.linspace(0, len(held_out) - 1, min(config.sample.grid_rows, len(held_out))).round().astype(int)

  def sample_grid(state: inversion.EncoderState) -> np.ndarray:
    return auxiliary.rows_grid([held_out[pick], reconstructions(state, held_out[pick])])

  def evaluate(state: inversion.EncoderState) -> dict[str, float]:
    images = reconstructions(state, held_out)
    psnr = float(np.mean(image_metrics.psnr(images, held_out, data_range=2.0)))
    return {"psnr": psnr, "ssim": float(np.mean(image_metrics.ssim(images, held_out, data_range=2.0))),
            "neg_psnr": -psnr}

  dataset = data.Dataset(real_images, np.zeros(len(real_images), np.int32), class_names)

  def batches(start_step: int) -> Iterator[dict[str, np.ndarray]]:
    return ({"image": batch["image"]} for batch in input_pipeline.batches(
        dataset, global_batch_size=config.train.batch_size, seed=config.seed,
        random_flip=config.data.random_flip, start_step=start_step, process_index=jax.process_index(),
        process_count=jax.process_count()))

  return common.Task(state, train_step, batches, sample_grid, evaluate if config.eval.every else None,
                     shape_signature(config), class_names, 1, description="inversion encoder",
                     best_metric="neg_psnr")


def _generator_of(config: ml_collections.ConfigDict, workdir: str):
  """(generator, variables, checkpoint step) of encoder.generator_workdir, checked against the
  config's data and against the generator step this encoder run started with."""
  where = config.encoder.generator_workdir
  _, generator, state, meta = generation.load(where)
  if not inversion.is_stylegan(generator) or getattr(generator, "cond_dim", 0):
    raise runs.ConfigError(f"encoder.generator_workdir={where!r} holds a {type(generator).__module__} "
                           "generator: the encoder inverts into W+ of a StyleGAN without vector conditions "
                           "(configs/stylegan_products.py).")
  if (config.data.image_size, config.data.channels) != (generator.image_size, generator.channels):
    raise runs.ConfigError(f"The generator in {where} makes {generator.image_size}x{generator.image_size}x"
                           f"{generator.channels} images: set --config.data.image_size={generator.image_size} "
                           f"--config.data.channels={generator.channels} (its own data config).")
  step = int(meta["step"])
  started_with = auxiliary.recorded(config, workdir, "encoder.generator_step", unset=0)
  if started_with and started_with != step:
    raise runs.ConfigError(f"The encoder in {workdir} was trained against step {started_with} of {where}, "
                           f"whose latest checkpoint is now step {step}: train the encoder of this "
                           f"generator in a new --workdir (or move {workdir} away).")
  return generator, {"params": state.ema_g_params, "batch_stats": state.g_batch_stats}, step


def setup(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, workdir: str, is_main: bool
          ) -> common.Task:
  """The generator run, its w statistics, the real photos and the perceptual network; the
  generator's num_ws / w_dim / step and the perceptual choice are written into the config (saved
  as config.json by the loop, gan/tasks/auxiliary.py `recorded`)."""
  del is_main
  generator, variables, step = _generator_of(config, workdir)
  config.encoder.num_ws, config.encoder.w_dim, config.encoder.generator_step = generator.num_ws, generator.w_dim, step
  perceptual = None
  choice = auxiliary.recorded(config, workdir, "encoder.perceptual")
  if not config.encoder.perceptual_weight:
    choice = "none"
  try:
    choice = inversion.resolve_perceptual(choice, config.encoder.classifier_dir)
  except ValueError as e:
    raise runs.ConfigError(f"encoder.perceptual: {e}") from None
  config.encoder.perceptual = choice
  if choice == "classifier":
    perceptual = edits.DomainClassifier.load(config.encoder.classifier_dir).perceptual()
  elif choice == "lpips_vgg":
    perceptual = inversion.lpips_perceptual("vgg")
  real = data.load_dataset(config.data)
  held_out, _, _ = data.held_out_sample(
      config.data, config.eval.num_images if config.eval.every else config.sample.grid_rows)
  return make_task(config, mesh, generator, variables, real.images, held_out, perceptual, tuple(real.class_names))


def fit(config: ml_collections.ConfigDict, generator: nn.Module, variables: Any, real_images: np.ndarray,
        writer: Optional[Any] = None) -> inversion.TrainedEncoder:
  """An encoder of `generator` trained on `real_images` (N, S, S, C) uint8 for config.train.steps in
  memory (no workdir, no evaluation); the mean training metrics of every train.log_every steps go to
  `writer` (CLU) when given."""
  config = config.copy_and_resolve_references()
  config.eval.every = 0
  config.encoder.num_ws, config.encoder.w_dim = generator.num_ws, generator.w_dim
  mesh = runs.make_mesh()
  held_out = np.asarray(real_images[:1], np.float32) / 127.5 - 1.0   # the (unused) sample grid's photo
  state = in_memory.train(make_task(config, mesh, generator, variables, real_images, held_out), mesh,
                          config.train.steps, log_every=config.train.log_every, writer=writer)
  return inversion.TrainedEncoder(inversion.make_encoder(config), jax.device_get(state.params),
                                  jax.device_get(state.w_mean))
