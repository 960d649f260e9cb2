"""Minimal reproducer: on XLA:CPU a convolution without padding runs 2-3x slower than the same
convolution with one extra (unused) row and column of zero padding.

  python -m experiments.xla_cpu_unpadded_conv

Each case times one jitted lax.conv_general_dilated (NHWC, HWIO, float32) of InceptionV3's shapes,
(a) as written (padding 0 on an axis) and (b) with padding (0, 1) added on every unpadded axis and
the output cropped back, which gives exactly the same values (no kept window reaches the extra
zeros). gan/metrics/inception.py uses (b) on CPU. Prints ms per call and the ratio, with the CPU
model and jax version.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from gan import provenance

# (batch, height, in channels, out channels, kernel, stride, padding): convs of the FID InceptionV3.
CASES = [
    (16, 73, 80, 192, (3, 3), 1, ((0, 0), (0, 0))),     # Conv2d_4a_3x3
    (16, 149, 32, 32, (3, 3), 1, ((0, 0), (0, 0))),     # Conv2d_2a_3x3
    (16, 35, 288, 384, (3, 3), 2, ((0, 0), (0, 0))),    # Mixed_6a.branch3x3
    (16, 35, 192, 64, (1, 1), 1, ((0, 0), (0, 0))),     # a 1x1 branch of Mixed_5b
    (16, 17, 160, 192, (7, 1), 1, ((3, 3), (0, 0))),    # Mixed_6c.branch7x7_3
]


def time_call(fn, *args, repeats: int = 5) -> float:
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  for _ in range(repeats):
    jax.block_until_ready(fn(*args))
  return (time.perf_counter() - start) / repeats


def main() -> None:
  print(f"{provenance.cpu_model()}, {jax.devices()[0].platform}, jax {jax.__version__}")
  rng = np.random.default_rng(0)
  for n, size, cin, cout, kernel, stride, padding in CASES:
    x = jnp.asarray(rng.standard_normal((n, size, size, cin), np.float32))
    w = jnp.asarray(rng.standard_normal((*kernel, cin, cout), np.float32))
    out = [(size + lo + hi - k) // stride + 1 for (lo, hi), k in zip(padding, kernel)]
    padded = [(lo, hi + 1) if lo == hi == 0 else (lo, hi) for lo, hi in padding]

    def conv(x, w, pad):
      return jax.lax.conv_general_dilated(x, w, (stride, stride), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"))

    plain = jax.jit(lambda x, w: conv(x, w, padding))
    cropped = jax.jit(lambda x, w: conv(x, w, padded)[:, :out[0], :out[1]])
    np.testing.assert_allclose(plain(x, w), cropped(x, w), rtol=1e-5, atol=1e-3)
    t_plain, t_cropped = time_call(plain, x, w), time_call(cropped, x, w)
    print(f"{n}x{size}x{size}x{cin} -> {cout}, {kernel[0]}x{kernel[1]}/{stride}, padding {padding}: "
          f"{1e3 * t_plain:7.1f} ms as written, {1e3 * t_cropped:7.1f} ms padded + cropped "
          f"({t_plain / t_cropped:.2f}x)")


if __name__ == "__main__":
  main()
