"""Reads PyTorch `torch.save(state_dict)` files into numpy, without torch and without running code from the pickle.

A `.pth` file is a pickle whose tensors point at raw storages kept next to it. Two layouts exist
(torch/serialization.py, `_save` and `_legacy_save`):

* zip (torch >= 1.6, the default): a zip archive with one top-level folder `<archive>/` holding
  `data.pkl` (the pickled object), `byteorder` ("little" / "big"; absent in files from torch < 2.1,
  which means little), `data/<key>` (the raw bytes of storage `<key>`), `version` and other records
  that are ignored here.
* legacy (torch < 1.6): five pickles in a row: the magic number 0x1950a86a20f9469cfc6c, the
  protocol version 1001, a sys-info dict, the object, and the sorted list of storage keys; then,
  for each key in that order, the storage's element count as a little-endian int64 followed by its
  little-endian bytes. (The even older tar layout of torch <= 0.3 is rejected with a clear error.)

TorchScript archives (`torch.jit.save`) use the zip layout too, with `constants.pkl` and `code/`
beside `data.pkl`; their `data.pkl` pickles the module tree itself: objects of classes
`__torch__.<module path>.<Class>` built with NEWOBJ and given their attributes (parameters, buffers,
sub-modules, ints, int lists via `torch.jit._pickle.build_intlist`) by BUILD. `load_torchscript_tensors`
reads only the tensors of that tree, by dotted attribute path (no code of `code/` is looked at or run).

In both, a tensor is pickled as `torch._utils._rebuild_tensor_v2(storage, storage_offset, size,
stride, requires_grad, backward_hooks[, metadata])` and a storage as the persistent id
`('storage', <torch.FloatStorage etc.>, key, location, numel)` (legacy: plus `view_metadata`).

`pickle.load` on an untrusted file can run any code (a global such as `os.system` is called with
attacker-chosen arguments). `_RestrictedUnpickler.find_class` therefore resolves only the handful
of globals a state dict needs, to numpy-building stand-ins defined here, and raises
`UnsafePickleError` (a ValueError naming the global) for anything else. The storage references are
bounds-checked before any strided view is taken, so a crafted size/stride cannot read outside the
storage.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import sys
import tarfile
import zipfile
from typing import Any, Callable, Optional, Union

import ml_dtypes
import numpy as np

PathLike = Union[str, os.PathLike]

LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL_VERSION = 1001

# Pickled storage class name -> element dtype (torch/storage.py `_dtype_to_storage_type_map`).
# UntypedStorage holds raw bytes. Quantized storages (QInt8Storage, ...) are not supported.
STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype(np.float64),
    "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "ComplexFloatStorage": np.dtype(np.complex64),
    "ComplexDoubleStorage": np.dtype(np.complex128),
    "UntypedStorage": np.dtype(np.uint8),
}
# Modules the storage classes are pickled under: `torch.FloatStorage` (TypedStorage's
# `_pickle_storage_type()`), `torch.storage.UntypedStorage`, and torch.cuda for old GPU files.
_STORAGE_MODULES = ("torch", "torch.storage", "torch.cuda")


class UnsafePickleError(ValueError):
  """The pickle references a global outside the state-dict allowlist (it could run code)."""


class _Sealed:
  """Objects the unpickler hands out. Pickle's BUILD opcode would otherwise let a crafted file
  overwrite their attributes (a tensor's size after its bounds were checked, a storage's dtype)."""

  def __setstate__(self, state: Any) -> None:
    raise ValueError(f"The pickle tries to set the state of a {type(self).__name__.lstrip('_')}; "
                     "torch never writes that: refusing a crafted file.")


class _StorageType(_Sealed):
  """What `find_class` returns for a storage class: only its element dtype matters."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = STORAGE_DTYPES[name]


class _Storage(_Sealed):
  """A flat 1-D storage of `numel` elements; `array` is filled when its bytes are read."""

  def __init__(self, key: str, dtype: np.dtype, numel: int):
    self.key, self.dtype, self.numel = key, dtype, numel
    self.array: Optional[np.ndarray] = None


class _StorageView(_Storage):
  """A slice [offset, offset + numel) of another storage (storage views of torch < 1.0 files)."""

  def __init__(self, root: _Storage, offset: int, numel: int):
    super().__init__(f"{root.key}[{offset}:{offset + numel}]", root.dtype, numel)
    self.root, self.offset = root, offset

  @property
  def array(self) -> Optional[np.ndarray]:
    if self.root.array is None:
      return None
    return self.root.array[self.offset:self.offset + self.numel]

  @array.setter
  def array(self, value: Optional[np.ndarray]) -> None:
    if value is not None:
      raise AttributeError("A storage view has no data of its own.")


class _ScriptObject:
  """Stand-in for a `__torch__.*` class of a TorchScript archive: only its attribute dict is kept.

  NEWOBJ creates it with no arguments; BUILD hands it its attributes once (a second BUILD would let
  a crafted file swap a checked tensor, so it is refused)."""
  qualified_name = "__torch__"

  def __setstate__(self, state: Any) -> None:
    if "attributes" in self.__dict__:
      raise ValueError(f"The pickle sets the state of {self.qualified_name} twice: refusing a crafted file.")
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
      raise ValueError(f"TorchScript object {self.qualified_name} has a state of type "
                       f"{type(state).__name__}, expected a dict of attributes.")
    self.attributes = state


def _script_class(module: str, name: str) -> type:
  """A fresh _ScriptObject subclass named after the TorchScript class (for error messages)."""
  return type(name, (_ScriptObject,), {"qualified_name": f"{module}.{name}"})


def _build_intlist(values: Any) -> list[int]:
  """Stand-in for torch.jit._pickle.build_intlist (int-list attributes such as a conv's padding)."""
  if not isinstance(values, list) or not all(type(v) is int for v in values):
    raise ValueError(f"build_intlist expects a list of ints, got {values!r}.")
  return list(values)


def _check_view(size: tuple[int, ...], stride: tuple[int, ...], offset: int, numel: int, key: str) -> None:
  """Raises unless every element of the strided view lies in storage[0:numel]."""
  if len(size) != len(stride) or any(n < 0 for n in size) or any(s < 0 for s in stride) or offset < 0:
    raise ValueError(f"Bad tensor size {size} / stride {stride} / offset {offset}.")
  if 0 not in size:
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= numel:
      raise ValueError(f"Tensor of size {size}, stride {stride}, offset {offset} reads element {last} "
                       f"of storage {key!r} which has {numel}.")


class _PendingTensor(_Sealed):
  """A strided view of a storage, turned into an array once all storages are read."""

  def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]):
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

  def materialize(self) -> np.ndarray:
    """A contiguous copy: (size...) array of the storage's dtype (native byte order)."""
    array = self.storage.array
    if array is None:
      raise ValueError(f"Storage {self.storage.key!r} is referenced but its data was never read.")
    # Checked again against the bytes actually read: as_strided itself reads wherever it is told.
    _check_view(self.size, self.stride, self.offset, array.size, self.storage.key)
    if 0 in self.size:
      return np.zeros(self.size, array.dtype)
    view = np.lib.stride_tricks.as_strided(array[self.offset:], shape=self.size,
                                           strides=[s * array.itemsize for s in self.stride],
                                           writeable=False)
    return np.array(view, copy=True, order="C")


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
  if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
    raise ValueError(f"Tensor {what} must be a tuple of ints, got {value!r}.")
  return tuple(value)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _PendingTensor:
  """Stand-in for torch._utils._rebuild_tensor; checks that the view stays inside the storage."""
  if not isinstance(storage, _Storage):
    raise ValueError(f"A tensor must be built from a storage, got {type(storage).__name__}.")
  size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
  if type(storage_offset) is not int:
    raise ValueError(f"Bad storage offset {storage_offset!r}.")
  _check_view(size, stride, storage_offset, storage.numel, storage.key)
  return _PendingTensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any,
                       backward_hooks: Any, metadata: Any = None) -> _PendingTensor:
  """Stand-in for torch._utils._rebuild_tensor_v2; gradient flags, hooks and metadata are dropped."""
  del requires_grad, backward_hooks, metadata
  return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any, state: Any = None) -> Any:
  """Stand-in for torch._utils._rebuild_parameter(_with_state): a Parameter is just its data here."""
  del requires_grad, backward_hooks, state
  return data


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
  """Stand-in for _codecs.encode, which protocol-2 pickles use for `bytes` objects."""
  if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
    raise ValueError(f"Unexpected _codecs.encode({type(text).__name__}, {encoding!r}) in a state dict.")
  return text.encode("latin1")


_ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("_codecs", "encode"): _codecs_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler resolving only state-dict globals; storages come from `load_storage(key, dtype, numel)`."""

  def __init__(self, file: io.BytesIO, load_storage: Optional[Callable[[str, np.dtype, int], _Storage]],
               script_objects: bool = False):
    super().__init__(file)
    self._load_storage = load_storage
    self._script_objects = script_objects

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) in _ALLOWED_GLOBALS:
      return _ALLOWED_GLOBALS[(module, name)]
    if module in _STORAGE_MODULES and name in STORAGE_DTYPES:
      return _StorageType(name)
    if self._script_objects:
      if module.startswith("__torch__.") and name.isidentifier():
        return _script_class(module, name)
      if (module, name) == ("torch.jit._pickle", "build_intlist"):
        return _build_intlist
    raise UnsafePickleError(
        f"Refusing to load global '{module}.{name}': it is not one of the globals a PyTorch state dict "
        f"needs ({', '.join(sorted(f'{m}.{n}' for m, n in _ALLOWED_GLOBALS))}, torch.<Type>Storage). "
        "A pickle can run arbitrary code through such globals; load it with torch only if you trust it.")

  def persistent_load(self, pid: Any) -> Any:
    if self._load_storage is None:
      raise ValueError("Unexpected persistent id in a header pickle of the checkpoint.")
    if not isinstance(pid, tuple) or not pid:
      raise ValueError(f"Unsupported persistent id {pid!r}.")
    typename = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
    if typename != "storage" or len(pid) not in (5, 6):
      raise ValueError(f"Unsupported persistent id {pid[:1]!r} of length {len(pid)}; expected "
                       "('storage', storage_type, key, location, numel[, view_metadata]).")
    storage_type, key, _, numel = pid[1:5]
    if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or type(numel) is not int:
      raise ValueError(f"Malformed storage reference {pid!r}.")
    storage = self._load_storage(key, storage_type.dtype, numel)
    view_metadata = pid[5] if len(pid) == 6 else None
    if view_metadata is not None:
      # Storage views (legacy files from torch < 1.0): a slice of the root storage.
      if (not isinstance(view_metadata, tuple) or len(view_metadata) != 3
          or not all(type(v) is int for v in view_metadata[1:])):
        raise ValueError(f"Malformed storage view {view_metadata!r}.")
      _, view_offset, view_numel = view_metadata
      if not (0 <= view_offset and 0 <= view_numel and view_offset + view_numel <= numel):
        raise ValueError(f"Storage view {view_metadata!r} outside storage {key!r} of {numel} elements.")
      return _StorageView(storage, view_offset, view_numel)
    return storage


def _materialize(obj: Any) -> Any:
  """Replaces every _PendingTensor in nested dicts / lists / tuples by its numpy array."""
  if isinstance(obj, _PendingTensor):
    return obj.materialize()
  if isinstance(obj, dict):
    return {k: _materialize(v) for k, v in obj.items()}
  if isinstance(obj, list):
    return [_materialize(v) for v in obj]
  if isinstance(obj, tuple):
    return tuple(_materialize(v) for v in obj)
  return obj


def _array_from_bytes(data: bytes, dtype: np.dtype, numel: int, byteorder: str, what: str) -> np.ndarray:
  """(numel,) array of `dtype` in native byte order from raw `byteorder`-endian bytes."""
  if len(data) != numel * dtype.itemsize:
    raise ValueError(f"{what}: expected {numel} x {dtype.itemsize} bytes, found {len(data)}; the file is "
                     "truncated or corrupt.")
  array = np.frombuffer(data, dtype=dtype, count=numel)
  if dtype.itemsize > 1 and byteorder != sys.byteorder:
    array = array.byteswap()
  return array


def _load_zip(archive: zipfile.ZipFile, torchscript: bool = False) -> Any:
  names = archive.namelist()
  pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
  is_script = any(n.count("/") == 1 and n.endswith("/constants.pkl") for n in names)
  if is_script and not torchscript:
    raise ValueError("This is a TorchScript archive (torch.jit.save), not a torch.save state dict: "
                     "read it with load_torchscript_tensors.")
  if torchscript and not is_script:
    raise ValueError("Not a TorchScript archive (no '<archive>/constants.pkl'): read it with load_torch_file.")
  if len(pickles) != 1:
    raise ValueError(f"Zip file without exactly one '<archive>/data.pkl' record (found {pickles}); "
                     "not a torch.save file.")
  prefix = pickles[0][:-len("data.pkl")]
  byteorder = "little"  # torch < 2.1 wrote no byteorder record; torch.load then assumes little.
  if prefix + "byteorder" in names:
    byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace")
    if byteorder not in ("little", "big"):
      raise ValueError(f"Unknown byte order {byteorder!r} in the checkpoint.")
  storages: dict[str, _Storage] = {}

  def load_storage(key: str, dtype: np.dtype, numel: int) -> _Storage:
    if key not in storages:
      record = f"{prefix}data/{key}"
      if record not in names:
        raise ValueError(f"Storage record {record!r} is missing from the archive.")
      storage = _Storage(key, dtype, numel)
      storage.array = _array_from_bytes(archive.read(record), dtype, numel, byteorder, record)
      storages[key] = storage
    elif storages[key].dtype != dtype or storages[key].numel != numel:
      raise ValueError(f"Storage {key!r} is referenced with two different dtypes or sizes.")
    return storages[key]

  result = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), load_storage, torchscript).load()
  return result if torchscript else _materialize(result)


def _load_legacy(file: io.BytesIO) -> Any:
  header = _RestrictedUnpickler(file, None)
  try:
    magic = header.load()
  except UnsafePickleError:
    raise
  except Exception as e:  # Whatever garbage makes the unpickler fail, the answer is the same.
    raise ValueError("Not a PyTorch checkpoint: neither a zip archive nor a legacy torch.save file "
                     f"({type(e).__name__}: {e}).") from e
  if magic != LEGACY_MAGIC_NUMBER:
    raise ValueError("Not a PyTorch checkpoint: neither a zip archive nor a legacy torch.save file "
                     "(no magic number).")
  protocol = header.load()
  if protocol != LEGACY_PROTOCOL_VERSION:
    raise ValueError(f"Unsupported legacy torch protocol version {protocol!r}.")
  sys_info = header.load()
  if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
    raise ValueError("Legacy checkpoints written on big-endian machines are not supported.")
  storages: dict[str, _Storage] = {}

  def load_storage(key: str, dtype: np.dtype, numel: int) -> _Storage:
    # The bytes follow the object pickle: remember the reference, fill it in below.
    if key not in storages:
      storages[key] = _Storage(key, dtype, numel)
    elif storages[key].dtype != dtype:
      raise ValueError(f"Storage {key!r} is referenced with two different dtypes.")
    return storages[key]

  result = _RestrictedUnpickler(file, load_storage).load()
  keys = _RestrictedUnpickler(file, None).load()
  if not isinstance(keys, list) or set(keys) != set(storages):
    raise ValueError("The legacy checkpoint's storage key list does not match its tensors.")
  for key in keys:
    storage = storages[key]
    numel = int.from_bytes(file.read(8), "little", signed=True)
    if numel < storage.numel:
      raise ValueError(f"Storage {key!r} holds {numel} elements, the tensors reference {storage.numel}.")
    storage.numel = numel
    storage.array = _array_from_bytes(file.read(numel * storage.dtype.itemsize), storage.dtype, numel,
                                      "little", f"storage {key!r}")
  return _materialize(result)


def load_torch_file(path: PathLike) -> Any:
  """The object saved with `torch.save` at `path`, tensors as numpy arrays (contiguous copies).

  Containers come back as dicts / lists / tuples (an OrderedDict becomes a plain insertion-ordered
  dict). Raises UnsafePickleError (a ValueError) for globals a state dict does not need, and
  ValueError for files that are not torch checkpoints.
  """
  with open(path, "rb") as f:
    head = f.read(4)
  if head == b"PK\x03\x04":
    try:
      with zipfile.ZipFile(path) as archive:
        return _load_zip(archive)
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as e:
      raise ValueError(f"{path}: corrupt torch zip checkpoint ({type(e).__name__}: {e}).") from e
  if tarfile.is_tarfile(path):
    raise ValueError(f"{path} uses the tar-based format of torch <= 0.3; load and re-save it with a "
                     "recent torch (torch.save(torch.load(path), new_path)).")
  with open(path, "rb") as f:
    # BytesIO (no peek) keeps the unpickler from reading past each pickle's STOP opcode.
    file = io.BytesIO(f.read())
  try:
    return _load_legacy(file)
  except UnsafePickleError:
    raise
  except (pickle.UnpicklingError, EOFError) as e:
    raise ValueError(f"{path}: corrupt legacy torch checkpoint ({type(e).__name__}: {e}).") from e


def _script_tensors(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
  """Adds the tensors of a TorchScript object tree to `out`, keyed by dotted attribute path."""
  if isinstance(obj, _PendingTensor):
    out[prefix] = obj.materialize()
  elif isinstance(obj, _ScriptObject):
    for name, value in getattr(obj, "attributes", {}).items():
      _script_tensors(value, f"{prefix}.{name}" if prefix else name, out)


def load_torchscript_tensors(path: PathLike) -> dict[str, np.ndarray]:
  """{dotted attribute path: array} of every tensor held by the modules of a TorchScript archive.

  E.g. "net.layers.conv.weight" for `self.net.layers.conv.weight` of the saved top-level module.
  Arrays keep the saved dtype and torch's layout (conv weights OIHW). Only the pickled module tree
  is read: globals other than `__torch__.*` classes, build_intlist and the tensor rebuilders raise
  UnsafePickleError, and the archive's TorchScript code is never run.
  """
  with open(path, "rb") as f:
    if f.read(4) != b"PK\x03\x04":
      raise ValueError(f"{path} is not a TorchScript archive (not a zip file); the file is truncated or "
                       "of another kind.")
  try:
    with zipfile.ZipFile(path) as archive:
      tree = _load_zip(archive, torchscript=True)
  except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as e:
    raise ValueError(f"{path}: corrupt TorchScript archive ({type(e).__name__}: {e}).") from e
  tensors: dict[str, np.ndarray] = {}
  _script_tensors(tree, "", tensors)
  if not tensors:
    raise ValueError(f"{path}: the TorchScript archive holds no tensors.")
  return tensors


def load_torch_state_dict(path: PathLike) -> dict[str, np.ndarray]:
  """{name: array} of a file saved with `torch.save(module.state_dict(), path)`.

  Arrays keep the saved dtype (float32 / float16 / bfloat16 / float64 / int64 / uint8 / bool ...) and
  torch's layout (conv weights OIHW, linear weights (out, in)); strided tensors are copied contiguous.
  """
  obj = load_torch_file(path)
  if not isinstance(obj, dict):
    raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict.")
  bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
  if bad:
    raise ValueError(f"{path} is not a flat state dict: entries {bad[:5]} are not tensors (a training "
                     "checkpoint? use load_torch_file and pick the state dict out of it).")
  return obj
