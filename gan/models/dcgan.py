"""DCGAN (Radford et al. 2016) for 32x32 / 64x64 images, optionally class-conditional.

Generator: z (N, z_dim) -> dense 4x4 map -> [transposed conv x2, BN, ReLU] ... -> tanh image
(N, S, S, C) in [-1, 1]. Discriminator: image -> [strided conv, (BN), LeakyReLU(0.2)] ... -> logit (N,).

Conditioning (labels: (N,) int in [0, num_classes); cond: (N, cond_dim) float, e.g. a caption's text
embedding or an attribute / style-preference vector):
- generator "embedding": a learned class embedding (and a linear projection of cond) concatenated to z;
  generator "cbn": conditional batch norm (class- and cond-dependent scale and offset);
- discriminator: projection (Miyato & Koyama 2018), logit += <embed(y), h> + <W cond, h>.

Batch-norm statistics are those of the global batch: the train step is one jit over the
data-sharded batch, so XLA computes exact means across devices (1 device == N devices).
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan.models import layers


class Generator(nn.Module):
  image_size: int = 32
  channels: int = 1
  width: int = 64             # channels of the last hidden map; doubles towards the 4x4 map
  num_classes: int = 0        # 0 = no class labels
  cond_dim: int = 0           # 0 = no continuous condition vector
  conditioning: str = "embedding"   # "embedding" | "cbn"
  embed_dim: int = 50
  bn_momentum: float = 0.9
  dtype: Any = None

  def _norm(self, x, labels, cond, train):
    if self.conditioning == "cbn" and (self.num_classes or self.cond_dim):
      return layers.ConditionalBatchNorm(self.num_classes, use_running_average=not train,
                                         momentum=self.bn_momentum, dtype=self.dtype)(x, labels, cond)
    return nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, dtype=self.dtype)(x)

  @nn.compact
  def __call__(self, z: jax.Array, labels: Optional[jax.Array] = None, cond: Optional[jax.Array] = None, *,
               train: bool) -> jax.Array:
    if self.conditioning not in ("embedding", "cbn"):
      raise ValueError(f"Unknown generator conditioning {self.conditioning!r}; valid: 'embedding', 'cbn'.")
    layers.check_conditions(self, labels, cond)
    if self.conditioning == "embedding":
      if self.num_classes:
        z = jnp.concatenate([z, nn.Embed(self.num_classes, self.embed_dim, name="class_embed")(labels)], -1)
      if self.cond_dim:
        z = jnp.concatenate([z, nn.Dense(self.embed_dim, name="cond_embed")(cond)], -1)
    widths = layers.channel_widths(self.width, layers.num_upsamplings(self.image_size))
    x = nn.Dense(4 * 4 * widths[0], kernel_init=layers.dcgan_init, dtype=self.dtype)(z)
    x = x.reshape(z.shape[0], 4, 4, widths[0])
    x = nn.relu(self._norm(x, labels, cond, train))
    for w in widths[1:]:
      x = layers.ConvTranspose(w, use_bias=False, dtype=self.dtype)(x)
      x = nn.relu(self._norm(x, labels, cond, train))
    x = layers.ConvTranspose(self.channels, dtype=self.dtype)(x)
    return jnp.tanh(x.astype(jnp.float32))


class Discriminator(nn.Module):
  image_size: int = 32
  channels: int = 1
  width: int = 64             # channels of the first conv; doubles per downsampling
  num_classes: int = 0
  cond_dim: int = 0
  norm: str = "batch"         # "batch" | "none"
  spectral_norm: bool = False  # spectral normalisation of every conv and dense (Miyato et al. 2018)
  bn_momentum: float = 0.9
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, labels: Optional[jax.Array] = None, cond: Optional[jax.Array] = None, *,
               train: bool) -> jax.Array:
    if self.norm not in ("batch", "none"):
      raise ValueError(f"Unknown discriminator norm {self.norm!r}; valid: 'batch', 'none'.")
    if x.shape[1:] != (self.image_size, self.image_size, self.channels):
      raise ValueError(f"Discriminator expects images of shape (N, {self.image_size}, {self.image_size}, "
                       f"{self.channels}), got {x.shape}.")
    widths = layers.channel_widths(self.width, layers.num_upsamplings(self.image_size))[::-1]
    sn = lambda layer, h: layers.maybe_spectral_norm(layer, h, self.spectral_norm, train)
    for i, w in enumerate(widths):
      # = nn.Conv(w, (4, 4), strides=2, padding=1) with a backward pass that keeps gradient penalties fast.
      x = sn(layers.DownsamplingConv(w, use_bias=(i == 0 or self.norm == "none"), dtype=self.dtype,
                                     name=f"Conv_{i}"), x)
      if i > 0 and self.norm == "batch":   # DCGAN: no BN on the first layer
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, dtype=self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
    layers.check_conditions(self, labels, cond)
    h = x.reshape(x.shape[0], -1).astype(jnp.float32)
    logits = sn(nn.Dense(1, kernel_init=layers.dcgan_init), h)[:, 0]
    return logits + layers.projection(h, labels, cond, self.num_classes, self.cond_dim)
