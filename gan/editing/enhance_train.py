"""Image-to-image enhancement models (super-resolution, denoising, inpainting): networks, the
training state and step, and trained models (`load`).

Trained by the shared loop as task "enhance" (gan/tasks/enhance.py: data, checkpoints, resume,
samples, evaluation); config.enhance.kind picks the kind:

  python -m gan.main --config configs/enhance_products.py:superres_x2 --workdir runs/enhance/superres_x2

The three kinds share everything but their degradation and how the network output is put
together, so each kind's module (superres.py, denoise.py, inpaint.py) only builds a `Task`:

  degrade(key, clean, aux) -> inputs   pure and jittable: the synthetic degradation of a clean
                                       batch, e.g. {"lr": ...}, {"noisy": ...}, {"image", "mask"}.
  restore(params, inputs) -> output    the generator applied to the inputs plus the kind's fixed
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
convolution starts at zero, so an untrained model returns the kind's baseline exactly (bicubic
upsampling, the noisy input, the hole filled with grey) and training starts from it.

Loss of the generator (SRGAN, Ledig et al. 2017, with an L1 pixel term as in ESRGAN):
  pixel_weight * mean |out - clean|
  + perceptual_weight * perceptual(out, clean)
  + adversarial_weight * loss.generator(D(clean), D(out))
Perceptual term (`loss.perceptual`): "classifier" is gan.metrics.classifier.perceptual_distance
over the products' domain classifier (runs/classifier_products); "random" is the feature MSE
(gan.losses.style.content_loss) over the fixed random network of gan/style/random_features.py;
"vgg16" is the VGG feature loss of super-resolution (Johnson et al. 2016): feature MSE at relu2_2
of ImageNet VGG16 (`python -m gan.weights fetch vgg16`); "auto" picks the classifier when its
checkpoint exists, at the run's first start (the choice is saved in its config.json and kept on
resume). D is a small PatchGAN (`PatchDiscriminator`, one
logit per 38x38 patch) trained with the loss of gan/losses/adversarial.py named by
`loss.adversarial`; adversarial_weight = 0 skips D entirely (pure regression: higher PSNR,
blurrier; see experiments/README.md).

Training (`TrainState`, `make_train_step`): Adam with cosine decay (optimizer.g_lr / d_lr), one
jitted step (G update, then D update on the same generator output) on batches of random crops
(train.crop pixels, as SRGAN trains on crops: the networks are fully convolutional, and 32x32
crops cost a quarter of whole 64x64 photos) with random flips; degradation keys are
jax.random.fold_in(seed key, step), so the step is a pure function of (state, batch).

Trained models (`load`): the generator of a run's latest checkpoint, as an `Enhancer`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import dataclasses
import functools
import importlib
import os
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gan import runs
from gan.losses import adversarial
from gan.metrics import image as image_metrics
from gan.metrics import lpips

PathLike = Union[str, os.PathLike]

TASK = "enhance"    # config.task of the enhancement runs (gan/tasks/enhance.py)
# Kind (config.enhance.kind) -> module with make_task(config); imported on demand (the modules
# import this one).
TASK_MODULES = {"superres": "gan.editing.superres", "denoise": "gan.editing.denoise",
                "inpaint": "gan.editing.inpaint"}
# Each kind's default config variant (configs/enhance_products.py:VARIANT), for commands in messages.
DEFAULT_VARIANTS = {"superres": "superres_x2", "denoise": "denoise_gaussian", "inpaint": "inpaint"}
PERCEPTUAL = ("auto", "classifier", "vgg16", "random", "none")
# The VGG feature loss of "vgg16": Johnson et al. (2016)'s super-resolution choice, relu2_2 of ImageNet
# VGG16 (SRGAN's relu5_4 of VGG19 is 4x4 on 64 px crops: too coarse here).
VGG_FEATURE_LAYERS = ("relu2_2",)
DEFAULT_CLASSIFIER_DIR = os.path.join("runs", "classifier_products")
# Random-feature fallback: the layers of gan.style.random_features compared by the feature MSE.
RANDOM_FEATURE_LAYERS = ("scale1", "scale2", "content")
# Crop offsets are multiples of this: keeps JPEG's 8x8 block grid in the same phase as in the
# full photos (and the x2 / x4 low-resolution pixel grid aligned).
CROP_ALIGN = 8

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


# --- Kinds ------------------------------------------------------------------------------------


Inputs = dict[str, jax.Array]


class Task(NamedTuple):
  """What distinguishes the kinds, super-resolution, denoising and inpainting (module docstring).

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
  """The `Task` of config.enhance.kind, built by its module's make_task(config)."""
  kind = config.enhance.kind
  if kind not in TASK_MODULES:
    raise ValueError(f"Unknown enhance.kind {kind!r}; valid: {', '.join(TASK_MODULES)}.")
  return importlib.import_module(TASK_MODULES[kind]).make_task(config)


def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with the keys an enhancement run reads (the loop's own keys are checked by
  gan/train.py), one message per key."""
  problems = []
  t, m, loss, opt = config.train, config.model, config.loss, config.optimizer
  if config.enhance.kind not in TASK_MODULES:
    problems.append(f"Unknown enhance.kind {config.enhance.kind!r}; valid: {', '.join(TASK_MODULES)}.")
  else:
    try:   # the kind's own keys (superres.scale, denoise.sigma, inpaint.mask, ...)
      get_task(config)
    except ValueError as e:
      problems.append(str(e))
  if not isinstance(t.crop, int) or t.crop < 0 or t.crop % CROP_ALIGN or t.crop > config.data.image_size:
    problems.append(f"train.crop must be 0 (whole images) or a multiple of {CROP_ALIGN} up to "
                    f"data.image_size = {config.data.image_size}, got {t.crop!r}.")
  for key in ("g_lr", "d_lr"):
    if not opt[key] > 0:
      problems.append(f"optimizer.{key} must be > 0, got {opt[key]}.")
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
  if not isinstance(config.eval.num_images, int) or config.eval.num_images < 1:
    problems.append(f"eval.num_images must be an int >= 1 (held-out photos), got {config.eval.num_images!r}.")
  return problems


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


def vgg_perceptual(layers: tuple[str, ...] = VGG_FEATURE_LAYERS) -> Perceptual:
  """Feature MSE (gan.losses.style.content_loss, per image) at `layers` of ImageNet VGG16 with
  torchvision's preprocessing (gan.style.vgg.vgg16_extractor); gan.weights.MissingWeightsError naming
  the fetch command without its weights."""
  from gan.losses import style as style_losses  # pylint: disable=g-import-not-at-top
  from gan.style import vgg  # pylint: disable=g-import-not-at-top
  extractor = vgg.vgg16_extractor()

  def distance(a: jax.Array, b: jax.Array) -> jax.Array:
    if a.shape[-1] == 1:
      a, b = jnp.repeat(a, 3, axis=-1), jnp.repeat(b, 3, axis=-1)
    fa, fb = extractor.apply(a, layers), extractor.apply(b, layers)
    return jax.vmap(lambda x, y: style_losses.content_loss(
        {k: v[None] for k, v in x.items()}, {k: v[None] for k, v in y.items()}))(fa, fb)

  return Perceptual(f"vgg16({','.join(layers)})", distance)


def resolve_perceptual(choice: str, classifier_dir: PathLike = DEFAULT_CLASSIFIER_DIR) -> str:
  """"auto" -> "classifier" when the domain classifier is trained, else "random" (with a warning
  saying how to train it); other choices unchanged."""
  if choice != "auto":
    return choice
  if classifier_available(classifier_dir):
    return "classifier"
  logging.warning("No domain classifier in %s: the perceptual loss uses fixed random features "
                  "instead (train it with python -m gan.main --config "
                  "configs/classifier_products.py --workdir %s).", classifier_dir, classifier_dir)
  return "random"


def make_perceptual(choice: str, classifier_dir: PathLike = DEFAULT_CLASSIFIER_DIR
                    ) -> Optional[Perceptual]:
  """"classifier", "random", "auto" (`resolve_perceptual`) or "none" (None)."""
  if choice not in PERCEPTUAL:
    raise ValueError(f"Unknown perceptual network {choice!r}; valid: {', '.join(PERCEPTUAL)}.")
  choice = resolve_perceptual(choice, classifier_dir)
  if choice == "none":
    return None
  if choice == "classifier":
    return classifier_perceptual(classifier_dir)
  if choice == "vgg16":
    return vgg_perceptual()
  return random_perceptual()


# --- Training ---------------------------------------------------------------------------------


class TrainState(NamedTuple):
  """step: int32 scalar; generator and discriminator parameters (d_params = {} when
  loss.adversarial_weight is 0) and their Adam states."""
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt: optax.OptState
  d_opt: optax.OptState


def to_float(images: Any) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return jnp.asarray(images, jnp.float32) / 127.5 - 1.0


def make_optimizers(config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, ...]:
  """(G, D) Adam with cosine decay to 5% over train.steps, at optimizer.g_lr / d_lr (the names the
  loop's non-finite-loss rollback lowers)."""
  opt = config.optimizer

  def adam(lr: float) -> optax.GradientTransformation:
    return optax.adam(optax.cosine_decay_schedule(lr, config.train.steps, alpha=0.05), b1=opt.b1, b2=opt.b2)

  return adam(opt.g_lr), adam(opt.d_lr)


def make_discriminator(config: ml_collections.ConfigDict) -> PatchDiscriminator:
  return PatchDiscriminator(config.discriminator.width, config.discriminator.num_layers)


def init_params(task: Task, key: jax.Array, size: int) -> Any:
  """Generator parameters, initialised on inputs for images of side `size` (any size works
  afterwards: the network is fully convolutional)."""
  return task.generator.init(key, task.model_input(task.example_inputs(1, size)))["params"]


def init_state(task: Task, config: ml_collections.ConfigDict, key: jax.Array) -> TrainState:
  """Step 0: generator and (when the adversarial term is on) discriminator parameters and their
  optimizer states. Jit it: one compilation instead of one per initializer op. The parameter
  shapes do not depend on the image size (fully convolutional networks)."""
  g_key, d_key = jax.random.split(key)
  size = config.data.image_size
  g_params = init_params(task, g_key, size)
  d_params = {}
  if config.loss.adversarial_weight > 0:
    d_params = make_discriminator(config).init(d_key, jnp.zeros((1, size, size, 3), jnp.float32))["params"]
  g_tx, d_tx = make_optimizers(config)
  return TrainState(jnp.zeros((), jnp.int32), g_params, d_params, g_tx.init(g_params), d_tx.init(d_params))


def keys(config: ml_collections.ConfigDict) -> tuple[jax.Array, jax.Array]:
  """(initialisation key, key of the per-step degradations), both from config.seed."""
  init_key, step_key = jax.random.split(jax.random.PRNGKey(config.seed))
  return init_key, step_key


def abstract_state(config: ml_collections.ConfigDict) -> TrainState:
  """The TrainState's shapes and dtypes (jax.ShapeDtypeStruct leaves), without computing anything."""
  task = get_task(config)
  return jax.eval_shape(lambda: init_state(task, config, keys(config)[0]))


def shape_signature(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config values that fix the TrainState's shapes (saved with every checkpoint)."""
  signature = {"enhance.kind": config.enhance.kind,
               **{f"model.{k}": config.model[k] for k in ("width", "num_blocks", "down", "max_width")},
               "model.dilations": list(config.model.dilations),   # as JSON reads it back
               "discriminator": (config.loss.adversarial_weight > 0)}
  if config.enhance.kind == "superres":
    signature["superres.scale"] = config.superres.scale
  if config.loss.adversarial_weight > 0:
    signature.update({f"discriminator.{k}": v for k, v in sorted(config.discriminator.to_dict().items())})
  return signature


def make_train_step(task: Task, config: ml_collections.ConfigDict, perceptual: Optional[Perceptual]
                    ) -> Callable[[TrainState, dict[str, jax.Array]], tuple[TrainState, dict[str, jax.Array]]]:
  """A pure (state, batch) -> (state, metrics) step, not yet jitted.

  batch: {"clean": (B, c, c, 3) float32 in [-1, 1] and, for host-side degradations (JPEG), "aux":
  the same crops degraded}. The degradation key of step t is fold_in(keys(config)[1], t).
  """
  loss_cfg = config.loss
  adv = adversarial.get(loss_cfg.adversarial)
  use_d = loss_cfg.adversarial_weight > 0
  use_perceptual = perceptual is not None and loss_cfg.perceptual_weight > 0
  discriminator = make_discriminator(config)
  g_tx, d_tx = make_optimizers(config)
  step_key = keys(config)[1]

  def step(state: TrainState, batch: dict[str, jax.Array]):
    clean = batch["clean"]
    inputs = task.degrade(jax.random.fold_in(step_key, state.step), clean, batch.get("aux"))
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


# --- Trained models ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Enhancer:
  """A trained model: call it on the kind's inputs (see the kind module's helpers).

  Attributes:
    config: the run's config.
    task: the Task built from it.
    params: generator parameters.
    meta: the checkpoint's metadata (step, the latest evaluation under "eval", ...).
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


def train_command(directory: PathLike, variant: str = "superres_x2") -> str:
  return (f"python -m gan.main --config configs/enhance_products.py:{variant} "
          f"--workdir {os.fspath(directory)}")


def load(directory: PathLike, kind: Optional[str] = None) -> Enhancer:
  """The generator of the latest checkpoint of an enhancement run (single device).

  Args:
    directory: the run's workdir.
    kind: the kind the caller expects ("superres", "denoise", "inpaint"); None: any.

  Raises:
    FileNotFoundError: no run, or no checkpoint yet, in `directory` (the message gives the command).
    ValueError: another task or kind than expected; checkpointing.CheckpointMismatchError /
      CheckpointCorruptError (ValueErrors too) for checkpoints that do not fit or cannot be read.
  """
  directory = os.fspath(directory)
  command = train_command(directory, DEFAULT_VARIANTS.get(kind or "", "superres_x2"))
  try:
    config = runs.load_config(directory)
  except runs.RunError as e:
    if not os.path.isfile(os.path.join(directory, "config.json")):
      raise FileNotFoundError(f"{Path(directory) / 'config.json'} not found: {directory!r} holds no "
                              f"trained {kind or 'enhancement'} model. Train one with: {command}") from None
    raise ValueError(str(e)) from None
  if runs.task_of(config) != TASK:
    raise ValueError(f"{directory} is a {runs.task_of(config)!r} run, not an enhancement model (task "
                     f"{TASK!r}). Train one with: {command}")
  if kind is not None and config.enhance.kind != kind:
    raise ValueError(f"{directory} holds a {config.enhance.kind!r} model, not a {kind!r} one; "
                     "pass the workdir of a model of the right kind.")
  try:
    state, meta = runs.restore_checkpoint(
        directory, runs.on_one_device(abstract_state(config)), shape_signature(config),
        config.train.keep_checkpoints, train_command=train_command("{workdir}", config.enhance.variant))
  except runs.RunError as e:   # no checkpoint yet
    raise FileNotFoundError(str(e)) from None
  return Enhancer(config, get_task(config), state.g_params, meta)


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



if __name__ == "__main__":
  raise SystemExit("error: the enhancement models are trained by the shared loop now: python -m gan.main "
                   "--config configs/enhance_products.py:VARIANT --workdir DIR (VARIANT: superres_x2, "
                   "superres_x4, denoise_gaussian, denoise_jpeg or inpaint).")
