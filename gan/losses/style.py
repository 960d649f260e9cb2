"""Style and content losses as pure functions of feature maps.

Feature maps are (N, h, w, C) float arrays, as returned by a `gan.style.features.FeatureExtractor`
for one layer. The multi-layer losses take {layer: features} dicts (a single array is accepted as
a one-layer dict) and per-layer weights; a missing `layer_weights` means weight 1 per layer, a
plain sum.

  gram_matrix:      (N, h, w, C) -> (N, C, C), F^T F / (h * w).
  style_loss:       sum_l w_l mean((G_l(a) - G_l(b))^2)  (Gatys et al. 2016).
  content_loss:     sum_l w_l mean((F_l(a) - F_l(b))^2).
  total_variation:  mean squared difference of vertical and of horizontal neighbours.
  mean_std / adain: per-channel statistics and adaptive instance normalisation
                    (Huang & Belongie 2017); mean_std_loss is AdaIN's style loss.
  blend_statistics: weighted mean of several styles' targets (Grams or mean/std), weights
                    validated by check_blend_weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

import jax
import jax.numpy as jnp
import numpy as np

Features = Union[jax.Array, Mapping[str, jax.Array]]

# Weights of several styles must sum to 1 up to this (users type 0.33 / 0.33 / 0.34).
BLEND_WEIGHT_TOLERANCE = 1e-6


def gram_matrix(features: jax.Array) -> jax.Array:
  """Channel co-activations: (N, h, w, C) -> (N, C, C), G[c, d] = sum_p F[p, c] F[p, d] / (h * w).

  Normalised by the number of positions h * w (not by C): a Gram matrix is then the mean over
  positions of the outer products, independent of the image size, so styles of different sizes
  can be compared and blended, and a multi-scale optimisation keeps the same loss scale.
  """
  _, h, w, _ = features.shape
  # HIGHEST: the loss compares Grams entry by entry; bf16 matmuls (TPU default) would swamp it.
  return jnp.einsum("nhwc,nhwd->ncd", features, features,
                    precision=jax.lax.Precision.HIGHEST) / (h * w)


def _as_dict(features: Features) -> Mapping[str, Any]:
  return features if isinstance(features, Mapping) else {"features": features}


def _layer_weights(features: Mapping[str, Any], targets: Mapping[str, Any],
                   layer_weights: Mapping[str, float] | None) -> dict[str, float]:
  """{layer: weight}; weight 1 for every layer of `features` when `layer_weights` is None."""
  if layer_weights is None:
    layer_weights = {layer: 1.0 for layer in features}
  for name, mapping in (("features", features), ("targets", targets)):
    missing = [layer for layer in layer_weights if layer not in mapping]
    if missing:
      raise ValueError(f"Layers {missing} are not in the {name}; available: "
                       f"{', '.join(mapping)}.")
  return dict(layer_weights)


def style_loss(features: Features, targets: Features,
               layer_weights: Mapping[str, float] | None = None) -> jax.Array:
  """sum_l w_l * mean over (N, C, C) of (G_l(features) - G_l(targets))^2.

  Args:
    features: {layer: (N, h, w, C)}, or one array.
    targets: {layer: target} (or one array) with the target either features (N', h', w', C) of
      any size, or Gram matrices (N, C, C), (1, C, C) or (C, C) (precomputed, e.g. blended); a
      batch of one is broadcast over the N images.
    layer_weights: {layer: w_l}; None: 1 for every layer of `features`.

  Returns:
    Scalar.
  """
  features, targets = _as_dict(features), _as_dict(targets)
  total = jnp.zeros((), jnp.float32)
  for layer, weight in _layer_weights(features, targets, layer_weights).items():
    target = targets[layer]
    if target.ndim == 4:
      target = gram_matrix(target)
    total = total + weight * jnp.mean((gram_matrix(features[layer]) - target) ** 2)
  return total


def content_loss(features: Features, targets: Features,
                 layer_weights: Mapping[str, float] | None = None) -> jax.Array:
  """sum_l w_l * mean((features_l - targets_l)^2): the feature MSE; same shapes per layer."""
  features, targets = _as_dict(features), _as_dict(targets)
  total = jnp.zeros((), jnp.float32)
  for layer, weight in _layer_weights(features, targets, layer_weights).items():
    total = total + weight * jnp.mean((features[layer] - targets[layer]) ** 2)
  return total


def total_variation(images: jax.Array) -> jax.Array:
  """mean((x[i+1, j] - x[i, j])^2) + mean((x[i, j+1] - x[i, j])^2) over images, channels.

  Squared (not absolute) differences: smooth, so L-BFGS and its line search behave. Images are
  (N, H, W, C) or (H, W, C) in any range (the value scales with the range squared).
  """
  dy = images[..., 1:, :, :] - images[..., :-1, :, :]
  dx = images[..., :, 1:, :] - images[..., :, :-1, :]
  return jnp.mean(dy ** 2) + jnp.mean(dx ** 2)


def mean_std(features: jax.Array, eps: float = 1e-5) -> tuple[jax.Array, jax.Array]:
  """Per image and channel: (N, h, w, C) -> mean (N, 1, 1, C), std = sqrt(var + eps) (N, 1, 1, C).

  The variance is the population one (divided by h * w, as instance normalisation); eps inside
  the square root keeps the std and its gradient finite on constant channels.
  """
  mean = jnp.mean(features, axis=(1, 2), keepdims=True)
  var = jnp.mean((features - mean) ** 2, axis=(1, 2), keepdims=True)
  return mean, jnp.sqrt(var + eps)


def adain(content_features: jax.Array, style_features: jax.Array,
          eps: float = 1e-5) -> jax.Array:
  """Adaptive instance normalisation (Huang & Belongie 2017, Eq. 8).

  std_s * (c - mean_c) / std_c + mean_s, statistics per image and channel from `mean_std`.

  Args:
    content_features: (N, h, w, C).
    style_features: (N or 1, h', w', C), any spatial size.
    eps: added to the variances.

  Returns:
    (N, h, w, C) with the style's per-channel mean, and its std up to eps.
  """
  mean_c, std_c = mean_std(content_features, eps)
  mean_s, std_s = mean_std(style_features, eps)
  return std_s * (content_features - mean_c) / std_c + mean_s


def mean_std_loss(features: Features, targets: Features,
                  layer_weights: Mapping[str, float] | None = None,
                  eps: float = 1e-5) -> jax.Array:
  """AdaIN's style loss: sum_l w_l (mean((mu_l(a) - mu_l(b))^2) + mean((s_l(a) - s_l(b))^2)).

  Huang & Belongie write L2 norms of the differences; the reference implementations (and this
  one) use their mean squares, which only rescales the loss per layer.

  Args:
    features: {layer: (N, h, w, C)}, or one array.
    targets: {layer: target}: features (N or 1, h', w', C) or a precomputed (mean, std) pair of
      (N or 1, 1, 1, C) arrays (e.g. from `blend_statistics`).
    layer_weights: {layer: w_l}; None: 1 for every layer of `features`.
    eps: as in `mean_std`.
  """
  features, targets = _as_dict(features), _as_dict(targets)
  total = jnp.zeros((), jnp.float32)
  for layer, weight in _layer_weights(features, targets, layer_weights).items():
    target = targets[layer]
    mean_t, std_t = target if isinstance(target, (tuple, list)) else mean_std(target, eps)
    mean_f, std_f = mean_std(features[layer], eps)
    total = total + weight * (jnp.mean((mean_f - mean_t) ** 2) + jnp.mean((std_f - std_t) ** 2))
  return total


def check_blend_weights(weights: Sequence[float] | None, num_styles: int) -> np.ndarray:
  """(num_styles,) float64 weights: non-negative, summing to 1; None: equal weights.

  Raises:
    ValueError: wrong count, negative or non-finite weights, or a sum other than 1.
  """
  if num_styles < 1:
    raise ValueError("At least one style is needed.")
  if weights is None:
    return np.full(num_styles, 1.0 / num_styles)
  w = np.asarray(weights, np.float64)
  if w.shape != (num_styles,):
    raise ValueError(f"Got {w.size} style weights for {num_styles} styles.")
  if not np.all(np.isfinite(w)) or np.any(w < 0):
    raise ValueError(f"Style weights must be finite and >= 0, got {w.tolist()}.")
  if abs(w.sum() - 1.0) > BLEND_WEIGHT_TOLERANCE:
    raise ValueError(f"Style weights must sum to 1, got {w.tolist()} (sum {w.sum():.6g}).")
  return w


def blend_statistics(statistics: Sequence[Any], weights: Sequence[float] | None = None) -> Any:
  """Weighted mean of several styles' target statistics, leaf by leaf.

  `statistics` are pytrees of the same structure, one per style: {layer: Gram (1, C, C)} for
  `style_loss`, or {layer: (mean, std)} for `mean_std_loss`. Blending means and stds linearly is
  exactly AdaIN's style interpolation (Huang & Belongie 2017, Sec. 7): sum_k w_k AdaIN(c, s_k) =
  AdaIN with std sum_k w_k std_k and mean sum_k w_k mean_k.

  Args:
    statistics: one pytree per style.
    weights: one per style, >= 0, summing to 1 (`check_blend_weights`); None: equal.
  """
  w = check_blend_weights(weights, len(statistics))
  return jax.tree.map(lambda *leaves: sum(float(wk) * leaf for wk, leaf in zip(w, leaves)),
                      *statistics)
