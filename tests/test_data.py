"""Tests for gan/data.py and gan/input_pipeline.py: values, determinism and error messages."""

import gzip
import itertools
import os
from pathlib import Path
import subprocess
import sys
import threading

import jax
from jax.sharding import NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np
from PIL import Image
import pytest

from gan import data
from gan import input_pipeline
from gan.data import DataError

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_config(**overrides) -> ml_collections.ConfigDict:
  """A data config for small IDX files in `dir`; override any field."""
  config = ml_collections.ConfigDict(dict(
      source="idx", name="fashion_mnist", dir="", split="train", image_size=32, channels=1,
      resize="pad", max_examples=0))
  config.update(overrides)
  return config


@pytest.fixture
def idx_dir(tmp_path, write_idx) -> tuple[Path, np.ndarray, np.ndarray]:
  """A folder with 12 random 28x28 training images; returns (folder, images, labels)."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
  labels = rng.integers(0, 10, 12, dtype=np.uint8)
  write_idx(tmp_path, images, labels)
  return tmp_path, images, labels


def indexed_dataset(n: int, size: int = 4) -> data.Dataset:
  """Example i has label i and a left-right asymmetric image: row 0 is (i, i + 1, ...) mod 256."""
  images = np.zeros((n, size, size, 1), np.uint8)
  images[:, 0, :, 0] = np.arange(n)[:, None] + np.arange(size)
  return data.Dataset(images, np.arange(n, dtype=np.int32), tuple(map(str, range(n))))


def ids(batch: dict) -> np.ndarray:
  """Which examples of an `indexed_dataset` a batch holds."""
  return batch["label"]


# ------------------------------------------------------------------ IDX


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip_gives_exact_pixels(tmp_path, write_idx, compress):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
  labels = np.array([3, 1, 4, 1, 5, 9, 2], np.uint8)
  write_idx(tmp_path, images, labels, split="test", compress=compress)
  ds = data.load_dataset(data_config(dir=str(tmp_path), split="test", image_size=28))
  np.testing.assert_array_equal(ds.images, images[..., None])
  np.testing.assert_array_equal(ds.labels, labels)
  assert ds.labels.dtype == np.int32
  assert ds.class_names[9] == "Ankle boot" and len(ds.class_names) == 10
  assert data.load_dataset(data_config(dir=str(tmp_path), split="test", image_size=28,
                                       name="mnist")).class_names == tuple("0123456789")


def test_idx_pad_to_32_centers_image_and_replicates_channels(idx_dir):
  folder, images, _ = idx_dir
  ds = data.load_dataset(data_config(dir=str(folder), image_size=32, channels=3))
  assert ds.images.shape == (12, 32, 32, 3)
  for c in range(3):
    np.testing.assert_array_equal(ds.images[:, 2:30, 2:30, c], images)
  border = np.ones((32, 32), bool)
  border[2:30, 2:30] = False
  assert not ds.images[:, border].any()


def test_idx_resize_matches_pil_bicubic(idx_dir):
  folder, images, _ = idx_dir
  ds = data.load_dataset(data_config(dir=str(folder), image_size=64, resize="resize"))
  for got, image in zip(ds.images, images):
    want = np.asarray(Image.fromarray(image).resize((64, 64), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(got[..., 0], want)


def test_max_examples_keeps_the_first(idx_dir):
  folder, images, labels = idx_dir
  ds = data.load_dataset(data_config(dir=str(folder), image_size=28, max_examples=5))
  np.testing.assert_array_equal(ds.images[..., 0], images[:5])
  np.testing.assert_array_equal(ds.labels, labels[:5])


def test_held_out_sample_spreads_over_the_test_split_and_scales_to_unit_range(tmp_path, write_idx):
  images = np.repeat(np.arange(0, 250, 25, dtype=np.uint8)[:, None, None], 28, 1).repeat(28, 2)  # image i = 25 i
  write_idx(tmp_path, images, np.arange(10), split="test")
  sample, labels, split = data.held_out_sample(data_config(dir=str(tmp_path), resize="resize", image_size=28), 4)
  assert split == "test"
  np.testing.assert_array_equal(labels, [0, 3, 6, 9])   # linspace(0, 9, 4) rounded
  np.testing.assert_allclose(sample[:, 0, 0, 0], np.array([0, 75, 150, 225]) / 127.5 - 1.0, atol=1e-6)
  with pytest.raises(DataError, match="Asked for 11 held-out images; the test split has 10"):
    data.held_out_sample(data_config(dir=str(tmp_path), resize="resize", image_size=28), 11)


def test_rgb_to_gray_matches_pil():
  rgb = np.random.default_rng(0).integers(0, 256, (2, 9, 9, 3), dtype=np.uint8)
  gray = data.fit_images(rgb, image_size=9, channels=1, resize="pad")
  want = [np.asarray(Image.fromarray(x).convert("L")) for x in rgb]
  np.testing.assert_array_equal(gray[..., 0], want)


# ------------------------------------------------------------------ image folders


def save(path: Path, array: np.ndarray, **kwargs) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array).save(path, **kwargs)


def test_image_folder_resizes_shorter_side_and_center_crops(tmp_path):
  # 120x80: green | red | blue | green, 20/40/40/20 px wide. The central 80x80 square is
  # red | blue, so both green bands must be cropped away.
  image = np.zeros((80, 120, 3), np.uint8)
  image[:, :20] = image[:, 100:] = (0, 255, 0)
  image[:, 20:60] = (255, 0, 0)
  image[:, 60:100] = (0, 0, 255)
  save(tmp_path / "cls" / "a.png", image)
  ds = data.load_dataset(data_config(source="image_folder", dir=str(tmp_path), image_size=8,
                                     channels=3))
  out = ds.images[0]
  assert out.shape == (8, 8, 3)
  np.testing.assert_array_equal(out[:, 1:3], np.broadcast_to([255, 0, 0], (8, 2, 3)))
  np.testing.assert_array_equal(out[:, 5:7], np.broadcast_to([0, 0, 255], (8, 2, 3)))
  assert out[..., 1].max() <= 25  # Only the bicubic tail of the cropped green at the edges.


@pytest.mark.parametrize("crop,color", [("left_half", (255, 0, 0)), ("right_half", (0, 0, 255))])
def test_image_folder_half_crop(tmp_path, crop, color):
  image = np.zeros((32, 64, 3), np.uint8)  # Paired file: left half red, right half blue.
  image[:, :32] = (255, 0, 0)
  image[:, 32:] = (0, 0, 255)
  save(tmp_path / "cls" / "pair.png", image)
  ds = data.load_dataset(data_config(source="image_folder", dir=str(tmp_path), image_size=8,
                                     channels=3, crop=crop))
  np.testing.assert_array_equal(ds.images[0], np.broadcast_to(color, (8, 8, 3)))


def test_image_folder_jpeg_draft_decoding(tmp_path):
  image = np.zeros((400, 800, 3), np.uint8)  # Big enough for a 1/4-scale JPEG decode.
  image[:, :400] = (200, 40, 40)
  image[:, 400:] = (255, 255, 255)
  save(tmp_path / "shoes" / "1_AB.jpg", image, quality=95)
  ds = data.load_dataset(data_config(source="image_folder", dir=str(tmp_path), image_size=16,
                                     channels=3, crop="left_half"))
  np.testing.assert_allclose(ds.images[0].reshape(-1, 3).mean(0), (200, 40, 40), atol=3)


def test_image_folder_labels_follow_sorted_folder_names(tmp_path):
  values = {"b_shoes": 10, "a_bags": 20, "c_hats": 30}
  for name, value in values.items():
    for i, ext in enumerate([".png", ".PNG", ".JpG"]):
      save(tmp_path / name / f"{2 - i}{ext}", np.full((8, 8), value + i, np.uint8))
  (tmp_path / "a_bags" / "notes.txt").write_text("not an image")
  (tmp_path / ".cache").mkdir()
  ds = data.load_dataset(data_config(source="image_folder", dir=str(tmp_path), image_size=8))
  assert ds.class_names == ("a_bags", "b_shoes", "c_hats")
  np.testing.assert_array_equal(ds.labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])
  # Files sorted by name within a class: "0.JpG", "1.PNG", "2.png" (JPEG is lossy: atol).
  np.testing.assert_allclose(ds.images[:, 0, 0, 0], [22, 21, 20, 12, 11, 10, 32, 31, 30], atol=2)


def test_image_folder_modes_alpha_palette_16bit(tmp_path):
  rgba = np.zeros((8, 8, 4), np.uint8)
  rgba[:, :4] = (255, 0, 0, 255)  # Opaque red left, fully transparent black right.
  save(tmp_path / "c" / "a_rgba.png", rgba)
  palette = Image.new("P", (8, 8), 1)
  palette.putpalette([0, 0, 0, 0, 128, 0])  # Every pixel is entry 1, green.
  palette.save(tmp_path / "c" / "b_p.png")
  Image.fromarray(np.full((8, 8), 32896, np.uint16)).save(tmp_path / "c" / "c_16bit.png")
  Image.fromarray(np.full((8, 8), 77, np.uint8)).save(tmp_path / "c" / "d_gray.bmp")
  ds = data.load_dataset(data_config(source="image_folder", dir=str(tmp_path), image_size=8,
                                     channels=3))
  np.testing.assert_array_equal(ds.images[0, :, 1], np.broadcast_to([255, 0, 0], (8, 3)))
  np.testing.assert_array_equal(ds.images[0, :, 6], np.full((8, 3), 255))  # Onto white.
  np.testing.assert_array_equal(np.unique(ds.images[1].reshape(-1, 3), axis=0), [[0, 128, 0]])
  np.testing.assert_array_equal(np.unique(ds.images[2]), [128])  # 32896 / 257.
  np.testing.assert_array_equal(np.unique(ds.images[3]), [77])


# ------------------------------------------------------------------ TFDS


def test_tfds_mock_fashion_mnist_is_padded_like_idx():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=6):
    ds = data.load_dataset(data_config(source="tfds", name="fashion_mnist", image_size=32,
                                       channels=3))
    raw = list(tfds.as_numpy(tfds.load("fashion_mnist", split="train")))
  assert ds.images.shape == (6, 32, 32, 3)
  raw_images = np.stack([r["image"] for r in raw])  # (6, 28, 28, 1)
  np.testing.assert_array_equal(ds.images[:, 2:30, 2:30], raw_images.repeat(3, -1))
  assert not ds.images[:, :2].any() and not ds.images[:, 30:].any()
  np.testing.assert_array_equal(ds.labels, [r["label"] for r in raw])
  assert ds.class_names == data.FASHION_MNIST_CLASSES


def test_tfds_unknown_dataset_raises():
  with pytest.raises(DataError, match="no_such_dataset_xyz.*network"):
    data.load_dataset(data_config(source="tfds", name="no_such_dataset_xyz"))


# ------------------------------------------------------------------ bad inputs


def test_missing_dir_names_folder_and_files(tmp_path):
  missing = tmp_path / "nope"
  with pytest.raises(DataError, match=r"nope.*train-images-idx3-ubyte\.gz.*zalandoresearch"):
    data.load_dataset(data_config(dir=str(missing)))


def test_missing_file_names_it(idx_dir):
  folder, _, _ = idx_dir
  (folder / "train-labels-idx1-ubyte.gz").unlink()
  with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz.*zalandoresearch"):
    data.load_dataset(data_config(dir=str(folder)))


def test_bad_magic_names_file(tmp_path, write_idx):
  images = np.zeros((3, 28, 28), np.uint8)
  write_idx(tmp_path, images, np.zeros((3, 28, 28), np.uint8))  # "labels" with 3 dims.
  with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz.*magic number 2051"):
    data.load_dataset(data_config(dir=str(tmp_path)))


def test_truncated_file_names_it(idx_dir):
  folder, images, _ = idx_dir
  path = folder / "train-images-idx3-ubyte.gz"
  path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
  with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*truncated"):
    data.load_dataset(data_config(dir=str(folder)))


def test_corrupt_gzip_names_file(idx_dir):
  folder, _, _ = idx_dir
  path = folder / "train-images-idx3-ubyte.gz"
  path.write_bytes(path.read_bytes()[:200])  # Cut inside the deflate stream.
  with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*gzip"):
    data.load_dataset(data_config(dir=str(folder)))
  path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
  with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*gzip"):
    data.load_dataset(data_config(dir=str(folder)))


def test_count_mismatch_names_files(tmp_path, write_idx):
  write_idx(tmp_path, np.zeros((5, 28, 28), np.uint8), np.zeros(4, np.uint8))
  with pytest.raises(DataError, match=r"5 images.*4 labels"):
    data.load_dataset(data_config(dir=str(tmp_path)))


def test_unreadable_image_names_file(tmp_path):
  save(tmp_path / "cls" / "good.png", np.zeros((8, 8), np.uint8))
  (tmp_path / "cls" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
  with pytest.raises(DataError, match=r"broken\.jpg"):
    data.load_dataset(data_config(source="image_folder", dir=str(tmp_path), image_size=8))


def test_empty_image_folder_explains_layout(tmp_path):
  with pytest.raises(DataError, match=r"no class subfolders and no images.*<class_name>"):
    data.load_dataset(data_config(source="image_folder", dir=str(tmp_path)))
  (tmp_path / "empty_class").mkdir()
  with pytest.raises(DataError, match=r"empty_class has no images"):
    data.load_dataset(data_config(source="image_folder", dir=str(tmp_path)))


@pytest.mark.parametrize("overrides,message", [
    (dict(source="parquet"), r"'parquet'.*idx, image_folder, tfds"),
    (dict(image_size=4), r"image_size"),
    (dict(channels=2), r"channels"),
    (dict(resize="stretch"), r"resize"),
    (dict(image_size=16), r"pad.*cannot shrink 28x28"),
    (dict(split="validation"), r"split"),
])
def test_bad_config_raises(idx_dir, overrides, message):
  folder, _, _ = idx_dir
  with pytest.raises(DataError, match=message):
    data.load_dataset(data_config(dir=str(folder), **overrides))


# ------------------------------------------------------------------ batches


def test_scaling_is_exact():
  images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(2, 0)
  ds = data.Dataset(images, np.zeros(2, np.int32), ("x",))
  image = input_pipeline.batch_for_step(ds, 0, global_batch_size=1, seed=0,
                                        random_flip=False)["image"]
  assert image.dtype == np.float32
  np.testing.assert_array_equal(image, images[:1].astype(np.float32) / 127.5 - 1)
  assert image.min() == -1.0 and image.max() == 1.0


def test_same_seed_and_step_give_identical_batches():
  ds = indexed_dataset(50)
  kwargs = dict(global_batch_size=8, random_flip=True)
  a = input_pipeline.batch_for_step(ds, 7, seed=3, **kwargs)
  b = input_pipeline.batch_for_step(ds, 7, seed=3, **kwargs)
  c = input_pipeline.batch_for_step(ds, 7, seed=4, **kwargs)
  np.testing.assert_array_equal(a["image"], b["image"])
  np.testing.assert_array_equal(ids(a), ids(b))
  assert not np.array_equal(ids(a), ids(c))


def test_resume_matches_uninterrupted_run():
  ds = indexed_dataset(42)  # 5 steps per epoch: 12 steps cross two epoch boundaries.
  kwargs = dict(global_batch_size=8, seed=1, random_flip=True)
  full = list(itertools.islice(input_pipeline.batches(ds, **kwargs), 12))
  for k in (1, 5, 9):
    resumed = list(itertools.islice(input_pipeline.batches(ds, start_step=k, **kwargs), 12 - k))
    for want, got in zip(full[k:], resumed):
      np.testing.assert_array_equal(want["image"], got["image"])
      np.testing.assert_array_equal(want["label"], got["label"])


def test_every_example_once_per_epoch():
  ds = indexed_dataset(42)
  epochs = []
  for epoch in range(3):
    seen = np.concatenate([ids(input_pipeline.batch_for_step(
        ds, epoch * 5 + s, global_batch_size=8, seed=0, random_flip=False)) for s in range(5)])
    assert len(np.unique(seen)) == 40  # 42 // 8 * 8 examples, none twice.
    epochs.append(seen)
  assert not np.array_equal(epochs[0], epochs[1])  # A new order each epoch.


def test_flips_about_half_exactly_mirrored_and_new_each_step():
  ds = indexed_dataset(512)
  masks = []
  for step in (0, 1):
    batch = input_pipeline.batch_for_step(ds, step, global_batch_size=256, seed=0, random_flip=True)
    original = ds.images[ids(batch)] / np.float32(127.5) - 1
    flipped = ~np.all(batch["image"] == original, axis=(1, 2, 3))
    assert 0.4 < flipped.mean() < 0.6
    np.testing.assert_array_equal(batch["image"][flipped], original[flipped][:, :, ::-1])
    np.testing.assert_array_equal(batch["image"][~flipped], original[~flipped])
    masks.append(flipped)
  assert not np.array_equal(*masks)  # Drawn anew each step.
  plain = input_pipeline.batch_for_step(ds, 0, global_batch_size=256, seed=0, random_flip=False)
  np.testing.assert_array_equal(plain["image"], ds.images[ids(plain)] / np.float32(127.5) - 1)


def test_process_slices_concatenate_to_global_batch():
  ds = indexed_dataset(64)
  kwargs = dict(global_batch_size=16, seed=2, random_flip=True)
  for step in (0, 5):
    full = input_pipeline.batch_for_step(ds, step, **kwargs)
    parts = [input_pipeline.batch_for_step(ds, step, process_index=p, process_count=4, **kwargs)
             for p in range(4)]
    assert parts[0]["image"].shape == (4, 4, 4, 1)
    for key in ("image", "label"):
      np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), full[key])


@pytest.mark.parametrize("kwargs,message", [
    (dict(global_batch_size=0), "positive"),
    (dict(global_batch_size=11), "larger than the dataset"),
    (dict(global_batch_size=6, process_count=4), "divisible"),
    (dict(global_batch_size=4, process_count=2, process_index=2), "process_index"),
    (dict(global_batch_size=4, seed=-1), "seed"),
])
def test_bad_batch_args_raise(kwargs, message):
  ds = indexed_dataset(10)
  kwargs = dict(dict(seed=0, random_flip=False), **kwargs)
  with pytest.raises(DataError, match=message):
    input_pipeline.batches(ds, **kwargs)
  with pytest.raises(DataError, match=message):
    input_pipeline.batch_for_step(ds, 0, **kwargs)


# ------------------------------------------------------------------ prefetch_to_mesh


def data_sharding() -> NamedSharding:
  return NamedSharding(jax.make_mesh((jax.device_count(),), ("data",)), P("data"))


def test_prefetch_to_mesh_yields_host_batches_with_sharding():
  ds = indexed_dataset(64)
  sharding = data_sharding()
  kwargs = dict(global_batch_size=8, seed=0, random_flip=True)
  host = list(itertools.islice(input_pipeline.batches(ds, **kwargs), 5))
  device = input_pipeline.prefetch_to_mesh(input_pipeline.batches(ds, **kwargs), sharding, size=2)
  for want, got in zip(host, device):
    for key in ("image", "label"):
      assert isinstance(got[key], jax.Array) and got[key].sharding == sharding
      np.testing.assert_array_equal(np.asarray(got[key]), want[key])
  device.close()
  assert not [t for t in threading.enumerate() if t.name == "prefetch_to_mesh" and t.is_alive()]


def test_prefetch_to_mesh_reraises_producer_errors_ends_and_checks_size():
  def source():
    yield {"x": np.zeros((4, 2), np.float32)}
    raise RuntimeError("source broke")

  device = input_pipeline.prefetch_to_mesh(source(), data_sharding())
  assert next(device)["x"].shape == (4, 2)
  with pytest.raises(RuntimeError, match="source broke"):
    next(device)
  finite = input_pipeline.prefetch_to_mesh(iter([{"x": np.ones(4)}] * 3), data_sharding())
  assert len(list(finite)) == 3
  with pytest.raises(ValueError, match="size"):
    input_pipeline.prefetch_to_mesh(iter([]), data_sharding(), size=0)


_MULTI_DEVICE_CHECK = """
import jax, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
import ml_collections
from gan import data, input_pipeline
images = np.arange(32 * 4 * 4, dtype=np.uint8).reshape(32, 4, 4, 1)
ds = data.Dataset(images, np.arange(32, dtype=np.int32), ("x",))
sharding = NamedSharding(jax.make_mesh((4,), ("data",)), P("data"))
kwargs = dict(global_batch_size=8, seed=0, random_flip=True)
host = input_pipeline.batch_for_step(ds, 3, **kwargs)
source = input_pipeline.batches(ds, start_step=3, **kwargs)
batch = next(input_pipeline.prefetch_to_mesh(source, sharding))
shards = sorted(batch["image"].addressable_shards, key=lambda s: s.device.id)
assert [s.data.shape for s in shards] == [(2, 4, 4, 1)] * 4
for i, shard in enumerate(shards):
    np.testing.assert_array_equal(np.asarray(shard.data), host["image"][2 * i: 2 * i + 2])
print("ok")
"""


def test_prefetch_to_mesh_splits_batch_over_four_devices():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO_ROOT))
  result = subprocess.run([sys.executable, "-c", _MULTI_DEVICE_CHECK], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


# ------------------------------------------------------------------ real data


@pytest.mark.real_data
def test_real_fashion_mnist(fashion_mnist_dir):
  ds = data.load_dataset(data_config(dir=str(fashion_mnist_dir), image_size=28))
  assert ds.images.shape == (60000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(ds.labels), [6000] * 10)
  assert abs(ds.images.mean() - 72.9404) < 1e-3
  assert ds.class_names[0] == "T-shirt/top"


def test_flat_image_folder_is_one_class(tmp_path):
  catalog = tmp_path / "catalog"
  save(catalog / "b.png", np.full((10, 20, 3), 200, np.uint8))
  save(catalog / "a.png", np.full((10, 20, 3), 50, np.uint8))
  ds = data.load_dataset(data_config(source="image_folder", dir=str(catalog), image_size=8, channels=3))
  assert ds.class_names == ("catalog",)
  np.testing.assert_array_equal(ds.labels, [0, 0])
  assert ds.images[0].max() == 50 and ds.images[1].min() == 200      # sorted file order: a, b


@pytest.mark.real_data
def test_real_product_photos_left_half_is_the_colour_photo(product_photos_dir):
  folder = product_photos_dir
  photos = data.load_dataset(data_config(source="image_folder", dir=str(folder), image_size=32, channels=3,
                                         crop="left_half"))
  edges = data.load_dataset(data_config(source="image_folder", dir=str(folder), image_size=32, channels=3,
                                        crop="right_half"))
  assert len(photos) == 200 + 200
  def chroma(x):
    return float(np.mean(x.max(-1).astype(np.int32) - x.min(-1)))
  # Per the data README: photos have colour (mean chroma ~13 at full size), edge maps none.
  assert chroma(photos.images) > 5.0 and chroma(edges.images) < 1.0


# ------------------------------------------------------------------ paired product photos

SHOE_RGB, BAG_RGB = (200, 30, 30), (30, 30, 200)


def product_pair(photo_rgb: tuple[int, int, int], photo_left: bool = True) -> np.ndarray:
  """A 256x512 paired file: a solid-colour "photo" half and an "edge map" half that is white
  with a black band over rows 96-160 (so at 16x16 rows 6-10 are dark, rows 0-4 white)."""
  photo = np.broadcast_to(np.array(photo_rgb, np.uint8), (256, 256, 3))
  edges = np.full((256, 256, 3), 255, np.uint8)
  edges[96:160] = 0
  return np.concatenate([photo, edges] if photo_left else [edges, photo], axis=1)


def write_products(root: Path, split: str, numbers, subset="edges2shoes_edges2handbags") -> None:
  """Writes <root>/<subset>/<split>/<number>_AB.jpg coloured by the class the README gives."""
  for number in numbers:
    if subset == "edges2shoes_100_subset":
      pair = product_pair(SHOE_RGB, photo_left=False)  # Canonical pix2pix: photo on the right.
    else:
      bag = number > 1000 if split == "train" else number > 200
      pair = product_pair(BAG_RGB if bag else SHOE_RGB)
    save(root / subset / split / f"{number}_AB.jpg", pair, quality=95)


def products_config(root: Path, **overrides) -> ml_collections.ConfigDict:
  # No view / products_subsets keys: an old-style config must work through config.get.
  return data_config(**dict(dict(source="products", dir=str(root), image_size=16, channels=3,
                                 resize="resize"), **overrides))


def chroma(images: np.ndarray) -> float:
  return float(np.mean(images.max(-1).astype(np.int32) - images.min(-1)))


def test_products_labels_halves_and_pairs(tmp_path):
  write_products(tmp_path, "train", [1800, 10, 1, 1001, 800, 2])
  ds = data.load_dataset(products_config(tmp_path, view="pair"))
  assert ds.class_names == ("shoe", "handbag")
  np.testing.assert_array_equal(ds.labels, [0, 0, 0, 0, 1, 1])  # Numeric order 1 2 10 800 1001 1800.
  want = np.array([SHOE_RGB] * 4 + [BAG_RGB] * 2, np.float64)[:, None, None, :]
  np.testing.assert_allclose(ds.images, np.broadcast_to(want, ds.images.shape), atol=6)
  assert ds.pairs.shape == ds.images.shape and ds.pairs.dtype == np.uint8
  assert chroma(ds.pairs) < 1.0
  assert ds.pairs[:, :5].min() > 235 and ds.pairs[:, 6:10].max() < 20  # White, then the band.
  # The pair halves equal the single views, and the photo equals the shared decode path.
  photos = data.load_dataset(products_config(tmp_path))  # Default view: "photo".
  edges = data.load_dataset(products_config(tmp_path, view="edges"))
  np.testing.assert_array_equal(photos.images, ds.images)
  np.testing.assert_array_equal(edges.images, ds.pairs)
  assert photos.pairs is None and edges.pairs is None
  path = tmp_path / "edges2shoes_edges2handbags" / "train" / "1001_AB.jpg"
  np.testing.assert_array_equal(ds.images[4], data._decode_image(path, 16, 3, "left_half"))
  first = data.load_dataset(products_config(tmp_path, view="pair", max_examples=3))
  np.testing.assert_array_equal(first.pairs, ds.pairs[:3])


def test_products_val_split_any_size_and_subset_folder_as_dir(tmp_path):
  write_products(tmp_path, "train", [201])  # A shoe in train ...
  write_products(tmp_path, "val", [400, 200, 201, 1])  # ... but val 201-400 are handbags.
  subset_dir = tmp_path / "edges2shoes_edges2handbags"
  for root in (tmp_path, subset_dir):
    ds = data.load_dataset(products_config(root, split="val", image_size=8, channels=1))
    np.testing.assert_array_equal(ds.labels, [0, 0, 1, 1])
    assert ds.images.shape == (4, 8, 8, 1)
  assert data.load_dataset(products_config(tmp_path)).labels.tolist() == [0]
  ds = data.load_dataset(products_config(tmp_path, split="val", image_size=40, view="pair"))
  assert ds.images.shape == ds.pairs.shape == (4, 40, 40, 3)
  np.testing.assert_allclose(ds.images[2].reshape(-1, 3).mean(0), BAG_RGB, atol=3)


def test_products_100_subset_has_the_photo_on_the_right(tmp_path):
  write_products(tmp_path, "train", [49825, 7], subset="edges2shoes_100_subset")
  write_products(tmp_path, "train", [5, 1500])
  ds = data.load_dataset(products_config(
      tmp_path, view="pair", products_subsets="edges2shoes_edges2handbags, edges2shoes_100_subset"))
  np.testing.assert_array_equal(ds.labels, [0, 1, 0, 0])  # Subsets in the listed order.
  want = np.array([SHOE_RGB, BAG_RGB, SHOE_RGB, SHOE_RGB], np.float64)[:, None, None, :]
  np.testing.assert_allclose(ds.images, np.broadcast_to(want, ds.images.shape), atol=6)
  assert chroma(ds.pairs) < 1.0 and ds.pairs[:, 6:10].max() < 20
  only = data.load_dataset(products_config(tmp_path / "edges2shoes_100_subset", view="photo"))
  np.testing.assert_array_equal(only.images, ds.images[2:])


@pytest.mark.parametrize("subset,split,number,label", [
    ("edges2shoes_edges2handbags", "train", 1, 0), ("edges2shoes_edges2handbags", "train", 800, 0),
    ("edges2shoes_edges2handbags", "train", 1000, 0), ("edges2shoes_edges2handbags", "train", 1001, 1),
    ("edges2shoes_edges2handbags", "train", 2000, 1), ("edges2shoes_edges2handbags", "val", 200, 0),
    ("edges2shoes_edges2handbags", "val", 201, 1), ("edges2shoes_edges2handbags", "val", 400, 1),
    ("edges2shoes_100_subset", "train", 49825, 0), ("edges2shoes_100_subset", "val", 199, 0),
])
def test_product_label_rule(subset, split, number, label):
  assert data.product_label(subset, split, number, Path(f"{number}_AB.jpg")) == label


@pytest.mark.parametrize("split,name,message", [
    ("train", "2001_AB.jpg", r"2001_AB\.jpg: file number 2001 is outside.*1001-2000 handbag"),
    ("train", "0_AB.jpg", r"0_AB\.jpg: file number 0 is outside"),
    ("val", "401_AB.jpg", r"401_AB\.jpg: file number 401 is outside.*201-400 handbag"),
    ("val", "photo.jpg", r"photo\.jpg is not named <number>_AB\.jpg"),
])
def test_products_bad_numbering_names_the_file(tmp_path, split, name, message):
  write_products(tmp_path, split, [3])
  save(tmp_path / "edges2shoes_edges2handbags" / split / name, product_pair(SHOE_RGB))
  with pytest.raises(DataError, match=message):
    data.load_dataset(products_config(tmp_path, split=split))


def test_products_folder_errors_say_what_to_do(tmp_path):
  with pytest.raises(DataError, match=r"nope.*is not a folder.*<subset>/\{train,val\}/<number>_AB"):
    data.load_dataset(products_config(tmp_path / "nope"))
  (tmp_path / "styles").mkdir()
  with pytest.raises(DataError, match=r"no subset folder edges2shoes_edges2handbags.*styles"):
    data.load_dataset(products_config(tmp_path))
  split_dir = tmp_path / "edges2shoes_edges2handbags" / "train"
  split_dir.mkdir(parents=True)
  (split_dir / "notes.txt").write_text("not an image")
  with pytest.raises(DataError, match=r"train has no <number>_AB\.jpg images"):
    data.load_dataset(products_config(tmp_path))
  with pytest.raises(DataError, match=r"val is missing"):
    data.load_dataset(products_config(tmp_path, split="val"))
  write_products(tmp_path, "train", [1])
  (split_dir / "3_AB.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
  with pytest.raises(DataError, match=r"Cannot decode image .*3_AB\.jpg.*Remove or replace"):
    data.load_dataset(products_config(tmp_path))


@pytest.mark.parametrize("overrides,message", [
    (dict(split="test"), r"data\.split must be one of \('train', 'val'\)"),
    (dict(view="sketch"), r"data\.view must be one of \('photo', 'edges', 'pair'\)"),
    (dict(products_subsets="edges2shoes,"), r"products_subsets.*edges2shoes_100_subset"),
    (dict(products_subsets=" , "), r"products_subsets"),
])
def test_products_bad_config_raises(tmp_path, overrides, message):
  write_products(tmp_path, "train", [1])
  with pytest.raises(DataError, match=message):
    data.load_dataset(products_config(tmp_path, **overrides))


def test_dataset_pairs_are_checked():
  images = np.zeros((2, 4, 4, 3), np.uint8)
  labels = np.zeros(2, np.int32)
  assert data.Dataset(images, labels, ("a",)).pairs is None
  assert data.Dataset(images, labels, ("a",), np.zeros((2, 4, 4, 1), np.uint8)).pairs.shape[-1] == 1
  for bad in (np.zeros((3, 4, 4, 3), np.uint8), np.zeros((2, 4, 5, 3), np.uint8),
              np.zeros((2, 4, 4, 3), np.float32), np.zeros((2, 4, 4), np.uint8)):
    with pytest.raises(DataError, match="Dataset.pairs"):
      data.Dataset(images, labels, ("a",), bad)


@pytest.mark.real_data
def test_real_products_val_pairs(products_dir):
  ds = data.load_dataset(products_config(products_dir, split="val", image_size=64, view="pair"))
  assert ds.images.shape == ds.pairs.shape == (400, 64, 64, 3)
  np.testing.assert_array_equal(np.bincount(ds.labels), [200, 200])
  np.testing.assert_array_equal(ds.labels[:200], 0)  # README: val 1-200 shoes, 201-400 handbags.
  # README: photos have colour (mean chroma 12.9 at full size), edge maps none (0.0004).
  assert chroma(ds.images) > 5.0 and chroma(ds.pairs) < 1.0
