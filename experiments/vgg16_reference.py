"""Reference VGG16 activations of real product photos, computed with plain torch.

  pip install torch==2.13.0   # only for this script; the project never imports torch (no torchvision)
  python -m gan.weights fetch vgg16
  python -m experiments.vgg16_reference --out tests/fixtures/vgg16_reference.npz

Builds torchvision's `vgg16().features` by hand from its config "D" (nn.Conv2d 3x3 padding 1 + ReLU,
nn.MaxPool2d(2, 2) after each block), copies gan.weights' "vgg16" arrays into it (VGG16_0/Conv_<i>
into the i-th Conv2d, HWIO -> OIHW), and runs it on evenly spaced held-out product photos
(gan.data.held_out_sample with configs/dcgan_products.py's data config: 64x64 RGB) with
torchvision's preprocessing: uint8 / 255, minus the ImageNet mean, divided by the std. The taps are
torchvision's `features` indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (LPIPS' slices).

Nothing here uses gan.style.vgg, so the fixture checks its layer table, its Conv_<i> -> convX_Y
mapping and its preprocessing. To stay small (~1 MB) it holds, per tap <layer>:
  <layer>/mean (num, C): the spatial mean of every channel of every image (catches a wrong layer,
    channel order or preprocessing);
  <layer>/maps (4, h, w, C / 8): full maps of every 8th channel (0, 8, ...) of images MAP_IMAGES
    (catches spatial errors: padding, pooling offsets, flipped or transposed kernels);
and map_images (4,), channel_step () (which maps), labels (num,), image_means (num,) (the mean uint8
value of each image, to check the images are the same) and meta. tests/test_vgg.py compares the Flax VGG16 against it.
"""

from __future__ import annotations

import argparse

import numpy as np

from configs import dcgan_products
from gan import data
from gan import provenance
from gan import sampling
from gan import weights

# torchvision's cfgs["D"]: conv widths, "M" a 2x2 max pool.
CONFIG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# Indices in torchvision's vgg16().features of the ReLUs LPIPS taps (its slices end at 4, 9, 16, 23, 30).
TAPS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}
MAP_IMAGES = (0, 5, 10, 15)
CHANNEL_STEP = 8
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def torch_vgg16_features(arrays: dict[str, np.ndarray]):
  """torch.nn.Sequential equal to torchvision's vgg16().features with the given weights."""
  import torch
  layers, channels, index = [], 3, 0
  for width in CONFIG_D:
    if width == "M":
      layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
      continue
    conv = torch.nn.Conv2d(channels, width, kernel_size=3, padding=1)
    kernel = arrays[f"VGG16_0/Conv_{index}/kernel"]   # (3, 3, in, out) HWIO
    with torch.no_grad():
      conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
      conv.bias.copy_(torch.from_numpy(arrays[f"VGG16_0/Conv_{index}/bias"]))
    layers += [conv, torch.nn.ReLU(inplace=False)]
    channels, index = width, index + 1
  assert index == 13 and len(arrays) == 26, (index, len(arrays))
  return torch.nn.Sequential(*layers).eval()


def torch_activations(features, images_uint8: np.ndarray) -> dict[str, np.ndarray]:
  """{tap: (N, h, w, C) float32} of (N, H, W, 3) uint8 RGB images."""
  import torch
  assert all(isinstance(features[i], torch.nn.ReLU) for i in TAPS.values())
  x = torch.from_numpy(images_uint8).permute(0, 3, 1, 2).to(torch.float32) / 255.0
  x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
  out = {}
  with torch.no_grad():
    for i, layer in enumerate(features[:max(TAPS.values()) + 1]):
      x = layer(x)
      for name, index in TAPS.items():
        if index == i:
          out[name] = x.permute(0, 2, 3, 1).numpy().copy()
  return out


def summarise(activations: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The fixture's arrays of full activations (see the module docstring)."""
  arrays = {}
  for name, value in activations.items():
    arrays[f"{name}/mean"] = value.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
    arrays[f"{name}/maps"] = value[list(MAP_IMAGES)][..., ::CHANNEL_STEP]
  return arrays


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default="tests/fixtures/vgg16_reference.npz")
  parser.add_argument("--num", type=int, default=16, help="held-out product photos")
  args = parser.parse_args()
  import torch
  torch.set_num_threads(1)
  features = torch_vgg16_features(weights.load_arrays("vgg16"))
  images, labels, split = data.held_out_sample(dcgan_products.get_config().data, args.num)
  as_uint8 = sampling.to_uint8(images)
  activations = torch_activations(features, as_uint8)
  arrays = summarise(activations)
  for name, value in activations.items():
    print(f"{name}: {value.shape[1:]}, max {value.max():.4f}, mean {value.mean():.4f}, "
          f"zero {np.mean(value == 0):.2f}")
  arrays["map_images"], arrays["channel_step"] = np.asarray(MAP_IMAGES), np.asarray(CHANNEL_STEP)
  arrays["labels"] = labels
  arrays["image_means"] = as_uint8.mean(axis=(1, 2, 3)).astype(np.float32)
  arrays["meta"] = np.asarray(
      f"torch {torch.__version__}; hand-built torchvision vgg16().features (cfg D) with gan.weights vgg16 "
      f"npz sha256 {weights.provenance('vgg16')['npz_sha256']}; data.held_out_sample(dcgan_products, "
      f"num={args.num}) = {len(images)} {split} images {images.shape[1:]}; torchvision preprocessing "
      f"(uint8 / 255 - mean) / std; maps of images {MAP_IMAGES}, channels ::{CHANNEL_STEP}; "
      f"{provenance.cpu_model()}")
  np.savez_compressed(args.out, **arrays)
  print(f"Wrote {args.out}: {sum(a.nbytes for a in arrays.values()) / 2**20:.2f} MiB of arrays")


if __name__ == "__main__":
  main()
