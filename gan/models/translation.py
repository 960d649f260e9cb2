"""Image-to-image translation networks: U-Net and ResNet generators, PatchGAN discriminator.

  UNet (pix2pix, Isola et al. 2017): an encoder of `depth` 4x4 stride-2 convs (LeakyReLU 0.2) down to
      (S / 2^depth)^2, a decoder of 4x4 stride-2 transposed convs (ReLU) whose input at every level is
      the concatenation of the level above and the encoder map of the same size (skip connections),
      tanh output. Dropout 0.5 after the `dropout_layers` innermost decoder layers below the bottleneck
      is the generator's only noise (no z), active when train=True.
  ResNetGenerator (CycleGAN, Zhu et al. 2017; Johnson et al. 2016): c7s1-W, d2W, d4W, R residual
      blocks of 4W, u2W, uW, c7s1-C: 7x7 convs with reflection padding at both ends, two 3x3 stride-2
      convs down and two 3x3 stride-2 transposed convs up, tanh output. 9 blocks at 256 px in the
      paper; fewer (config) at 64 px on a CPU.
  PatchDiscriminator (PatchGAN): `layers` 4x4 stride-2 convs, one 4x4 stride-1 conv, a 4x4 stride-1
      conv to one logit per patch; padding 1 everywhere as in the reference code. Output
      (N, P, P) logits, one per receptive_field(layers) x receptive_field(layers) input patch
      (70x70 for layers=3; patch_grid(S, layers) = P). pix2pix feeds it concat(input, image).

Normalisation (`norm`): "instance" (the papers' choice for CycleGAN, and what pix2pix's batch norm at
batch 1 is): per image and channel, so there are no running statistics, train and eval behave the
same and data-parallel devices never need to agree on statistics. "none" drops it (used to measure
the PatchGAN's receptive field, which instance norm makes global). Layers followed by a norm have no
bias (the norm removes it). Weights start at N(0, 0.02) as in both papers.

All inputs and outputs are float32 (N, S, S, C) in [-1, 1]; S must be divisible by 2^depth (U-Net) or
4 (ResNet).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.models import layers

NORMS = ("instance", "none")


def normal_init(stddev: float = 0.02):
  """N(0, stddev^2) weights drawn as a flat vector, then reshaped: the same distribution as
  nn.initializers.normal, but XLA:CPU compiles the partitionable threefry of a 4-D shape ~15x slower
  than of a 1-D one (jax 0.10.2: ~9 s vs 0.6 s per init, measured), and every init pays it."""
  def init(key, shape, dtype=jnp.float32):
    return stddev * jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)
  return init


def dropout(module: nn.Module, x: jax.Array, rate: float, train: bool) -> jax.Array:
  """Inverted dropout with the mask drawn flat from the "dropout" RNG stream (see normal_init: a 4-D
  mask would add ~9 s to the train step's compile on XLA:CPU)."""
  if not train or rate == 0.0:
    return x
  keep = jax.random.bernoulli(module.make_rng("dropout"), 1.0 - rate, (x.size,)).reshape(x.shape)
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def _check_norm(norm: str) -> None:
  if norm not in NORMS:
    raise ValueError(f"Unknown translation norm {norm!r}; valid: {', '.join(NORMS)}.")


def _norm(norm: str, x: jax.Array) -> jax.Array:
  if norm == "none":
    return x
  return nn.InstanceNorm(epsilon=1e-5)(x)


def _conv(features: int, kernel: int, stride: int, bias: bool, padding="VALID") -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding, use_bias=bias,
                 kernel_init=normal_init())


def _reflect(x: jax.Array, pad: int) -> jax.Array:
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def unet_widths(width: int, depth: int, max_width_multiple: int = 8) -> list[int]:
  """Encoder channels per level: width * 2^i capped at 8 * width (pix2pix: 64 ... 512)."""
  return [width * min(2 ** i, max_width_multiple) for i in range(depth)]


class UNet(nn.Module):
  """U-Net generator: (N, S, S, in_channels) -> (N, S, S, channels) in [-1, 1]."""
  channels: int = 3
  width: int = 64
  depth: int = 6               # stride-2 levels; 6 at 64 px reaches a 1x1 bottleneck
  dropout: float = 0.5
  dropout_layers: int = 3      # innermost decoder layers (below the bottleneck) with dropout
  norm: str = "instance"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    _check_norm(self.norm)
    size = x.shape[1]
    if x.shape[1] != x.shape[2] or size % 2 ** self.depth:
      raise ValueError(f"UNet(depth={self.depth}) needs square inputs whose side is divisible by "
                       f"2^{self.depth} = {2 ** self.depth}, got {x.shape}; lower translation.unet_depth.")
    widths = unet_widths(self.width, self.depth)
    skips = []
    h = x
    for i, w in enumerate(widths):
      if i > 0:
        h = nn.leaky_relu(h, 0.2)
      # No norm on the first level (raw pixels) nor on the bottleneck (instance norm of a 1x1 map is 0).
      normed = 0 < i < self.depth - 1 and self.norm != "none"
      h = _conv(w, 4, 2, bias=not normed, padding=((1, 1), (1, 1)))(h)
      h = _norm(self.norm, h) if normed else h
      skips.append(h)
    for i in reversed(range(self.depth)):
      if i < self.depth - 1:
        h = jnp.concatenate([h, skips[i]], axis=-1)
      h = nn.relu(h)
      if i == 0:
        h = layers.ConvTranspose(self.channels, kernel_size=4, stride=2, kernel_init=normal_init())(h)
        return jnp.tanh(h)
      normed = self.norm != "none"
      h = layers.ConvTranspose(widths[i - 1], kernel_size=4, stride=2, use_bias=not normed,
                               kernel_init=normal_init())(h)
      h = _norm(self.norm, h)
      if self.depth - 1 - self.dropout_layers <= i < self.depth - 1 and self.dropout:
        h = dropout(self, h, self.dropout, train)
    raise AssertionError("unreachable")


class ResNetGenerator(nn.Module):
  """CycleGAN's ResNet generator: (N, S, S, C) -> (N, S, S, channels) in [-1, 1]; S divisible by 4."""
  channels: int = 3
  width: int = 64
  blocks: int = 9
  norm: str = "instance"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    del train  # no dropout, no running statistics
    _check_norm(self.norm)
    if x.shape[1] != x.shape[2] or x.shape[1] % 4:
      raise ValueError(f"ResNetGenerator needs square inputs whose side is divisible by 4, got {x.shape}.")
    bias = self.norm == "none"
    h = nn.relu(_norm(self.norm, _conv(self.width, 7, 1, bias)(_reflect(x, 3))))   # c7s1-W
    for multiple in (2, 4):                                                      # d2W, d4W
      h = nn.relu(_norm(self.norm, _conv(self.width * multiple, 3, 2, bias, ((1, 1), (1, 1)))(h)))
    for _ in range(self.blocks):                                                 # R x R4W
      r = nn.relu(_norm(self.norm, _conv(self.width * 4, 3, 1, bias)(_reflect(h, 1))))
      h = h + _norm(self.norm, _conv(self.width * 4, 3, 1, bias)(_reflect(r, 1)))
    for multiple in (2, 1):                                                      # u2W, uW
      h = layers.ConvTranspose(self.width * multiple, kernel_size=3, stride=2, use_bias=bias,
                               kernel_init=normal_init())(h)
      h = nn.relu(_norm(self.norm, h))
    return jnp.tanh(_conv(self.channels, 7, 1, True)(_reflect(h, 3)))           # c7s1-C


def receptive_field(num_layers: int) -> int:
  """Input patch side seen by one PatchDiscriminator logit: 70 for num_layers=3, 34 for 2, 16 for 1.

  Walking back from one logit through kernels k and strides s: r <- (r - 1) * s + k, over the two
  4x4 stride-1 convs and `num_layers` 4x4 stride-2 convs.
  """
  r = 1
  for stride in [1, 1] + [2] * num_layers:
    r = (r - 1) * stride + 4
  return r


def patch_grid(image_size: int, num_layers: int) -> int:
  """Side P of the (N, P, P) logit map for S x S inputs (4x4 convs, padding 1)."""
  size = image_size
  for stride in [2] * num_layers + [1, 1]:
    size = (size + 2 - 4) // stride + 1
  return size


class PatchDiscriminator(nn.Module):
  """PatchGAN: (N, S, S, C) -> logits (N, P, P), P = patch_grid(S, num_layers)."""
  width: int = 64
  num_layers: int = 3
  norm: str = "instance"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    del train
    _check_norm(self.norm)
    if patch_grid(x.shape[1], self.num_layers) < 1:
      raise ValueError(f"PatchDiscriminator(num_layers={self.num_layers}) needs inputs larger than "
                       f"{x.shape[1]} px; lower translation.d_layers.")
    pad = ((1, 1), (1, 1))
    h = x
    for i in range(self.num_layers + 1):
      stride = 2 if i < self.num_layers else 1
      normed = i > 0 and self.norm != "none"
      h = _conv(self.width * min(2 ** i, 8), 4, stride, not normed, pad)(h)
      h = nn.leaky_relu(_norm(self.norm, h) if normed else h, 0.2)
    return _conv(1, 4, 1, True, pad)(h)[..., 0]
