"""ResNet GAN (SNGAN, Miyato et al. 2018; BigGAN-style blocks) for 32x32 / 64x64 images.

Generator: z (N, z_dim) -> Dense -> (N, 4, 4, C0) -> GBlock x n (each x2 in size) -> BN -> ReLU ->
3x3 conv -> tanh -> images (N, S, S, channels) in [-1, 1], n = layers.num_upsamplings(S).
  GBlock: residual  BN -> ReLU -> nearest x2 -> 3x3 conv -> BN -> ReLU -> 3x3 conv,
          shortcut  nearest x2 -> 1x1 conv.
Discriminator: images -> DBlock x n (each /2 in size) -> ReLU -> global SUM pool -> h (N, C) ->
logit = psi(h) + <embed(y), h> + <Dense(cond), h>  (projection, Miyato & Koyama 2018), shape (N,).
  first ("optimized") DBlock: residual  3x3 conv -> ReLU -> 3x3 conv -> avgpool,
                              shortcut  avgpool -> 1x1 conv;
  other DBlocks:              residual  ReLU -> 3x3 conv -> ReLU -> 3x3 conv -> avgpool,
                              shortcut  avgpool -> 1x1 conv (identity when neither the channels nor the
                                        size change).

Widths (`width` = channels at full resolution in G, of the first block in D; x2 per halving):
G maps 4x4 x C0 through blocks of widths layers.channel_widths(width, n), C0 = the first of them;
D's blocks have the same widths in reverse. With width=32 at 32x32: G 4x4x128 -> 8x8x128 ->
16x16x64 -> 32x32x32 (666k parameters for z_dim=100, 1 channel) and D 16x16x32 -> 8x8x64 ->
4x4x128 (297k parameters).

Conditioning:
- labels (N,) int in [0, num_classes): G uses conditional batch norm in every block (per-class scale,
  initialised at 1, and offset, at 0); D adds the projection <embed(y), h>.
- cond (N, cond_dim) float: G's block norms add a Dense(cond) -> (delta scale, delta offset) to the
  class (or constant 1 / 0) scale and offset; its bias starts at 0 (scale 1, offset 0 on average) and
  its kernel at N(0, 0.02), so cond starts with a small, nonzero effect. z is left as is.
  D adds <Dense(cond), h> (no bias: a cond-independent term would duplicate psi).

Spectral norm (D only, `spectral_norm=True`): every conv and dense, the projection embedding included,
is wrapped in flax `nn.SpectralNorm` (one power iteration per call, the u vectors and sigmas in
"batch_stats", updated only when train=True). The class embedding table (num_classes, C) is normalised
as a matrix: the same as SNGAN's spectrally normalised Dense without bias on a one-hot label, whose
kernel is that table. Biases are not normalised. D has no batch norm.

Design choices:
- Upsampling / average pooling commute exactly with a 1x1 conv (both are linear, one mixes pixels per
  channel, the other channels per pixel; a bias survives either), so the shortcuts run the 1x1 conv at
  the lower resolution: same output, 4x fewer multiply-adds.
- Every G layer but the last feeds a batch norm, which removes per-channel constants: those layers have
  no bias (it would get no gradient in training).
- Initialisation as in SNGAN: Glorot uniform with gain sqrt(2) in the residual branches, gain 1 elsewhere.
- `dtype` is the computation dtype (params float32); the images and the logits are float32.
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.models import layers

# Glorot uniform with gain sqrt(2) (variance x2) for convs followed by a ReLU branch (SNGAN).
residual_init = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")
shortcut_init = nn.initializers.xavier_uniform()


def upsample(x: jax.Array) -> jax.Array:
  """Nearest-neighbour x2: (N, H, W, C) -> (N, 2H, 2W, C), each pixel copied to a 2x2 square."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def downsample(x: jax.Array) -> jax.Array:
  """2x2 average pooling: (N, 2H, 2W, C) -> (N, H, W, C)."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


def _check_conditioning(kind: str, num_classes: int, cond_dim: int, batch: int,
                        labels: Optional[jax.Array], cond: Optional[jax.Array]):
  """Returns (labels, cond), each None when the model does not use it; raises ValueError if missing."""
  if not num_classes:
    labels = None
  elif labels is None:
    raise ValueError(f"This {kind} is class-conditional: pass labels of shape (N,).")
  if not cond_dim:
    cond = None
  elif cond is None:
    raise ValueError(f"This {kind} is conditioned on a vector: pass cond of shape (N, {cond_dim}).")
  elif cond.shape != (batch, cond_dim):
    raise ValueError(f"This {kind} expects cond of shape ({batch}, {cond_dim}), got {cond.shape}.")
  return labels, cond


class ConditionalNorm(nn.Module):
  """Batch norm with a scale and offset from the label and/or the cond vector (plain BN if neither).

  x: (N, H, W, C); labels: (N,) int | None; cond: (N, cond_dim) | None. Output
  x_hat * (gamma_y + A cond) + (beta_y + B cond), with gamma_y = 1, beta_y = 0 without classes.
  Statistics are those of the global batch (see dcgan.py).
  """
  num_classes: int = 0
  cond_dim: int = 0
  momentum: float = 0.9
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, labels: Optional[jax.Array], cond: Optional[jax.Array], *,
               train: bool) -> jax.Array:
    conditional = bool(self.num_classes or self.cond_dim)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, use_scale=not conditional,
                     use_bias=not conditional, dtype=self.dtype)(x)
    if not conditional:
      return x
    c = x.shape[-1]
    gamma = jnp.ones((x.shape[0], c), jnp.float32)
    beta = jnp.zeros((x.shape[0], c), jnp.float32)
    if self.num_classes:
      gamma = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.ones, name="scale")(labels)
      beta = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, name="offset")(labels)
    if self.cond_dim:
      delta = nn.Dense(2 * c, kernel_init=layers.dcgan_init, name="cond_scale_offset")(cond)
      gamma, beta = gamma + delta[:, :c], beta + delta[:, c:]
    return x * gamma[:, None, None, :].astype(x.dtype) + beta[:, None, None, :].astype(x.dtype)


class GBlock(nn.Module):
  """Residual up-block: (N, H, W, Cin) -> (N, 2H, 2W, features)."""
  features: int
  num_classes: int = 0
  cond_dim: int = 0
  bn_momentum: float = 0.9
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, labels: Optional[jax.Array] = None, cond: Optional[jax.Array] = None,
               train: bool = False) -> jax.Array:
    norm = lambda name: ConditionalNorm(self.num_classes, self.cond_dim, self.bn_momentum, self.dtype,
                                        name=name)
    conv = lambda k, init, name: nn.Conv(self.features, (k, k), padding="SAME", use_bias=False,
                                         kernel_init=init, dtype=self.dtype, name=name)
    h = nn.relu(norm("bn1")(x, labels, cond, train=train))
    h = conv(3, residual_init, "conv1")(upsample(h))
    h = nn.relu(norm("bn2")(h, labels, cond, train=train))
    h = conv(3, residual_init, "conv2")(h)
    return h + upsample(conv(1, shortcut_init, "shortcut")(x))


class Generator(nn.Module):
  image_size: int = 32
  channels: int = 1
  width: int = 32             # channels at full resolution; x2 per halving towards the 4x4 map
  num_classes: int = 0        # 0 = no labels
  cond_dim: int = 0           # 0 = no continuous cond vector
  bn_momentum: float = 0.9
  dtype: Any = None
  remat: bool = False         # recompute each block's activations in the backward pass (less memory)

  @nn.compact
  def __call__(self, z: jax.Array, labels: Optional[jax.Array] = None, cond: Optional[jax.Array] = None,
               *, train: bool) -> jax.Array:
    """z (N, z_dim) float, labels (N,) int, cond (N, cond_dim) float -> images (N, S, S, C) in [-1, 1]."""
    labels, cond = _check_conditioning("generator", self.num_classes, self.cond_dim, z.shape[0], labels, cond)
    widths = layers.channel_widths(self.width, layers.num_upsamplings(self.image_size))
    x = nn.Dense(4 * 4 * widths[0], use_bias=False, kernel_init=shortcut_init, dtype=self.dtype,
                 name="dense")(z)
    x = x.reshape(z.shape[0], 4, 4, widths[0])
    block = nn.remat(GBlock, static_argnums=(4,)) if self.remat else GBlock   # train is static
    for i, w in enumerate(widths):
      x = block(w, self.num_classes, self.cond_dim, self.bn_momentum, self.dtype,
                name=f"block{i + 1}")(x, labels, cond, train)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, dtype=self.dtype,
                     name="bn_out")(x)
    x = nn.Conv(self.channels, (3, 3), padding="SAME", kernel_init=shortcut_init, dtype=self.dtype,
                name="conv_out")(nn.relu(x))
    return jnp.tanh(x.astype(jnp.float32))


def _maybe_sn(layer: nn.Module, spectral_norm: bool, x: jax.Array, train: bool) -> jax.Array:
  """layer(x), with the layer's weights divided by their largest singular value if `spectral_norm`."""
  if spectral_norm:
    return nn.SpectralNorm(layer, name=f"{layer.name}_sn")(x, update_stats=train)
  return layer(x)


class DBlock(nn.Module):
  """Residual down-block: (N, H, W, Cin) -> (N, H/2, W/2, features) (or (N, H, W, features))."""
  features: int
  optimized: bool = False     # first block: no ReLU before the first conv (the input is the image)
  downsample: bool = True
  spectral_norm: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    conv = lambda k, init, name: nn.Conv(self.features, (k, k), padding="SAME", kernel_init=init,
                                         dtype=self.dtype, name=name)
    sn = lambda layer, y: _maybe_sn(layer, self.spectral_norm, y, train)
    h = x if self.optimized else nn.relu(x)
    h = sn(conv(3, residual_init, "conv1"), h)
    h = sn(conv(3, residual_init, "conv2"), nn.relu(h))
    s = x
    if self.downsample:
      h, s = downsample(h), downsample(s)
    if self.downsample or x.shape[-1] != self.features:
      s = sn(conv(1, shortcut_init, "shortcut"), s)
    return h + s


class Discriminator(nn.Module):
  image_size: int = 32
  channels: int = 1
  width: int = 32             # channels of the first block; x2 per halving
  num_classes: int = 0
  cond_dim: int = 0
  spectral_norm: bool = True
  dtype: Any = None
  remat: bool = False         # recompute each block's activations in the backward pass (less memory)

  @nn.compact
  def __call__(self, x: jax.Array, labels: Optional[jax.Array] = None, cond: Optional[jax.Array] = None,
               *, train: bool) -> jax.Array:
    """images (N, S, S, C) in [-1, 1], labels (N,) int, cond (N, cond_dim) -> logits (N,) float32.

    The pooled features h (N, C) are sown into "intermediates"/"features" (read them with
    mutable=["intermediates"]).
    """
    if x.shape[1:] != (self.image_size, self.image_size, self.channels):
      raise ValueError(f"Discriminator expects images of shape (N, {self.image_size}, {self.image_size}, "
                       f"{self.channels}), got {x.shape}.")
    labels, cond = _check_conditioning("discriminator", self.num_classes, self.cond_dim, x.shape[0],
                                       labels, cond)
    widths = layers.channel_widths(self.width, layers.num_upsamplings(self.image_size))[::-1]
    block = nn.remat(DBlock, static_argnums=(2,)) if self.remat else DBlock
    for i, w in enumerate(widths):
      x = block(w, optimized=(i == 0), spectral_norm=self.spectral_norm, dtype=self.dtype,
                name=f"block{i + 1}")(x, train)
    h = jnp.sum(nn.relu(x).astype(jnp.float32), axis=(1, 2))   # global sum pooling (SNGAN)
    self.sow("intermediates", "features", h)
    sn = lambda layer, y: _maybe_sn(layer, self.spectral_norm, y, train)
    logits = sn(nn.Dense(1, kernel_init=shortcut_init, name="psi"), h)[:, 0]
    if labels is not None:
      embed = nn.Embed(self.num_classes, h.shape[-1], embedding_init=shortcut_init, name="projection")
      logits = logits + jnp.sum(sn(embed, labels) * h, axis=-1)
    if cond is not None:
      dense = nn.Dense(h.shape[-1], use_bias=False, kernel_init=shortcut_init, name="cond_projection")
      logits = logits + jnp.sum(sn(dense, cond) * h, axis=-1)
    return logits
