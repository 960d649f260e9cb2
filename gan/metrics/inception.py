"""InceptionV3 for FID in Flax: exactly the network of pytorch-fid (`fid_inception_v3()`).

This is the port of the TensorFlow graph `inception-2015-12-05` that the original TTUR FID code
uses, as pytorch-fid rebuilt it on top of torchvision's Inception3 (src/pytorch_fid/inception.py):
  * torchvision's InceptionV3 layer names and shapes, 1008 classes, no auxiliary classifier, no
    `transform_input` (inputs are already in [-1, 1]);
  * FIDInceptionA / FIDInceptionC / FIDInceptionE_1: the pooling branch averages over the 3x3 window
    without the zero padding (TF's avg_pool; torch `count_include_pad=False`);
  * FIDInceptionE_2 (Mixed_7c): the pooling branch is a 3x3 *max* pool (a quirk of that TF graph);
  * BasicConv2d = conv without bias + BatchNorm(eps=0.001, running statistics) + ReLU.
The FID features are the 2048-d global average pool after Mixed_7c ("pool3").

Weights: the file `pt_inception-2015-12-05-6726825d.pth` (91 MiB: 23,885,392 float32 values) of the
pytorch-fid release
  https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
Nothing is downloaded at run time: fetch it once and put it in $PRODUCTGAN_WEIGHTS_DIR (default:
../shared/weights next to the clone, like the data), or pass its path to `load_fid_inception`.
It is read with gan.metrics.torch_weights, which needs no torch and runs no code from the pickle.

Layout: NHWC activations; torch's OIHW conv weights become Flax HWIO kernels and the fc weight
(out, in) becomes a Dense kernel (in, out). Channel concatenation order equals torch's, so the
2048 features come out in the same order as pytorch-fid's.

Resizing matters: FID values are comparable only between feature sets computed with the same
resizer. `preprocess` reproduces pytorch-fid (bilinear, align_corners=False, no antialiasing);
clean-fid instead resizes with PIL bicubic (antialiased) on the uint8 images, and TF-FID with
tf.image.resize bilinear; each gives different numbers, especially for small images upsampled.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan.metrics import torch_weights

FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048
NUM_CLASSES = 1008  # The 2015 TF graph's output width; 1000 of them are the ImageNet classes.
INPUT_SIZE = 299

# ../shared/weights next to the clone, like configs/default.py's ../shared/data.
_SHARED_WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "weights"

Variables = dict[str, Any]
# Full float32 convolutions: on TPU / GPU the default precision (bf16 passes / TF32) shifts the
# features enough to move FID in the first decimals; on CPU it makes no difference.
_PRECISION = jax.lax.Precision.HIGHEST


class BasicConv2d(nn.Module):
  """Conv (no bias) + BatchNorm (eps 0.001, running statistics) + ReLU; torch's `padding` per axis."""
  features: int
  kernel_size: tuple[int, int]
  strides: tuple[int, int] = (1, 1)
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Conv(self.features, self.kernel_size, self.strides,
                padding=[(p, p) for p in self.padding], use_bias=False, precision=_PRECISION,
                name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
  """3x3 stride-1 average that ignores the zero padding (TF avg_pool; torch count_include_pad=False)."""
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


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
    branch_pool = nn.max_pool(x, (3, 3), strides=(2, 2))
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
    branch_pool = nn.max_pool(x, (3, 3), strides=(2, 2))
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
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
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
  """pytorch-fid's FID InceptionV3 (inference only: BatchNorm uses its running statistics).

  Submodule names equal the torch attribute names (Conv2d_1a_3x3, ..., Mixed_7c, fc), so
  `capture_intermediates=True` exposes pytorch-fid's other feature blocks too: 64-d after the
  first max pool is `nn.max_pool` of Conv2d_2b_3x3's output, 192-d of Conv2d_4a_3x3's, 768-d is
  Mixed_6e's output.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """x: (N, 299, 299, 3) float32 RGB in [-1, 1] (see `preprocess`).

    Returns:
      (pool3 features (N, 2048) float32, >= 0 (average of ReLU outputs),
       logits (N, 1008) float32; the TF graph's softmax over them gives class probabilities).
    Other sizes >= 75x75 run too (the net is convolutional up to the global pool), but FID
    features are defined at 299x299.
    """
    x = BasicConv2d(32, (3, 3), strides=(2, 2), name="Conv2d_1a_3x3")(x)   # 149x149x32
    x = BasicConv2d(32, (3, 3), name="Conv2d_2a_3x3")(x)                   # 147x147x32
    x = BasicConv2d(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)   # 147x147x64
    x = nn.max_pool(x, (3, 3), strides=(2, 2))                             # 73x73x64
    x = BasicConv2d(80, (1, 1), name="Conv2d_3b_1x1")(x)                   # 73x73x80
    x = BasicConv2d(192, (3, 3), name="Conv2d_4a_3x3")(x)                  # 71x71x192
    x = nn.max_pool(x, (3, 3), strides=(2, 2))                             # 35x35x192
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
    features = jnp.mean(x, axis=(1, 2))
    # torchvision applies dropout(0.5) here; it is the identity at inference.
    logits = nn.Dense(NUM_CLASSES, precision=_PRECISION, name="fc")(features)
    return features, logits


def preprocess(images: Any, size: int = INPUT_SIZE, quantize: bool = False) -> jax.Array:
  """Images of this codebase -> InceptionV3 input, resized as pytorch-fid does.

  Args:
    images: (N, H, W, C) float in [-1, 1], C = 1 (grayscale, replicated to RGB) or 3.
    size: output side; 299 for FID.
    quantize: round to the 256 levels of an 8-bit image first, as pytorch-fid sees images that
      were saved to PNG (uint8 / 255 * 2 - 1). Off by default: generated images are compared as
      they are.

  Returns:
    (N, size, size, 3) float32 in [-1, 1].

  Resizer: bilinear with half-pixel centres and no antialiasing, the same as pytorch-fid's
  `F.interpolate(x, (299, 299), mode="bilinear", align_corners=False)`; pytorch-fid resizes in
  [0, 1] and then maps to [-1, 1], which commutes with this linear resize. jax.image.resize's
  default antialias=True would differ when *down*sampling (images larger than 299), so it is
  turned off; for upsampling both agree, edges included (torch clamps the source coordinate to the
  border pixel, JAX renormalises the truncated triangle kernel: both give the border value).
  Not comparable with clean-fid (PIL bicubic with antialiasing on uint8 images) or TF resizing.
  """
  images = jnp.asarray(images, jnp.float32)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"Expected images (N, H, W, 1 or 3), got shape {images.shape}.")
  if quantize:
    images = jnp.round((jnp.clip(images, -1.0, 1.0) + 1.0) * 127.5) / 127.5 - 1.0
  n, h, w, c = images.shape
  if (h, w) != (size, size):
    images = jax.image.resize(images, (n, size, size, c), method="bilinear", antialias=False)
  # Replicated after resizing: the three channels are then equal bit for bit (resizing three
  # copies can differ in the last ulp with the vectorisation XLA picks) and it is 3x less work.
  return jnp.repeat(images, 3, axis=-1) if c == 1 else images


# --- PyTorch state dict <-> Flax variables ---------------------------------------------------

_BN_NAMES = {("params", "scale"): "weight", ("params", "bias"): "bias",
             ("batch_stats", "mean"): "running_mean", ("batch_stats", "var"): "running_var"}


def torch_key(collection: str, path: Sequence[str]) -> str:
  """pytorch-fid state-dict key of a Flax variable, e.g. ("params", ("Mixed_5b", "branch1x1", "conv",
  "kernel")) -> "Mixed_5b.branch1x1.conv.weight"."""
  *modules, leaf = path
  if modules and modules[-1] == "bn":
    name = _BN_NAMES[(collection, leaf)]
  else:
    name = {"kernel": "weight", "bias": "bias"}[leaf]
  return ".".join([*modules, name])


def _torch_shape(flax_shape: tuple[int, ...]) -> tuple[int, ...]:
  """HWIO conv kernel -> OIHW; (in, out) Dense kernel -> (out, in); vectors unchanged."""
  if len(flax_shape) == 4:
    h, w, i, o = flax_shape
    return (o, i, h, w)
  if len(flax_shape) == 2:
    return flax_shape[::-1]
  return flax_shape


def _to_flax(array: np.ndarray) -> np.ndarray:
  """torch layout -> Flax layout (inverse of `_torch_shape`)."""
  if array.ndim == 4:
    return array.transpose(2, 3, 1, 0)
  if array.ndim == 2:
    return array.T
  return array


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


def torch_state_dict_shapes() -> dict[str, tuple[int, ...]]:
  """{key: torch shape} of every tensor `params_from_state_dict` needs (BatchNorm's
  `num_batches_tracked` counters are not needed and are ignored if present)."""
  return {torch_key(c, p): _torch_shape(s) for (c, p), s in _variable_shapes().items()}


def params_from_state_dict(state_dict: dict[str, np.ndarray]) -> Variables:
  """Flax variables {"params": ..., "batch_stats": ...} of InceptionV3 from pytorch-fid's state dict.

  Every expected tensor must be present with its exact shape; anything else (apart from
  `*.num_batches_tracked`) is an error too, so a torchvision or a truncated checkpoint cannot be
  loaded by accident. Values are cast to float32.
  """
  shapes = _variable_shapes()
  expected = {torch_key(c, p): (c, p) for c, p in shapes}
  missing = sorted(k for k in expected if k not in state_dict)
  unexpected = sorted(k for k in state_dict
                      if k not in expected and not k.endswith(".num_batches_tracked"))
  wrong_shape = []
  for key, (collection, path) in expected.items():
    if key in state_dict and tuple(np.shape(state_dict[key])) != _torch_shape(shapes[(collection, path)]):
      wrong_shape.append(f"{key}: {tuple(np.shape(state_dict[key]))} != expected "
                         f"{_torch_shape(shapes[(collection, path)])}")
  if missing or unexpected or wrong_shape:
    def listing(keys: list[str]) -> str:
      return ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
    problems = [f"{what}: {listing(keys)}" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong_shape))
                if keys]
    raise ValueError("Not pytorch-fid's InceptionV3 state dict (pt_inception-2015-12-05): "
                     + "; ".join(problems))
  variables: Variables = {}
  for key, (collection, path) in expected.items():
    node = variables.setdefault(collection, {})
    for name in path[:-1]:
      node = node.setdefault(name, {})
    node[path[-1]] = jnp.asarray(_to_flax(np.asarray(state_dict[key], np.float32)))
  return variables


def default_weights_path() -> Path:
  """$PRODUCTGAN_WEIGHTS_DIR/pt_inception-2015-12-05-6726825d.pth (default dir ../shared/weights)."""
  return Path(os.environ.get("PRODUCTGAN_WEIGHTS_DIR", str(_SHARED_WEIGHTS))) / FID_WEIGHTS_FILENAME


def load_fid_inception(path: Optional[Union[str, os.PathLike]] = None) -> tuple[InceptionV3, Variables]:
  """(InceptionV3(), variables) with pytorch-fid's weights read from `path` (default
  `default_weights_path()`). Apply as `model.apply(variables, preprocess(images))`."""
  path = Path(path) if path is not None else default_weights_path()
  if not path.is_file():
    raise FileNotFoundError(
        f"FID Inception weights not found at {path}. Download them once (no download happens at run "
        f"time) from\n  {FID_WEIGHTS_URL}\nand put the file in $PRODUCTGAN_WEIGHTS_DIR "
        f"(default {_SHARED_WEIGHTS}) or pass its path.")
  return InceptionV3(), params_from_state_dict(torch_weights.load_torch_state_dict(path))
