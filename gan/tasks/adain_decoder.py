"""The AdaIN decoder (gan/style/adain.py) for a fixed encoder, on photos x style paintings.

config.task = "adain_decoder" (configs/adain_products.py). The state is an `adain.AdainState`
(decoder parameters, Adam state, the extractor's fingerprint); the step is one update of the
content + style_weight * style loss.

  python -m gan.main --config configs/adain_products.py --workdir runs/adain_products
  model = adain.load("runs/adain_products")                             # in a notebook
  model.stylize(photo, [painting], alpha=0.8)

Batches: {"content": (B / P, S, S, 3), "style": (B / P, S, S, 3)} float32 in [-1, 1]: the photos of
step s from gan/input_pipeline.py (epochs in a seeded order) and one random S x S crop of a random
painting per photo, drawn from (seed, step) on the host (`adain.random_crops`): a pure function of
(data, seed, step), so a resumed run continues exactly.

Sample grids: photo | style crop | stylized for sample.grid_rows held-out photos, each with a fixed
crop. Evaluation: {"content", "style", "total"}, the training losses on eval.num_images held-out
photos paired with fixed crops (eval.seed); the best checkpoint has the lowest "total".

adain.extractor "auto" is resolved at the run's first start and written into its config.json
(gan/tasks/auxiliary.py `recorded`), so `adain.load` and every restart use the same encoder.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator

import jax
import ml_collections
import numpy as np

from gan import cli
from gan import data
from gan import input_pipeline
from gan import runs
from gan.losses import style as style_losses
from gan.style import adain
from gan.style.features import FeatureExtractor
from gan.tasks import auxiliary
from gan.tasks import common
from gan.tasks import in_memory

TRAIN_COMMAND = adain.TRAIN_COMMAND
STYLE_STREAM = 2     # auxiliary.step_rng stream of the training crops
HELD_OUT_STREAM = 3  # ... and of the fixed crops of the held-out pairs

shape_signature = adain.shape_signature


def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with the config.adain keys (and the optimizer / data / eval keys they read)."""
  a, problems = config.adain, []
  if a.extractor not in adain.EXTRACTORS and not adain.is_extractor_name(a.extractor):
    problems.append(f"Unknown adain.extractor {a.extractor!r}; valid: {', '.join(adain.EXTRACTORS)} or a "
                    "saved extractor name such as 'random(seed=0,scales=3,features=128,kernel=7)'.")
  if not a.style_scale >= 1:
    problems.append(f"adain.style_scale must be >= 1 (crops are data.image_size), got {a.style_scale}.")
  if not a.style_weight >= 0:
    problems.append(f"adain.style_weight must be >= 0, got {a.style_weight}.")
  for key in ("width", "convs_per_level"):
    if not isinstance(a.decoder[key], int) or a.decoder[key] < 1:
      problems.append(f"adain.decoder.{key} must be an int >= 1, got {a.decoder[key]!r}.")
  if a.decoder.padding not in adain.PADDINGS:
    problems.append(f"Unknown adain.decoder.padding {a.decoder.padding!r}; valid: {', '.join(adain.PADDINGS)}.")
  if a.decoder.output not in adain.OUTPUTS:
    problems.append(f"Unknown adain.decoder.output {a.decoder.output!r}; valid: {', '.join(adain.OUTPUTS)}.")
  if not config.optimizer.lr > 0:
    problems.append(f"optimizer.lr must be > 0, got {config.optimizer.lr}.")
  if config.data.channels != 3:
    problems.append(f"data.channels must be 3 (colour photos), got {config.data.channels}.")
  if not isinstance(config.eval.num_images, int) or config.eval.num_images < 1:
    problems.append(f"eval.num_images must be an int >= 1 (held-out photos), got {config.eval.num_images!r}.")
  return problems


def abstract_state(config: ml_collections.ConfigDict) -> adain.AdainState:
  """The state's shapes for the extractor the config names (a run's config names a concrete one)."""
  return adain.abstract_state(config, adain.make_extractor(config.adain.extractor, config.adain.vgg_weights or None))


def batches(photos: data.Dataset, paintings: list[np.ndarray], *, global_batch_size: int, seed: int,
            random_flip: bool, start_step: int = 0, process_index: int = 0, process_count: int = 1
            ) -> Iterator[dict[str, np.ndarray]]:
  """Endless host batches for steps start_step, start_step + 1, ... (see the module docstring);
  paintings: (H_k, W_k, 3) uint8, each at least S x S."""
  size = photos.images.shape[1]
  rows = auxiliary.process_rows(global_batch_size, process_index, process_count)
  stream = input_pipeline.batches(photos, global_batch_size=global_batch_size, seed=seed, random_flip=random_flip,
                                  start_step=start_step, process_index=process_index, process_count=process_count)
  for step, batch in enumerate(stream, start=start_step):
    # Drawn for the whole global batch, so every process agrees on every row.
    crops = adain.random_crops(paintings, auxiliary.step_rng(seed, STYLE_STREAM, step), global_batch_size, size)
    yield {"content": batch["image"], "style": np.asarray(adain.to_float(crops[rows]))}


def make_task(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, extractor: FeatureExtractor,
              photos: np.ndarray, paintings: list[np.ndarray], held_out: np.ndarray,
              class_names: tuple[str, ...] = ("photo",)) -> common.Task:
  """The task of training a decoder for `extractor` on `photos` (N, S, S, 3) uint8 (S =
  data.image_size) x `paintings` (any sizes, uint8): grids of, and evaluation on, `held_out`
  (M, S, S, 3) float32 in [-1, 1] with fixed crops."""
  size = config.data.image_size
  model = adain.init_model(extractor, **adain.model_options(config))
  if size % model.downsampling:
    raise runs.ConfigError(f"data.image_size {size} must be a multiple of {model.downsampling}, the "
                           f"downsampling of layer {model.encoder_layer!r} of {extractor.name}.")
  if photos.ndim != 4 or photos.shape[1:] != (size, size, 3) or photos.dtype != np.uint8:
    raise ValueError(f"photos must be (N, {size}, {size}, 3) uint8, got {photos.shape} {photos.dtype}.")
  side = math.ceil(config.adain.style_scale * size)
  paintings = [adain.resize_shorter_side(p, side) for p in adain.check_uint8_images(paintings, "paintings")]
  tx = adain.make_optimizer(config)
  state, train_step = common.replicated_state_and_step(
      mesh, lambda: adain.init_state(model, tx), adain.make_train_step(model, tx, config.adain.style_weight))

  held_out_styles = np.asarray(adain.to_float(adain.random_crops(
      paintings, auxiliary.step_rng(config.eval.seed, HELD_OUT_STREAM, 0), len(held_out), size)))
  pick = np.linspace(0, len(held_out) - 1, min(config.sample.grid_rows, len(held_out))).round().astype(int)
  # The encoder is fixed: the grid's AdaIN targets are computed once.
  targets = style_losses.adain(model.encode(held_out[pick]), model.encode(held_out_styles[pick]))
  decode = jax.jit(lambda params, t: model.decoder_module.apply({"params": params}, t))

  def sample_grid(state: adain.AdainState) -> np.ndarray:
    return auxiliary.rows_grid([held_out[pick], held_out_styles[pick], decode(state.params, targets)])

  evaluator = adain.make_evaluator(model, held_out, held_out_styles, config.adain.style_weight)
  dataset = data.Dataset(photos, np.zeros(len(photos), np.int32), class_names)

  def host_batches(start_step: int) -> Iterator[dict[str, np.ndarray]]:
    return batches(dataset, paintings, global_batch_size=config.train.batch_size, seed=config.seed,
                   random_flip=config.data.random_flip, start_step=start_step,
                   process_index=jax.process_index(), process_count=jax.process_count())

  return common.Task(state, train_step, host_batches, sample_grid,
                     (lambda state: evaluator(state.params)) if config.eval.every else None,
                     shape_signature(config), class_names, 1, description=f"AdaIN decoder ({extractor.name})",
                     best_metric="total")


def setup(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, workdir: str, is_main: bool
          ) -> common.Task:
  """The extractor (adain.extractor resolved once per run, written into the config), the photos,
  the paintings of adain.styles_dir and the held-out photos."""
  del is_main
  name = auxiliary.recorded(config, workdir, "adain.extractor")
  try:
    extractor = adain.make_extractor(name, config.adain.vgg_weights or None)
  except (ValueError, FileNotFoundError) as e:   # missing or other weights (gan.weights / gan.style.vgg)
    raise runs.ConfigError(f"adain.extractor={name!r}: {cli.one_line(e)}") from None
  config.adain.extractor = extractor.name   # saved in config.json by the loop
  photos = data.load_dataset(config.data)
  try:
    paintings = adain.load_paintings(config.adain.styles_dir)
  except FileNotFoundError as e:
    raise data.DataError(f"{e} Set --config.adain.styles_dir to a folder of style images.") from None
  held_out, _, _ = data.held_out_sample(
      config.data, config.eval.num_images if config.eval.every else config.sample.grid_rows)
  return make_task(config, mesh, extractor, photos.images, paintings, held_out, tuple(photos.class_names))


def fit(config: ml_collections.ConfigDict, extractor: FeatureExtractor, photos: np.ndarray,
        paintings: list[np.ndarray]) -> adain.AdainModel:
  """A decoder for `extractor` (any, e.g. a test's stand-in) trained on `photos` (N, S, S, 3) uint8 x
  `paintings` for config.train.steps in memory (no workdir, no evaluation), with the task's own
  state, step and batches."""
  mesh = runs.make_mesh()
  config = config.copy_and_resolve_references()
  config.eval.every = 0
  held_out = np.asarray(adain.to_float(photos[:1]))   # the (unused) sample grid's photo
  state = in_memory.train(make_task(config, mesh, extractor, photos, paintings, held_out), mesh,
                          config.train.steps)
  model = adain.init_model(extractor, **adain.model_options(config))
  return dataclasses.replace(model, params=jax.device_get(state.params),
                             info={"steps": int(state.step), "style_weight": config.adain.style_weight})

