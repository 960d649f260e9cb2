"""Layers shared by the architectures.

`ConvTranspose` computes the transposed convolution as the adjoint (linear transpose) of a
strided convolution, with a hand-written VJP. Maths is that of PyTorch's `ConvTranspose2d`
(kernel k, stride s, padding (k - s) / 2, so the output is s times the input). Why: the weight
gradient that JAX derives for `lax.conv_transpose` is an lhs-dilated convolution that takes a slow
path on XLA:CPU (3-10 GFLOP/s, ~4x slower than PyTorch). Written as below, the backward pass is one
ordinary strided convolution (input gradient) and one strided-convolution weight gradient, both fast.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")

# DCGAN initialisation (Radford et al. 2016): weights ~ N(0, 0.02).
dcgan_init = nn.initializers.normal(stddev=0.02)


def _same_padding(kernel_size: int, stride: int) -> tuple[tuple[int, int], tuple[int, int]]:
  """Padding of the strided conv that maps an (s*H, s*W) image to (H, W)."""
  total = kernel_size - stride
  if total < 0:
    raise ValueError(f"kernel_size ({kernel_size}) must be >= stride ({stride}).")
  lo = total // 2
  return ((lo, total - lo), (lo, total - lo))


def strided_conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  """Convolution with stride `stride` and padding (k - s) / 2: (N, s*H, s*W, Cin) -> (N, H, W, Cout).

  `kernel` is HWIO: (k, k, Cin, Cout).
  """
  padding = _same_padding(kernel.shape[0], stride)
  return lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                  dimension_numbers=DIMENSION_NUMBERS)


def _conv_transpose_forward(y: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  n, h, w, _ = y.shape
  x_shape = jax.ShapeDtypeStruct((n, h * stride, w * stride, kernel.shape[2]), y.dtype)
  (x,) = jax.linear_transpose(lambda x: strided_conv(x, kernel, stride), x_shape)(y)
  return x


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_transpose(y: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  """Transposed convolution: (N, H, W, Cin_small) -> (N, s*H, s*W, Cout_big).

  It is the adjoint of `strided_conv(., kernel, stride)`, whose kernel is
  (k, k, Cout_big, Cin_small): e.g. a 1x1 input equal to 1 at the centre spreads `kernel`
  over the output, as PyTorch's ConvTranspose2d does.
  """
  return _conv_transpose_forward(y, kernel, stride)


def _conv_transpose_fwd(y, kernel, stride):
  return _conv_transpose_forward(y, kernel, stride), (y, kernel)


def _conv_transpose_bwd(stride, residuals, g):
  y, kernel = residuals
  # Adjoint of the adjoint: the input gradient is the strided convolution itself.
  dy = strided_conv(g, kernel, stride)
  # <g, A_w^T y> = <A_w g, y>: the weight gradient is that of a strided conv at input g.
  _, weight_vjp = jax.vjp(lambda k: strided_conv(g, k, stride), kernel)
  (dkernel,) = weight_vjp(y)
  return dy, dkernel


conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


class ConvTranspose(nn.Module):
  """Upsampling transposed convolution by `stride` (PyTorch ConvTranspose2d(k, s, (k-s)/2) maths).

  Input (N, H, W, Cin) -> output (N, s*H, s*W, features). The kernel is stored as
  (k, k, features, Cin), the HWIO kernel of the strided conv this layer is the adjoint of.
  """
  features: int
  kernel_size: int = 4
  stride: int = 2
  use_bias: bool = True
  kernel_init: Callable[..., Any] = dcgan_init
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, self.features, x.shape[-1]))
    dtype = self.dtype or x.dtype
    y = conv_transpose(x.astype(dtype), kernel.astype(dtype), self.stride)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(dtype)
    return y


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def downsampling_conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  """`strided_conv` whose input gradient is the fast `conv_transpose` (same values as lax's).

  (N, s*H, s*W, Cin) -> (N, H, W, Cout); kernel HWIO (k, k, Cin, Cout). Why: the input gradient
  JAX derives for a strided conv is an lhs-dilated conv; a gradient penalty (WGAN-GP, R1)
  differentiates that input gradient again with respect to the weights, which is the slow
  XLA:CPU path described in the module docstring. Here the input gradient is `conv_transpose`,
  whose own custom VJP only uses ordinary strided convolutions, to any order.
  """
  return strided_conv(x, kernel, stride)


def _downsampling_conv_fwd(x, kernel, stride):
  return strided_conv(x, kernel, stride), (x, kernel)


def _downsampling_conv_bwd(stride, residuals, g):
  x, kernel = residuals
  dx = conv_transpose(g, kernel, stride)
  _, weight_vjp = jax.vjp(lambda k: strided_conv(x, k, stride), kernel)
  (dkernel,) = weight_vjp(g)
  return dx, dkernel


downsampling_conv.defvjp(_downsampling_conv_fwd, _downsampling_conv_bwd)


class DownsamplingConv(nn.Module):
  """Strided convolution (kernel k, stride s, padding (k - s) / 2): (N, s*H, s*W, Cin) -> (N, H, W, features).

  Same values and parameters ("kernel" (k, k, Cin, features), "bias") as
  `nn.Conv(features, (k, k), strides=s, padding=(k - s) // 2)`; only the backward pass differs
  (see `downsampling_conv`).
  """
  features: int
  kernel_size: int = 4
  stride: int = 2
  use_bias: bool = True
  kernel_init: Callable[..., Any] = dcgan_init
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    if x.shape[1] % self.stride or x.shape[2] % self.stride:
      raise ValueError(f"DownsamplingConv with stride {self.stride} needs height and width divisible by "
                       f"it, got input of shape {x.shape}.")
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
    dtype = self.dtype or x.dtype
    y = downsampling_conv(x.astype(dtype), kernel.astype(dtype), self.stride)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(dtype)
    return y


class ConditionalBatchNorm(nn.Module):
  """Batch norm whose scale and offset come from the condition (de Vries et al. 2017).

  x: (N, H, W, C); labels: (N,) int in [0, num_classes) or None; cond: (N, D) float or None.
  gamma = embed_scale(labels) + dense_scale(cond), beta = embed_offset(labels) + dense_offset(cond);
  the embeddings start at 1 / 0 and the dense layers at 0 (gamma = 1 without labels), so an untrained
  layer is plain batch norm. Statistics are those of the global batch.
  """
  num_classes: int
  use_running_average: bool = False
  momentum: float = 0.9
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, labels: Optional[jax.Array] = None,
               cond: Optional[jax.Array] = None) -> jax.Array:
    x = nn.BatchNorm(use_running_average=self.use_running_average, momentum=self.momentum,
                     use_scale=False, use_bias=False, dtype=self.dtype)(x)
    c = x.shape[-1]
    gamma = jnp.ones((x.shape[0], c), jnp.float32)
    beta = jnp.zeros((x.shape[0], c), jnp.float32)
    if labels is not None and self.num_classes:
      gamma = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.ones, name="scale")(labels)
      beta = beta + nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, name="offset")(labels)
    if cond is not None:
      gamma = gamma + nn.Dense(c, kernel_init=nn.initializers.zeros, name="cond_scale")(cond)
      beta = beta + nn.Dense(c, kernel_init=nn.initializers.zeros, name="cond_offset")(cond)
    dtype = self.dtype or x.dtype
    return x * gamma[:, None, None, :].astype(dtype) + beta[:, None, None, :].astype(dtype)


def maybe_spectral_norm(layer: nn.Module, x: jax.Array, enabled: bool, train: bool) -> jax.Array:
  """layer(x), spectrally normalised when `enabled` (one power iteration per training call; the
  iteration vector lives in "batch_stats" and is only updated when train=True)."""
  if not enabled:
    return layer(x)
  return nn.SpectralNorm(layer)(x, update_stats=train)


def check_conditions(module: nn.Module, labels: Optional[jax.Array], cond: Optional[jax.Array]) -> None:
  """Raises a clear error when a conditional model is called without its condition (or a wrong one)."""
  name = type(module).__name__
  if module.num_classes and labels is None:
    raise ValueError(f"This {name} is class-conditional ({module.num_classes} classes): pass labels of "
                     "shape (N,).")
  cond_dim = getattr(module, "cond_dim", 0)
  if cond_dim:
    if cond is None:
      raise ValueError(f"This {name} is conditioned on a {cond_dim}-d vector (text embedding or "
                       f"attributes): pass cond of shape (N, {cond_dim}).")
    if cond.ndim != 2 or cond.shape[-1] != cond_dim:
      raise ValueError(f"{name} expects cond of shape (N, {cond_dim}), got {cond.shape}.")


def projection(h: jax.Array, labels: Optional[jax.Array], cond: Optional[jax.Array], num_classes: int,
               cond_dim: int) -> jax.Array:
  """Projection-discriminator term (Miyato & Koyama 2018): <embed(y), h> + <W cond, h>, shape (N,).

  h: (N, F) float32 features of the discriminator. Call from inside a compact module method (the
  embedding and the dense layer become that module's parameters "projection" / "cond_projection").
  """
  out = jnp.zeros(h.shape[:1], jnp.float32)
  if num_classes:
    embed = nn.Embed(num_classes, h.shape[-1], embedding_init=dcgan_init, name="projection")
    out = out + jnp.sum(embed(labels) * h, axis=-1)
  if cond_dim:
    w_cond = nn.Dense(h.shape[-1], use_bias=False, kernel_init=dcgan_init, name="cond_projection")(cond)
    out = out + jnp.sum(w_cond.astype(jnp.float32) * h, axis=-1)
  return out


def num_upsamplings(image_size: int, base: int = 4) -> int:
  """How many x2 upsamplings turn a base x base map into image_size x image_size."""
  n, size = 0, base
  while size < image_size:
    size *= 2
    n += 1
  if size != image_size:
    raise ValueError(f"image_size must be {base} times a power of two (e.g. 32, 64), got {image_size}.")
  return n


def channel_widths(base_width: int, num_blocks: int, max_width: int = 1024) -> Sequence[int]:
  """Widths from the 4x4 end outwards, halving per block: e.g. 64, 3 blocks -> (256, 128, 64)."""
  return tuple(min(base_width * 2 ** i, max_width) for i in reversed(range(num_blocks)))
