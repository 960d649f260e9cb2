"""Image sources -> in-memory uint8 arrays at the configured resolution.

Every source returns a `Dataset` holding all images of one split in memory: the
datasets used here (Fashion-MNIST, a few thousand product photos) are at most a
few hundred MB at training resolution, so decoding once up front keeps the input
pipeline a pure numpy gather (see input_pipeline.py).

Sources, picked by `data.source`:
  idx:          the official MNIST / Fashion-MNIST IDX files (`.gz` or not) in `data.dir`.
  image_folder: `data.dir/<class_name>/*.{jpg,jpeg,png,bmp,webp}`.
  tfds:         any TFDS image dataset with "image" and "label" features.
  products:     the paired shoe / handbag product photos of the data README (section 2):
                `data.dir/<subset>/{train,val}/<number>_AB.jpg`, 512x256, photo and edge map
                side by side; labels 0 "shoe", 1 "handbag" from the file number.

Data config fields (ml_collections.ConfigDict):
  source:       one of SOURCES.
  name:         dataset name, e.g. "fashion_mnist"; used by tfds and for class names.
  dir:          local folder (idx, image_folder, products) or tfds data_dir ("" = tfds
                default). products: the products folder holding the subset folders, or one
                subset folder.
  split:        "train" or "test" (idx); "train" or "val" (products); any tfds split string
                (tfds); unused by image_folder.
  image_size:   output height = width, >= 8.
  channels:     1 (grayscale) or 3 (RGB).
  resize:       how small fixed-size images (IDX, tfds) reach image_size: "pad" zero-pads
                symmetrically (28 -> 32 puts the image at [2:30, 2:30]), "resize" uses PIL
                bicubic (shorter side, then center crop).
  max_examples: keep only the first N examples (0 = all); handy for tests.
  crop:         optional, image_folder only: "none" (default), "left_half" or "right_half"
                of each photo before resizing (paired pix2pix-style files).

Optional, products only (read with config.get, so older configs work):
  products_subsets: "edges2shoes_edges2handbags" (default) or a comma-separated list of
                    PRODUCT_SUBSETS; ignored when `dir` is itself a subset folder.
  view:             "photo" (default): the colour photo; "edges": the black-on-white edge
                    map (grey content in `channels` channels); "pair": photo in
                    Dataset.images and edge map in Dataset.pairs.
"""

from collections.abc import Callable
import concurrent.futures
import dataclasses
import gzip
import math
import os
from pathlib import Path
import re
import zlib

from absl import logging
import ml_collections
import numpy as np
from PIL import Image
from PIL import ImageOps

from gan import cli

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(d) for d in range(10))
IMAGE_EXTENSIONS = cli.IMAGE_EXTENSIONS   # one list for every reader of image folders
RESIZE_MODES = ("pad", "resize")
CROPS = ("none", "left_half", "right_half")

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dims.
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dim.
IDX_HELP = ("Get them from https://github.com/zalandoresearch/fashion-mnist (Fashion-MNIST) or "
            "http://yann.lecun.com/exdb/mnist/ (MNIST), or use data.source='tfds' on a machine "
            "with network access.")


class DataError(cli.UserError):
  """Bad data or data config; the message says what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  """One split held in memory.

  Attributes:
    images: (N, H, W, C) uint8 in [0, 255], already at the configured resolution.
    labels: (N,) int32 class ids in [0, len(class_names)).
    class_names: human-readable name of each class id.
    pairs: optional (N, H, W, C') uint8 in [0, 255], the other half of paired examples
      (the edge map of a product photo), pairs[i] belongs to images[i]; None when unpaired.
  """
  images: np.ndarray
  labels: np.ndarray
  class_names: tuple[str, ...]
  pairs: np.ndarray | None = None

  def __post_init__(self):
    if self.images.ndim != 4 or self.images.dtype != np.uint8:
      raise DataError(f"Dataset.images must be (N, H, W, C) uint8, got "
                      f"{self.images.shape} {self.images.dtype}.")
    if self.labels.shape != self.images.shape[:1] or self.labels.dtype != np.int32:
      raise DataError(f"Dataset.labels must be ({len(self.images)},) int32, got "
                      f"{self.labels.shape} {self.labels.dtype}.")
    if self.pairs is not None and (self.pairs.ndim != 4 or self.pairs.dtype != np.uint8
                                   or self.pairs.shape[:3] != self.images.shape[:3]):
      raise DataError(f"Dataset.pairs must be (N, H, W, C) uint8 with the (N, H, W) "
                      f"{self.images.shape[:3]} of images, got {self.pairs.shape} "
                      f"{self.pairs.dtype}.")

  def __len__(self) -> int:
    return len(self.images)


# ------------------------------------------------------------------ shared preprocessing


def _check_config(config: ml_collections.ConfigDict) -> None:
  if not isinstance(config.image_size, (int, np.integer)) or config.image_size < 8:
    raise DataError(f"data.image_size must be an int >= 8, got {config.image_size!r}.")
  if config.channels not in (1, 3):
    raise DataError(f"data.channels must be 1 (grayscale) or 3 (RGB), got {config.channels!r}.")
  if config.resize not in RESIZE_MODES:
    raise DataError(f"data.resize must be one of {RESIZE_MODES}, got {config.resize!r}.")
  if config.max_examples < 0:
    raise DataError(f"data.max_examples must be >= 0 (0 = all), got {config.max_examples}.")


def _parallel(fn: Callable[[int], None], n: int) -> None:
  """Runs fn(0), ..., fn(n - 1) on a thread pool; re-raises the first exception."""
  # PIL releases the GIL while decoding and resizing photos, so threads use all cores.
  with concurrent.futures.ThreadPoolExecutor(min(16, (os.cpu_count() or 1) + 2)) as pool:
    for _ in pool.map(fn, range(n)):
      pass


def _to_channels(images: np.ndarray, channels: int) -> np.ndarray:
  """(N, H, W, 1 or 3) uint8 -> (N, H, W, channels) uint8."""
  have = images.shape[-1]
  if have == channels:
    return images
  if have == 1 and channels == 3:
    return np.repeat(images, 3, axis=-1)
  if have == 3 and channels == 1:
    # PIL's integer ITU-R 601-2 luma, so arrays match image_folder's convert("L").
    rgb = images.astype(np.uint32)
    luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[..., None]
  raise DataError(f"Cannot convert images with {have} channels to {channels}; "
                  "only 1- and 3-channel sources are supported.")


def _resize_square(image: Image.Image, size: int,
                   box: tuple[float, float, float, float]) -> Image.Image:
  """Bicubic resize of the central square of `box` (shorter side -> size, center crop)."""
  left, top, right, bottom = box
  side = min(right - left, bottom - top)
  x0 = left + (right - left - side) / 2
  y0 = top + (bottom - top - side) / 2
  # One resize of the exact crop box: same result as "resize shorter side, then crop"
  # without rounding the longer side to whole pixels first.
  return image.resize((size, size), Image.Resampling.BICUBIC, box=(x0, y0, x0 + side, y0 + side))


def fit_images(images: np.ndarray, *, image_size: int, channels: int, resize: str) -> np.ndarray:
  """Brings fixed-size source images to the configured shape.

  Args:
    images: (N, h, w, 1 or 3) uint8.
    image_size: output side S.
    channels: output channels, 1 or 3.
    resize: "pad" (symmetric zero padding, needs h, w <= S) or "resize" (bicubic resize of
      the shorter side to S, then center crop).

  Returns:
    (N, S, S, channels) uint8 in [0, 255].
  """
  n, h, w, _ = images.shape
  if (h, w) != (image_size, image_size):
    if resize == "pad":
      if h > image_size or w > image_size:
        raise DataError(f"data.resize='pad' cannot shrink {h}x{w} images to {image_size}x"
                        f"{image_size}; use data.resize='resize' or a larger image_size.")
      top, left = (image_size - h) // 2, (image_size - w) // 2
      images = np.pad(images, ((0, 0), (top, image_size - h - top),
                               (left, image_size - w - left), (0, 0)))
    else:
      # A plain loop: for tiny images the per-image Python work dominates and threads
      # only fight over the GIL (60k 28x28 images take ~3 s either way, measured).
      out = np.empty((n, image_size, image_size, images.shape[-1]), np.uint8)
      for i, image in enumerate(images):
        # Grayscale and RGB round-trip through PIL modes "L" / "RGB".
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        out[i] = np.asarray(_resize_square(pil, image_size, (0, 0, w, h))).reshape(
            out.shape[1:])
      images = out
  return _to_channels(images, channels)


def _class_names(name: str, num_classes: int) -> tuple[str, ...]:
  names = {"fashion_mnist": FASHION_MNIST_CLASSES, "mnist": MNIST_CLASSES}.get(name)
  return names if names and len(names) == num_classes else tuple(str(c) for c in range(num_classes))


# ------------------------------------------------------------------ IDX files


def _read_idx(path: Path, magic: int) -> np.ndarray:
  """Reads one IDX file of unsigned bytes (gzip or raw) into a uint8 array of its dims."""
  try:
    data = path.read_bytes()
  except OSError as e:
    raise DataError(f"Cannot read {path}: {e}.") from e
  if data[:2] == b"\x1f\x8b":  # gzip magic; the same names without .gz hold raw IDX.
    try:
      data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError.
      raise DataError(f"Cannot decompress {path}: corrupt or truncated gzip ({e}). Download it "
                      f"again. {IDX_HELP}") from e
  ndim = magic & 0xFF
  header = 4 + 4 * ndim
  if len(data) < header or int.from_bytes(data[:4], "big") != magic:
    got = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    raise DataError(f"{path} is not an IDX file of the expected kind: magic number {got}, "
                    f"expected {magic}. Check that images and labels files are not swapped.")
  dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
  expected = header + math.prod(dims)
  if len(data) != expected:
    raise DataError(f"{path} has {len(data) - header} data bytes but its header says "
                    f"{dims} = {expected - header}: the file is truncated or corrupt. "
                    f"Download it again. {IDX_HELP}")
  return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _find_idx_file(folder: Path, name: str) -> Path:
  all_names = ", ".join(n for names in IDX_FILES.values() for n in names)
  for candidate in (folder / name, folder / name.removesuffix(".gz")):
    if candidate.is_file():
      return candidate
  raise DataError(f"Missing IDX file {name} (or {name.removesuffix('.gz')}) in {folder}. "
                  f"data.source='idx' expects {all_names} in data.dir. {IDX_HELP}")


def load_idx(config: ml_collections.ConfigDict) -> Dataset:
  """MNIST / Fashion-MNIST from the official IDX files in `config.dir`."""
  folder = Path(config.dir).expanduser()
  if config.split not in IDX_FILES:
    raise DataError(f"data.split must be one of {tuple(IDX_FILES)} for data.source='idx', "
                    f"got {config.split!r}.")
  if not folder.is_dir():
    raise DataError(f"data.dir {str(folder)!r} is not a folder. data.source='idx' expects "
                    f"{', '.join(IDX_FILES[config.split])} in it. {IDX_HELP}")
  images_path, labels_path = (_find_idx_file(folder, f) for f in IDX_FILES[config.split])
  images = _read_idx(images_path, IDX_IMAGES_MAGIC)
  labels = _read_idx(labels_path, IDX_LABELS_MAGIC)
  if len(images) != len(labels):
    raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                    f"{len(labels)} labels; the files come from different datasets or splits.")
  if config.max_examples:
    images, labels = images[:config.max_examples], labels[:config.max_examples]
  images = fit_images(images[..., None], image_size=config.image_size,
                      channels=config.channels, resize=config.resize)
  # IDX label files carry no class count; MNIST-style sets have 10 (more, e.g. EMNIST, get ids).
  num_classes = max(10, int(labels.max(initial=0)) + 1)
  return Dataset(images, labels.astype(np.int32), _class_names(config.name, num_classes))


# ------------------------------------------------------------------ image folders


WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")   # PIL's 16/32-bit grayscale


def wide_grey_to_8bit(image: Image.Image) -> Image.Image:
  """16-bit grayscale (PIL mode in WIDE_GREY_MODES) -> mode "L", scaling 0..65535 to 0..255.

  convert("L") / convert("RGB") would clip instead, turning most of the image white.
  """
  wide = np.asarray(image, np.float64)
  return Image.fromarray(np.round(wide * (255 / 65535)).clip(0, 255).astype(np.uint8))


def flatten_to_mode(image: Image.Image, mode: str = "RGB") -> Image.Image:
  """Any PIL image -> `mode` ("RGB" or "L"): 16-bit grey scaled (not clipped), transparency
  composited onto white (product photos sit on white), palettes and grey expanded."""
  if image.mode in WIDE_GREY_MODES:
    image = wide_grey_to_8bit(image)
  elif image.mode in ("RGBA", "LA", "La", "PA", "RGBa") or "transparency" in image.info:
    rgba = image.convert("RGBA")
    image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
  return image.convert(mode)


class AnimatedImageError(ValueError):
  """An animated image (several frames) where one still image is needed."""


def read_rgb(path: os.PathLike | str) -> Image.Image:
  """An image file at its own size -> RGB PIL image (EXIF orientation applied, see flatten_to_mode).

  Raises:
    FileNotFoundError: no file at `path`.
    ValueError: not a readable image, animated (AnimatedImageError), or larger than PIL's
      decompression-bomb limit (~179M pixels); the message says which and what to do.
  """
  path = Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"Image file not found: {path}")
  try:
    with Image.open(path) as image:
      if getattr(image, "n_frames", 1) > 1:   # GIF / WebP / APNG: which frame is meant is unknowable
        raise AnimatedImageError(f"Image {path} is animated ({image.n_frames} frames); one still image is "
                                 "needed. Save the frame you want as a PNG or JPEG and pass that file.")
      image.load()
      return flatten_to_mode(ImageOps.exif_transpose(image), "RGB")
  except AnimatedImageError:
    raise
  except Image.DecompressionBombError as e:   # not an OSError
    raise ValueError(f"Image {path} is too large: {str(e).rstrip('.')}. Resize it (a few thousand "
                     "pixels per side is plenty) and retry.") from None
  except (OSError, SyntaxError, ValueError) as e:
    raise ValueError(f"Cannot read image {path}: {str(e).rstrip('.')}.") from None


def _decode_image(path: Path, size: int, channels: int, crop: str) -> np.ndarray:
  """Decodes one file to (size, size, channels) uint8."""
  mode = "RGB" if channels == 3 else "L"
  try:
    with Image.open(path) as image:
      width, height = image.size
      crop_w = width / 2 if crop != "none" else width
      # JPEG can decode at 1/2, 1/4, 1/8 scale almost for free; keep >= 2x the target
      # (like PIL's thumbnail reducing_gap) so the final bicubic step still antialiases.
      scale = 2 * size / min(crop_w, height)
      if scale < 1:
        image.draft(mode, (math.ceil(width * scale), math.ceil(height * scale)))
      image.load()
      image = flatten_to_mode(image, mode)
      w, h = image.size
      if crop != "none":
        # Cut first: resizing a box would let the bicubic kernel reach the other half.
        image = image.crop((0, 0, w // 2, h) if crop == "left_half" else (w // 2, 0, w, h))
      return np.asarray(_resize_square(image, size, (0, 0, *image.size))).reshape(
          size, size, channels)
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise DataError(f"Cannot decode image {path}: {str(e).rstrip('.')}. Remove or replace the file.") from e


def load_image_folder(config: ml_collections.ConfigDict) -> Dataset:
  """Labelled images from `config.dir/<class_name>/*.{jpg,jpeg,png,bmp,webp}`."""
  folder = Path(config.dir).expanduser()
  crop = config.get("crop", "none")
  if crop not in CROPS:
    raise DataError(f"data.crop must be one of {CROPS}, got {crop!r}.")
  layout = (f"data.source='image_folder' expects one subfolder per class, e.g. "
            f"{folder}/<class_name>/*.jpg (extensions {', '.join(IMAGE_EXTENSIONS)}); "
            "class ids follow the sorted subfolder names.")
  if not folder.is_dir():
    raise DataError(f"data.dir {str(folder)!r} is not a folder. {layout}")
  class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
  if not class_dirs:
    loose = len(cli.image_files(folder))
    if not loose:
      raise DataError(f"{folder} has no class subfolders and no images. {layout}")
    # A flat folder of images is one class (unconditional training on a whole catalog).
    logging.info("%s has no class subfolders: reading its %d images as one class.", folder, loose)
    class_dirs = [folder]
  paths, labels = [], []
  for label, class_dir in enumerate(class_dirs):
    files = cli.image_files(class_dir)
    if not files:
      raise DataError(f"Class folder {class_dir} has no images. {layout}")
    paths += files
    labels += [label] * len(files)
  if config.max_examples:
    paths, labels = paths[:config.max_examples], labels[:config.max_examples]
  images = np.empty((len(paths), config.image_size, config.image_size, config.channels), np.uint8)

  def decode(i: int) -> None:
    images[i] = _decode_image(paths[i], config.image_size, config.channels, crop)

  _parallel(decode, len(paths))
  return Dataset(images, np.asarray(labels, np.int32), tuple(d.name for d in class_dirs))


# ------------------------------------------------------------------ TFDS


def load_tfds(config: ml_collections.ConfigDict) -> Dataset:
  """Any TFDS image classification dataset with "image" and "label" features."""
  import tensorflow_datasets as tfds  # Imports TensorFlow: only pay for it when used.

  data_dir = config.dir or None
  hint = (f"TFDS needs network access to download {config.name!r}, or a data_dir where it is "
          "already prepared (data.dir). Without network use data.source='idx' with "
          "data.dir pointing at a folder of IDX files, or data.source='image_folder'.")
  try:
    builder = tfds.builder(config.name, data_dir=data_dir)
  except Exception as e:  # pylint: disable=broad-except  (DatasetNotFoundError, bad names)
    raise DataError(f"TFDS has no dataset named {config.name!r} (data.name): "
                    f"{str(e).splitlines()[0]} {hint}") from e
  try:
    # as_dataset on an unprepared builder fails fast; only then try to download, which
    # retries for minutes before failing when there is no network.
    try:
      ds = builder.as_dataset(split=config.split, as_supervised=False)
    except AssertionError:
      logging.warning("Downloading and preparing %s with TFDS (needs network).", config.name)
      builder.download_and_prepare()
      ds = builder.as_dataset(split=config.split, as_supervised=False)
  except Exception as e:  # pylint: disable=broad-except  (network, file and TF errors alike)
    raise DataError(f"Could not load TFDS dataset {config.name!r} split {config.split!r} "
                    f"(data_dir={data_dir!r}): {e}. {hint}") from e
  if not {"image", "label"} <= set(ds.element_spec):
    raise DataError(f"TFDS dataset {config.name!r} has features {sorted(ds.element_spec)}; "
                    "data.source='tfds' needs 'image' and 'label'.")
  spec = ds.element_spec["image"]
  if not spec.shape.is_fully_defined() or spec.shape.rank != 3 or spec.dtype.name != "uint8":
    raise DataError(f"TFDS dataset {config.name!r} has images {spec.shape} {spec.dtype.name}; "
                    "data.source='tfds' needs fixed-size uint8 images. Export variable-size "
                    "images to a folder and use data.source='image_folder'.")
  if config.max_examples:
    ds = ds.take(config.max_examples)
  # Batched iteration instead of tfds.load(batch_size=-1), which aborts the process under
  # tfds.testing.mock_data (std::length_error in the full-dataset batch).
  parts = list(tfds.as_numpy(ds.batch(4096)))
  if not parts:
    raise DataError(f"TFDS dataset {config.name!r} split {config.split!r} is empty.")
  images = np.concatenate([p["image"] for p in parts])
  labels = np.concatenate([p["label"] for p in parts]).astype(np.int32)
  images = fit_images(images, image_size=config.image_size, channels=config.channels,
                      resize=config.resize)
  label_feature = builder.info.features["label"]
  names = getattr(label_feature, "names", None) or _class_names(
      config.name, getattr(label_feature, "num_classes", 0) or int(labels.max()) + 1)
  return Dataset(images, labels, tuple(names))


# ------------------------------------------------------------------ paired product photos

PRODUCT_CLASSES = ("shoe", "handbag")
PRODUCT_SPLITS = ("train", "val")
PRODUCT_VIEWS = ("photo", "edges", "pair")
# Which half of each 512x256 file holds the colour photo (the other holds the edge map).
PRODUCT_SUBSETS = {
    "edges2shoes_edges2handbags": "left_half",  # Re-packaged: photo LEFT, edges right.
    "edges2shoes_100_subset": "right_half",     # Canonical pix2pix: edges (A) left, photo (B) RIGHT.
}
PRODUCT_FILE = re.compile(r"(\d+)_AB\.jpe?g", re.IGNORECASE)
PRODUCTS_HELP = ("data.source='products' expects data.dir = the products folder of the data "
                 "README (section 2), holding <subset>/{train,val}/<number>_AB.jpg for subsets "
                 f"{', '.join(PRODUCT_SUBSETS)} (or one of those subset folders itself); by "
                 "default $PRODUCTGAN_DATA_DIR/products, i.e. ../shared/data/products.")


def product_label(subset: str, split: str, number: int, path: Path) -> int:
  """Class id (0 shoe, 1 handbag) of the product file `<number>_AB.jpg` of subset / split.

  edges2shoes_edges2handbags numbers shoes and handbags in separate ranges (data README 2a):
  train 1-1000 shoes and 1001-2000 handbags (801-1000 and 1801-2000 are not shipped, but the
  README says what they hold), val 1-200 shoes and 201-400 handbags. edges2shoes_100_subset
  keeps the official edges2shoes numbers, so every positive number is a shoe.

  Raises:
    DataError naming `path` when the number is outside the known ranges.
  """
  if subset == "edges2shoes_100_subset":
    ranges = ((1, math.inf, 0),)
  elif split == "train":
    ranges = ((1, 1000, 0), (1001, 2000, 1))
  else:
    ranges = ((1, 200, 0), (201, 400, 1))
  for low, high, label in ranges:
    if low <= number <= high:
      return label
  known = ", ".join(f"{low}-{high} {PRODUCT_CLASSES[label]}" for low, high, label in ranges)
  raise DataError(f"{path}: file number {number} is outside the known ranges of {subset}/"
                  f"{split} ({known}), so its class is unknown. Remove the file or rename it "
                  "to its number in the original dataset.")


def _product_subset_dirs(folder: Path, config: ml_collections.ConfigDict) -> list[tuple[str, Path]]:
  """[(subset name, subset folder)] selected by data.dir and data.products_subsets."""
  if not folder.is_dir():
    raise DataError(f"data.dir {str(folder)!r} is not a folder. {PRODUCTS_HELP}")
  if folder.name in PRODUCT_SUBSETS:
    # data.dir points at one subset: its name alone says which half is the photo.
    return [(folder.name, folder)]
  subsets = config.get("products_subsets", "edges2shoes_edges2handbags")
  names = [n.strip() for n in subsets.split(",")] if isinstance(subsets, str) else list(subsets)
  names = list(dict.fromkeys(n for n in names if n))  # Drops empties and repeats, keeps order.
  if not names or any(n not in PRODUCT_SUBSETS for n in names):
    raise DataError(f"data.products_subsets must be a comma-separated list of "
                    f"{', '.join(PRODUCT_SUBSETS)}, got {subsets!r}.")
  missing = [n for n in names if not (folder / n).is_dir()]
  if missing:
    present = sorted(p.name for p in folder.iterdir() if p.is_dir()) or ["nothing"]
    raise DataError(f"{folder} has no subset folder {', '.join(missing)} (it holds "
                    f"{', '.join(present)}). {PRODUCTS_HELP}")
  return [(n, folder / n) for n in names]


def load_products(config: ml_collections.ConfigDict) -> Dataset:
  """Paired shoe / handbag photos (data README section 2); see the module docstring."""
  folder = Path(config.dir).expanduser()
  split = config.get("split", "train")
  view = config.get("view", "photo")
  if split not in PRODUCT_SPLITS:
    raise DataError(f"data.split must be one of {PRODUCT_SPLITS} for data.source='products', "
                    f"got {split!r}.")
  if view not in PRODUCT_VIEWS:
    raise DataError(f"data.view must be one of {PRODUCT_VIEWS}, got {view!r}.")
  files = []  # (path, label, crop of the photo half)
  for subset, subset_dir in _product_subset_dirs(folder, config):
    split_dir = subset_dir / split
    if not split_dir.is_dir():
      raise DataError(f"{split_dir} is missing: {subset} has no {split!r} split there. "
                      f"{PRODUCTS_HELP}")
    numbered = []
    for path in split_dir.iterdir():
      if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
        continue
      match = PRODUCT_FILE.fullmatch(path.name)
      if not match:
        raise DataError(f"{path} is not named <number>_AB.jpg, so its class is unknown. "
                        f"Remove it from {split_dir} or rename it. {PRODUCTS_HELP}")
      numbered.append((int(match[1]), path))
    if not numbered:
      raise DataError(f"{split_dir} has no <number>_AB.jpg images. {PRODUCTS_HELP}")
    # Numeric order (2 before 10): shoes first, then handbags, as in the README ranges.
    for number, path in sorted(numbered):
      files.append((path, product_label(subset, split, number, path), PRODUCT_SUBSETS[subset]))
  if config.max_examples:
    files = files[:config.max_examples]

  other = {"left_half": "right_half", "right_half": "left_half"}
  shape = (len(files), config.image_size, config.image_size, config.channels)
  images = np.empty(shape, np.uint8)
  pairs = np.empty(shape, np.uint8) if view == "pair" else None

  def decode(i: int) -> None:
    path, _, photo_crop = files[i]
    crop = other[photo_crop] if view == "edges" else photo_crop
    images[i] = _decode_image(path, config.image_size, config.channels, crop)
    if pairs is not None:
      # A second decode of the file: each half is cut before resizing (see _decode_image).
      pairs[i] = _decode_image(path, config.image_size, config.channels, other[photo_crop])

  _parallel(decode, len(files))
  labels = np.asarray([label for _, label, _ in files], np.int32)
  return Dataset(images, labels, PRODUCT_CLASSES, pairs)


# ------------------------------------------------------------------ entry point

SOURCES: dict[str, Callable[[ml_collections.ConfigDict], Dataset]] = {
    "idx": load_idx,
    "image_folder": load_image_folder,
    "tfds": load_tfds,
    "products": load_products,
}


def held_out_split(data_config: ml_collections.ConfigDict) -> str:
  """The split used for testing: "val" for the product photos (they ship no test split), else "test"."""
  return "val" if data_config.source == "products" else "test"


def load_dataset(data_config: ml_collections.ConfigDict) -> Dataset:
  """Loads one split as uint8 arrays at data_config.image_size (see module docstring)."""
  if data_config.source not in SOURCES:
    raise DataError(f"Unknown data.source {data_config.source!r}; valid sources: "
                    f"{', '.join(SOURCES)}.")
  _check_config(data_config)
  return SOURCES[data_config.source](data_config)


def held_out_dataset(data_config: ml_collections.ConfigDict, max_examples: int = 0) -> Dataset:
  """The held-out split of `data_config` (see held_out_split), its first `max_examples` (0 = all)."""
  return load_dataset(ml_collections.ConfigDict({**data_config.to_dict(), "split": held_out_split(data_config),
                                                 "max_examples": max_examples}))


def held_out_sample(data_config: ml_collections.ConfigDict, num: int) -> tuple[np.ndarray, np.ndarray, str]:
  """`num` examples evenly spaced over the held-out split (so every class of a class-sorted split
  is represented): (images (num, S, S, C) float32 in [-1, 1], labels (num,), split name)."""
  split = held_out_split(data_config)
  dataset = held_out_dataset(data_config)
  if not 0 < num <= len(dataset.images):
    raise DataError(f"Asked for {num} held-out images; the {split} split has {len(dataset.images)}.")
  index = np.linspace(0, len(dataset.images) - 1, num).round().astype(int)
  return dataset.images[index].astype(np.float32) / 127.5 - 1.0, dataset.labels[index], split
