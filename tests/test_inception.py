"""The torch-free .pth reader and pytorch-fid's InceptionV3 in Flax.

The real weight file cannot be downloaded here, so the tests write .pth files themselves, in the
exact layout of torch.save (torch/serialization.py `_save` / `_legacy_save`, protocol 2 pickles
whose tensors are `torch._utils._rebuild_tensor_v2` calls on persistent storage ids), and check
the reader, the name/shape mapping of all 472 tensors and the forward pass on random weights.
"""

import collections
import io
import os
import pickle
import pickletools
import sys
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from gan.metrics import inception
from gan.metrics import torch_weights

# --- A torch.save look-alike (no torch) ---------------------------------------------------------


class TorchGlobal:
  """Stand-in for a torch global (function or class): pickled as `GLOBAL module\\nname\\n`, the
  bytes pickle writes for the real object, without needing torch to be importable."""

  def __init__(self, module: str, name: str):
    self.module, self.name = module, name

  def __call__(self, *args):  # pickle's save_reduce insists on a callable; never called.
    raise AssertionError(f"stand-in for {self.module}.{self.name}")


REBUILD_TENSOR_V2 = TorchGlobal("torch._utils", "_rebuild_tensor_v2")
STORAGE_CLASSES = {np.dtype(d): TorchGlobal("torch", n) for d, n in [
    (np.float32, "FloatStorage"), (np.float16, "HalfStorage"), (np.float64, "DoubleStorage"),
    (np.int64, "LongStorage"), (np.uint8, "ByteStorage"), (np.bool_, "BoolStorage"),
    (ml_dtypes.bfloat16, "BFloat16Storage")]}


class FakeStorage:
  """A flat storage: torch's persistent id is ('storage', <XStorage class>, key, 'cpu', numel)."""

  def __init__(self, key: str, data: np.ndarray):
    self.key, self.data = key, np.ascontiguousarray(data).reshape(-1)


class FakeTensor:
  """Reduces like torch.Tensor.__reduce_ex__ (torch/_tensor.py): _rebuild_tensor_v2(storage,
  storage_offset, size, stride, requires_grad, OrderedDict())."""

  def __init__(self, storage: FakeStorage, offset: int, size: tuple, stride: tuple):
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

  def __reduce_ex__(self, protocol):
    return (REBUILD_TENSOR_V2, (self.storage, self.offset, self.size, self.stride, False,
                                collections.OrderedDict()))

  def numpy(self) -> np.ndarray:
    """What torch would hold: the strided view of the storage."""
    data = self.storage.data
    return np.lib.stride_tricks.as_strided(data[self.offset:], self.size,
                                           [s * data.itemsize for s in self.stride]).copy()


class TorchPickler(pickle._Pickler):
  """Protocol-2 pickler with torch.save's persistent_id (zip: 5-tuple, legacy: plus view_metadata)."""
  dispatch = dict(pickle._Pickler.dispatch)

  def __init__(self, file, legacy: bool):
    super().__init__(file, protocol=2)  # torch.serialization.DEFAULT_PROTOCOL
    self.legacy = legacy
    self.storages: dict[str, FakeStorage] = {}

  def save_torch_global(self, obj: TorchGlobal) -> None:
    self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
    self.memoize(obj)

  dispatch[TorchGlobal] = save_torch_global

  def persistent_id(self, obj):
    if not isinstance(obj, FakeStorage):
      return None
    self.storages[obj.key] = obj
    pid = ("storage", STORAGE_CLASSES[obj.data.dtype], obj.key, "cpu", obj.data.size)
    return pid + (None,) if self.legacy else pid


def as_tensors(arrays: dict) -> dict:
  """{name: FakeTensor}: numpy arrays become contiguous tensors with their own storage (keys "0",
  "1", ... in order, as torch's _save numbers them); FakeTensors pass through."""
  tensors, count = {}, 0
  for name, value in arrays.items():
    if not isinstance(value, FakeTensor):
      value = np.array(value, order="C")  # (np.ascontiguousarray would turn a 0-d array 1-d.)
      stride = tuple(s // value.itemsize for s in value.strides)
      value = FakeTensor(FakeStorage(str(count), value), 0, value.shape, stride)
      count += 1
    tensors[name] = value
  return tensors


def state_dict_object(tensors: dict) -> collections.OrderedDict:
  """An OrderedDict with `_metadata` set, as nn.Module.state_dict() returns (pickled via BUILD)."""
  obj = collections.OrderedDict(tensors)
  obj._metadata = collections.OrderedDict([("", {"version": 1})])
  return obj


def save_torch(path: Path, arrays: dict, legacy: bool = False, archive_name: str = "archive") -> None:
  """Writes `arrays` ({name: np.ndarray or FakeTensor}) the way torch.save(state_dict, path) does
  (zip layout of torch >= 1.6, or with `legacy` the _use_new_zipfile_serialization=False one)."""
  assert sys.byteorder == "little"  # The bytes are written in native order and labelled little.
  obj = state_dict_object(as_tensors(arrays))
  buffer = io.BytesIO()
  pickler = TorchPickler(buffer, legacy)
  if not legacy:
    pickler.dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
      archive.writestr(f"{archive_name}/data.pkl", buffer.getvalue())
      archive.writestr(f"{archive_name}/byteorder", "little")
      for key in sorted(pickler.storages):
        archive.writestr(f"{archive_name}/data/{key}", pickler.storages[key].data.tobytes())
      archive.writestr(f"{archive_name}/version", "3\n")
    return
  for header in (torch_weights.LEGACY_MAGIC_NUMBER, torch_weights.LEGACY_PROTOCOL_VERSION,
                 {"protocol_version": 1001, "little_endian": True,
                  "type_sizes": {"short": 2, "int": 4, "long": 8}}):
    pickle.dump(header, buffer, protocol=2)
  pickler.dump(obj)
  keys = sorted(pickler.storages)
  pickle.dump(keys, buffer, protocol=2)
  for key in keys:
    data = pickler.storages[key].data
    buffer.write(data.size.to_bytes(8, "little") + data.tobytes())
  path.write_bytes(buffer.getvalue())


# --- The reader --------------------------------------------------------------------------------


def mixed_arrays() -> dict:
  """A few tensors of every supported dtype, a 0-d counter, and strided views sharing a storage."""
  rng = np.random.default_rng(0)
  arrays = {
      "conv.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
      "half": rng.normal(size=(5,)).astype(np.float16),
      "double": rng.normal(size=(2, 3)),
      "bf16": rng.normal(size=(3,)).astype(ml_dtypes.bfloat16),
      "long": rng.integers(-2**40, 2**40, size=(7,)),
      "bytes": rng.integers(0, 256, size=(2, 2), dtype=np.uint8),
      "mask": rng.random(6) > 0.5,
      "bn.num_batches_tracked": np.array(12345, np.int64),
      "empty": np.zeros((0, 3), np.float32),
  }
  shared = FakeStorage("shared", np.arange(24, dtype=np.float32))
  arrays["transposed"] = FakeTensor(shared, 0, (4, 6), (1, 4))  # a (6, 4) matrix's .T
  arrays["offset_slice"] = FakeTensor(shared, 5, (2, 3), (6, 2))  # elements [[5, 7, 9], [11, 13, 15]]
  return arrays


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_round_trip(tmp_path, legacy):
  arrays = mixed_arrays()
  path = tmp_path / "weights.pth"
  save_torch(path, arrays, legacy=legacy)
  loaded = torch_weights.load_torch_state_dict(path)
  assert list(loaded) == list(arrays)
  for name, value in arrays.items():
    expected = value.numpy() if isinstance(value, FakeTensor) else value
    assert loaded[name].dtype == expected.dtype, name
    assert loaded[name].shape == expected.shape, name
    np.testing.assert_array_equal(loaded[name], expected, err_msg=name)
    assert loaded[name].flags.c_contiguous and loaded[name].flags.writeable
  np.testing.assert_array_equal(loaded["transposed"], np.arange(24, dtype=np.float32).reshape(6, 4).T)


def test_writer_matches_torch_zip_layout(tmp_path):
  """The file has torch._save's records and pickle opcodes, so the reader is tested on the real layout."""
  path = tmp_path / "w.pth"
  save_torch(path, {"a.weight": np.ones((2, 3), np.float32), "b": np.zeros(2, np.int64)},
             archive_name="w")
  with zipfile.ZipFile(path) as archive:
    assert sorted(archive.namelist()) == ["w/byteorder", "w/data.pkl", "w/data/0", "w/data/1", "w/version"]
    assert archive.read("w/byteorder") == b"little"
    assert len(archive.read("w/data/0")) == 6 * 4 and len(archive.read("w/data/1")) == 2 * 8
    ops = list(pickletools.genops(archive.read("w/data.pkl")))
  assert ops[0][0].name == "PROTO" and ops[0][1] == 2
  globals_ = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
  assert globals_ == {"collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch FloatStorage",
                      "torch LongStorage"}
  assert sum(op.name == "BINPERSID" for op, _, _ in ops) == 2
  assert any(op.name == "BUILD" for op, _, _ in ops)  # the state dict's _metadata
  assert torch_weights.load_torch_state_dict(path)["a.weight"].shape == (2, 3)


def test_writer_matches_torch_legacy_layout(tmp_path):
  """_legacy_save: magic, protocol 1001, sys info, the object (6-tuple persistent ids), sorted
  storage keys, then per key an int64 element count and the bytes."""
  path = tmp_path / "legacy.pth"
  save_torch(path, {"a": np.arange(3, dtype=np.float32), "b": np.ones((2, 2), np.float64)}, legacy=True)
  f = io.BytesIO(path.read_bytes())
  assert pickle.load(f) == 0x1950a86a20f9469cfc6c and pickle.load(f) == 1001
  assert pickle.load(f)["little_endian"] is True
  ops = list(pickletools.genops(f))  # stops after the object's STOP opcode
  assert {arg for op, arg, _ in ops if op.name == "GLOBAL"} >= {"torch FloatStorage", "torch DoubleStorage"}
  assert pickle.load(f) == ["0", "1"]
  assert int.from_bytes(f.read(8), "little") == 3 and np.frombuffer(f.read(12), np.float32)[2] == 2
  assert int.from_bytes(f.read(8), "little") == 4 and len(f.read()) == 4 * 8


def os_system_pickle(command: str) -> bytes:
  """Protocol-0 pickle that calls os.system(command) when loaded by an unrestricted unpickler."""
  return b"cos\nsystem\n(V" + command.encode() + b"\ntR."


@pytest.mark.parametrize("container", ["zip", "raw"])
def test_malicious_pickle_is_rejected(tmp_path, container):
  marker = tmp_path / "pwned"
  payload = os_system_pickle(f"touch {marker}")
  path = tmp_path / "evil.pth"
  if container == "zip":
    with zipfile.ZipFile(path, "w") as archive:
      archive.writestr("archive/data.pkl", payload)
  else:
    path.write_bytes(payload)
  with pytest.raises(torch_weights.UnsafePickleError, match=r"os\.system"):
    torch_weights.load_torch_state_dict(path)
  assert not marker.exists()
  assert issubclass(torch_weights.UnsafePickleError, ValueError)


def test_malicious_global_inside_a_valid_file_is_rejected(tmp_path):
  """A disallowed global nested in an otherwise well-formed state dict (here builtins.eval)."""

  class Evil:
    def __reduce__(self):
      return (eval, ("1 + 1",))

  path = tmp_path / "evil.pth"
  save_torch(path, {"w": np.ones(2, np.float32)})
  with zipfile.ZipFile(path) as archive:
    records = {n: archive.read(n) for n in archive.namelist()}
  records["archive/data.pkl"] = pickle.dumps(collections.OrderedDict(w=Evil()), protocol=2)
  with zipfile.ZipFile(path, "w") as archive:
    for name, data in records.items():
      archive.writestr(name, data)
  # Protocol 2 writes builtins as Python 2's __builtin__.
  with pytest.raises(torch_weights.UnsafePickleError, match=r"__builtin__\.eval"):
    torch_weights.load_torch_state_dict(path)


def test_out_of_bounds_view_is_rejected(tmp_path):
  """A crafted size/stride must not read past the storage (as_strided would read foreign memory)."""
  path = tmp_path / "oob.pth"
  save_torch(path, {"w": FakeTensor(FakeStorage("0", np.zeros(4, np.float32)), 1, (4,), (1,))})
  with pytest.raises(ValueError, match="reads element 4 of storage '0' which has 4"):
    torch_weights.load_torch_state_dict(path)


class TensorWithState(FakeTensor):
  """Reduces with a state, so pickle emits BUILD on the rebuilt tensor (torch never does)."""

  def __reduce_ex__(self, protocol):
    return super().__reduce_ex__(protocol) + ({"size": (10**9,)},)


def test_build_cannot_change_a_checked_tensor(tmp_path):
  """BUILD after the bounds check could otherwise grow the view past the storage."""
  path = tmp_path / "build.pth"
  save_torch(path, {"w": TensorWithState(FakeStorage("0", np.zeros(4, np.float32)), 0, (4,), (1,))})
  with pytest.raises(ValueError, match="set the state of a PendingTensor"):
    torch_weights.load_torch_state_dict(path)


def test_not_a_torch_file(tmp_path):
  text = tmp_path / "notes.pth"
  text.write_text("just some text, not a checkpoint\n")
  with pytest.raises(ValueError, match="Not a PyTorch checkpoint"):
    torch_weights.load_torch_state_dict(text)
  plain_pickle = tmp_path / "list.pth"
  plain_pickle.write_bytes(pickle.dumps([1, 2, 3]))
  with pytest.raises(ValueError, match="Not a PyTorch checkpoint"):
    torch_weights.load_torch_state_dict(plain_pickle)
  other_zip = tmp_path / "other.pth"
  with zipfile.ZipFile(other_zip, "w") as archive:
    archive.writestr("readme.txt", "hello")
  with pytest.raises(ValueError, match="data.pkl"):
    torch_weights.load_torch_state_dict(other_zip)
  truncated = tmp_path / "truncated.pth"
  save_torch(truncated, {"w": np.ones(8, np.float32)}, legacy=True)
  truncated.write_bytes(truncated.read_bytes()[:-4])
  with pytest.raises(ValueError, match="truncated or corrupt"):
    torch_weights.load_torch_state_dict(truncated)


# --- InceptionV3 ---------------------------------------------------------------------------------


def test_state_dict_names_and_parameter_count():
  shapes = inception.torch_state_dict_shapes()
  # Spot checks against torchvision's Inception3 / pytorch-fid's FID blocks (models/inception.py).
  assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
  assert shapes["Conv2d_4a_3x3.bn.running_var"] == (192,)
  assert shapes["Mixed_5b.branch_pool.conv.weight"] == (32, 192, 1, 1)
  assert shapes["Mixed_5d.branch5x5_2.conv.weight"] == (64, 48, 5, 5)
  assert shapes["Mixed_6a.branch3x3.conv.weight"] == (384, 288, 3, 3)
  assert shapes["Mixed_6b.branch7x7_2.conv.weight"] == (128, 128, 1, 7)
  assert shapes["Mixed_6e.branch7x7dbl_5.conv.weight"] == (192, 192, 1, 7)
  assert shapes["Mixed_7a.branch7x7x3_4.conv.weight"] == (192, 192, 3, 3)
  assert shapes["Mixed_7b.branch3x3dbl_1.conv.weight"] == (448, 1280, 1, 1)
  assert shapes["Mixed_7c.branch3x3dbl_3b.conv.weight"] == (384, 384, 3, 1)
  assert shapes["fc.weight"] == (1008, 2048) and shapes["fc.bias"] == (1008,)
  assert not any(k.startswith("AuxLogits") for k in shapes)
  # 94 BasicConv2d (conv weight + 4 BatchNorm tensors each) + fc weight and bias.
  assert sum(k.endswith(".conv.weight") for k in shapes) == 94 and len(shapes) == 94 * 5 + 2
  # torchvision lists inception_v3 (1000 classes, with AuxLogits) at num_params = 27,161,264.
  # pytorch-fid drops AuxLogits (conv0 768->128 1x1 + BN, conv1 128->768 5x5 + BN, fc 768->1000)
  # and has 1008 classes.
  aux = (128 * 768 + 2 * 128) + (768 * 128 * 5 * 5 + 2 * 768) + (768 * 1000 + 1000)
  expected = 27_161_264 - aux + 8 * (2048 + 1)
  assert expected == 23_850_960
  trainable = sum(int(np.prod(s)) for k, s in shapes.items() if "running_" not in k)
  assert trainable == expected
  # With BatchNorm's running mean and variance (2 x 17,216 channels): 91.1 MiB of float32.
  bn_channels = sum(s[0] for k, s in shapes.items() if k.endswith("bn.running_mean"))
  assert bn_channels == 17_216
  assert sum(int(np.prod(s)) for s in shapes.values()) == expected + 2 * bn_channels == 23_885_392


def random_fid_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
  """Random weights with exactly the expected names/shapes, scaled so activations stay O(1),
  plus the num_batches_tracked counters a torch >= 0.4.1 state dict carries."""
  rng = np.random.default_rng(seed)
  state = {}
  for key, shape in inception.torch_state_dict_shapes().items():
    if key.endswith("conv.weight"):
      state[key] = rng.normal(0, np.sqrt(2 / np.prod(shape[1:])), shape).astype(np.float32)
    elif key.endswith(("bn.weight", "bn.running_var")):
      state[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    elif key == "fc.weight":
      state[key] = rng.normal(0, 0.02, shape).astype(np.float32)
    else:
      state[key] = rng.normal(0, 0.1, shape).astype(np.float32)
    if key.endswith("bn.running_var"):
      state[key.replace("running_var", "num_batches_tracked")] = np.array(0, np.int64)
  return state


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory):
  """(path of a random pytorch-fid-shaped .pth, its state dict)."""
  state = random_fid_state_dict()
  path = tmp_path_factory.mktemp("weights") / inception.FID_WEIGHTS_FILENAME
  save_torch(path, state)
  return path, state


def test_load_and_forward(fid_weights):
  path, state = fid_weights
  model, variables = inception.load_fid_inception(path)
  params, stats = variables["params"], variables["batch_stats"]
  np.testing.assert_array_equal(params["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"],
                                state["Mixed_6b.branch7x7_2.conv.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(stats["Mixed_7c"]["branch_pool"]["bn"]["var"],
                                state["Mixed_7c.branch_pool.bn.running_var"])
  np.testing.assert_array_equal(params["fc"]["kernel"], state["fc.weight"].T)

  images = jax.random.uniform(jax.random.key(0), (2, 64, 48, 1), minval=-1.0, maxval=1.0)
  x = inception.preprocess(images)
  capture = lambda module, method: module.name in ("Conv2d_1a_3x3", "Mixed_7c")
  forward = jax.jit(lambda v, x: model.apply(v, x, capture_intermediates=capture))
  (features, logits), state_out = forward(variables, x)
  features, logits = np.asarray(features), np.asarray(logits)
  assert features.shape == (2, inception.FEATURE_DIM) and logits.shape == (2, inception.NUM_CLASSES)
  assert np.isfinite(features).all() and np.isfinite(logits).all()
  assert (features >= 0).all() and features.std() > 0
  assert not np.allclose(features[0], features[1])
  intermediates = state_out["intermediates"]

  # The first BasicConv2d by hand: 3x3 stride-2 valid conv, BN with eps 0.001, ReLU.
  w = state["Conv2d_1a_3x3.conv.weight"]
  conv = jax.lax.conv_general_dilated(x, jnp.asarray(w.transpose(2, 3, 1, 0)), (2, 2), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      precision=jax.lax.Precision.HIGHEST)
  bn = {k: state[f"Conv2d_1a_3x3.bn.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
  expected = np.maximum((np.asarray(conv) - bn["running_mean"]) / np.sqrt(bn["running_var"] + 1e-3)
                        * bn["weight"] + bn["bias"], 0.0)
  first = np.asarray(intermediates["Conv2d_1a_3x3"]["__call__"][0])
  assert first.shape == (2, 149, 149, 32)
  np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-5)

  # pool3 is the spatial mean of Mixed_7c (8x8x2048) and the logits are fc of it.
  mixed_7c = np.asarray(intermediates["Mixed_7c"]["__call__"][0])
  assert mixed_7c.shape == (2, 8, 8, 2048)
  np.testing.assert_allclose(features, mixed_7c.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(logits, features @ state["fc.weight"].T + state["fc.bias"], rtol=1e-4, atol=1e-4)


def test_real_weights_if_present():
  """With the real pt_inception-2015-12-05 file in $PRODUCTGAN_WEIGHTS_DIR: every tensor maps."""
  path = inception.default_weights_path()
  if not path.is_file():
    pytest.skip(f"real FID weights not found at {path} (see gan/metrics/inception.py to get them)")
  model, variables = inception.load_fid_inception(path)
  features, logits = jax.jit(model.apply)(variables, inception.preprocess(jnp.zeros((1, 32, 32, 3))))
  assert features.shape == (1, 2048) and np.isfinite(np.asarray(logits)).all()
  assert (np.asarray(features) >= 0).all()


def test_state_dict_errors_are_listed(fid_weights):
  _, state = fid_weights
  broken = dict(state)
  del broken["Mixed_5b.branch1x1.conv.weight"]
  broken["AuxLogits.fc.weight"] = np.zeros((1000, 768), np.float32)
  broken["fc.weight"] = np.zeros((1000, 2048), np.float32)
  with pytest.raises(ValueError) as error:
    inception.params_from_state_dict(broken)
  message = str(error.value)
  assert "missing keys: Mixed_5b.branch1x1.conv.weight" in message
  assert "unexpected keys: AuxLogits.fc.weight" in message
  assert "fc.weight: (1000, 2048) != expected (1008, 2048)" in message


def test_missing_weight_file_explains_download(tmp_path, monkeypatch):
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(tmp_path))
  assert inception.default_weights_path() == tmp_path / "pt_inception-2015-12-05-6726825d.pth"
  with pytest.raises(FileNotFoundError, match="releases/download/fid_weights"):
    inception.load_fid_inception()


def test_pools_of_the_fid_blocks():
  """count_include_pad=False: a constant map stays constant at the borders (torch's default would
  give 4/9 in the corners); FIDInceptionE_2 max-pools."""
  ones = jnp.ones((1, 5, 5, 2))
  np.testing.assert_allclose(inception._avg_pool_3x3(ones), 1.0, rtol=1e-6)
  assert inception.FIDInceptionE_1().pool == "avg" and inception.FIDInceptionE_2().pool == "max"


# --- preprocess ----------------------------------------------------------------------------------


def torch_bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) weights of torch's F.interpolate(mode='bilinear', align_corners=False) along one
  axis (aten/src/ATen/native/UpSample.h: area_pixel_compute_source_index, clamped at 0)."""
  scale = n_in / n_out
  matrix = np.zeros((n_out, n_in))
  for i in range(n_out):
    src = max(scale * (i + 0.5) - 0.5, 0.0)
    x0 = int(src)
    x1 = x0 + (1 if x0 < n_in - 1 else 0)
    frac = src - x0
    matrix[i, x0] += 1 - frac
    matrix[i, x1] += frac
  return matrix


@pytest.mark.parametrize("height,width", [(28, 28), (512, 37)], ids=["upsample", "down-and-up"])
def test_preprocess_matches_torch_bilinear(height, width):
  images = np.random.default_rng(1).uniform(-1, 1, (2, height, width, 3)).astype(np.float32)
  out = np.asarray(inception.preprocess(images))
  assert out.shape == (2, 299, 299, 3) and out.dtype == np.float32
  rows, cols = torch_bilinear_matrix(height, 299), torch_bilinear_matrix(width, 299)
  expected = np.einsum("ih,nhwc,jw->nijc", rows, images.astype(np.float64), cols, optimize=True)
  # Both resizers compute the source coordinate (i + 0.5) * scale - 0.5 in float32; its rounding
  # (~1e-7 x 512 px) moves values by up to ~5e-5 when downsampling 512 px, ~1e-6 when upsampling.
  np.testing.assert_allclose(out, expected, atol=1e-4 if max(height, width) > 299 else 1e-5)


def test_preprocess_constant_grayscale_and_quantize():
  constant = np.full((1, 28, 28, 1), 0.3, np.float32)
  out = np.asarray(inception.preprocess(constant))
  assert out.shape == (1, 299, 299, 3)
  np.testing.assert_allclose(out, 0.3, rtol=1e-6)
  gray = np.random.default_rng(2).uniform(-1, 1, (2, 20, 20, 1)).astype(np.float32)
  out = np.asarray(inception.preprocess(gray))
  np.testing.assert_array_equal(out[..., 0], out[..., 1])
  np.testing.assert_array_equal(out[..., 0], out[..., 2])
  same = np.asarray(inception.preprocess(np.zeros((1, 299, 299, 3)) + gray[:1, :1, :1]))
  np.testing.assert_array_equal(same, np.broadcast_to(gray[:1, :1, :1], (1, 299, 299, 3)))
  quantized = np.asarray(inception.preprocess(gray, size=20, quantize=True))
  levels = (quantized + 1) * 127.5
  np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
  with pytest.raises(ValueError, match="1 or 3"):
    inception.preprocess(np.zeros((1, 8, 8, 2)))


@pytest.mark.slow
def test_evaluate_with_inception_features(tmp_path, fid_weights, write_idx, monkeypatch):
  """gan.evaluate end to end on InceptionV3 features (random weights; 20 images per set)."""
  from configs import tiny
  from gan import evaluate
  from gan import train
  rng = np.random.default_rng(0)
  for split in ("train", "test"):
    write_idx(tmp_path, rng.integers(0, 255, (20, 28, 28), dtype=np.uint8), np.arange(20) % 10, split=split)
  config = tiny.get_config()
  config.data.dir = str(tmp_path)
  config.train.batch_size = 4
  config.train.steps = 2
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  monkeypatch.setenv("PRODUCTGAN_CACHE_DIR", str(tmp_path / "cache"))
  record = evaluate.evaluate_run(workdir, classifier_dir="unused", num_samples=20, features="inception",
                                 inception_weights=str(fid_weights[0]))
  model, floor = record["model"], record["real_data_floor"]
  assert "InceptionV3" in record["computed_with"]["features"]
  assert np.isfinite(model["fid"]) and model["fid"] >= 0 and floor["fid"] >= 0
  assert 1.0 <= model["inception_score_inception"] <= inception.NUM_CLASSES
  assert "classes_covered" not in model                  # ImageNet logits say nothing of product classes
  cached = os.listdir(tmp_path / "cache" / "reference_features")
  assert sorted(cached) == ["fashion_mnist-test-inception-32px-features.npz",
                            "fashion_mnist-train-inception-32px-features.npz"]
