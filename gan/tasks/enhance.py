"""Enhancement: super-resolution, denoising or inpainting of photos (config.task = "enhance").

  python -m gan.main --config configs/enhance_products.py:superres_x2 --workdir runs/enhance/superres_x2
  python -m gan.edit --op superres --workdir runs/enhance/superres_x2 --image small.png --out big.png

  from gan.editing import enhance_train, superres                     # in a notebook
  model = enhance_train.load("runs/enhance/superres_x2")
  big = superres.super_resolve(model, small)                          # (N, 2h, 2w, 3) in [-1, 1]

config.enhance.kind picks the degradation and the network's fixed part (gan/editing/superres.py,
denoise.py, inpaint.py); networks, state and step are gan/editing/enhance_train.py's. The state is a
`TrainState` (generator, discriminator and their Adam states).

Batches: {"clean": (B / P, c, c, 3) float32 in [-1, 1]} and, for JPEG denoising, "aux": the same
crops of the photos JPEG-compressed once on the host. The photos of step s are gan/input_pipeline.py's
(epochs in a seeded order, random flips); the crop windows (offsets multiples of CROP_ALIGN, c =
train.crop, 0 = whole photos) are drawn from (seed, step): a pure function of (data, seed, step),
so a resumed run continues exactly. The degradation itself is drawn inside the step.

Sample grids: degraded | restored | original for sample.grid_rows held-out photos (low-resolution
inputs enlarged with nearest neighbours). Evaluation: "psnr" (dB) and "ssim" (and "lpips_alex" when
its weights are fetched) of the restored eval.num_images held-out photos, degraded once with
eval.seed; the best checkpoint is the one with the lowest "neg_psnr" (= -psnr).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan import data
from gan import input_pipeline
from gan import runs
from gan.editing import enhance_train
from gan.tasks import auxiliary
from gan.tasks import common
from gan.tasks import in_memory

TRAIN_COMMAND = enhance_train.train_command("{workdir}")
CROP_STREAM = 2                # step_rng stream of the crop windows
EVAL_CHUNK = 50                # held-out photos per jitted restore

config_problems = enhance_train.config_problems
abstract_state = enhance_train.abstract_state
shape_signature = enhance_train.shape_signature


def batches(images: np.ndarray, aux: Optional[np.ndarray], *, global_batch_size: int, seed: int,
            random_flip: bool, crop: int, start_step: int = 0, process_index: int = 0,
            process_count: int = 1) -> Iterator[dict[str, np.ndarray]]:
  """Endless host batches for steps start_step, start_step + 1, ... (see the module docstring).

  images, aux: (N, S, S, 3) uint8, aux the photos' host-side degradation (or None). The photo and
  its degradation go through the input pipeline as one 6-channel image, so both get the same flip
  and the same crop window.
  """
  joined = images if aux is None else np.concatenate([images, aux], axis=-1)
  dataset = data.Dataset(joined, np.zeros(len(joined), np.int32), ("photo",))
  size = images.shape[1]
  crop = crop or size
  positions = (size - crop) // enhance_train.CROP_ALIGN + 1
  rows = auxiliary.process_rows(global_batch_size, process_index, process_count)
  stream = input_pipeline.batches(dataset, global_batch_size=global_batch_size, seed=seed,
                                  random_flip=random_flip, start_step=start_step,
                                  process_index=process_index, process_count=process_count)
  for step, batch in enumerate(stream, start=start_step):
    # Drawn for the whole global batch, so every process agrees on every row.
    offsets = auxiliary.step_rng(seed, CROP_STREAM, step).integers(0, positions, (global_batch_size, 2))
    offsets = offsets[rows] * enhance_train.CROP_ALIGN
    window_rows = offsets[:, :1, None] + np.arange(crop)[None, :, None]     # (B, crop, 1)
    window_cols = offsets[:, 1:, None] + np.arange(crop)[None, None, :]     # (B, 1, crop)
    windows = batch["image"][np.arange(len(offsets))[:, None, None], window_rows, window_cols]
    out = {"clean": windows[..., :3]}
    if aux is not None:
      out["aux"] = windows[..., 3:]
    yield out


def degraded_examples(config: ml_collections.ConfigDict, task: enhance_train.Task, clean: np.ndarray
                      ) -> enhance_train.Inputs:
  """The inputs of photos `clean` (N, S, S, 3) float32 in [-1, 1] (from uint8), degraded once with
  the key of eval.seed (JPEG on the host), as numpy arrays."""
  aux = task.host_aux(np.rint((clean + 1.0) * 127.5).astype(np.uint8))   # exact: they were uint8
  aux = None if aux is None else enhance_train.to_float(aux)
  return jax.device_get(jax.jit(task.degrade)(jax.random.PRNGKey(config.eval.seed), jnp.asarray(clean), aux))


def make_restorer(task: enhance_train.Task, inputs: enhance_train.Inputs) -> Callable[[Any], np.ndarray]:
  """fn(generator params) -> the restored `inputs` (N, S, S, 3) float32, in jitted chunks."""
  names = sorted(inputs)
  restore = jax.jit(lambda params, *arrays: task.restore(params, dict(zip(names, arrays))))
  return lambda params: auxiliary.apply_in_chunks(
      lambda *arrays: restore(params, *arrays), tuple(inputs[k] for k in names), EVAL_CHUNK)


def make_task(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, images: np.ndarray,
              held_out: np.ndarray, perceptual: Optional[enhance_train.Perceptual] = None,
              class_names: tuple[str, ...] = ("photo",)) -> common.Task:
  """The task of training on `images` (N, S, S, 3) uint8: grids of held-out photos `held_out`
  (M, S, S, 3) float32 in [-1, 1] (from uint8), evaluated on all of them when config.eval.every."""
  task = enhance_train.get_task(config)
  aux = task.host_aux(images)
  init_key = enhance_train.keys(config)[0]
  state, train_step = common.replicated_state_and_step(
      mesh, lambda: enhance_train.init_state(task, config, init_key),
      enhance_train.make_train_step(task, config, perceptual))

  inputs = degraded_examples(config, task, held_out)
  pick = np.linspace(0, len(held_out) - 1, min(config.sample.grid_rows, len(held_out))).round().astype(int)
  grid_inputs = {k: v[pick] for k, v in inputs.items()}
  degraded = np.asarray(task.model_input(grid_inputs))[..., :3]   # inpainting: the masked photo
  restore_grid = make_restorer(task, grid_inputs)

  def sample_grid(state) -> np.ndarray:
    return auxiliary.rows_grid([degraded, restore_grid(state.g_params), held_out[pick]], held_out.shape[1])

  restore_all = make_restorer(task, inputs)

  def evaluate(state) -> dict[str, float]:
    results = enhance_train.evaluate(restore_all(state.g_params), held_out)
    return {**results, "neg_psnr": -results["psnr"]}

  def host_batches(start_step: int) -> Iterator[dict[str, np.ndarray]]:
    return batches(images, aux, global_batch_size=config.train.batch_size, seed=config.seed,
                   random_flip=config.data.random_flip, crop=config.train.crop, start_step=start_step,
                   process_index=jax.process_index(), process_count=jax.process_count())

  return common.Task(state, train_step, host_batches, sample_grid, evaluate if config.eval.every else None,
                     shape_signature(config), class_names, 1,
                     description=f"enhance {config.enhance.variant}", best_metric="neg_psnr")


def setup(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, workdir: str, is_main: bool
          ) -> common.Task:
  """The training photos, eval.num_images held-out photos (sample.grid_rows without evaluation)
  and the perceptual network; loss.perceptual "auto" is resolved here once per run (saved in its
  config.json: gan/tasks/auxiliary.py `recorded`)."""
  del is_main
  perceptual = None
  if config.loss.perceptual_weight > 0:
    choice = enhance_train.resolve_perceptual(auxiliary.recorded(config, workdir, "loss.perceptual"),
                                              config.loss.classifier_dir)
    config.loss.perceptual = choice
    perceptual = enhance_train.make_perceptual(choice, config.loss.classifier_dir)
  dataset = data.load_dataset(config.data)
  held_out, _, _ = data.held_out_sample(
      config.data, config.eval.num_images if config.eval.every else config.sample.grid_rows)
  return make_task(config, mesh, dataset.images, held_out, perceptual, tuple(dataset.class_names))


def fit(config: ml_collections.ConfigDict, images: np.ndarray,
        perceptual: Optional[enhance_train.Perceptual] = None) -> enhance_train.Enhancer:
  """A model trained on `images` (N, S, S, 3) uint8 for config.train.steps in memory (no workdir,
  no evaluation), with the task's own state, step and batches."""
  config = config.copy_and_resolve_references()
  config.eval.every = 0
  mesh = runs.make_mesh()
  held_out = enhance_train.to_float(images[:1])   # the (unused) sample grid's input
  state = in_memory.train(make_task(config, mesh, images, np.asarray(held_out), perceptual), mesh,
                          config.train.steps)
  return enhance_train.Enhancer(config, enhance_train.get_task(config), jax.device_get(state.g_params),
                                {"step": int(state.step)})
