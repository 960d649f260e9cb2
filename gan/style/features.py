"""The feature-extractor protocol shared by the style losses, Gatys optimisation and AdaIN.

An extractor is a plain tuple of a name, its layer names and a pure function; the network's
parameters live inside `apply` (closed over), so losses and optimisers take any extractor
(pretrained VGG-16 / VGG-19 in gan/style/vgg.py, fixed random convs in gan/style/random_features.py, or a
tiny stand-in in the tests) without knowing how it is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax


class FeatureExtractor(NamedTuple):
  """A fixed feature network.

  Attributes:
    name: short identifier, e.g. "vgg16".
    layer_names: every layer `apply` can return, shallow to deep.
    apply: (images (N, H, W, 3) float32 in [-1, 1], layers: Sequence[str]) ->
      {layer: (N, h, w, C) float32} for exactly the requested layers.
    default_content_layers: layers used for the content loss when none are given.
    default_style_layers: layers used for the style loss when none are given.
  """
  name: str
  layer_names: tuple[str, ...]
  apply: Callable[[jax.Array, Sequence[str]], dict[str, jax.Array]]
  default_content_layers: tuple[str, ...]
  default_style_layers: tuple[str, ...]


def check_layers(extractor: FeatureExtractor, layers: Sequence[str], what: str, *,
                 allow_empty: bool = True) -> tuple[str, ...]:
  """`layers` as a tuple, or a ValueError naming the unknown ones (or the empty request) and the valid ones."""
  layers = tuple(layers)
  unknown = [layer for layer in layers if layer not in extractor.layer_names]
  if unknown:
    raise ValueError(f"Unknown {what} layers {unknown} for extractor {extractor.name!r}; valid: "
                     f"{', '.join(extractor.layer_names)}.")
  if not layers and not allow_empty:
    raise ValueError(f"No {what} layers given for extractor {extractor.name!r}; valid: "
                     f"{', '.join(extractor.layer_names)}.")
  return layers
