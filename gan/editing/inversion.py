"""GAN inversion: find the latent whose generated image reproduces a given (real) image.

Two ways, composable:
  optimization  `project` (or a reusable `make_projector`): Adam on the latent, minimising a pixel
                MSE plus a perceptual distance (e.g. the domain classifier's, `classifier_perceptual`),
                with the StyleGAN2 projector's learning-rate ramp (`projector_learning_rate`), a
                decaying Gaussian perturbation of w early on, and optionally optimised per-layer noise
                maps kept white by `noise_regularization` and renormalised after every step.
  encoder       `train_encoder` fits a small conv net on (G(w), w) pairs drawn from the generator
                (plus, optionally, reconstruction of real photos) to predict W+ in one forward pass
                (`encode`); `project(..., init=encode(...))` refines its guess. `save_encoder` /
                `load_encoder` keep it next to the run (npz + json).

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
import json
import math
import os
from typing import Any, Callable, NamedTuple, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from gan.metrics import classifier as classifier_lib

SPACES = ("z", "w", "w+")
NOISE_MODES = ("none", "fixed", "optimize")
Perceptual = Callable[[jax.Array, jax.Array], jax.Array]   # (a, b) images -> (N,) distances


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


@dataclasses.dataclass(frozen=True)
class EncoderOptions:
  """Settings of `train_encoder`.

  latent_weight: weight of the W+ regression loss, mean squared error divided by the per-dimension
    variance of w (so 1 ~ predicting the mean).
  pixel_weight / perceptual_weight: weights of the reconstruction loss of G(encoder(x)) against x
    (the perceptual term needs a perceptual function).
  mixing_prob: style mixing of the training latents, so that the targets cover W+ and not only W.
  real_weight: weight of the reconstruction loss on real images (when given), which narrows the
    gap between generated training images and real photos (as pSp trains on real images).
  """
  steps: int = 2000
  batch_size: int = 32
  learning_rate: float = 1e-3
  width: int = 32
  hidden: int = 512
  per_layer: bool = True
  latent_weight: float = 1.0
  pixel_weight: float = 1.0
  perceptual_weight: float = 1.0
  mixing_prob: float = 0.5
  real_weight: float = 1.0
  log_every: int = 100


def train_encoder(generator: nn.Module, variables: Any, key: jax.Array, options: EncoderOptions = EncoderOptions(),
                  perceptual: Optional[Perceptual] = None, real_images: Optional[np.ndarray] = None,
                  stats: Optional[WStatistics] = None, log: Optional[Callable[[int, dict], None]] = None
                  ) -> tuple[TrainedEncoder, list[dict[str, float]]]:
  """Fits an Encoder to invert `generator` (StyleGAN, unconditional or conditional).

  Each step draws z, maps to w (style-mixed to W+), renders G(ws) with random noise, and minimises
  latent_weight * |E(G(ws)) - ws|^2 / var(w) + reconstruction(G(E(G(ws))), G(ws)); with real_images
  (M, S, S, C) float in [-1, 1] also real_weight * reconstruction(G(E(x)), x) on a batch of them.
  Returns (TrainedEncoder, history): history holds the mean losses over every `log_every` steps
  (and the last, shorter stretch).
  """
  check_space(generator, "w+")
  if min(options.steps, options.batch_size, options.log_every) < 1:
    raise ValueError(f"steps, batch_size and log_every must be >= 1, got {options.steps}, {options.batch_size} "
                     f"and {options.log_every}.")
  if getattr(generator, "cond_dim", 0):
    raise ValueError("train_encoder supports unconditional and class-conditional StyleGANs, not vector conditions.")
  stats_key, init_key, loop_key = jax.random.split(key, 3)
  stats = stats if stats is not None else w_statistics(generator, variables, stats_key)
  w_mean = stats.mean.mean(axis=0) if stats.mean.ndim == 2 else stats.mean
  w_var = jnp.square(stats.std) / w_mean.shape[-1]   # mean per-dimension variance
  z_dim, num_ws, w_dim = z_dim_of(variables), generator.num_ws, w_mean.shape[-1]
  num_classes = getattr(generator, "num_classes", 0)
  size = generator.image_size
  channels = generator.channels
  encoder = Encoder(num_ws=num_ws, w_dim=w_dim, width=options.width, hidden=options.hidden,
                    per_layer=options.per_layer)
  params = encoder.init(init_key, jnp.zeros((1, size, size, channels), jnp.float32))["params"]
  tx = optax.adam(optax.cosine_decay_schedule(options.learning_rate, options.steps, alpha=0.1))
  opt_state = tx.init(params)
  if real_images is not None:
    real_images = np.asarray(real_images, np.float32)
    if real_images.shape[1:] != (size, size, channels):
      raise ValueError(f"real_images must be (M, {size}, {size}, {channels}) in [-1, 1], got {real_images.shape}.")

  def reconstruction(images, targets):
    loss = options.pixel_weight * jnp.mean(jnp.square(images - targets), axis=(1, 2, 3))
    if perceptual is not None and options.perceptual_weight:
      loss = loss + options.perceptual_weight * perceptual(images, targets)
    return jnp.mean(loss)

  def synth(ws, noise_key):
    return generator.apply(variables, ws, method=generator.synthesis, train=False, rngs={"noise": noise_key})

  def loss_fn(params, ws, images, noise_key, real):
    predicted = encoder.apply({"params": params}, images) + w_mean
    metrics = {"latent": jnp.mean(jnp.square(predicted - ws)) / w_var}
    metrics["reconstruction"] = reconstruction(synth(predicted, noise_key), images)
    total = options.latent_weight * metrics["latent"] + metrics["reconstruction"]
    if real is not None:
      predicted_real = encoder.apply({"params": params}, real) + w_mean
      metrics["real_reconstruction"] = reconstruction(synth(predicted_real, noise_key), real)
      total = total + options.real_weight * metrics["real_reconstruction"]
    metrics["total"] = total
    return total, metrics

  @jax.jit
  def train_step(params, opt_state, step, real):
    z_key, z2_key, label_key, mix_key, noise_key, noise2_key = jax.random.split(jax.random.fold_in(loop_key, step), 6)
    n = options.batch_size
    labels = jax.random.randint(label_key, (n,), 0, num_classes) if num_classes else None
    def mapping(k):
      z = jax.random.normal(k, (n, z_dim), jnp.float32)
      w = generator.apply(variables, z, labels, method=generator.mapping, train=False, psi=1.0)
      return broadcast_w(w, num_ws)
    ws = mix_styles(mix_key, mapping(z_key), mapping(z2_key), options.mixing_prob)
    images = synth(ws, noise_key)
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, ws, images, noise2_key, real)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, metrics

  rng = np.random.default_rng(int(jax.random.randint(loop_key, (), 0, 2 ** 31 - 1)))
  history, pending = [], []
  for step in range(options.steps):
    real = None
    if real_images is not None:
      real = jnp.asarray(real_images[rng.integers(0, len(real_images), options.batch_size)])
    params, opt_state, metrics = train_step(params, opt_state, step, real)
    pending.append(metrics)
    if (step + 1) % options.log_every == 0 or step + 1 == options.steps:
      fetched = jax.device_get(pending)
      pending.clear()
      record = {"step": step + 1, **{k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}}
      if not all(math.isfinite(v) for v in record.values()):
        raise FloatingPointError(f"Encoder training diverged at step {step + 1}: {record}; lower the learning rate.")
      history.append(record)
      if log is not None:
        log(step + 1, record)
  return TrainedEncoder(encoder, params, w_mean), history


ENCODER_FILES = ("encoder.npz", "encoder.json")


def save_encoder(directory: str, trained: TrainedEncoder, meta: Optional[dict] = None) -> None:
  """Writes directory/encoder.npz (parameters by "/"-joined path, and w_mean) and encoder.json
  (the Encoder's fields and `meta`)."""
  os.makedirs(directory, exist_ok=True)
  flat = flax.traverse_util.flatten_dict(jax.device_get(trained.params), sep="/")
  np.savez(os.path.join(directory, ENCODER_FILES[0]), w_mean=np.asarray(trained.w_mean),
           **{f"params/{k}": np.asarray(v) for k, v in flat.items()})
  fields = {f.name: getattr(trained.encoder, f.name) for f in dataclasses.fields(Encoder)
            if f.name not in ("parent", "name")}
  with open(os.path.join(directory, ENCODER_FILES[1]), "w", encoding="utf-8") as f:
    json.dump({"encoder": fields, "meta": meta or {}}, f, indent=1)


def load_encoder(directory: str) -> tuple[TrainedEncoder, dict]:
  """(TrainedEncoder, meta) saved by `save_encoder`."""
  paths = [os.path.join(directory, name) for name in ENCODER_FILES]
  missing = [p for p in paths if not os.path.isfile(p)]
  if missing:
    raise FileNotFoundError(f"No trained encoder in {directory} ({', '.join(missing)} missing). Train one with "
                            "gan.editing.inversion.train_encoder and save_encoder (experiments/benchmark_editing.py "
                            "does both).")
  with open(paths[1], encoding="utf-8") as f:
    saved = json.load(f)
  with np.load(paths[0]) as data:
    w_mean = jnp.asarray(data["w_mean"])
    flat = {k[len("params/"):]: jnp.asarray(data[k]) for k in data.files if k.startswith("params/")}
  params = flax.traverse_util.unflatten_dict(flat, sep="/")
  return TrainedEncoder(Encoder(**saved["encoder"]), params, w_mean), saved["meta"]
