"""Image-to-image enhancement models (super-resolution, denoising, inpainting): networks, training, files.

The three tasks share everything but their degradation and how the network output is put together,
so each task module (superres.py, denoise.py, inpaint.py) only builds a `Task`:

  degrade(key, clean, aux) -> inputs   pure and jittable: the synthetic degradation of a clean
                                       batch, e.g. {"lr": ...}, {"noisy": ...}, {"image", "mask"}.
  restore(params, inputs) -> output    the generator applied to the inputs plus the task's fixed
                                       part: bicubic upsampling, the noisy input, or compositing
                                       so that unmasked pixels stay exactly the input's.
  host_aux(images) -> aux or None      host-side degradations that cannot be jitted (JPEG with
                                       Pillow), precomputed once for the whole training set.

Images: (N, H, W, 3) float32 in [-1, 1] inside the models, uint8 for the data sets.

Generator (`ResidualGenerator`): EDSR/SRGAN-style residual blocks without batch norm (BN hurts
pixel-accurate restoration, Lim et al. 2017 "EDSR", and keeps the step free of mutable state),
optional stride-2 downsamplings with U-Net skips (receptive field for denoising and holes),
dilated convolutions in the blocks (inpainting, as Iizuka et al. 2017), and sub-pixel (pixel-
shuffle) x2 upsamplings for super-resolution (no transposed convolutions: their weight gradient
is slow on XLA:CPU, see gan/models/layers.py, and they cause checkerboard artefacts). The last
convolution starts at zero, so an untrained model returns the task's baseline exactly (bicubic
upsampling, the noisy input, the hole filled with grey) and training starts from it.

Loss of the generator (SRGAN, Ledig et al. 2017, with an L1 pixel term as in ESRGAN):
  pixel_weight * mean |out - clean|
  + perceptual_weight * perceptual(out, clean)
  + adversarial_weight * loss.generator(D(clean), D(out))
Perceptual term (`loss.perceptual`): "classifier" is gan.metrics.classifier.perceptual_distance
over the products' domain classifier (runs/classifier_products); "random" is the feature MSE
(gan.losses.style.content_loss) over the fixed random network of gan/style/random_features.py;
"auto" picks the classifier when its checkpoint exists. The name of the one used is saved with
the model. D is a small PatchGAN (`PatchDiscriminator`, one logit per 38x38 patch) trained with
the loss of gan/losses/adversarial.py named by `loss.adversarial`; adversarial_weight = 0 skips
D entirely (pure regression: higher PSNR, blurrier; see experiments/README.md).

Training (`train`): Adam with cosine decay, batches drawn on the host from the seed (random
crops of train.crop pixels, as SRGAN trains on crops: the networks are fully convolutional, and
32x32 crops cost a quarter of whole 64x64 photos; random flips),
one jitted step (G update, then D update on the same generator output), step keys from
jax.random.fold_in(seed key, step). Runs are minutes long and not resumable: running again
overwrites the workdir's model.

Files (`save` / `load`): workdir/enhance.json (the config, the perceptual network used, training
info and loss history) and workdir/enhance_params.npz (generator parameters "params/<path>"; no
pickle). Command line:

  python -m gan.editing.enhance_train --config configs/enhance_products.py:superres_x2 \
      --workdir runs/enhance/superres_x2
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import dataclasses
import functools
import importlib
import json
import os
from pathlib import Path
import sys
import time
from typing import Any, NamedTuple, Optional, Union

from absl import logging
import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gan.losses import adversarial
from gan.metrics import image as image_metrics
from gan.metrics import lpips

PathLike = Union[str, os.PathLike]

CONFIG_FILE = "enhance.json"
PARAMS_FILE = "enhance_params.npz"
FORMAT = "productgan-enhance-v1"
# Task name -> module with make_task(config); imported on demand (the modules import this one).
TASK_MODULES = {"superres": "gan.editing.superres", "denoise": "gan.editing.denoise",
                "inpaint": "gan.editing.inpaint"}
PERCEPTUAL = ("auto", "classifier", "random", "none")
DEFAULT_CLASSIFIER_DIR = os.path.join("runs", "classifier_products")
# Random-feature fallback: the layers of gan.style.random_features compared by the feature MSE.
RANDOM_FEATURE_LAYERS = ("scale1", "scale2", "content")


# --- Networks ---------------------------------------------------------------------------------


def pixel_shuffle(x: jax.Array, factor: int) -> jax.Array:
  """Depth to space: (N, H, W, C * f * f) -> (N, f * H, f * W, C) (Shi et al. 2016)."""
  n, h, w, c = x.shape
  channels = c // (factor * factor)
  x = x.reshape(n, h, w, factor, factor, channels)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * factor, w * factor, channels)


class ResBlock(nn.Module):
  """x + conv(relu(conv(x))), 3x3 convolutions with `dilation`, no normalisation."""
  features: int
  dilation: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = (self.dilation, self.dilation)
    h = nn.relu(nn.Conv(self.features, (3, 3), kernel_dilation=d)(x))
    return x + nn.Conv(self.features, (3, 3), kernel_dilation=d)(h)


class ResidualGenerator(nn.Module):
  """(N, H, W, Cin) -> (N, 2^up * H, 2^up * W, out_channels), a residual added by the task.

  Attributes:
    width: channels at the input resolution (doubled per downsampling, capped at max_width).
    num_blocks: residual blocks at the lowest resolution.
    down: stride-2 downsamplings before the blocks, undone (pixel shuffle + added skip) after;
      H and W must be multiples of 2^down.
    up: x2 sub-pixel upsamplings at the end (super-resolution).
    dilations: dilation of block b is dilations[b % len(dilations)].
    out_channels: output channels.
    max_width: channel cap.
  """
  width: int = 32
  num_blocks: int = 4
  down: int = 0
  up: int = 0
  dilations: Sequence[int] = (1,)
  out_channels: int = 3
  max_width: int = 128

  def _width(self, level: int) -> int:
    return min(self.width * 2 ** level, self.max_width)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    factor = 2 ** self.down
    if x.shape[1] % factor or x.shape[2] % factor:
      raise ValueError(f"This generator downsamples {self.down} times: image sides must be "
                       f"multiples of {factor}, got {x.shape[1]}x{x.shape[2]} (pad the image).")
    h = nn.relu(nn.Conv(self.width, (3, 3))(x))
    skips = []
    for level in range(1, self.down + 1):
      skips.append(h)
      h = nn.relu(nn.Conv(self._width(level), (3, 3), strides=2)(h))
    body = h
    for b in range(self.num_blocks):
      h = ResBlock(h.shape[-1], self.dilations[b % len(self.dilations)])(h)
    h = body + nn.Conv(h.shape[-1], (3, 3))(h)
    for level in reversed(range(self.down)):
      # Additive skips (not concat + conv): the full-resolution convolutions dominate the cost.
      h = nn.relu(pixel_shuffle(nn.Conv(4 * self._width(level), (3, 3))(h), 2) + skips[level])
    for _ in range(self.up):
      h = nn.relu(pixel_shuffle(nn.Conv(4 * self.width, (3, 3))(h), 2))
    # Zero-initialised: an untrained generator adds nothing to the task's baseline.
    return nn.Conv(self.out_channels, (3, 3), kernel_init=nn.initializers.zeros)(h)


class PatchDiscriminator(nn.Module):
  """PatchGAN-like D (Isola et al. 2017): (N, H, W, 3) -> (N * H/2^L * W/2^L,) patch logits.

  `num_layers` stride-2 4x4 convolutions (width doubling) with leaky ReLU, then a 3x3 conv to one
  logit per position; with 3 layers each logit sees a 38x38 patch. The adversarial losses take
  the mean over their logits, so patches act as a batch of N * patches examples.
  """
  width: int = 32
  num_layers: int = 3

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for layer in range(self.num_layers):
      x = nn.leaky_relu(nn.Conv(self.width * 2 ** layer, (4, 4), strides=2)(x), 0.2)
    return nn.Conv(1, (3, 3))(x).reshape(-1)


def make_generator(model_config: ml_collections.ConfigDict, *, up: int = 0) -> ResidualGenerator:
  return ResidualGenerator(width=model_config.width, num_blocks=model_config.num_blocks,
                           down=model_config.down, up=up, dilations=tuple(model_config.dilations),
                           max_width=model_config.max_width)


# --- Tasks ------------------------------------------------------------------------------------


Inputs = dict[str, jax.Array]


class Task(NamedTuple):
  """What distinguishes super-resolution, denoising and inpainting (see the module docstring).

  Attributes:
    name: "superres", "denoise" or "inpaint".
    generator: the network; `restore` applies it.
    degrade: (key, clean (N, H, W, 3) in [-1, 1], aux (N, H, W, 3) in [-1, 1] or None) -> inputs.
    restore: (generator params, inputs) -> (N, H, W, 3) in [-1, 1].
    host_aux: (uint8 (N, H, W, 3)) -> uint8 (N, H, W, 3) or None; precomputed degradations.
    example_inputs: (batch, size) -> inputs of zeros with the right shapes (to init params).
    model_input: inputs -> the array fed to the generator.
  """
  name: str
  generator: ResidualGenerator
  degrade: Callable[[jax.Array, jax.Array, Optional[jax.Array]], Inputs]
  restore: Callable[[Any, Inputs], jax.Array]
  host_aux: Callable[[np.ndarray], Optional[np.ndarray]]
  example_inputs: Callable[[int, int], Inputs]
  model_input: Callable[[Inputs], jax.Array]


def no_aux(images: np.ndarray) -> None:
  del images
  return None


def get_task(config: ml_collections.ConfigDict) -> Task:
  """The `Task` named by config.task, built by its module's make_task(config)."""
  if config.task not in TASK_MODULES:
    raise ValueError(f"Unknown task {config.task!r}; valid tasks: {', '.join(TASK_MODULES)}.")
  return importlib.import_module(TASK_MODULES[config.task]).make_task(config)


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError listing every invalid value (before anything is built or loaded)."""
  problems = []
  if config.task not in TASK_MODULES:
    problems.append(f"Unknown task {config.task!r}; valid tasks: {', '.join(TASK_MODULES)}.")
  t, m, loss = config.train, config.model, config.loss
  for key in ("batch_size", "steps", "log_every"):
    if not isinstance(t[key], int) or t[key] < 1:
      problems.append(f"train.{key} must be an int >= 1, got {t[key]!r}.")
  if not isinstance(t.crop, int) or t.crop < 0 or t.crop % CROP_ALIGN or t.crop > config.data.image_size:
    problems.append(f"train.crop must be 0 (whole images) or a multiple of {CROP_ALIGN} up to "
                    f"data.image_size = {config.data.image_size}, got {t.crop!r}.")
  for key in ("g_lr", "d_lr"):
    if not t[key] > 0:
      problems.append(f"train.{key} must be > 0, got {t[key]}.")
  for key in ("width", "num_blocks", "max_width"):
    if not isinstance(m[key], int) or m[key] < 1:
      problems.append(f"model.{key} must be an int >= 1, got {m[key]!r}.")
  if not isinstance(m.down, int) or m.down < 0:
    problems.append(f"model.down must be an int >= 0, got {m.down!r}.")
  if not m.dilations or any(not isinstance(d, int) or d < 1 for d in m.dilations):
    problems.append(f"model.dilations must be ints >= 1, got {m.dilations!r}.")
  for key in ("pixel_weight", "perceptual_weight", "adversarial_weight"):
    if not loss[key] >= 0:
      problems.append(f"loss.{key} must be >= 0 (0 = off), got {loss[key]}.")
  if loss.perceptual not in PERCEPTUAL:
    problems.append(f"Unknown loss.perceptual {loss.perceptual!r}; valid: {', '.join(PERCEPTUAL)}.")
  if loss.adversarial not in adversarial.LOSSES:
    problems.append(f"Unknown loss.adversarial {loss.adversarial!r}; valid names: "
                    f"{sorted(adversarial.LOSSES)}.")
  if config.data.channels != 3:
    problems.append(f"data.channels must be 3 (colour photos), got {config.data.channels}.")
  if problems:
    raise ValueError("Invalid enhancement config: " + " ".join(problems))


# --- Perceptual networks ----------------------------------------------------------------------


class Perceptual(NamedTuple):
  """A differentiable image distance: (a, b) (N, H, W, 3) in [-1, 1] -> (N,) float32 >= 0."""
  name: str
  distance: Callable[[jax.Array, jax.Array], jax.Array]


def classifier_available(classifier_dir: PathLike = DEFAULT_CLASSIFIER_DIR) -> bool:
  return (Path(classifier_dir) / "checkpoints").is_dir()


def classifier_perceptual(classifier_dir: PathLike = DEFAULT_CLASSIFIER_DIR) -> Perceptual:
  """gan.metrics.classifier.perceptual_distance over the trained domain classifier."""
  from gan.metrics import classifier  # pylint: disable=g-import-not-at-top
  from gan.metrics import train_classifier  # pylint: disable=g-import-not-at-top
  model, variables, _ = train_classifier.load(os.fspath(classifier_dir))
  return Perceptual(f"classifier({os.fspath(classifier_dir)})",
                    functools.partial(classifier.perceptual_distance, model, variables))


def random_perceptual(seed: int = 0, features: int = 32) -> Perceptual:
  """Feature MSE over RANDOM_FEATURE_LAYERS of the fixed random network (per image); 32 filters
  per layer instead of the style default of 128: a loss evaluated every step must be cheap."""
  from gan.losses import style as style_losses  # pylint: disable=g-import-not-at-top
  from gan.style import random_features  # pylint: disable=g-import-not-at-top
  extractor = random_features.random_extractor(seed, features=features)

  def distance(a: jax.Array, b: jax.Array) -> jax.Array:
    fa, fb = extractor.apply(a, RANDOM_FEATURE_LAYERS), extractor.apply(b, RANDOM_FEATURE_LAYERS)
    # content_loss averages over the batch: vmap over images gives one value per image.
    return jax.vmap(lambda x, y: style_losses.content_loss(
        {k: v[None] for k, v in x.items()}, {k: v[None] for k, v in y.items()}))(fa, fb)

  return Perceptual(extractor.name, distance)


def make_perceptual(choice: str, classifier_dir: PathLike = DEFAULT_CLASSIFIER_DIR
                    ) -> Optional[Perceptual]:
  """"classifier", "random", "auto" (classifier if trained, else random with a warning) or "none"."""
  if choice not in PERCEPTUAL:
    raise ValueError(f"Unknown perceptual network {choice!r}; valid: {', '.join(PERCEPTUAL)}.")
  if choice == "none":
    return None
  if choice == "classifier" or (choice == "auto" and classifier_available(classifier_dir)):
    return classifier_perceptual(classifier_dir)
  if choice == "auto":
    logging.warning("No domain classifier in %s: the perceptual loss uses fixed random features "
                    "instead (train it with python -m gan.metrics.train_classifier --config "
                    "configs/classifier_products.py --workdir %s).", classifier_dir, classifier_dir)
  return random_perceptual()


# --- Training ---------------------------------------------------------------------------------


class TrainState(NamedTuple):
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt: optax.OptState
  d_opt: optax.OptState


def to_float(images: Any) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return jnp.asarray(images, jnp.float32) / 127.5 - 1.0


def _optimizer(lr: float, steps: int) -> optax.GradientTransformation:
  return optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=0.05), b1=0.9, b2=0.99)


def _optimizers(config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, ...]:
  return (_optimizer(config.train.g_lr, config.train.steps),
          _optimizer(config.train.d_lr, config.train.steps))


def init_state(task: Task, config: ml_collections.ConfigDict, discriminator: PatchDiscriminator,
               key: jax.Array, size: int) -> TrainState:
  """Step 0: generator and (when the adversarial term is on) discriminator parameters and their
  optimizer states. Jit it: one compilation instead of one per initializer op."""
  g_key, d_key = jax.random.split(key)
  g_params = init_params(task, g_key, size)
  d_params = {}
  if config.loss.adversarial_weight > 0:
    d_params = discriminator.init(d_key, jnp.zeros((1, size, size, 3), jnp.float32))["params"]
  g_tx, d_tx = _optimizers(config)
  return TrainState(jnp.zeros((), jnp.int32), g_params, d_params, g_tx.init(g_params),
                    d_tx.init(d_params))


def make_train_step(task: Task, config: ml_collections.ConfigDict,
                    perceptual: Optional[Perceptual], discriminator: PatchDiscriminator,
                    seed_key: jax.Array) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
  """A pure (state, clean uint8, aux uint8 or None) -> (state, metrics) step, not yet jitted."""
  loss_cfg = config.loss
  adv = adversarial.get(loss_cfg.adversarial)
  use_d = loss_cfg.adversarial_weight > 0
  use_perceptual = perceptual is not None and loss_cfg.perceptual_weight > 0
  g_tx, d_tx = _optimizers(config)

  def step(state: TrainState, clean_u8: jax.Array, aux_u8: Optional[jax.Array]):
    clean = to_float(clean_u8)
    aux = None if aux_u8 is None else to_float(aux_u8)
    inputs = task.degrade(jax.random.fold_in(seed_key, state.step), clean, aux)
    real_logits = (jax.lax.stop_gradient(discriminator.apply({"params": state.d_params}, clean))
                   if use_d else None)

    def g_loss_fn(g_params):
      out = task.restore(g_params, inputs)
      terms = {"pixel": jnp.mean(jnp.abs(out - clean))}
      total = loss_cfg.pixel_weight * terms["pixel"]
      if use_perceptual:
        terms["perceptual"] = jnp.mean(perceptual.distance(out, clean))
        total = total + loss_cfg.perceptual_weight * terms["perceptual"]
      if use_d:
        fake_logits = discriminator.apply({"params": state.d_params}, out)
        terms["g_adversarial"] = adv.generator(real_logits, fake_logits)
        total = total + loss_cfg.adversarial_weight * terms["g_adversarial"]
      return total, (out, terms)

    (g_total, (out, metrics)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
    g_updates, g_opt = g_tx.update(g_grads, state.g_opt, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)
    metrics["g_total"] = g_total
    d_params, d_opt = state.d_params, state.d_opt
    if use_d:
      fake = jax.lax.stop_gradient(out)

      def d_loss_fn(d_params):
        return adv.discriminator(discriminator.apply({"params": d_params}, clean),
                                 discriminator.apply({"params": d_params}, fake))

      metrics["d_loss"], d_grads = jax.value_and_grad(d_loss_fn)(state.d_params)
      d_updates, d_opt = d_tx.update(d_grads, state.d_opt, state.d_params)
      d_params = optax.apply_updates(state.d_params, d_updates)
    return TrainState(state.step + 1, g_params, d_params, g_opt, d_opt), metrics

  return step


def init_params(task: Task, key: jax.Array, size: int) -> Any:
  """Generator parameters, initialised on inputs for images of side `size` (any size works
  afterwards: the network is fully convolutional)."""
  return task.generator.init(key, task.model_input(task.example_inputs(1, size)))["params"]


@dataclasses.dataclass
class TrainResult:
  params: Any
  history: dict[str, list[float]]
  info: dict[str, Any]


# Crop offsets are multiples of this: keeps JPEG's 8x8 block grid in the same phase as in the
# full photos (and the x2 / x4 low-resolution pixel grid aligned).
CROP_ALIGN = 8


def _batches(images: np.ndarray, aux: Optional[np.ndarray], batch_size: int, steps: int,
             seed: int, flip: bool, crop: int):
  """Host batches of (clean, aux or None): random images (PCG64(seed)), random crop x crop
  windows at offsets that are multiples of CROP_ALIGN (crop 0: whole images), random flips."""
  rng = np.random.default_rng(seed)
  size = images.shape[1]
  crop = crop or size
  positions = (size - crop) // CROP_ALIGN + 1
  for _ in range(steps):
    idx = rng.integers(0, len(images), batch_size)
    flips = rng.random(batch_size) < 0.5 if flip else np.zeros(batch_size, bool)
    offsets = rng.integers(0, positions, (batch_size, 2)) * CROP_ALIGN
    rows = offsets[:, :1, None] + np.arange(crop)[None, :, None]     # (B, crop, 1)
    cols = offsets[:, 1:, None] + np.arange(crop)[None, None, :]     # (B, 1, crop)
    cols = np.where(flips[:, None, None], 2 * offsets[:, 1:, None] + crop - 1 - cols, cols)
    batch = (images[idx[:, None, None], rows, cols],)
    if aux is not None:
      batch += (aux[idx[:, None, None], rows, cols],)
    yield batch if aux is not None else batch + (None,)


def train(config: ml_collections.ConfigDict, images: np.ndarray, *,
          perceptual: Optional[Perceptual] = None, log_every: Optional[int] = None) -> TrainResult:
  """Trains the task's generator on clean training images.

  Args:
    config: an enhancement config (configs/enhance_products.py).
    images: (N, S, S, 3) uint8 clean training images.
    perceptual: the perceptual network; None: built from config.loss.perceptual.
    log_every: override of config.train.log_every.

  Returns:
    TrainResult(params, history {metric: [values at log steps]}, info (timings, networks)).
  """
  check_config(config)
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
    raise ValueError(f"Training images must be uint8 (N, S, S, 3), got {images.shape} {images.dtype}.")
  task = get_task(config)
  if perceptual is None and config.loss.perceptual_weight > 0:
    perceptual = make_perceptual(config.loss.perceptual, config.loss.classifier_dir)
  discriminator = PatchDiscriminator(config.discriminator.width, config.discriminator.num_layers)
  init_key, step_key = jax.random.split(jax.random.PRNGKey(config.seed))
  start = time.perf_counter()
  state = jax.jit(functools.partial(init_state, task, config, discriminator),
                  static_argnums=1)(init_key, config.train.crop or images.shape[1])
  step_fn = jax.jit(make_train_step(task, config, perceptual, discriminator, step_key),
                    donate_argnums=0)
  aux = task.host_aux(images)
  log_every = log_every or config.train.log_every
  history: dict[str, list[float]] = {"step": []}
  compiled_at = None
  pending = None
  batches = _batches(images, aux, config.train.batch_size, config.train.steps, config.seed,
                     config.data.get("random_flip", True), config.train.crop)
  for step, (clean, other) in enumerate(batches, start=1):
    state, metrics = step_fn(state, clean, other)
    if compiled_at is None:
      jax.block_until_ready(metrics)
      compiled_at = time.perf_counter()
    if step % log_every == 0 or step == config.train.steps:
      pending = jax.device_get(metrics)  # one host sync per log_every steps
      for name, value in pending.items():
        if not np.isfinite(value):
          raise FloatingPointError(f"Non-finite {name} = {value} at step {step} of the "
                                   f"{config.task} training; lower train.g_lr / train.d_lr.")
        history.setdefault(name, []).append(float(value))
      history["step"].append(step)
      elapsed = time.perf_counter() - compiled_at
      logging.info("%s step %d/%d: %s (%.2f steps/s)", config.task, step, config.train.steps,
                   ", ".join(f"{k} {float(v):.4f}" for k, v in sorted(pending.items())),
                   (step - 1) / max(elapsed, 1e-9))
  jax.block_until_ready(state)
  total = time.perf_counter() - start
  info = {"steps": int(config.train.steps), "train_images": int(len(images)),
          "train_seconds": round(total, 1),
          "compile_seconds": round((compiled_at or start) - start, 1),
          "perceptual_loss": perceptual.name if perceptual is not None else "none",
          "adversarial": (config.loss.adversarial if config.loss.adversarial_weight > 0 else "off")}
  return TrainResult(jax.device_get(state.g_params), history, info)


# --- Files ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Enhancer:
  """A trained model: call it on the task's inputs (see the task module's helpers).

  Attributes:
    config: the training config.
    task: the Task built from it.
    params: generator parameters.
    meta: the JSON metadata (info, history) saved with it.
  """
  config: ml_collections.ConfigDict
  task: Task
  params: Any
  meta: dict[str, Any]

  @functools.cached_property
  def _restore(self):
    return jax.jit(self.task.restore)

  def __call__(self, inputs: Inputs) -> jax.Array:
    """The restored images, (N, H, W, 3) float32 in [-1, 1]."""
    return self._restore(self.params, {k: jnp.asarray(v, jnp.float32) for k, v in inputs.items()})


def save(directory: PathLike, config: ml_collections.ConfigDict, result: TrainResult) -> Path:
  """Writes CONFIG_FILE and PARAMS_FILE into `directory` (created); returns it."""
  directory = Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  flat = traverse_util.flatten_dict(jax.device_get(result.params), sep="/")
  np.savez(directory / PARAMS_FILE, **{f"params/{k}": np.asarray(v) for k, v in flat.items()})
  meta = {"format": FORMAT, "task": config.task, "config": json.loads(config.to_json_best_effort()),
          "info": result.info, "history": result.history}
  (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
  return directory


def train_command(directory: PathLike, task: str = "superres_x2") -> str:
  return (f"python -m gan.editing.enhance_train --config configs/enhance_products.py:{task} "
          f"--workdir {directory}")


def load(directory: PathLike, task: Optional[str] = None) -> Enhancer:
  """Reads a model written by `save`.

  Args:
    directory: the workdir.
    task: the task the caller expects ("superres", ...); None: any.

  Raises:
    FileNotFoundError: no model in `directory`.
    ValueError: another task than `task`, or malformed / mismatched files.
  """
  directory = Path(directory)
  config_path, params_path = directory / CONFIG_FILE, directory / PARAMS_FILE
  for path in (config_path, params_path):
    if not path.is_file():
      raise FileNotFoundError(
          f"{path} not found: {str(directory)!r} holds no trained {task or 'enhancement'} model. "
          f"Train one with: {train_command(directory, _default_variant(task))}")
  try:
    meta = json.loads(config_path.read_text(encoding="utf-8"))
    with np.load(params_path, allow_pickle=False) as npz:
      flat = {key[len("params/"):]: npz[key] for key in npz.files if key.startswith("params/")}
  except (ValueError, OSError) as e:
    raise ValueError(f"Cannot read the model in {directory}: {e}") from e
  if not isinstance(meta, dict) or meta.get("format") != FORMAT:
    raise ValueError(f"{config_path} is not an enhancement model file (format {FORMAT!r}).")
  if task is not None and meta.get("task") != task:
    raise ValueError(f"{directory} holds a {meta.get('task')!r} model, not a {task!r} one; "
                     "pass the workdir of a model of the right task.")
  config = ml_collections.ConfigDict(meta["config"])
  built = get_task(config)
  params = traverse_util.unflatten_dict({tuple(k.split("/")): jnp.asarray(v)
                                         for k, v in flat.items()})
  expected = jax.eval_shape(lambda: init_params(built, jax.random.PRNGKey(0),
                                                config.data.image_size))
  if jax.tree.structure(expected) != jax.tree.structure(params) or any(
      a.shape != b.shape for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(params))):
    raise ValueError(f"{params_path}: the parameters do not match the model config in {config_path}.")
  return Enhancer(config, built, params, meta)


def _default_variant(task: Optional[str]) -> str:
  return {"superres": "superres_x2", "denoise": "denoise_gaussian", "inpaint": "inpaint"}.get(
      task or "", "superres_x2")


def pad_to_multiple(images: np.ndarray, multiple: int) -> tuple[np.ndarray, int, int]:
  """Reflect-pads (N, H, W, C) at the bottom / right to sides divisible by `multiple`;
  returns (padded, H, W) so the caller can crop the result back."""
  _, h, w, _ = images.shape
  ph, pw = -h % multiple, -w % multiple
  mode = "reflect" if ph < h and pw < w else "edge"
  return np.pad(images, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode), h, w


# --- Evaluation helpers -----------------------------------------------------------------------


def evaluate(outputs: Any, targets: Any, perceptual: Optional[Perceptual] = None,
             batch_size: int = 100) -> dict[str, float]:
  """Means over images of PSNR (dB), SSIM, the perceptual distance (when given) and LPIPS-Alex
  ("lpips_alex", when its weights are fetched and images are >= 31 px).

  outputs, targets: (N, H, W, 3) float in [-1, 1] (data_range 2 for PSNR / SSIM).
  """
  outputs, targets = np.asarray(outputs, np.float32), np.asarray(targets, np.float32)
  psnr = np.asarray(image_metrics.psnr(outputs, targets, data_range=2.0))
  result = {"psnr": float(np.mean(psnr[np.isfinite(psnr)])),
            "ssim": float(np.mean(image_metrics.ssim(outputs, targets, data_range=2.0)))}
  if perceptual is not None:
    distance = jax.jit(perceptual.distance)
    values = [np.asarray(distance(outputs[i:i + batch_size], targets[i:i + batch_size]))
              for i in range(0, len(outputs), batch_size)]
    result["perceptual"] = float(np.mean(np.concatenate(values)))
  if lpips.available("alex") and min(outputs.shape[1:3]) >= lpips.MIN_SIZE["alex"]:
    result["lpips_alex"] = lpips.mean_distance(lpips.cached("alex"), outputs, targets, batch_size)
  return result


# --- Command line -----------------------------------------------------------------------------


def load_training_images(config: ml_collections.ConfigDict) -> np.ndarray:
  """The config's training split as uint8 (N, S, S, 3)."""
  from gan import data  # pylint: disable=g-import-not-at-top
  return data.load_dataset(config.data).images


def main(argv: Sequence[str]) -> int:
  from absl import flags  # pylint: disable=g-import-not-at-top
  del argv
  config = flags.FLAGS.config
  workdir = flags.FLAGS.workdir
  result = train(config, load_training_images(config))
  save(workdir, config, result)
  print(f"Saved the {config.task} model to {workdir} ({result.info['train_seconds']} s, "
        f"perceptual loss: {result.info['perceptual_loss']}).")
  return 0


if __name__ == "__main__":
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file("config", None, "Enhancement config (configs/enhance_products.py:TASK).")
  flags.DEFINE_string("workdir", None, "Where the model is written.")
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(lambda argv: sys.exit(main(argv)))
