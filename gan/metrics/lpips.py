"""LPIPS v0.1 (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric"), AlexNet and VGG16 variants, as a metric and as a differentiable loss; jit-compiled.

  model = lpips.load("alex")            # or "vgg"; weights via gan.weights (`python -m gan.weights fetch lpips`)
  d = lpips.distance(model, a, b)       # (N,) float32; a, b: (N, H, W, 3) or (N, H, W, 1) in [-1, 1]
  l = lpips.loss(model, a, b)           # scalar mean distance, differentiable w.r.t. a and b

Images are scaled channel-wise, passed through the backbone, and at each of 5 ReLU taps every
feature vector is unit-normalised over channels; the squared difference is weighted per channel
by the non-negative linear layer, averaged over space and summed over taps. LPIPS-Alex gives the
published 0.722 and 0.138 on the paper's examples (ex_ref vs ex_p0, ex_p1). The VGG16 backbone is
gan.style.vgg's (the same network the style transfer uses).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan import weights
from gan.style import vgg

HIGHEST = jax.lax.Precision.HIGHEST
# LPIPS's ScalingLayer: maps [-1, 1] images to the backbone's ImageNet-normalised input.
SHIFT = np.array([-.030, -.088, -.188], np.float32)
SCALE = np.array([.458, .448, .450], np.float32)
NETS = ("alex", "vgg")
# Smallest height/width giving a non-empty last tap: AlexNet's stride-4 conv and two 3/2 pools
# need 31 pixels, VGG16's four 2x2 pools need 16.
MIN_SIZE = {"alex": 31, "vgg": 16}


def _conv(features: int, kernel: int, stride: int = 1, pad: int = 0) -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), (stride, stride), padding=[(pad, pad)] * 2, precision=HIGHEST)


class AlexNetFeatures(nn.Module):
  """torchvision's AlexNet conv layers, as tapped by LPIPS (params Conv_0..Conv_4).

  Input (N, H, W, 3) float32, ImageNet-normalised (see SHIFT, SCALE), H, W >= 31. Returns the 5
  ReLU outputs [relu1 (64 ch, stride 4), relu2 (192, stride 8), relu3 (384, 16), relu4 (256, 16),
  relu5 (256, 16)], each (N, h, w, C), values >= 0.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    taps = [nn.relu(_conv(64, 11, stride=4, pad=2)(x))]
    x = nn.max_pool(taps[-1], (3, 3), (2, 2))   # VALID = torch MaxPool2d without ceil_mode
    taps.append(nn.relu(_conv(192, 5, pad=2)(x)))
    x = nn.max_pool(taps[-1], (3, 3), (2, 2))
    for features in (384, 256, 256):
      x = nn.relu(_conv(features, 3, pad=1)(x))
      taps.append(x)
    return taps


# LPIPS-VGG's backbone: torchvision's ImageNet VGG16, the VGG of gan.style.vgg (params conv1_1 ..
# conv5_3, gan.style.vgg.load_vgg16), tapped after the last ReLU of each block. The ScalingLayer's
# (x - SHIFT) / SCALE for x in [-1, 1] is torchvision's (x01 - mean) / std for x01 in [0, 1], so the
# module gets the scaled images as they are (preprocessing None).
VGG16 = vgg.VGG(depth=16, preprocessing=None, precision=HIGHEST)
LPIPS_VGG_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


class LpipsModel(NamedTuple):
  """`net` ("alex" or "vgg") and its params: {"features": backbone variables, "lin": 5 (C,) float32
  non-negative per-channel weights of the linear layers}."""
  net: str
  params: dict[str, Any]


def _check_net(net: str) -> None:
  if net not in NETS:
    raise ValueError(f"Unknown LPIPS net {net!r}; valid: {NETS}.")


def backbone_taps(net: str, variables: dict[str, Any], x: jax.Array) -> list[jax.Array]:
  """The 5 ReLU taps of the LPIPS backbone: x (N, H, W, 3) float32, already scaled ((x - SHIFT) /
  SCALE, H, W >= MIN_SIZE[net]) -> [(N, h_l, w_l, C_l)] float32 >= 0, shallow to deep. "alex":
  AlexNetFeatures; "vgg": VGG16 at LPIPS_VGG_TAPS (stops after relu5_3)."""
  _check_net(net)
  if net == "alex":
    return AlexNetFeatures().apply(variables, x)
  out = VGG16.apply(variables, x, LPIPS_VGG_TAPS)
  return [out[tap] for tap in LPIPS_VGG_TAPS]


def _nest(flat: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
  """{"Conv_0": {"kernel": ...}, ...} of the "<prefix>Conv_0/kernel"... entries of a load_arrays dict."""
  tree: dict[str, Any] = {}
  for key, value in flat.items():
    if key.startswith(prefix):
      *path, leaf = key[len(prefix):].split("/")
      node = tree
      for part in path:
        node = node.setdefault(part, {})
      node[leaf] = jnp.asarray(value, jnp.float32)
  return tree


def load(net: str = "alex") -> LpipsModel:
  """LPIPS v0.1 with pretrained weights; MissingWeightsError (with the fetch command) when absent."""
  _check_net(net)   # before touching the weights
  lin_arrays = weights.load_arrays(f"lpips_{net}")
  if net == "alex":
    features = {"params": _nest(lin_arrays, "AlexNet_0/")}
  else:
    features = {"params": vgg.load_vgg16()}   # Conv_<i> of gan.weights "vgg16" named conv1_1 ...
  lin = tuple(jnp.asarray(lin_arrays[f"NetLinLayer_{i}/Conv_0/kernel"].reshape(-1)) for i in range(5))
  return LpipsModel(net, {"features": features, "lin": lin})


def available(net: str = "alex") -> bool:
  """Whether the weights of LPIPS-`net` have been fetched (and are intact)."""
  _check_net(net)
  needed = ["lpips_alex"] if net == "alex" else ["lpips_vgg", "vgg16"]
  return all(weights.is_present(name) for name in needed)


@functools.lru_cache(maxsize=2)
def cached(net: str = "alex") -> LpipsModel:
  """`load(net)` once per process, for metrics computed at every evaluation."""
  return load(net)


def init(net: str, key: jax.Array) -> LpipsModel:
  """LPIPS with random params of the right shapes (the module's init, lin weights uniform in [0, 1))."""
  _check_net(net)
  x = jnp.zeros((1, MIN_SIZE[net], MIN_SIZE[net], 3))
  features = AlexNetFeatures().init(key, x) if net == "alex" else VGG16.init(key, x, LPIPS_VGG_TAPS)
  taps = jax.eval_shape(functools.partial(backbone_taps, net), features, x)
  keys = jax.random.split(jax.random.fold_in(key, 1), len(taps))
  lin = tuple(jax.random.uniform(k, (t.shape[-1],)) for k, t in zip(keys, taps))
  return LpipsModel(net, {"features": features, "lin": lin})


def normalize(x: jax.Array) -> jax.Array:
  """x / (||x|| + 1e-10) over the last axis, as LPIPS; zero vectors stay 0 with finite gradients.

  sqrt at 0 has an infinite derivative, which becomes NaN (inf * 0) through ReLU's zero features;
  the norm of a zero vector is therefore computed as sqrt(1), which changes no forward value
  (x is 0 there; up to float32 underflow of x^2 below 1e-45, where both results are < 1e-12).
  """
  s = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
  return x / (jnp.sqrt(jnp.where(s > 0, s, 1.0)) + 1e-10)


def from_features(taps_a: Sequence[jax.Array], taps_b: Sequence[jax.Array],
                  lin: Sequence[jax.Array]) -> jax.Array:
  """The LPIPS formula given feature taps (N, h_l, w_l, C_l) of both images and lin weights (C_l,):
  sum_l mean_hw sum_c lin_l[c] (normalize(a_l) - normalize(b_l))[c]^2. Returns (N,) float32 >= 0."""
  return sum(jnp.mean(jnp.sum(jnp.square(normalize(a) - normalize(b)) * w, axis=-1), axis=(1, 2))
             for a, b, w in zip(taps_a, taps_b, lin))


@functools.partial(jax.jit, static_argnums=0)
def _distance(net: str, params: dict[str, Any], a: jax.Array, b: jax.Array) -> jax.Array:
  n = a.shape[0]
  # One backbone pass over both batches.
  x = (jnp.concatenate([a, b]) - SHIFT) / SCALE
  taps = backbone_taps(net, params["features"], x)
  return from_features([t[:n] for t in taps], [t[n:] for t in taps], params["lin"])


def _check(net: str, a: Any, b: Any) -> tuple[jax.Array, jax.Array]:
  """Both images as float32 (N, H, W, 3): grayscale replicated; ValueError for unusable shapes."""
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  if a.shape != b.shape:
    raise ValueError(f"LPIPS compares images of the same shape, got {a.shape} and {b.shape}.")
  if a.ndim != 4 or a.shape[-1] not in (1, 3):
    raise ValueError(f"LPIPS expects images (N, H, W, 3) or grayscale (N, H, W, 1) in [-1, 1], got "
                     f"shape {a.shape}; add a batch axis to a single image with x[None].")
  if min(a.shape[1:3]) < MIN_SIZE[net]:
    raise ValueError(f"Images of {a.shape[1]}x{a.shape[2]} pixels are too small for LPIPS-{net}: height "
                     f"and width must be at least {MIN_SIZE[net]}; upsample them first.")
  if a.shape[-1] == 1:
    a, b = jnp.repeat(a, 3, axis=-1), jnp.repeat(b, 3, axis=-1)
  return a, b


def distance(model: LpipsModel, a: Any, b: Any) -> jax.Array:
  """LPIPS distance of each image pair: a, b (N, H, W, 3) or (N, H, W, 1) in [-1, 1] -> (N,) float32 >= 0
  (0 for identical images). Differentiable w.r.t. a and b; usable inside jit / grad."""
  a, b = _check(model.net, a, b)
  return _distance(model.net, model.params, a, b)


def loss(model: LpipsModel, a: Any, b: Any) -> jax.Array:
  """Mean LPIPS distance over the batch, a scalar float32 for optimisation (e.g. GAN inversion)."""
  return jnp.mean(distance(model, a, b))


def mean_distance(model: LpipsModel, a: np.ndarray, b: np.ndarray, batch_size: int = 64) -> float:
  """Mean LPIPS distance over many image pairs (N, H, W, C) in [-1, 1], in batches, as a metric."""
  if len(a) != len(b) or len(a) == 0:
    raise ValueError(f"Expected two equally long non-empty image sets, got {len(a)} and {len(b)}.")
  total = sum(np.sum(np.asarray(distance(model, a[i:i + batch_size], b[i:i + batch_size])), dtype=np.float64)
              for i in range(0, len(a), batch_size))
  return float(total) / len(a)
