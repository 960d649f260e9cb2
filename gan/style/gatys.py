"""Optimisation-based style transfer (Gatys, Ecker & Bethge 2016) with any feature extractor.

The image itself is optimised so that its features at the content layers match the content
image's and its Gram matrices at the style layers match the style's:

  total = content_weight * sum_l c_l mean((F_l(x) - F_l(content))^2)
        + style_weight   * sum_l w_l mean((G_l(x) - G_l(style))^2)
        + tv_weight      * total_variation(x)

with c_l = 1 / (number of content layers), w_l = `layer_weights` (default 1 / number of style
layers) and G the Gram matrix normalised by h * w (gan/losses/style.py).

Loss scale: the content term is quadratic and the style term quartic in the extractor's
activations, so the useful style_weight / content_weight ratio depends on the extractor (its
activation magnitude and channel count) and on the layers. The default 1e3 is a starting point,
not a calibrated value: read `StylizeResult.history` (the weighted terms) and raise style_weight
until the style term dominates the first steps, lower it if the content disappears.

Range: the pixels are optimised directly and clipped to [-1, 1] after every step (projected
optimisation). A tanh parametrisation was not used because product photos are mostly pure white
(+1): its gradient vanishes there, so the background would hardly change. L-BFGS keeps working
with the projection because optax's L-BFGS builds its curvature pairs from the actual parameter
differences; its line search runs on unclipped candidates, and the value and gradient are
recomputed at the clipped point each step.

Several styles are blended through their Gram matrices: the targets are the weighted mean of the
styles' Grams (`gan.losses.style.blend_statistics`). Multi-resolution (`scales`, e.g. (0.5, 1))
optimises a downscaled problem first (content and styles resized by the scale) and upsamples its
result as the initial image of the next scale: coarse structure converges in fewer steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan.losses import style as style_losses
from gan.style.features import FeatureExtractor, check_layers

OPTIMIZERS = ("adam", "lbfgs")
INITS = ("content", "noise")
HISTORY_KEYS = ("content", "style", "tv", "total")


class StylizeResult(NamedTuple):
  """Output of `stylize`.

  Attributes:
    image: (H, W, 3) float32 in [-1, 1].
    history: {"content", "style", "tv", "total"}: (steps * len(scales),) float32, the weighted
      loss terms at the start of every step (total = content + style + tv), and "scale": the scale
      each step ran at. Losses of different scales are not comparable (other images sizes).
    seconds: wall-clock time of the whole call, compilation included.
  """
  image: np.ndarray
  history: dict[str, np.ndarray]
  seconds: float


def _as_batch(image: np.ndarray | jax.Array, what: str) -> jax.Array:
  """(H, W, 3) or (1, H, W, 3) -> (1, H, W, 3) float32."""
  image = jnp.asarray(image, jnp.float32)
  if image.ndim == 3:
    image = image[None]
  if image.ndim != 4 or image.shape[0] != 1 or image.shape[-1] != 3:
    raise ValueError(f"{what} must be (H, W, 3) or (1, H, W, 3), got {image.shape}.")
  return image


def _resize(image: jax.Array, height: int, width: int) -> jax.Array:
  """(1, h, w, 3) -> (1, height, width, 3), bilinear (antialiased when shrinking)."""
  if image.shape[1:3] == (height, width):
    return image
  return jax.image.resize(image, (1, height, width, 3), "linear", antialias=True)


def _scaled_size(image: jax.Array, scale: float) -> tuple[int, int]:
  return max(1, round(image.shape[1] * scale)), max(1, round(image.shape[2] * scale))


def style_targets(styles: Sequence[jax.Array], extractor: FeatureExtractor,
                  layers: Sequence[str], weights: Sequence[float] | None = None
                  ) -> dict[str, jax.Array]:
  """{layer: (1, C, C)}: the weighted mean of the styles' Gram matrices.

  Args:
    styles: images (h_k, w_k, 3) or (1, h_k, w_k, 3) in [-1, 1], any sizes.
    extractor: the feature network.
    layers: style layers.
    weights: one per style, >= 0, summing to 1; None: equal.
  """
  grams = []
  for k, image in enumerate(styles):
    features = extractor.apply(_as_batch(image, f"styles[{k}]"), tuple(layers))
    grams.append({layer: style_losses.gram_matrix(features[layer]) for layer in layers})
  return style_losses.blend_statistics(grams, weights)


def _optimizer(name: str, learning_rate: jax.Array) -> optax.GradientTransformationExtraArgs:
  if name == "adam":
    return optax.adam(learning_rate)
  # The zoom line search picks the step length: no learning rate.
  return optax.lbfgs()


class _Compiled(NamedTuple):
  start: object   # (init, content, learning_rate) -> (x, opt_state, content_targets)
  step: object    # (x, opt_state, content_targets, grams, loss_weights, learning_rate) -> (x, opt_state, terms)


@functools.lru_cache(maxsize=4)
def _compiled(extractor: FeatureExtractor, content_layers: tuple[str, ...],
              style_layers: tuple[str, ...], layer_weights: tuple[float, ...],
              optimizer: str) -> _Compiled:
  """The jitted start and step functions of the optimisation at one scale.

  The steps run as a Python loop over one jitted step (x and the optimizer state donated, no host
  sync until the end) rather than one `lax.scan`: XLA:CPU ran the extractor's convolutions ~40%
  slower per step inside the rolled loop (1.5 s vs 1.07 s per step at 256x256, random features).
  Cached so repeated calls with the same extractor and settings (a batch of photos, the scales of
  a multi-scale run, any number of steps) reuse the compilation.
  """
  layers = tuple(dict.fromkeys(content_layers + style_layers))
  content_w = {layer: 1.0 / len(content_layers) for layer in content_layers}
  style_w = dict(zip(style_layers, layer_weights))

  @jax.jit
  def start(init, content, learning_rate):
    content_targets = extractor.apply(content, content_layers)
    # A copy: `init` may be the caller's content image, and the step donates x.
    x = jnp.array(init, copy=True)
    return x, _optimizer(optimizer, learning_rate).init(x), content_targets

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(x, opt_state, content_targets, grams, loss_weights, learning_rate):
    def terms_fn(x):
      features = extractor.apply(x, layers)
      terms = {
          "content": loss_weights[0] * style_losses.content_loss(
              {l: features[l] for l in content_layers}, content_targets, content_w),
          "style": loss_weights[1] * style_losses.style_loss(
              {l: features[l] for l in style_layers}, grams, style_w),
          "tv": loss_weights[2] * style_losses.total_variation(x),
      }
      return terms["content"] + terms["style"] + terms["tv"], terms

    opt = _optimizer(optimizer, learning_rate)
    (total, terms), grad = jax.value_and_grad(terms_fn, has_aux=True)(x)
    if optimizer == "lbfgs":
      updates, opt_state = opt.update(grad, opt_state, x, value=total, grad=grad,
                                      value_fn=lambda x: terms_fn(x)[0])
    else:
      updates, opt_state = opt.update(grad, opt_state, x)
    x = jnp.clip(optax.apply_updates(x, updates), -1.0, 1.0)
    return x, opt_state, dict(terms, total=total)

  return _Compiled(start, step)


def _run(extractor: FeatureExtractor, content_layers: tuple[str, ...],
         style_layers: tuple[str, ...], layer_weights: tuple[float, ...], optimizer: str,
         steps: int, init: jax.Array, content: jax.Array, grams: dict[str, jax.Array],
         loss_weights: jax.Array, learning_rate: jax.Array
         ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """`steps` optimisation steps at one scale -> (image (1, h, w, 3), {term: (steps,)})."""
  settings = (extractor, content_layers, style_layers, layer_weights, optimizer)
  try:
    hash(extractor)
    compiled = _compiled(*settings)
  except TypeError:  # e.g. parameters held in a dict field: no caching, compile every call.
    compiled = _compiled.__wrapped__(*settings)
  x, opt_state, content_targets = compiled.start(init, content, learning_rate)
  terms = []
  for _ in range(steps):
    x, opt_state, step_terms = compiled.step(x, opt_state, content_targets, grams, loss_weights,
                                             learning_rate)
    terms.append(step_terms)
  return x, {key: jnp.stack([t[key] for t in terms]) for key in HISTORY_KEYS}


def stylize(content: np.ndarray | jax.Array,
            styles: Sequence[np.ndarray | jax.Array],
            extractor: FeatureExtractor,
            *,
            style_weights: Sequence[float] | None = None,
            content_layers: Sequence[str] | None = None,
            style_layers: Sequence[str] | None = None,
            layer_weights: Mapping[str, float] | None = None,
            content_weight: float = 1.0,
            style_weight: float = 1e3,
            tv_weight: float = 0.0,
            steps: int = 300,
            learning_rate: float = 0.02,
            optimizer: str = "adam",
            init: str = "content",
            seed: int = 0,
            scales: Sequence[float] = (1.0,)) -> StylizeResult:
  """Renders `content` in the style of `styles` by optimising the image (see the module doc).

  Args:
    content: (H, W, 3) or (1, H, W, 3) float in [-1, 1].
    styles: one or more style images (h_k, w_k, 3) or (1, h_k, w_k, 3) in [-1, 1], any sizes.
    extractor: the feature network (gan.style.features.FeatureExtractor).
    style_weights: one per style, >= 0, summing to 1; None: equal. The Gram targets are the
      weighted mean of the styles' Grams.
    content_layers: default extractor.default_content_layers; equally weighted.
    style_layers: default extractor.default_style_layers.
    layer_weights: {style layer: weight}; None: 1 / len(style_layers) each.
    content_weight, style_weight, tv_weight: weights of the three terms (scale: module doc).
      tv_weight 0 (Gatys et al. use none); raise it to smooth high-frequency noise.
    steps: optimisation steps per scale.
    learning_rate: Adam's step size in [-1, 1] pixel units (0.02 = 2.5 grey levels of 255);
      ignored by L-BFGS, whose zoom line search sets the step.
    optimizer: "adam" or "lbfgs" (optax.lbfgs, memory 10).
    init: "content" (the content image) or "noise" (uniform in [-1, 1] from `seed`); only the
      first scale, later scales start from the upsampled previous result.
    seed: for init="noise".
    scales: increasing fractions of the content size ending at 1.0, e.g. (0.5, 1.0).

  Returns:
    StylizeResult(image (H, W, 3) float32 in [-1, 1], history, seconds).

  Raises:
    ValueError: unknown layers / optimizer / init, bad style weights, scales or shapes.
  """
  start = time.perf_counter()
  if optimizer not in OPTIMIZERS:
    raise ValueError(f"Unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}.")
  if init not in INITS:
    raise ValueError(f"Unknown init {init!r}; valid: {', '.join(INITS)}.")
  scales = tuple(float(s) for s in scales)
  if (not scales or scales[-1] != 1.0 or any(s <= 0 for s in scales)
      or any(a >= b for a, b in zip(scales, scales[1:]))):
    raise ValueError(f"scales must be positive, increasing and end at 1.0, got {scales}.")
  if steps < 1:
    raise ValueError(f"steps must be >= 1, got {steps}.")
  if not styles:
    raise ValueError("At least one style image is needed.")
  content = _as_batch(content, "content")
  styles = [_as_batch(image, f"styles[{k}]") for k, image in enumerate(styles)]
  style_weights = style_losses.check_blend_weights(style_weights, len(styles))
  content_layers = check_layers(
      extractor, extractor.default_content_layers if content_layers is None else content_layers,
      "content")
  style_layers = check_layers(
      extractor, extractor.default_style_layers if style_layers is None else style_layers,
      "style")
  if not content_layers or not style_layers:
    raise ValueError("content_layers and style_layers must not be empty.")
  if layer_weights is None:
    layer_weights = {layer: 1.0 / len(style_layers) for layer in style_layers}
  extra = [layer for layer in layer_weights if layer not in style_layers]
  if extra:
    raise ValueError(f"layer_weights has layers {extra} that are not style layers "
                     f"{list(style_layers)}.")
  weights = tuple(float(layer_weights.get(layer, 0.0)) for layer in style_layers)
  loss_weights = jnp.array([content_weight, style_weight, tv_weight], jnp.float32)

  height, width = content.shape[1:3]
  x = None
  histories = []
  for scale in scales:
    h, w = _scaled_size(content, scale)
    content_s = _resize(content, h, w)
    styles_s = [_resize(image, *_scaled_size(image, scale)) for image in styles]
    grams = style_targets(styles_s, extractor, style_layers, style_weights)
    if x is not None:
      x = jnp.clip(_resize(x, h, w), -1.0, 1.0)
    elif init == "content":
      x = content_s
    else:
      x = jax.random.uniform(jax.random.PRNGKey(seed), content_s.shape, jnp.float32, -1.0, 1.0)
    x, history = _run(extractor, content_layers, style_layers, weights, optimizer, int(steps),
                      x, content_s, grams, loss_weights, jnp.float32(learning_rate))
    history = {key: np.asarray(history[key]) for key in HISTORY_KEYS}
    history["scale"] = np.full(steps, scale, np.float32)
    histories.append(history)

  image = np.asarray(x[0], np.float32)
  assert image.shape == (height, width, 3)
  history = {key: np.concatenate([h[key] for h in histories]) for key in histories[0]}
  return StylizeResult(image, history, time.perf_counter() - start)
