"""GAN inversion: find the latent whose generated image reproduces a given (real) image.

Two ways, composable:
  optimization  `project` (or a reusable `make_projector`): Adam on the latent, minimising a pixel
                MSE plus a perceptual distance (e.g. the domain classifier's, `classifier_perceptual`),
                with the StyleGAN2 projector's learning-rate ramp (`projector_learning_rate`), a
                decaying Gaussian perturbation of w early on, and optionally optimised per-layer noise
                maps kept white by `noise_regularization` and renormalised after every step.
  encoder       a small conv net (`Encoder`) fitted on (G(w), w) pairs drawn from the generator
                (plus reconstruction of real photos) to predict W+ in one forward pass (`encode`);
                `project(..., init=encode(...))` refines its guess. Trained as task
                "inversion_encoder" (gan/tasks/inversion_encoder.py, configs/inversion_encoder_products.py),
                by convention in <StyleGAN run>/encoder, where gan.edit finds it; `load_encoder` opens it.

Latent spaces (`SPACES`):
  "z"   z (N, z_dim) through the whole generator: any architecture (DCGAN, ResNet, StyleGAN).
  "w"   one w (N, w_dim) used by every synthesis layer (StyleGAN only).
  "w+"  one w per synthesis layer, (N, num_ws, w_dim) (StyleGAN only): the most expressive, and
        the space of the encoder.

StyleGAN noise inputs (`NOISE_MODES`): "none" renders without noise (deterministic), "fixed" draws
the maps once from the key and keeps them, "optimize" also optimises them (StyleGAN2 projector).
Their tree is {"synthesis_network": {layer: {"noise": (N, H, W, 1)}}} (see gan/models/stylegan.py).

Everything is a pure function of (generator module, variables, arrays, key); the optimisation runs
as a Python loop over one jit-compiled step (state donated, no host sync until the end). Images
are float32 (N, S, S, C) in [-1, 1]; `variables` are the generator's {"params", "batch_stats"} (for
batch-norm generators, statistics that suit the weights, e.g. gan.sampling.standing_batch_stats).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from gan import runs
from gan.metrics import classifier as classifier_lib
from gan.metrics import lpips

SPACES = ("z", "w", "w+")
NOISE_MODES = ("none", "fixed", "optimize")
Perceptual = Callable[[jax.Array, jax.Array], jax.Array]   # (a, b) images -> (N,) distances
# The perceptual term of projection and of the encoder: "auto" = LPIPS-VGG when its weights are
# fetched (StyleGAN2's projector), else the domain classifier's distance when one is trained, else none.
PERCEPTUAL_TERMS = ("auto", "lpips_vgg", "classifier", "none")


# --- Rendering -----------------------------------------------------------------------------------


def is_stylegan(generator: nn.Module) -> bool:
  """Whether the generator has StyleGAN's mapping / synthesis methods (and so W / W+ spaces)."""
  return all(hasattr(generator, name) for name in ("mapping", "synthesis", "num_ws"))


def check_space(generator: nn.Module, space: str) -> None:
  if space not in SPACES:
    raise ValueError(f"Unknown latent space {space!r}; valid: {', '.join(SPACES)}.")
  if space != "z" and not is_stylegan(generator):
    raise ValueError(f"Latent space {space!r} needs a StyleGAN generator (model.name='stylegan'); "
                     f"{type(generator).__module__}.{type(generator).__name__} only has 'z'.")


def _with_noise(variables: Any, noise: Optional[Any]) -> Any:
  return variables if noise is None else {**variables, "noise_inputs": noise}


def render(generator: nn.Module, variables: Any, latents: jax.Array, space: str,
           labels: Optional[jax.Array] = None, noise: Optional[Any] = None,
           cond: Optional[jax.Array] = None) -> jax.Array:
  """Images (N, S, S, C) in [-1, 1] of latents in `space` (eval mode).

  latents: z (N, z_dim), w (N, w_dim) or ws (N, num_ws, w_dim). labels (N,) / cond (N, D) are used
  in "z" only (W already holds the condition) and only by generators that take them. noise: a
  noise_inputs tree (`draw_noise`) or None for noise-free StyleGAN images.
  """
  check_space(generator, space)
  return _render(generator, space, variables, latents, labels, noise, cond)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _render(generator: nn.Module, space: str, variables: Any, latents: jax.Array, labels: Optional[jax.Array],
            noise: Optional[Any], cond: Optional[jax.Array]) -> jax.Array:
  variables = _with_noise(variables, noise)
  if space == "z":
    return generator.apply(variables, latents, labels if getattr(generator, "num_classes", 0) else None,
                           cond if getattr(generator, "cond_dim", 0) else None, train=False)
  ws = broadcast_w(latents, generator.num_ws) if space == "w" else latents
  return generator.apply(variables, ws, method=generator.synthesis, train=False)


def broadcast_w(w: jax.Array, num_ws: int) -> jax.Array:
  """w (N, w_dim) -> ws (N, num_ws, w_dim), the same w at every layer."""
  return jnp.broadcast_to(w[:, None, :], (w.shape[0], num_ws, w.shape[-1]))


def draw_noise(generator: nn.Module, variables: Any, num: int, key: jax.Array) -> Any:
  """StyleGAN noise maps for `num` images, from `key`: {"synthesis_network": {layer: {"noise": (num, H, W, 1)}}}.

  Rendering with them gives the same images as rendering with rngs={"noise": key}.
  """
  if not is_stylegan(generator):
    raise ValueError("Noise inputs exist only in StyleGAN generators (model.name='stylegan').")
  return _draw_noise(generator, num, variables, key)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _draw_noise(generator: nn.Module, num: int, variables: Any, key: jax.Array) -> Any:
  w_dim = variables["batch_stats"]["mapping_network"]["w_avg"].shape[-1]
  ws = jnp.zeros((num, generator.num_ws, w_dim), jnp.float32)
  return generator.apply(variables, ws, method=generator.synthesis, train=False, mutable=["noise_inputs"],
                         rngs={"noise": key})[1]["noise_inputs"]


def noise_regularization(noise: Any) -> jax.Array:
  """StyleGAN2 projector's noise regulariser: for every map, at 2x-average-pooled scales down to 8x8,
  the squared mean products with the map shifted by one pixel (circularly) along x and along y.

  Zero for noise without spatial autocorrelation; summed over maps, scales and images. noise: a tree
  of (N, H, W, 1) maps. Returns a float32 scalar.
  """
  total = jnp.zeros((), jnp.float32)
  for n in jax.tree_util.tree_leaves(noise):
    while True:
      for axis in (1, 2):
        total = total + jnp.sum(jnp.square(jnp.mean(n * jnp.roll(n, 1, axis=axis), axis=(1, 2, 3))))
      if n.shape[1] <= 8:
        break
      n = n.reshape(n.shape[0], n.shape[1] // 2, 2, n.shape[2] // 2, 2, n.shape[3]).mean(axis=(2, 4))
  return total


def normalize_noise(noise: Any) -> Any:
  """Every map of every image rescaled to zero mean and unit mean square (after each projector step)."""
  def norm(n):
    n = n - jnp.mean(n, axis=(1, 2, 3), keepdims=True)
    return n * lax.rsqrt(jnp.mean(jnp.square(n), axis=(1, 2, 3), keepdims=True) + 1e-12)
  return jax.tree_util.tree_map(norm, noise)


# --- Starting points -----------------------------------------------------------------------------


class WStatistics(NamedTuple):
  """mean: (w_dim,) or (num_classes, w_dim) for class-conditional generators; std: scalar, the RMS
  distance of sampled w to their mean (the StyleGAN2 projector's w_std)."""
  mean: jax.Array
  std: jax.Array


def w_statistics(generator: nn.Module, variables: Any, key: jax.Array, num_samples: int = 10_000) -> WStatistics:
  """Mean and spread of w = mapping(z), z ~ N(0, I) (per class for class-conditional generators)."""
  check_space(generator, "w")
  z_dim = z_dim_of(variables)
  num_classes = getattr(generator, "num_classes", 0)
  if getattr(generator, "cond_dim", 0):
    raise ValueError("W statistics of a generator conditioned on vectors need their distribution; "
                     "invert in 'z' or pass init= latents of your own.")
  return _w_statistics(generator, num_samples, z_dim, num_classes, variables, key)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _w_statistics(generator: nn.Module, num_samples: int, z_dim: int, num_classes: int, variables: Any,
                  key: jax.Array) -> WStatistics:
  z = jax.random.normal(key, (num_samples, z_dim), jnp.float32)

  def mapping(labels):
    return generator.apply(variables, z, labels, method=generator.mapping, train=False, psi=1.0)

  if num_classes:
    ws = jnp.stack([mapping(jnp.full((num_samples,), c, jnp.int32)) for c in range(num_classes)])
    mean = ws.mean(axis=1)
    std = jnp.sqrt(jnp.sum(jnp.square(ws - mean[:, None])) / (num_classes * num_samples))
    return WStatistics(mean, std)
  ws = mapping(None)
  mean = ws.mean(axis=0)
  return WStatistics(mean, jnp.sqrt(jnp.sum(jnp.square(ws - mean)) / num_samples))


def z_dim_of(variables: Any) -> int:
  """z_dim of a StyleGAN from its variables: the first mapping layer's fan-in is z_dim plus w_dim
  per condition embedding (class, vector)."""
  kernel = variables["params"]["mapping_network"]["fc0"]["kernel"]
  extra = sum(kernel.shape[-1] for name in ("class_embed", "cond_embed")
              if name in variables["params"]["mapping_network"])
  return kernel.shape[0] - extra


def initial_latents(generator: nn.Module, variables: Any, space: str, num: int, key: jax.Array,
                    stats: Optional[WStatistics] = None, labels: Optional[jax.Array] = None,
                    z_dim: Optional[int] = None) -> jax.Array:
  """Where optimisation starts: the mean w (of the image's class for conditional generators) for
  "w" / "w+"; z ~ N(0, I) from `key` for "z" (z_dim needed for non-StyleGAN generators)."""
  check_space(generator, space)
  if space == "z":
    if z_dim is None:
      if not is_stylegan(generator):
        raise ValueError("initial_latents(space='z') needs z_dim for non-StyleGAN generators.")
      z_dim = z_dim_of(variables)
    return jax.random.normal(key, (num, z_dim), jnp.float32)
  if stats is None:
    stats = w_statistics(generator, variables, key)
  mean = stats.mean
  if mean.ndim == 2:
    if labels is None:
      raise ValueError("This generator is class-conditional: pass labels (N,) to start from each class's mean w.")
    w = mean[labels]
  else:
    w = jnp.broadcast_to(mean, (num, mean.shape[-1]))
  return w if space == "w" else broadcast_w(w, generator.num_ws)


# --- Optimisation --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProjectionOptions:
  """Settings of `project` (defaults: the StyleGAN2 projector's, with fewer steps).

  pixel_weight / perceptual_weight: weights of the per-image MSE (images in [-1, 1]) and of the
    perceptual distance (when a perceptual function is given).
  learning_rate, rampup, rampdown: peak Adam step size; linear warm-up over the first `rampup`
    fraction of the steps, cosine ramp-down over the last `rampdown` fraction.
  latent_noise, noise_ramp: w (not z) is perturbed by N(0, (w_std * latent_noise * r^2)^2) with
    r = max(0, 1 - t / noise_ramp) falling to 0 over the first `noise_ramp` fraction of the steps:
    it keeps early steps from settling in a poor basin.
  noise: "none", "fixed" or "optimize" (StyleGAN noise maps, see the module docstring).
  noise_weight: weight of `noise_regularization` when the noise is optimised. StyleGAN2 uses 1e5
    next to LPIPS at 256-1024 px; here the 4x4 and 8x8 maps dominate the sum (white noise maps of
    a 16x16 generator score ~0.2 per image, the 4x4 one most) and 1e3 already froze the maps of a
    16x16 test generator (15 dB, as with fixed noise), while 1 let them fit (26-31 dB) and stay
    white.
  """
  steps: int = 300
  learning_rate: float = 0.1
  rampup: float = 0.05
  rampdown: float = 0.25
  pixel_weight: float = 1.0
  perceptual_weight: float = 1.0
  latent_noise: float = 0.05
  noise_ramp: float = 0.75
  noise: str = "fixed"
  noise_weight: float = 1.0

  def validate(self) -> None:
    if self.steps < 0:
      raise ValueError(f"steps must be >= 0, got {self.steps}.")
    if self.noise not in NOISE_MODES:
      raise ValueError(f"Unknown noise mode {self.noise!r}; valid: {', '.join(NOISE_MODES)}.")
    for name in ("learning_rate", "pixel_weight", "perceptual_weight", "latent_noise", "noise_weight"):
      if getattr(self, name) < 0:
        raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
    for name in ("rampup", "rampdown", "noise_ramp"):
      if not 0 < getattr(self, name) <= 1:
        raise ValueError(f"{name} is a fraction of the steps in (0, 1], got {getattr(self, name)}.")


def projector_learning_rate(step: jax.Array, options: ProjectionOptions) -> jax.Array:
  """StyleGAN2 projector schedule: lr * min(1, t / rampup) * (1/2 - 1/2 cos(pi * min(1, (1 - t) / rampdown))),
  t = step / steps."""
  t = jnp.asarray(step, jnp.float32) / max(options.steps, 1)
  ramp = jnp.minimum(1.0, (1.0 - t) / options.rampdown)
  ramp = 0.5 - 0.5 * jnp.cos(jnp.pi * ramp)
  return options.learning_rate * ramp * jnp.minimum(1.0, t / options.rampup)


class ProjectionResult(NamedTuple):
  """latents: in the projection's space; noise: the noise maps used (None without noise); images:
  the final reconstructions (N, S, S, C) in [-1, 1]; losses: (steps,) mean per-image loss before
  each step (reconstruction terms only)."""
  latents: jax.Array
  noise: Optional[Any]
  images: jax.Array
  losses: jax.Array


def reconstruction_loss(images: jax.Array, targets: jax.Array, options: ProjectionOptions,
                        perceptual: Optional[Perceptual] = None,
                        weights: Optional[jax.Array] = None) -> jax.Array:
  """Per-image loss (N,): pixel_weight * MSE + perceptual_weight * perceptual(images, targets).

  weights: optional (N, S, S, 1) in [0, 1], how much each pixel counts (masked inversion: 0 on a
  hole). The MSE is then the weighted mean over the weighted pixels, and the perceptual distance
  compares images * weights with targets * weights (the hole is blanked in both).
  """
  if weights is None:
    mse = jnp.mean(jnp.square(images - targets), axis=(1, 2, 3))
  else:
    weights = jnp.broadcast_to(weights, images.shape[:3] + (1,))
    total = jnp.sum(weights, axis=(1, 2, 3)) * images.shape[-1]
    mse = jnp.sum(weights * jnp.square(images - targets), axis=(1, 2, 3)) / jnp.maximum(total, 1e-8)
  loss = options.pixel_weight * mse
  if perceptual is not None and options.perceptual_weight:
    if weights is not None:
      images, targets = images * weights, targets * weights
    loss = loss + options.perceptual_weight * perceptual(images, targets)
  return loss


@functools.lru_cache(maxsize=32)
def make_projector(generator: nn.Module, space: str, options: ProjectionOptions = ProjectionOptions(),
                   perceptual: Optional[Perceptual] = None) -> Callable[..., ProjectionResult]:
  """A projector(variables, targets, init, noise, key, w_std, labels=None, weights=None)
  -> ProjectionResult, built from jitted start / step / finish functions.

  targets: (N, S, S, C) in [-1, 1]; init: starting latents in `space` (`initial_latents`); noise:
  a noise tree (`draw_noise`) or None (required for noise="fixed" / "optimize" with StyleGAN,
  ignored otherwise); key: for the latent perturbation; w_std: scalar (WStatistics.std, unused in
  "z"); labels: (N,) for conditional generators in "z"; weights: (N, S, S, 1) pixel weights of the
  loss (see reconstruction_loss), e.g. 0 on a hole to fill. The compiled program is reused for arrays
  of the same shapes, and projectors are cached by (generator, space, options, perceptual), so
  repeated `project` calls with the same settings compile once.
  """
  check_space(generator, space)
  options.validate()
  tx = optax.adam(lambda count: projector_learning_rate(count, options))
  optimize_noise = options.noise == "optimize"
  perturb = space != "z" and options.latent_noise > 0

  def loss_fn(params, fixed_noise, variables, targets, labels, offset, weights):
    noise = params["noise"] if optimize_noise else fixed_noise
    images = render(generator, variables, params["latents"] + offset, space, labels, noise)
    per_image = reconstruction_loss(images, targets, options, perceptual, weights)
    total = jnp.sum(per_image)
    if optimize_noise:
      total = total + options.noise_weight * noise_regularization(noise)
    return total, per_image

  @jax.jit
  def start(init, noise):
    # A copy: the step donates the latents, and `init` is the caller's array.
    params = {"latents": jnp.array(init, copy=True)}
    if optimize_noise:
      params["noise"] = normalize_noise(noise)
    return params, tx.init(params)

  # One jitted step driven from Python rather than a rolled `lax.scan` over the steps: XLA:CPU ran
  # the generator's convolutions ~5x slower inside the rolled loop (136 vs 30 ms per step for 4
  # images, 64 px products StyleGAN, W+), the pattern found in Gatys and the WGAN critic loop too.
  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(params, opt_state, t, variables, targets, noise, key, w_std, labels, weights):
    offset = jnp.zeros_like(params["latents"])
    if perturb:
      frac = t.astype(jnp.float32) / max(options.steps, 1)
      scale = w_std * options.latent_noise * jnp.square(jnp.maximum(0.0, 1.0 - frac / options.noise_ramp))
      offset = jax.random.normal(jax.random.fold_in(key, t), offset.shape, jnp.float32) * scale
    (_, per_image), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, noise, variables, targets, labels, offset, weights)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    if optimize_noise:
      params = {**params, "noise": normalize_noise(params["noise"])}
    return params, opt_state, jnp.mean(per_image)

  @jax.jit
  def finish(params, variables, noise, labels):
    final_noise = params["noise"] if optimize_noise else noise
    return final_noise, render(generator, variables, params["latents"], space, labels, final_noise)

  def projector(variables, targets, init, noise, key, w_std, labels=None, weights=None,
                steps: Optional[int] = None) -> ProjectionResult:
    """steps: run this many steps instead of options.steps (the schedules stay those of
    options.steps), e.g. 1 to compile before timing."""
    if options.noise == "none" or not is_stylegan(generator):
      noise = None
    elif noise is None:
      raise ValueError(f"noise={options.noise!r} needs noise maps: pass draw_noise(generator, variables, N, key).")
    params, opt_state = start(init, noise)
    losses = []
    for t in range(options.steps if steps is None else steps):
      params, opt_state, loss = step(params, opt_state, np.int32(t), variables, targets, noise, key,
                                     w_std, labels, weights)
      losses.append(loss)
    final_noise, images = finish(params, variables, noise, labels)
    losses = jnp.stack(losses) if losses else jnp.zeros((0,), jnp.float32)
    return ProjectionResult(params["latents"], final_noise, images, losses)

  return projector


def project(generator: nn.Module, variables: Any, targets: jax.Array, key: jax.Array, *, space: str = "w+",
            options: ProjectionOptions = ProjectionOptions(), perceptual: Optional[Perceptual] = None,
            labels: Optional[jax.Array] = None, init: Optional[jax.Array] = None, noise: Optional[Any] = None,
            stats: Optional[WStatistics] = None, z_dim: Optional[int] = None,
            weights: Optional[jax.Array] = None) -> ProjectionResult:
  """Optimisation-based inversion of `targets` (N, S, S, C) in [-1, 1] into `space`.

  weights: (N, S, S, 1) pixel weights of the loss (0 = ignore the pixel: masked inversion).

  init: starting latents (e.g. an encoder's ws for "w+"); default `initial_latents`. noise: the
  StyleGAN noise maps to keep ("fixed") or to start from ("optimize"); default drawn from `key`.
  stats: the generator's WStatistics (computed from 10,000 samples when needed and not given).
  See make_projector to invert many batches with one compilation.
  """
  targets = jnp.asarray(targets, jnp.float32)
  if targets.ndim != 4:
    raise ValueError(f"targets must be images (N, S, S, C) in [-1, 1], got shape {targets.shape}.")
  check_space(generator, space)
  options.validate()
  init_key, noise_key, stats_key, run_key = jax.random.split(key, 4)
  n = targets.shape[0]
  if space != "z" and stats is None and (init is None or options.latent_noise > 0):
    stats = w_statistics(generator, variables, stats_key)
  if init is None:
    init = initial_latents(generator, variables, space, n, init_key, stats, labels, z_dim)
  init = jnp.asarray(init, jnp.float32)
  made = jax.eval_shape(lambda: render(generator, variables, init, space, labels))
  if made.shape != targets.shape:
    raise ValueError(f"targets have shape {targets.shape} but the generator makes {made.shape} from these "
                     "latents: resize the images to the generator's resolution and channels.")
  if is_stylegan(generator) and options.noise != "none" and noise is None:
    noise = draw_noise(generator, variables, n, noise_key)
  w_std = stats.std if stats is not None else jnp.zeros((), jnp.float32)
  projector = make_projector(generator, space, options, perceptual)
  if weights is not None:
    weights = jnp.asarray(weights, jnp.float32)
    if weights.shape != targets.shape[:3] + (1,):
      raise ValueError(f"weights must be (N, S, S, 1) = {targets.shape[:3] + (1,)}, got {weights.shape}.")
  return projector(variables, targets, init, noise, run_key, w_std, labels, weights)


def lpips_perceptual(net: str = "vgg") -> Perceptual:
  """LPIPS v0.1 (gan.metrics.lpips) as the perceptual distance, as in StyleGAN2's projector (LPIPS-VGG):
  (a, b) (N, S, S, C) in [-1, 1] -> (N,) distances; grey images replicated to RGB, images smaller
  than LPIPS's minimum (16 px for VGG, 31 for Alex) bilinearly upsampled to it first."""
  model = lpips.cached(net)

  def distance(a: jax.Array, b: jax.Array) -> jax.Array:
    side = min(a.shape[1:3])
    if side < lpips.MIN_SIZE[net]:
      scale = lpips.MIN_SIZE[net] / side
      shape = (a.shape[0], round(a.shape[1] * scale), round(a.shape[2] * scale), a.shape[-1])
      a, b = jax.image.resize(a, shape, "bilinear"), jax.image.resize(b, shape, "bilinear")
    return lpips.distance(model, a, b)
  return distance


def resolve_perceptual(choice: str, classifier_dir: Optional[str]) -> str:
  """The perceptual term `choice` ("auto" resolved from what this machine has, see PERCEPTUAL_TERMS);
  ValueError naming the fix when an explicit choice cannot be had."""
  if choice not in PERCEPTUAL_TERMS:
    raise ValueError(f"Unknown perceptual term {choice!r}; valid: {', '.join(PERCEPTUAL_TERMS)}.")
  has_classifier = bool(classifier_dir) and os.path.isdir(os.path.join(classifier_dir, "checkpoints"))
  if choice == "auto":
    return "lpips_vgg" if lpips.available("vgg") else "classifier" if has_classifier else "none"
  if choice == "lpips_vgg" and not lpips.available("vgg"):
    raise ValueError("The LPIPS-VGG perceptual term needs its weights: run python -m gan.weights fetch lpips "
                     "(or choose the perceptual term classifier or none).")
  if choice == "classifier" and not has_classifier:
    raise ValueError(f"The classifier perceptual term needs a trained domain classifier in {classifier_dir!r}: "
                     "python -m gan.main --config configs/classifier_products.py --workdir runs/classifier_products "
                     "(or choose lpips_vgg or none).")
  return choice


def classifier_perceptual(model: classifier_lib.Classifier, variables: Any,
                          image_size: Optional[int] = None) -> Perceptual:
  """The domain classifier's perceptual distance (gan.metrics.classifier.perceptual_distance) as a
  loss, images bilinearly resized to `image_size` (the classifier's training size) when they differ."""
  def distance(a: jax.Array, b: jax.Array) -> jax.Array:
    if image_size is not None and a.shape[1] != image_size:
      shape = (a.shape[0], image_size, image_size, a.shape[-1])
      a, b = jax.image.resize(a, shape, "bilinear"), jax.image.resize(b, shape, "bilinear")
    return classifier_lib.perceptual_distance(model, variables, a, b)
  return distance


# --- Encoder -------------------------------------------------------------------------------------


class Encoder(nn.Module):
  """Images (N, S, S, C) in [-1, 1] -> W+ offsets (N, num_ws, w_dim) from the mean w.

  3x3 conv, then stride-2 3x3 convs (channels doubling, capped at 8 * width) down to 4x4, a hidden
  dense layer and a zero-initialised output layer (training starts at the mean w). per_layer=False
  predicts one w for every layer (the W space).
  """
  num_ws: int
  w_dim: int
  width: int = 32
  hidden: int = 512
  per_layer: bool = True

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = nn.leaky_relu(nn.Conv(self.width, (3, 3))(images), 0.2)
    channels = self.width
    while x.shape[1] > 4:
      channels = min(2 * channels, 8 * self.width)
      x = nn.leaky_relu(nn.Conv(channels, (3, 3), strides=(2, 2))(x), 0.2)
    x = nn.leaky_relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)), 0.2)
    outputs = self.num_ws if self.per_layer else 1
    y = nn.Dense(outputs * self.w_dim, kernel_init=nn.initializers.zeros)(x)
    y = y.reshape(x.shape[0], outputs, self.w_dim)
    return jnp.broadcast_to(y, (x.shape[0], self.num_ws, self.w_dim))


class TrainedEncoder(NamedTuple):
  """encoder: the module; params: its parameters; w_mean: (w_dim,) the mean w its outputs add to."""
  encoder: Encoder
  params: Any
  w_mean: jax.Array


def encode(trained: TrainedEncoder, images: jax.Array) -> jax.Array:
  """W+ latents (N, num_ws, w_dim) of images (N, S, S, C) in [-1, 1]."""
  return _encode(trained.encoder, trained.params, trained.w_mean, jnp.asarray(images, jnp.float32))


@functools.partial(jax.jit, static_argnums=0)
def _encode(encoder: Encoder, params: Any, w_mean: jax.Array, images: jax.Array) -> jax.Array:
  return encoder.apply({"params": params}, images) + w_mean


def mix_styles(key: jax.Array, ws: jax.Array, ws2: jax.Array, prob: float) -> jax.Array:
  """Per sample, with probability `prob`, layers from a random crossover index on take ws2 (N, L, D)."""
  n, num_ws, _ = ws.shape
  cut_key, mix_key = jax.random.split(key)
  cutoff = jax.random.randint(cut_key, (n,), 1, num_ws)
  cutoff = jnp.where(jax.random.uniform(mix_key, (n,)) < prob, cutoff, num_ws)
  return jnp.where((jnp.arange(num_ws)[None, :] < cutoff[:, None])[..., None], ws, ws2)


# The encoder's training (task "inversion_encoder", gan/tasks/inversion_encoder.py; the shared loop
# checkpoints and resumes it): config.encoder holds the loss weights and the Encoder's shape; the
# generator's num_ws and w_dim are written into it at the run's first start.

ENCODER_TASK = "inversion_encoder"
ENCODER_TRAIN_COMMAND = ("python -m gan.main --config configs/inversion_encoder_products.py --workdir {workdir} "
                         "--config.encoder.generator_workdir=GENERATOR_RUN")


class EncoderState(NamedTuple):
  """step: int32 scalar; params / opt_state: the Encoder's and its Adam state; w_mean (w_dim,) the
  mean w the encoder's outputs add to; w_var: scalar, the mean per-dimension variance of w (the
  latent loss's scale). The w statistics are measured once at the start and kept with the weights."""
  step: jax.Array
  params: Any
  opt_state: optax.OptState
  w_mean: jax.Array
  w_var: jax.Array


def make_encoder(config: Any) -> Encoder:
  e = config.encoder
  return Encoder(num_ws=e.num_ws, w_dim=e.w_dim, width=e.width, hidden=e.hidden, per_layer=e.per_layer)


def make_encoder_optimizer(config: Any) -> optax.GradientTransformation:
  """Adam at optimizer.lr with cosine decay to 10% over train.steps."""
  return optax.adam(optax.cosine_decay_schedule(config.optimizer.lr, config.train.steps, alpha=0.1))


def encoder_keys(config: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(w statistics key, initialisation key, key of the per-step draws), from config.seed."""
  stats_key, init_key, loop_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  return stats_key, init_key, loop_key


def init_encoder_state(config: Any, stats: WStatistics) -> EncoderState:
  """Step 0 for images (1, S, S, C) of config.data; `stats`: the generator's WStatistics."""
  encoder, tx = make_encoder(config), make_encoder_optimizer(config)
  size, channels = config.data.image_size, config.data.channels
  params = encoder.init(encoder_keys(config)[1], jnp.zeros((1, size, size, channels), jnp.float32))["params"]
  w_mean = stats.mean.mean(axis=0) if stats.mean.ndim == 2 else stats.mean
  w_var = jnp.square(stats.std) / w_mean.shape[-1]   # mean per-dimension variance
  return EncoderState(jnp.zeros((), jnp.int32), params, tx.init(params), w_mean, w_var)


def encoder_abstract_state(config: Any) -> EncoderState:
  """The EncoderState's shapes (jax.ShapeDtypeStruct leaves), from the config alone."""
  w_dim = config.encoder.w_dim
  stats = WStatistics(jax.ShapeDtypeStruct((w_dim,), jnp.float32), jax.ShapeDtypeStruct((), jnp.float32))
  return jax.eval_shape(lambda s: init_encoder_state(config, s), stats)


def encoder_shape_signature(config: Any) -> dict[str, Any]:
  """The config values that fix the EncoderState's shapes (saved with every checkpoint)."""
  e = config.encoder
  return {"encoder.num_ws": e.num_ws, "encoder.w_dim": e.w_dim, "encoder.width": e.width,
          "encoder.hidden": e.hidden, "encoder.per_layer": e.per_layer,
          "data.image_size": config.data.image_size, "data.channels": config.data.channels}


def make_encoder_step(config: Any, generator: nn.Module, variables: Any, perceptual: Optional[Perceptual] = None
                      ) -> Callable[[EncoderState, dict[str, jax.Array]], tuple[EncoderState, dict[str, jax.Array]]]:
  """A pure (state, {"image": real photos (B, S, S, C) in [-1, 1]}) -> (state, metrics) step, not jitted.

  Each step draws B latents from fold_in(encoder_keys(config)[2], step): z -> w (style-mixed to
  W+ with encoder.mixing_prob), renders G(ws) with random noise, and minimises
    latent_weight * |E(G(ws)) - ws|^2 / var(w) + reconstruction(G(E(G(ws))), G(ws))
    + real_weight * reconstruction(G(E(x)), x)     (the real photos; as pSp trains on real images)
  with reconstruction = pixel_weight * MSE + perceptual_weight * perceptual (when given). Metrics:
  "latent", "reconstruction", "real_reconstruction" (when real_weight > 0) and "total".
  """
  check_space(generator, "w+")
  if getattr(generator, "cond_dim", 0):
    raise ValueError("The encoder supports unconditional and class-conditional StyleGANs, not vector conditions.")
  e = config.encoder
  encoder, tx = make_encoder(config), make_encoder_optimizer(config)
  z_dim, num_ws, n = z_dim_of(variables), generator.num_ws, config.train.batch_size
  num_classes = getattr(generator, "num_classes", 0)
  loop_key = encoder_keys(config)[2]

  def reconstruction(images, targets):
    loss = e.pixel_weight * jnp.mean(jnp.square(images - targets), axis=(1, 2, 3))
    if perceptual is not None and e.perceptual_weight:
      loss = loss + e.perceptual_weight * perceptual(images, targets)
    return jnp.mean(loss)

  def synth(ws, noise_key):
    return generator.apply(variables, ws, method=generator.synthesis, train=False, rngs={"noise": noise_key})

  def step(state: EncoderState, batch: dict[str, jax.Array]):
    z_key, z2_key, label_key, mix_key, noise_key, noise2_key = jax.random.split(
        jax.random.fold_in(loop_key, state.step), 6)
    labels = jax.random.randint(label_key, (n,), 0, num_classes) if num_classes else None

    def mapping(k):
      z = jax.random.normal(k, (n, z_dim), jnp.float32)
      return broadcast_w(generator.apply(variables, z, labels, method=generator.mapping, train=False, psi=1.0),
                         num_ws)

    ws = mix_styles(mix_key, mapping(z_key), mapping(z2_key), e.mixing_prob)
    images = synth(ws, noise_key)

    def loss_fn(params):
      predicted = encoder.apply({"params": params}, images) + state.w_mean
      metrics = {"latent": jnp.mean(jnp.square(predicted - ws)) / state.w_var}
      metrics["reconstruction"] = reconstruction(synth(predicted, noise2_key), images)
      total = e.latent_weight * metrics["latent"] + metrics["reconstruction"]
      if e.real_weight:
        real = batch["image"]
        predicted_real = encoder.apply({"params": params}, real) + state.w_mean
        metrics["real_reconstruction"] = reconstruction(synth(predicted_real, noise2_key), real)
        total = total + e.real_weight * metrics["real_reconstruction"]
      metrics["total"] = total
      return total, metrics

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return state._replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                          opt_state=opt_state), metrics

  return step


def load_encoder(directory: str) -> tuple[TrainedEncoder, dict]:
  """(TrainedEncoder, checkpoint meta) of the latest checkpoint of an encoder run (single device).

  Raises:
    FileNotFoundError: no run, or no checkpoint yet, in `directory` (the message gives the command).
    ValueError: a run of another task, or checkpoints that do not fit or cannot be read.
  """
  command = ENCODER_TRAIN_COMMAND.format(workdir=directory).replace(
      "GENERATOR_RUN", os.path.dirname(os.path.normpath(directory)) or ".")
  config = runs.load_task_config(directory, ENCODER_TASK, "an inversion encoder", command)
  try:
    state, meta = runs.restore_checkpoint(directory, runs.on_one_device(encoder_abstract_state(config)),
                                          encoder_shape_signature(config), config.train.keep_checkpoints,
                                          train_command=command.replace(directory, "{workdir}"))
  except runs.RunError as e:   # no checkpoint yet
    raise FileNotFoundError(str(e)) from None
  return TrainedEncoder(make_encoder(config), state.params, state.w_mean), meta
