"""AdaIN: feed-forward arbitrary style transfer (Huang & Belongie 2017).

A fixed encoder E (any gan.style.features.FeatureExtractor, cut at one `encoder_layer`) and a
trained decoder D. For a content image c and style image s:

  t = AdaIN(E(c), E(s)) = std(E(s)) * (E(c) - mean(E(c))) / std(E(c)) + mean(E(s))
  output = D(t)

with per-image, per-channel statistics (gan.losses.style.mean_std). One forward pass per image,
any style, no optimisation at test time (unlike gan/style/gatys.py). Controls:
  * strength alpha in feature space: t = alpha * AdaIN(E(c), E(s)) + (1 - alpha) * E(c)
    (`adain_target`, the same as gan.style.controls.adain_alpha), so alpha = 0 gives D(E(c)),
    the decoder's reconstruction of the content;
  * several styles: the AdaIN target statistics are the weighted means of the styles' means and
    stds (gan.losses.style.blend_statistics; Huang & Belongie Sec. 7), which equals the weighted
    mean of the single-style targets.

Training (task "adain_decoder", gan/tasks/adain_decoder.py, through the shared loop: resume,
checkpoints, samples, evaluation): D only, E fixed. t is computed from a content batch paired with a
batch of random crops of the style paintings, then
  loss = content + style_weight * style,
  content = mean((E(D(t)) - t)^2) at the encoder layer,
  style = sum over style_layers of mean-squared differences of the per-channel means and stds of
          E(D(t)) and E(s) (gan.losses.style.mean_std_loss),
with Adam (optax) in one jit-compiled step (`make_train_step`) of an `AdainState`.

Encoders: VGG-16 / VGG-19 (gan/style/vgg.py) at "relu4_1" with style layers relu1_1 ... relu4_1
(the paper's choice with VGG-19, the default for extractors named "vgg16" and "vgg19*"; a decoder
belongs to the encoder it was trained with); for the random-feature fallback
(gan/style/random_features.py) the default is its "content" layer (half resolution, two random
3x3 conv + ReLU) and its style layers "scale1"... (random 7x7 filters on an average-pool
pyramid). Random features carry no learned semantics: their AdaIN transfers colour statistics
and local texture, not VGG's painterly strokes (see random_features.py); loss magnitudes differ
from VGG's, so style_weight does not transfer between extractors.

Decoder (`Decoder`): mirror of the encoder's depth. The encoder downsamples k times (measured
once with jax.eval_shape: input size / feature size, a power of two); the decoder has k + 1
resolution levels, each `convs_per_level` x (3x3 conv + ReLU), separated by nearest-neighbour x2
upsampling (not transposed convolutions: Huang & Belongie use nearest upsampling, it avoids
checkerboard artefacts), then a 3x3 conv to RGB. Padding "reflect" (the paper's, no dark border)
or "same" (zeros). Output range [-1, 1]:
  * "tanh" (default): tanh of the last conv. Smooth; pure white (+1) is only approached, which
    costs < 1 grey level of 255 once the pre-activation exceeds ~3.
  * "clip": hard clip to [-1, 1] with a straight-through gradient (the clip's gradient taken as
    the identity), so pixels pushed past the range still learn; exactly +-1 reachable.
Widths: `width` channels at full resolution, doubled per level towards the features
(`decoder_widths`); for VGG relu4_1 and width=64: 256, 128, 64, 64 as the paper's decoder.
Image sizes that are not a multiple of 2^k are edge-padded before encoding and cropped after.

Trained decoders (`load`): the latest checkpoint of a run, whose config.json names the extractor
(`extractor_from_name` rebuilds it) and whose state holds the decoder parameters and the extractor
fingerprint: mean and std per channel of the encoder features of a fixed synthetic image, which
`load` recomputes to check that the extractor is the one the decoder was trained with.

  python -m gan.main --config configs/adain_products.py --workdir runs/adain_products [--config.adain.extractor=random]
  python -m gan.stylize --method adain --adain_dir runs/adain_products --content shoe.jpg --style wave.jpg --out s.png
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import dataclasses
import functools
import math
import os
from pathlib import Path
import re
import time
from typing import Any, Callable, NamedTuple, Optional, Union

from absl import logging
import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

from gan import runs
from gan import writers
from gan.losses import style as style_losses
from gan.style.features import FeatureExtractor, check_layers

PathLike = Union[str, os.PathLike]

PADDINGS = ("reflect", "same")
OUTPUTS = ("tanh", "clip")
# "vgg16": gan.weights' torchvision VGG16; "vgg": a VGG-19 weight file (gan.style.vgg).
EXTRACTORS = ("auto", "vgg16", "vgg", "random")
TASK = "adain_decoder"    # config.task of the decoder runs (gan/tasks/adain_decoder.py)
TRAIN_COMMAND = "python -m gan.main --config configs/adain_products.py --workdir {workdir}"

# Huang & Belongie 2017 (VGG-19): AdaIN at relu4_1, style loss at relu1_1 ... relu4_1; VGG-16 has
# these layers too (it lacks only conv3_4, conv4_4 and conv5_4).
VGG_ENCODER_LAYER = "relu4_1"
VGG_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

# Relative tolerance of the extractor fingerprint check: loose enough for float32 differences
# between backends, far below the O(1) change of another network or other weights.
FINGERPRINT_RTOL = 1e-2


# --- Layers -----------------------------------------------------------------------------------


def default_layers(extractor: FeatureExtractor) -> tuple[str, tuple[str, ...]]:
  """(encoder layer, style layers): VGG's relu4_1 / relu1_1..relu4_1, else the extractor's first
  default content layer and its default style layers."""
  if extractor.name.startswith(("vgg16", "vgg19")) and VGG_ENCODER_LAYER in extractor.layer_names:
    return VGG_ENCODER_LAYER, VGG_STYLE_LAYERS
  return extractor.default_content_layers[0], tuple(extractor.default_style_layers)


def encoder_geometry(extractor: FeatureExtractor, layer: str, probe: int = 256) -> tuple[int, int]:
  """(downsampling factor 2^k, channels C) of `layer`: an (N, H, W, 3) image gives
  (N, H / 2^k, W / 2^k, C). Measured with jax.eval_shape on a probe size (no computation)."""
  check_layers(extractor, (layer,), "encoder", allow_empty=False)
  shape = jax.eval_shape(lambda x: extractor.apply(x, (layer,))[layer],
                         jax.ShapeDtypeStruct((1, probe, probe, 3), jnp.float32)).shape
  if len(shape) != 4 or shape[1] != shape[2] or probe % shape[1]:
    raise ValueError(f"Layer {layer!r} of {extractor.name!r} maps a {probe}x{probe} image to "
                     f"{shape}: not a (1, h, h, C) feature map with {probe} / h a power of two.")
  factor = probe // shape[1]
  if factor & (factor - 1):
    raise ValueError(f"Layer {layer!r} of {extractor.name!r} downsamples by {factor}, not a power "
                     "of two: the decoder can only upsample by 2 per level.")
  return factor, int(shape[3])


def decoder_widths(num_upsamplings: int, width: int = 64, max_width: int = 512) -> tuple[int, ...]:
  """Channels per decoder level, deepest first: width * 2^(k - 1 - i) for the k upsampled levels
  (at most max_width), then width at full resolution. k = 3, width 64: (256, 128, 64, 64)."""
  if num_upsamplings < 0 or width < 1:
    raise ValueError(f"num_upsamplings ({num_upsamplings}) must be >= 0 and width ({width}) >= 1.")
  return tuple(min(max_width, width * 2 ** max(num_upsamplings - 1 - i, 0))
               for i in range(num_upsamplings + 1))


def upsample_nearest(x: jax.Array) -> jax.Array:
  """(N, h, w, C) -> (N, 2h, 2w, C), each value repeated in a 2x2 block."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class Decoder(nn.Module):
  """AdaIN targets (N, h, w, C) -> images (N, h * 2^k, w * 2^k, 3) in [-1, 1], k = len(widths) - 1.

  widths: channels of each level, deepest first (`decoder_widths`).
  convs_per_level: 3x3 conv + ReLU blocks per level.
  padding: "reflect" or "same" (zeros).
  output: "tanh" or "clip" (straight-through; see the module docstring).
  Parameters: "conv<level>_<j>" {kernel (3, 3, in, out), bias} and "rgb" (the final conv).
  """
  widths: Sequence[int]
  convs_per_level: int = 2
  padding: str = "reflect"
  output: str = "tanh"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.padding not in PADDINGS:
      raise ValueError(f"Unknown decoder padding {self.padding!r}; valid: {', '.join(PADDINGS)}.")
    if self.output not in OUTPUTS:
      raise ValueError(f"Unknown decoder output {self.output!r}; valid: {', '.join(OUTPUTS)}.")
    if not self.widths or self.convs_per_level < 1:
      raise ValueError(f"Decoder needs >= 1 level and convs_per_level >= 1, got widths "
                       f"{tuple(self.widths)}, convs_per_level {self.convs_per_level}.")
    padding = self.padding.upper()
    for level, width in enumerate(self.widths):
      if level:
        x = upsample_nearest(x)
      for j in range(self.convs_per_level):
        x = nn.relu(nn.Conv(width, (3, 3), padding=padding, name=f"conv{level}_{j}")(x))
    x = nn.Conv(3, (3, 3), padding=padding, name="rgb")(x)
    if self.output == "tanh":
      return jnp.tanh(x)
    return x + lax.stop_gradient(jnp.clip(x, -1.0, 1.0) - x)


def adain_target(content_features: jax.Array, mean: jax.Array, std: jax.Array,
                 alpha: Union[float, jax.Array] = 1.0, eps: float = 1e-5) -> jax.Array:
  """alpha * (std * (f - mean(f)) / std(f) + mean) + (1 - alpha) * f.

  gan.style.controls.adain_alpha with the style given by its statistics (N or 1, 1, 1, C) (from
  `mean_std`, possibly blended) instead of its features; f is (N, h, w, C). alpha is not checked
  here (it may be traced): callers check it is in [0, 1].
  """
  mean_c, std_c = style_losses.mean_std(content_features, eps)
  return alpha * (std * (content_features - mean_c) / std_c + mean) + (1.0 - alpha) * content_features


def _check_alpha(alpha: float) -> float:
  alpha = float(alpha)
  if not 0.0 <= alpha <= 1.0:  # also rejects NaN
    raise ValueError(f"alpha (style strength) must be in [0, 1], got {alpha}.")
  return alpha


def _as_batch(images: Any, what: str) -> jax.Array:
  images = jnp.asarray(images, jnp.float32)
  if images.ndim == 3:
    images = images[None]
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"{what} must be (H, W, 3) or (N, H, W, 3) in [-1, 1], got {images.shape}.")
  return images


def _probe_image(size: int) -> jax.Array:
  """A fixed smooth colour image (1, size, size, 3) in [-1, 1] for the extractor fingerprint."""
  yy, xx = np.mgrid[0:size, 0:size] / size
  image = np.stack([np.sin(7 * xx + 2 * yy), np.cos(5 * yy - 3 * xx), np.sin(9 * xx * yy + 1)], -1)
  return jnp.asarray(0.9 * image[None], jnp.float32)


def fingerprint(extractor: FeatureExtractor, layer: str, factor: int) -> np.ndarray:
  """(2C,) float32: per-channel mean then std of `layer`'s features of `_probe_image`."""
  features = extractor.apply(_probe_image(max(32, 4 * factor)), (layer,))[layer]
  mean, std = style_losses.mean_std(features)
  return np.concatenate([np.ravel(mean), np.ravel(std)]).astype(np.float32)


# --- The model --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class AdainModel:
  """A trained AdaIN decoder and the fixed encoder it belongs to.

  Attributes:
    extractor: the encoder network (not saved: `load` rebuilds or receives it and checks it).
    encoder_layer: where AdaIN is applied.
    style_layers: layers of the training style loss.
    decoder: Decoder config {"widths": [...], "convs_per_level", "padding", "output"}.
    params: the Decoder's parameters.
    fingerprint: (2C,) `fingerprint(extractor, encoder_layer, ...)` at training time.
    history: {"step", "content", "style", "total"}: (L,) float32, the run's mean training losses of
      every train.log_every steps (style unweighted, total = content + style_weight * style), as
      `load` reads them from metrics.jsonl; {} for models built in memory.
    info: training settings and the latest evaluation (JSON-able).
  """
  extractor: FeatureExtractor = dataclasses.field(repr=False)
  encoder_layer: str
  style_layers: tuple[str, ...]
  decoder: Mapping[str, Any]
  params: Any = dataclasses.field(repr=False)
  fingerprint: np.ndarray = dataclasses.field(repr=False)
  history: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)
  info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def extractor_name(self) -> str:
    return self.extractor.name

  @property
  def downsampling(self) -> int:
    """2^k: the encoder's (and the decoder's) resolution factor."""
    return 2 ** (len(self.decoder["widths"]) - 1)

  @functools.cached_property
  def decoder_module(self) -> Decoder:
    return make_decoder(self.decoder)

  @functools.cached_property
  def _encode(self):
    layer, apply = self.encoder_layer, self.extractor.apply
    return jax.jit(lambda images: apply(images, (layer,))[layer])

  @functools.cached_property
  def _decode(self):
    decoder = self.decoder_module
    return jax.jit(lambda params, features: decoder.apply({"params": params}, features))

  @functools.cached_property
  def _forward(self):
    decoder, layer, apply = self.decoder_module, self.encoder_layer, self.extractor.apply

    @jax.jit
    def forward(params, content, mean, std, alpha):
      t = adain_target(apply(content, (layer,))[layer], mean, std, alpha)
      return decoder.apply({"params": params}, t)

    return forward

  def _pad(self, images: jax.Array) -> jax.Array:
    """Edge-pads H, W up to multiples of `downsampling` (bottom / right)."""
    f = self.downsampling
    h, w = images.shape[1:3]
    pad_h, pad_w = -h % f, -w % f
    if pad_h or pad_w:
      images = jnp.pad(images, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return images

  def encode(self, images: Any) -> jax.Array:
    """(N, H, W, 3) in [-1, 1], H and W multiples of `downsampling` -> (N, H / f, W / f, C)."""
    return self._encode(_as_batch(images, "images"))

  def decode(self, features: Any) -> jax.Array:
    """(N, h, w, C) -> (N, h * f, w * f, 3) float32 in [-1, 1]."""
    return self._decode(self.params, jnp.asarray(features, jnp.float32))

  def style_statistics(self, styles: Sequence[Any],
                       style_weights: Optional[Sequence[float]] = None) -> tuple[jax.Array, jax.Array]:
    """(mean, std), each (1, 1, 1, C): the weighted mean of the styles' encoder statistics.

    styles: images (h_k, w_k, 3) or (1, h_k, w_k, 3) in [-1, 1], any sizes the encoder accepts.
    style_weights: one per style, >= 0, summing to 1; None: equal.
    """
    if not styles:
      raise ValueError("At least one style image is needed.")
    weights = style_losses.check_blend_weights(style_weights, len(styles))
    statistics = []
    for k, image in enumerate(styles):
      image = _as_batch(image, f"styles[{k}]")
      if image.shape[0] != 1:
        raise ValueError(f"styles[{k}] must be one image, got a batch of {image.shape[0]}.")
      statistics.append(style_losses.mean_std(self.encode(image)))
    return style_losses.blend_statistics(statistics, weights)

  def targets(self, content: Any, styles: Sequence[Any], *, alpha: float = 1.0,
              style_weights: Optional[Sequence[float]] = None) -> jax.Array:
    """The decoder input t (N, H / f, W / f, C) that `stylize` decodes (H, W multiples of f)."""
    alpha = _check_alpha(alpha)
    mean, std = self.style_statistics(styles, style_weights)
    return adain_target(self.encode(content), mean, std, alpha)

  def stylize(self, content: Any, styles: Sequence[Any], *, alpha: float = 1.0,
              style_weights: Optional[Sequence[float]] = None) -> np.ndarray:
    """Renders `content` in the (blended) style: one encoder + decoder pass per image.

    Args:
      content: (N, H, W, 3) or (H, W, 3) float in [-1, 1]; any H, W >= the encoder's minimum
        (sizes that are not multiples of `downsampling` are edge-padded, then cropped back).
      styles: one or more style images (h_k, w_k, 3) in [-1, 1].
      alpha: style strength in [0, 1], in feature space: 0 gives D(E(content)).
      style_weights: one per style, >= 0, summing to 1; None: equal.

    Returns:
      float32 in [-1, 1], the shape of `content`.
    """
    alpha = _check_alpha(alpha)
    single = np.ndim(content) == 3
    content = _as_batch(content, "content")
    mean, std = self.style_statistics(styles, style_weights)
    h, w = content.shape[1:3]
    out = self._forward(self.params, self._pad(content), mean, std, jnp.float32(alpha))
    out = np.asarray(out[:, :h, :w], np.float32)
    return out[0] if single else out


def init_decoder_params(decoder: Decoder, channels: int, seed: int = 0) -> dict[str, Any]:
  """Decoder parameters for C = `channels` input features, drawn on the host with numpy's
  PCG64(seed): He-normal kernels N(0, 2 / fan_in) for the ReLU convs, N(0, 1 / fan_in) for "rgb",
  zero biases. (Host numpy, not jax.random: identical on every machine, and no compilation,
  which costs about a second per random tensor on XLA:CPU.)"""
  shapes = jax.eval_shape(decoder.init, jax.random.PRNGKey(0),
                          jax.ShapeDtypeStruct((1, 4, 4, channels), jnp.float32))["params"]
  rng = np.random.default_rng(seed)
  params = {}
  for name in sorted(shapes, key=lambda n: (n == "rgb", n)):  # network order, rgb last
    kernel = shapes[name]["kernel"].shape
    gain = 1.0 if name == "rgb" else 2.0
    std = np.sqrt(gain / (kernel[0] * kernel[1] * kernel[2]))
    params[name] = {"kernel": jnp.asarray(rng.standard_normal(kernel) * std, jnp.float32),
                    "bias": jnp.zeros(shapes[name]["bias"].shape, jnp.float32)}
  return params


def make_decoder(config: Mapping[str, Any]) -> Decoder:
  """Decoder from its JSON config (unknown keys raise ValueError)."""
  fields = {"widths", "convs_per_level", "padding", "output"}
  unknown = sorted(set(config) - fields)
  if unknown:
    raise ValueError(f"Unknown decoder config keys {unknown}; valid: {', '.join(sorted(fields))}.")
  config = dict(config)
  config["widths"] = tuple(int(w) for w in config["widths"])
  return Decoder(**config)


# --- Training ---------------------------------------------------------------------------------


def resize_shorter_side(image: np.ndarray, side: int) -> np.ndarray:
  """(H, W, 3) uint8 -> bicubic resize so that min(H, W) == side (aspect kept)."""
  h, w = image.shape[:2]
  scale = side / min(h, w)
  size = (max(side, round(w * scale)), max(side, round(h * scale)))
  if size == (w, h):
    return image
  return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


def check_uint8_images(images: Any, what: str) -> list[np.ndarray]:
  """(N, H, W, 1|3) array or sequence of (H, W, 1|3) -> list of (H, W, 3) uint8."""
  if isinstance(images, np.ndarray) and images.ndim == 4:
    images = list(images)
  out = []
  for k, image in enumerate(images):
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3):
      raise ValueError(f"{what}[{k}] must be (H, W, 1 or 3) uint8 in [0, 255], got "
                       f"{image.shape} {image.dtype}.")
    out.append(np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image)
  if not out:
    raise ValueError(f"No {what} given.")
  return out


def random_crops(paintings: Sequence[np.ndarray], rng: np.random.Generator, count: int,
                 size: int) -> np.ndarray:
  """(count, size, size, C): uniform random size x size crops of uniformly drawn paintings
  (each (H_k, W_k, C) with H_k, W_k >= size)."""
  crops = np.empty((count, size, size, paintings[0].shape[-1]), paintings[0].dtype)
  for b, k in enumerate(rng.integers(len(paintings), size=count)):
    painting = paintings[k]
    y = rng.integers(painting.shape[0] - size + 1)
    x = rng.integers(painting.shape[1] - size + 1)
    crops[b] = painting[y:y + size, x:x + size]
  return crops


def _loss_terms(decoder: Decoder, apply: Any, encoder_layer: str, style_layers: tuple[str, ...],
                params: Any, content: jax.Array, style: jax.Array,
                style_weight: float) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
  """(total, (content term, style term)) of the training loss for paired content / style
  batches (N, S, S, 3) in [-1, 1] (see the module docstring)."""
  layers = tuple(dict.fromkeys((encoder_layer,) + style_layers))
  f_c = apply(content, (encoder_layer,))[encoder_layer]
  f_s = apply(style, layers)
  t = style_losses.adain(f_c, f_s[encoder_layer])
  f_g = apply(decoder.apply({"params": params}, t), layers)
  content_term = jnp.mean((f_g[encoder_layer] - t) ** 2)
  style_term = style_losses.mean_std_loss({l: f_g[l] for l in style_layers},
                                          {l: f_s[l] for l in style_layers})
  return content_term + style_weight * style_term, (content_term, style_term)


def to_float(images_u8: Any) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return images_u8.astype(jnp.float32) / 127.5 - 1.0


def _encoder_layer(extractor: FeatureExtractor, layer: Optional[str]) -> str:
  return check_layers(extractor, (layer or default_layers(extractor)[0],), "encoder", allow_empty=False)[0]


def _decoder_config(factor: int, width: int, convs_per_level: int, padding: str, output: str
                    ) -> dict[str, Any]:
  """The Decoder's JSON config for an encoder downsampling by `factor` (2^k)."""
  return {"widths": list(decoder_widths(int(math.log2(factor)), width)), "convs_per_level": convs_per_level,
          "padding": padding, "output": output}


def init_model(extractor: FeatureExtractor, encoder_layer: Optional[str] = None,
               style_layers: Optional[Sequence[str]] = None, *, seed: int = 0, width: int = 64,
               convs_per_level: int = 2, padding: str = "reflect",
               output: str = "tanh") -> AdainModel:
  """An untrained AdainModel: the Decoder mirroring `encoder_layer`, initialised from `seed`.

  encoder_layer / style_layers: None: `default_layers(extractor)`. width, convs_per_level, padding,
  output: the decoder's shape (`Decoder`, `decoder_widths`).
  """
  encoder_layer = _encoder_layer(extractor, encoder_layer)
  style_layers = check_layers(extractor, style_layers or default_layers(extractor)[1], "style",
                              allow_empty=False)
  factor, channels = encoder_geometry(extractor, encoder_layer)
  config = _decoder_config(factor, width, convs_per_level, padding, output)
  params = init_decoder_params(make_decoder(config), channels, seed)
  return AdainModel(extractor, encoder_layer, style_layers, config, params,
                    fingerprint(extractor, encoder_layer, factor))


class AdainState(NamedTuple):
  """step: int32 scalar; params: the Decoder's; opt_state: Adam's; fingerprint: (2C,) float32, the
  extractor's `fingerprint` at the start (checked when the decoder is loaded)."""
  step: jax.Array
  params: Any
  opt_state: optax.OptState
  fingerprint: jax.Array


def model_options(config: Any) -> dict[str, Any]:
  """init_model's keyword arguments from a config's adain section ("" / () layers: the defaults)."""
  a = config.adain
  return {"encoder_layer": a.encoder_layer or None, "style_layers": tuple(a.style_layers) or None,
          "seed": config.seed, "width": a.decoder.width, "convs_per_level": a.decoder.convs_per_level,
          "padding": a.decoder.padding, "output": a.decoder.output}


def make_optimizer(config: Any) -> optax.GradientTransformation:
  """Adam at optimizer.lr (Huang & Belongie: 1e-4 for 160k steps; higher suits short runs)."""
  return optax.adam(config.optimizer.lr)


def init_state(model: AdainModel, tx: optax.GradientTransformation) -> AdainState:
  return AdainState(jnp.zeros((), jnp.int32), model.params, tx.init(model.params),
                    jnp.asarray(model.fingerprint, jnp.float32))


def abstract_state(config: Any, extractor: FeatureExtractor) -> AdainState:
  """The AdainState's shapes (jax.ShapeDtypeStruct leaves) for `extractor`, without computing anything."""
  options = model_options(config)
  factor, channels = encoder_geometry(extractor, _encoder_layer(extractor, options["encoder_layer"]))
  decoder = make_decoder(_decoder_config(factor, options["width"], options["convs_per_level"],
                                         options["padding"], options["output"]))
  params = jax.eval_shape(decoder.init, jax.random.PRNGKey(0),
                          jax.ShapeDtypeStruct((1, 4, 4, channels), jnp.float32))["params"]
  tx = make_optimizer(config)
  return jax.eval_shape(lambda p: AdainState(jnp.zeros((), jnp.int32), p, tx.init(p),
                                             jnp.zeros((2 * channels,), jnp.float32)), params)


def shape_signature(config: Any) -> dict[str, Any]:
  """The config values that fix the AdainState's shapes (saved with every checkpoint)."""
  return {"adain.extractor": config.adain.extractor, "adain.encoder_layer": config.adain.encoder_layer,
          **{f"adain.decoder.{k}": v for k, v in sorted(config.adain.decoder.to_dict().items())}}


def make_train_step(model: AdainModel, tx: optax.GradientTransformation, style_weight: float
                    ) -> Callable[[AdainState, dict[str, jax.Array]], tuple[AdainState, dict[str, jax.Array]]]:
  """A pure (state, batch) -> (state, {"content", "style", "total"}) step, not yet jitted; batch:
  {"content": photos, "style": painting crops}, both (B, S, S, 3) float32 in [-1, 1]."""
  loss_fn = functools.partial(_loss_terms, model.decoder_module, model.extractor.apply, model.encoder_layer,
                              model.style_layers, style_weight=style_weight)

  def step(state: AdainState, batch: dict[str, jax.Array]):
    (total, (content_term, style_term)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, batch["content"], batch["style"])
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return (state._replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                           opt_state=opt_state),
            {"content": content_term, "style": style_term, "total": total})

  return step


def make_evaluator(model: AdainModel, content: np.ndarray, style: np.ndarray, style_weight: float
                   ) -> Callable[[Any], dict[str, float]]:
  """fn(decoder params) -> the training losses {"content", "style", "total"} on fixed pairs
  content[i] / style[i], (N, S, S, 3) float32 in [-1, 1]; compiled once."""
  losses = jax.jit(functools.partial(_loss_terms, model.decoder_module, model.extractor.apply,
                                     model.encoder_layer, model.style_layers, style_weight=style_weight))
  content, style = jnp.asarray(content, jnp.float32), jnp.asarray(style, jnp.float32)

  def evaluate_params(params) -> dict[str, float]:
    total, (c, s) = losses(params, content, style)
    return {"content": float(c), "style": float(s), "total": float(total)}

  return evaluate_params


def evaluate(model: AdainModel, content_images: Any, style_images: Any,
             style_weight: float = 10.0) -> dict[str, float]:
  """The training losses {"content", "style", "total"} of `model` on fixed pairs: content_images[i]
  with style_images[i], both (N, S, S, 3) uint8 of one size (e.g. a validation batch)."""
  content = np.stack(check_uint8_images(content_images, "content_images"))
  style = np.stack(check_uint8_images(style_images, "style_images"))
  if content.shape != style.shape:
    raise ValueError(f"content_images {content.shape} and style_images {style.shape} must be "
                     "pairs of the same shape.")
  return make_evaluator(model, to_float(content), to_float(style), style_weight)(model.params)


_RANDOM_NAME = re.compile(r"random\(seed=(-?\d+),scales=(\d+),features=(\d+),kernel=(\d+)\)")


def is_extractor_name(name: str) -> bool:
  """Whether `extractor_from_name` knows `name` (its weights aside)."""
  return bool(_RANDOM_NAME.fullmatch(name)) or name in ("vgg16", "vgg19-torchvision", "vgg19-keras")


def extractor_from_name(name: str, vgg_weights: Optional[PathLike] = None) -> FeatureExtractor:
  """Rebuilds a saved model's extractor from its name.

  "random(seed=..,scales=..,features=..,kernel=..)": gan.style.random_features.random_extractor;
  "vgg16": gan.style.vgg.vgg16_extractor (from gan.weights, or from vgg_weights if it is a folder),
  which raises gan.weights.MissingWeightsError (a FileNotFoundError) without the weights;
  "vgg19-torchvision" / "vgg19-keras": gan.style.vgg.vgg19_extractor(vgg_weights), which raises
  WeightsNotFoundError without a weight file. Other names: ValueError (pass the extractor).
  """
  match = _RANDOM_NAME.fullmatch(name)
  if match:
    from gan.style import random_features  # pylint: disable=g-import-not-at-top
    seed, scales, features, kernel = (int(g) for g in match.groups())
    return random_features.random_extractor(seed, scales, features, kernel)
  if name == "vgg16":
    from gan.style import vgg  # pylint: disable=g-import-not-at-top
    return vgg.vgg16_extractor(_vgg16_folder(vgg_weights, required=True))
  if name in ("vgg19-torchvision", "vgg19-keras"):
    from gan.style import vgg  # pylint: disable=g-import-not-at-top
    extractor = vgg.vgg19_extractor(vgg_weights)
    if extractor.name != name:
      raise ValueError(f"The AdaIN decoder was trained with {name}, but the VGG-19 weight file "
                       f"found is {extractor.name}: pass the matching file.")
    return extractor
  raise ValueError(f"Cannot rebuild extractor {name!r} from its name: pass it to load().")


def make_extractor(name: str, vgg_weights: Optional[PathLike] = None) -> FeatureExtractor:
  """The extractor a config's adain.extractor names: a choice of EXTRACTORS ("auto" resolved as
  `resolve_extractor` does) or a saved name (`extractor_from_name`)."""
  if name in EXTRACTORS:
    return resolve_extractor(name, vgg_weights)
  return extractor_from_name(name, vgg_weights)


def run_config(directory: PathLike) -> Any:
  """The config of the decoder run in `directory` (its config.json).

  Raises:
    FileNotFoundError: no run there (the message gives the training command).
    ValueError: an unreadable config, or a run of another task.
  """
  directory = os.fspath(directory)
  command = TRAIN_COMMAND.format(workdir=directory)
  return runs.load_task_config(directory, TASK, "an AdaIN decoder", command)


def load(directory: PathLike, extractor: Optional[FeatureExtractor] = None, *,
         vgg_weights: Optional[PathLike] = None) -> AdainModel:
  """The decoder of the latest checkpoint of a run of task "adain_decoder" (single device).

  Args:
    directory: the run's workdir.
    extractor: the encoder; None: rebuilt from the name in the run's config (`extractor_from_name`).
    vgg_weights: weight file (VGG-19) or folder (vgg16) for an encoder rebuilt from its name;
      None: the run's adain.vgg_weights, else the default places.

  Raises:
    FileNotFoundError: no run, or no checkpoint yet (the message gives the training command).
    ValueError: another extractor than the one the decoder was trained with (by name or by
      fingerprint), another task, or checkpoints that do not fit or cannot be read.
  """
  config = run_config(directory)
  directory = os.fspath(directory)
  name = config.adain.extractor
  if extractor is None:
    extractor = extractor_from_name(name, vgg_weights or config.adain.vgg_weights or None)
  if extractor.name != name:
    raise ValueError(f"The AdaIN decoder in {directory} was trained with extractor {name!r}, but "
                     f"{extractor.name!r} was given.")
  options = model_options(config)
  encoder_layer = _encoder_layer(extractor, options["encoder_layer"])
  style_layers = check_layers(extractor, options["style_layers"] or default_layers(extractor)[1], "style",
                              allow_empty=False)
  factor, _ = encoder_geometry(extractor, encoder_layer)
  try:
    state, meta = runs.restore_checkpoint(directory, runs.on_one_device(abstract_state(config, extractor)),
                                          shape_signature(config), config.train.keep_checkpoints,
                                          train_command=TRAIN_COMMAND)
  except runs.RunError as e:   # no checkpoint yet
    raise FileNotFoundError(str(e)) from None
  saved = np.asarray(state.fingerprint)
  current = fingerprint(extractor, encoder_layer, factor)
  if (saved.shape != current.shape or not np.allclose(
      current, saved, rtol=FINGERPRINT_RTOL, atol=FINGERPRINT_RTOL * float(np.abs(saved).max()))):
    raise ValueError(f"The extractor {extractor.name!r} given for {directory} computes other "
                     f"features at {encoder_layer!r} than the one the decoder was trained with "
                     "(same name, other weights?): pass the original network.")
  decoder = _decoder_config(factor, options["width"], options["convs_per_level"], options["padding"],
                            options["output"])
  info = {"steps": int(state.step), "image_size": config.data.image_size, "batch_size": config.train.batch_size,
          "learning_rate": config.optimizer.lr, "style_weight": config.adain.style_weight,
          "eval": meta.get("eval", {})}
  return AdainModel(extractor, encoder_layer, style_layers, decoder, state.params, saved,
                    _logged_losses(directory), info)


def _logged_losses(directory: str) -> dict[str, np.ndarray]:
  """{"step", "content", "style", "total"}: the mean training losses of every train.log_every steps
  the run logged (its metrics.jsonl), oldest first; {} without the file."""
  path = os.path.join(directory, "metrics.jsonl")
  if not os.path.isfile(path):
    return {}
  records = [r for r in writers.read_jsonl(path) if "total" in r]
  return {key: np.asarray([r[key] for r in records], np.float32) for key in ("step", "content", "style", "total")}


# --- Extractors and data ----------------------------------------------------------------------


def _vgg16_folder(vgg_weights: Optional[PathLike], required: bool) -> Optional[Path]:
  """Where gan.weights' vgg16 is looked for: None (gan.weights.weights_dir()) or the folder
  `vgg_weights`. A file there is a VGG-19 file: None, or a ValueError when `required` (vgg16 asked for)."""
  if vgg_weights is None:
    return None
  if Path(vgg_weights).is_dir():
    return Path(vgg_weights)
  if required:
    raise ValueError(f"The VGG weights {vgg_weights} are not a folder: VGG16 is read from gan.weights' "
                     "vgg16.npz in $PRODUCTGAN_WEIGHTS_DIR or the folder given; a VGG-19 .pth / .h5 file "
                     "needs --extractor vgg.")
  return None


def resolve_extractor(choice: str = "auto", vgg_weights: Optional[PathLike] = None) -> FeatureExtractor:
  """The feature extractor `choice` names; logs one line saying which and why.

  Args:
    choice: "vgg16": torchvision's ImageNet VGG16 from gan.weights (gan.weights.MissingWeightsError,
      naming `python -m gan.weights fetch vgg16`, without it); "vgg": the pretrained VGG-19 of a
      weight file (WeightsNotFoundError without one); "random": the random-feature fallback;
      "auto": the first available of vgg16, VGG-19 and random, the last with a warning (an
      explicit VGG-19 file in `vgg_weights` goes before vgg16).
    vgg_weights: a VGG-19 .pth / .h5 file, or a folder holding vgg16.npz (gan.weights) and / or a
      VGG-19 file; None: gan.weights.weights_dir() for vgg16, gan.style.vgg.default_weights_dir()
      for VGG-19 (both $PRODUCTGAN_WEIGHTS_DIR when it is set).
  """
  from gan import weights  # pylint: disable=g-import-not-at-top
  from gan.style import random_features  # pylint: disable=g-import-not-at-top
  from gan.style import vgg  # pylint: disable=g-import-not-at-top
  if choice not in EXTRACTORS:
    raise ValueError(f"Unknown extractor {choice!r}; valid: {', '.join(EXTRACTORS)}.")
  if choice != "auto":
    if choice == "random":
      extractor = random_features.random_extractor()
    elif choice == "vgg16":
      extractor = vgg.vgg16_extractor(_vgg16_folder(vgg_weights, required=True))
    else:
      extractor = vgg.vgg19_extractor(vgg_weights)
    logging.info("Feature extractor %s (asked for: %s).", extractor.name, choice)
    return extractor
  folder = _vgg16_folder(vgg_weights, required=False)
  vgg16_dir = folder or weights.weights_dir()
  if vgg_weights is None or folder is not None:
    try:
      extractor = vgg.vgg16_extractor(folder)
      logging.info("Feature extractor vgg16 (auto: ImageNet VGG16 weights found in %s).", vgg16_dir)
      return extractor
    except weights.MissingWeightsError as e:   # absent or damaged; the message names the fetch command
      vgg16_problem = " ".join(str(e).split()).rstrip(".")
  else:
    vgg16_problem = f"not looked for, the VGG-19 file {vgg_weights} was given"
  try:
    vgg19_file = vgg.find_vgg19_weights(vgg_weights)
  except vgg.WeightsNotFoundError:
    extractor = random_features.random_extractor()
    logging.warning("No VGG weights found: using the random-feature extractor %s instead (no VGG "
                    "semantics). vgg16: %s. VGG-19: no weight file at %s.", extractor.name, vgg16_problem,
                    vgg_weights or vgg.default_weights_dir())
    return extractor
  extractor = vgg.vgg19_extractor(vgg19_file)
  logging.info("Feature extractor %s (auto: VGG-19 weight file %s; vgg16: %s).", extractor.name, vgg19_file,
               vgg16_problem)
  return extractor


def load_paintings(folder: PathLike) -> list[np.ndarray]:
  """Every image in `folder` (sorted by name) as (H, W, 3) uint8."""
  from gan import data  # pylint: disable=g-import-not-at-top
  folder = Path(folder)
  paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in data.IMAGE_EXTENSIONS) \
      if folder.is_dir() else []
  if not paths:
    raise FileNotFoundError(f"No style images (*.jpg, *.png, ...) in {folder}.")
  paintings = []
  for path in paths:
    with Image.open(path) as image:
      paintings.append(np.asarray(image.convert("RGB")))
  return paintings


def measure_images_per_second(model: AdainModel, size: int, batch: int = 8, repeats: int = 3,
                              style: Optional[np.ndarray] = None) -> float:
  """Images per second of `model.stylize` on (batch, size, size, 3), compilation excluded."""
  rng = np.random.default_rng(0)
  content = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
  style = rng.uniform(-1, 1, (size, size, 3)).astype(np.float32) if style is None else style
  model.stylize(content, [style])  # compiles
  start = time.perf_counter()
  for _ in range(repeats):
    model.stylize(content, [style])
  return batch * repeats / (time.perf_counter() - start)


if __name__ == "__main__":
  raise SystemExit("error: the AdaIN decoder is trained by the shared loop now: python -m gan.main --config "
                   "configs/adain_products.py --workdir DIR [--config.train.steps=N --config.adain.extractor=random].")
