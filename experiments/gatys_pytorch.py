"""The Gatys recipe of gan.style.gatys run by PyTorch eager: the speed baseline of benchmark_gatys.py.

  pip install torch==2.13.0     # only for this script; the project never imports torch
  python experiments/gatys_pytorch.py --size 256 --steps 300 --photos 0,233 --styles starry_night
  python experiments/benchmark_gatys.py --alternate 2     # both, alternated, and the ratio

The same recipe as `gatys.stylize` with the ImageNet VGG16 extractor and its defaults, step for step:
torchvision's VGG16 features (built by experiments/vgg16_reference.py from gan.weights' arrays),
torchvision preprocessing of images in [-1, 1], content loss = mean squared error at relu4_2, style
loss = the mean over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of mean((G - G_style)^2) with Gram
matrices normalised by h * w, total = content + 1e3 * style, Adam (lr 0.02, betas 0.9 / 0.999,
eps 1e-8) on the pixels, clipped to [-1, 1] after every step, initialised with the content photo.
Same photos (val split) and paintings (`controls.load_image`) as benchmark_gatys.py.
Prints one JSON line per pair; the first includes warm-up, as the JAX one includes compilation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
import torch  # pylint: disable=g-import-not-at-top

from configs import dcgan_products, default  # pylint: disable=g-import-not-at-top
from experiments import vgg16_reference  # pylint: disable=g-import-not-at-top
from gan import data, weights  # pylint: disable=g-import-not-at-top
from gan.style import controls  # pylint: disable=g-import-not-at-top

# Indices in torchvision's vgg16().features of the ReLUs the recipe taps.
STYLE_TAPS = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 18, "relu5_1": 25}
CONTENT_TAPS = {"relu4_2": 20}
STYLE_WEIGHT = 1e3
LEARNING_RATE = 0.02


def taps(features: torch.nn.Sequential, images: torch.Tensor) -> dict[str, torch.Tensor]:
  """images (N, 3, H, W) in [-1, 1] -> {tap: (N, C, h, w)} after torchvision preprocessing."""
  mean = torch.tensor(vgg16_reference.IMAGENET_MEAN).view(1, 3, 1, 1)
  std = torch.tensor(vgg16_reference.IMAGENET_STD).view(1, 3, 1, 1)
  x = ((images + 1.0) * 0.5 - mean) / std
  wanted = {**STYLE_TAPS, **CONTENT_TAPS}
  out = {}
  for i, layer in enumerate(features[:max(wanted.values()) + 1]):
    x = layer(x)
    for name, index in wanted.items():
      if index == i:
        out[name] = x
  return out


def gram(x: torch.Tensor) -> torch.Tensor:
  n, c, h, w = x.shape
  f = x.reshape(n, c, h * w)
  return f @ f.transpose(1, 2) / (h * w)


def stylize(features: torch.nn.Sequential, photo: np.ndarray, painting: np.ndarray, steps: int
            ) -> tuple[np.ndarray, list[float]]:
  """photo, painting (H, W, 3) float32 in [-1, 1] -> (result (H, W, 3), total loss per step)."""
  to_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)[None]))
  content, style = to_tensor(photo), to_tensor(painting)
  with torch.no_grad():
    content_targets = {k: v for k, v in taps(features, content).items() if k in CONTENT_TAPS}
    style_targets = {k: gram(v) for k, v in taps(features, style).items() if k in STYLE_TAPS}
  x = content.clone().requires_grad_(True)
  optimizer = torch.optim.Adam([x], lr=LEARNING_RATE)
  history = []
  for _ in range(steps):
    optimizer.zero_grad(set_to_none=True)
    out = taps(features, x)
    content_loss = sum(torch.mean((out[k] - t) ** 2) for k, t in content_targets.items()) / len(CONTENT_TAPS)
    style_loss = sum(torch.mean((gram(out[k]) - t) ** 2) for k, t in style_targets.items()) / len(STYLE_TAPS)
    total = content_loss + STYLE_WEIGHT * style_loss
    total.backward()
    optimizer.step()
    with torch.no_grad():
      x.clamp_(-1.0, 1.0)
    history.append(total.detach())
  return x.detach()[0].permute(1, 2, 0).numpy(), [float(h) for h in history]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--size", type=int, default=256)
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--photos", default="0,233", help="validation photo indices")
  parser.add_argument("--styles", default="starry_night", help="painting names (styles/<name>.jpg)")
  args = parser.parse_args(argv)
  features = vgg16_reference.torch_vgg16_features(weights.load_arrays("vgg16"))
  for p in features.parameters():
    p.requires_grad_(False)
  photos_config = dcgan_products.get_config().data
  photos_config.update(split="val", image_size=args.size, max_examples=0)
  indices = [int(i) for i in args.photos.split(",")]
  photos = data.load_dataset(photos_config).images[indices].astype(np.float32) / 127.5 - 1.0
  for index, photo in zip(indices, photos):
    for name in args.styles.split(","):
      painting = controls.load_image(os.path.join(default.data_root(), "styles", f"{name}.jpg"), args.size)
      start = time.perf_counter()
      _, history = stylize(features, photo, np.asarray(painting, np.float32), args.steps)
      seconds = time.perf_counter() - start
      print(json.dumps({"framework": f"torch {torch.__version__}", "threads": torch.get_num_threads(),
                        "photo": index, "style": name, "size": args.size, "steps": args.steps,
                        "seconds": round(seconds, 2), "total_first": history[0], "total_last": history[-1]}),
            flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
