"""Random multi-scale convolutional features: the weight-free fallback for style losses.

When no pretrained VGG-19 file is available (this codebase never downloads one; see gan.style.vgg),
style losses can run on a fixed, untrained network instead. Ustyuzhaninov, Brendel, Gatys & Bethge
("What does it take to generate natural textures?", ICLR 2017; "Texture synthesis using shallow
convolutional networks with random filters", 2016) showed that Gram matrices of a single layer of
many random filters of several sizes + ReLU already give texture synthesis of decent perceptual
quality for many textures, though weaker than VGG on long-range structure and object-like parts.

This module is in that spirit, not a reproduction: the several filter sizes are emulated by one
kernel size on an average-pool pyramid (receptive fields k, 2k, 4k, ... pixels, cheaper than large
kernels), with `features` random filters per scale:
  level_1 = images (gray repeated to RGB, values in [-1, 1] as given),
  level_{s+1} = 2x2 average pool of level_s (size floored),
  "scale<s>" = relu(conv_same(level_s, W_s)): (N, H / 2^(s-1), W / 2^(s-1), features),
  "content"  = relu(conv3x3(relu(conv3x3(level_2, C_1)), C_2)): (N, H / 2, W / 2, features).
Weights are i.i.d. normal with std sqrt(2 / fan_in) (He scaling, so activations stay O(1)), no bias,
drawn with numpy's PCG64 from `seed`: identical on every machine and JAX version.

What these features are not: they carry no learned notion of objects or semantics. "content" is a
random nonlinear encoding of the half-resolution image, so a content loss on it behaves like a
blurred pixel loss in a random basis (it keeps layout and colours, not "what is where" in VGG's
sense). Loss magnitudes differ from VGG's, so loss weights tuned for VGG do not transfer.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from gan.style.features import FeatureExtractor
from gan.style.vgg import as_rgb
from gan.style.vgg import check_layer_names

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def layer_names(num_scales: int = 3) -> tuple[str, ...]:
  """("scale1", ..., f"scale{num_scales}", "content")."""
  return tuple(f"scale{s}" for s in range(1, num_scales + 1)) + ("content",)


def random_filters(seed: int = 0, num_scales: int = 3, features: int = 128,
                   kernel_size: int = 7) -> dict[str, np.ndarray]:
  """The fixed HWIO float32 filters: {"scale<s>": (k, k, 3, features), "content_1": (3, 3, 3, features),
  "content_2": (3, 3, features, features)}, N(0, 2 / fan_in), drawn in this order from PCG64(seed)."""
  if num_scales < 1 or features < 1:
    raise ValueError(f"num_scales ({num_scales}) and features ({features}) must be >= 1.")
  if kernel_size < 1 or kernel_size % 2 == 0:
    raise ValueError(f"kernel_size must be odd (centred 'same' convolution), got {kernel_size}.")
  rng = np.random.default_rng(seed)
  shapes = {f"scale{s}": (kernel_size, kernel_size, 3, features) for s in range(1, num_scales + 1)}
  shapes.update(content_1=(3, 3, 3, features), content_2=(3, 3, features, features))
  filters = {}
  for name, shape in shapes.items():
    fan_in = shape[0] * shape[1] * shape[2]
    filters[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
  return filters


def average_pool_2x2(x: jax.Array) -> jax.Array:
  """(N, H, W, C) -> (N, H // 2, W // 2, C): mean of each 2x2 block (an odd last row / column is dropped)."""
  n, h, w, c = x.shape
  x = x[:, :h // 2 * 2, :w // 2 * 2]
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _conv_relu(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """ReLU of the zero-padded 'same' correlation with an odd HWIO kernel."""
  return jax.nn.relu(lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=_DIMENSION_NUMBERS))


def random_features(filters: dict[str, Any], images: Any, layers: Sequence[str]) -> dict[str, jax.Array]:
  """{layer: features} of `images` (N, H, W, 1 or 3) in [-1, 1] (see the module docstring for shapes).

  Only the pyramid levels and convolutions the requested layers need are computed.
  """
  num_scales = sum(name.startswith("scale") for name in filters)
  layers = check_layer_names(layers, layer_names(num_scales), "random features")
  deepest = max([int(name[len("scale"):]) for name in layers if name != "content"]
                + [2 if "content" in layers else 1])
  x = as_rgb(images)
  if min(x.shape[1:3]) < 2 ** (deepest - 1):
    raise ValueError(f"Images of {x.shape[1]}x{x.shape[2]} are too small for pyramid level {deepest} "
                     f"(requested {list(layers)}): need at least {2 ** (deepest - 1)}x{2 ** (deepest - 1)}.")
  levels = [x]
  while len(levels) < deepest:
    levels.append(average_pool_2x2(levels[-1]))
  outputs = {}
  for name in layers:
    if name == "content":
      hidden = _conv_relu(levels[1], filters["content_1"])
      outputs[name] = _conv_relu(hidden, filters["content_2"])
    else:
      outputs[name] = _conv_relu(levels[int(name[len("scale"):]) - 1], filters[name])
  return outputs


def random_extractor(seed: int = 0, num_scales: int = 3, features: int = 128,
                     kernel_size: int = 7) -> FeatureExtractor:
  """FeatureExtractor of the fixed random network `random_filters(seed, num_scales, features, kernel_size)`.

  Layers "scale1" ... "scale<num_scales>" (default style layers: all of them) and "content" (the
  default content layer). Images need H, W >= 2^(num_scales - 1) for the deepest scale.
  """
  filters = {k: jnp.asarray(v) for k, v in random_filters(seed, num_scales, features, kernel_size).items()}
  names = layer_names(num_scales)

  @functools.partial(jax.jit, static_argnums=1)
  def run(images: jax.Array, layers: tuple[str, ...]) -> dict[str, jax.Array]:
    return random_features(filters, images, layers)

  def apply(images: Any, layers: Union[str, Sequence[str]]) -> dict[str, jax.Array]:
    layers = check_layer_names(layers, names, "random features")
    outputs = run(jnp.asarray(images, jnp.float32), layers)
    return {name: outputs[name] for name in layers}  # jit returns dicts in sorted key order

  return FeatureExtractor(
      name=f"random(seed={seed},scales={num_scales},features={features},kernel={kernel_size})",
      layer_names=names, apply=apply, default_content_layers=("content",),
      default_style_layers=names[:-1])
