"""The PyTorch reference for the train-step benchmark: the same DCGAN step, eager and torch.compile.

  pip install torch==2.13.0        # not a dependency of productgan; the CPU wheel is enough
  python experiments/benchmark_pytorch_dcgan.py --batch_size 64 --steps 50 --repeats 3

Architecture and step are those of configs/dcgan_fashion_mnist.py, so the images/s printed here
compare one to one with benchmark_throughput.py:
  G: z(100) -> Linear 4*4*256 -> BN, ReLU -> ConvT(4, 2, 1) 128 -> BN, ReLU -> ConvT 64 -> BN, ReLU
     -> ConvT 1 -> tanh  (32x32x1);
  D: Conv(4, 2, 1) 64 -> LReLU(0.2) -> Conv 128 -> BN -> LReLU -> Conv 256 -> BN -> LReLU -> Linear 1;
  non-saturating loss with logits, Adam(2e-4, 0.5, 0.999) for both, one D update (real and fake in
  separate forward passes) then one G update through the updated D, reusing the same fake batch;
  EMA of the generator weights (decay 0.999) and gradient norms, as the JAX step computes them.
Writes experiments/results/throughput_pytorch_dcgan.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gan import provenance  # pylint: disable=g-import-not-at-top  (no JAX import: plain Python)


def make_generator(z_dim: int = 100, width: int = 64, channels: int = 1) -> nn.Module:
  w = [4 * width, 2 * width, width]

  class Generator(nn.Module):

    def __init__(self):
      super().__init__()
      self.dense = nn.Linear(z_dim, 4 * 4 * w[0], bias=True)
      self.bn0 = nn.BatchNorm2d(w[0], momentum=0.1)
      self.body = nn.Sequential(
          nn.ConvTranspose2d(w[0], w[1], 4, 2, 1, bias=False), nn.BatchNorm2d(w[1]), nn.ReLU(),
          nn.ConvTranspose2d(w[1], w[2], 4, 2, 1, bias=False), nn.BatchNorm2d(w[2]), nn.ReLU(),
          nn.ConvTranspose2d(w[2], channels, 4, 2, 1, bias=True), nn.Tanh())

    def forward(self, z):
      x = self.dense(z).view(z.shape[0], w[0], 4, 4)
      return self.body(F.relu(self.bn0(x)))

  return Generator()


def make_discriminator(width: int = 64, channels: int = 1) -> nn.Module:
  return nn.Sequential(
      nn.Conv2d(channels, width, 4, 2, 1, bias=True), nn.LeakyReLU(0.2),
      nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
      nn.Conv2d(2 * width, 4 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * width), nn.LeakyReLU(0.2),
      nn.Flatten(), nn.Linear(4 * width * 4 * 4, 1))


def make_step(generator, discriminator, ema_params, batch_size: int, z_dim: int = 100):
  g_opt = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
  g_params = list(generator.parameters())

  def grad_norm(params):
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))

  def step(real):
    z = torch.randn(batch_size, z_dim)
    fake = generator(z)
    d_opt.zero_grad(set_to_none=True)
    real_logits = discriminator(real)
    fake_logits = discriminator(fake.detach())
    d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    d_loss.backward()
    d_norm = grad_norm(discriminator.parameters())
    d_opt.step()
    g_opt.zero_grad(set_to_none=True)
    g_loss = F.softplus(-discriminator(fake)).mean()
    g_loss.backward()
    g_norm = grad_norm(g_params)
    g_opt.step()
    with torch.no_grad():
      torch._foreach_lerp_(ema_params, g_params, 1 - 0.999)  # pylint: disable=protected-access
    return d_loss.detach(), g_loss.detach(), d_norm, g_norm

  return step


def time_mode(mode: str, batch_size: int, steps: int, repeats: int) -> dict:
  torch.manual_seed(0)
  generator, discriminator = make_generator(), make_discriminator()
  ema_params = [p.detach().clone() for p in generator.parameters()]
  step = make_step(generator, discriminator, ema_params, batch_size)
  if mode == "compile":
    generator.compile()
    discriminator.compile()
  real = torch.rand(batch_size, 1, 32, 32) * 2 - 1
  start = time.perf_counter()
  for _ in range(3):       # compile (both modes warm up the same number of steps)
    step(real)
  warmup = time.perf_counter() - start
  per_repeat = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(steps):
      out = step(real)
    float(out[0])
    per_repeat.append((time.perf_counter() - start) / steps)
  return {
      "mode": mode, "batch_size": batch_size,
      "images_per_s_median": batch_size / statistics.median(per_repeat),
      "images_per_s_min": batch_size / max(per_repeat),
      "images_per_s_max": batch_size / min(per_repeat),
      "ms_per_step_median": 1e3 * statistics.median(per_repeat),
      "warmup_3_steps_s": warmup,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--steps", type=int, default=50)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--modes", default="eager,compile")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                    "throughput_pytorch_dcgan.json"))
  args = parser.parse_args()
  start_time = time.time()
  results = [time_mode(m, args.batch_size, args.steps, args.repeats) for m in args.modes.split(",")]
  print(f"\nPyTorch {torch.__version__} DCGAN 32x32x1, {torch.get_num_threads()} threads\n")
  print("| mode | batch | images/s (median) | min | max | ms/step | warm-up (3 steps, s) |")
  print("|---|---:|---:|---:|---:|---:|---:|")
  for r in results:
    print(f"| {r['mode']} | {r['batch_size']} | {r['images_per_s_median']:.0f} | {r['images_per_s_min']:.0f} | "
          f"{r['images_per_s_max']:.0f} | {r['ms_per_step_median']:.1f} | {r['warmup_3_steps_s']:.1f} |")
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w", encoding="utf-8") as f:
    json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
               "platform": platform.platform(), "steps": args.steps, "repeats": args.repeats,
               "results": results,
               # No JAX here: package versions include torch, devices are torch's CPU threads (above).
               "provenance": provenance.finish(provenance.record(
                   config=vars(args), seed=0, start_time=start_time, devices=False,
                   packages=("torch", "numpy"))),
               }, f, indent=2)
  print(f"\nWrote {args.out}")


if __name__ == "__main__":
  main()
