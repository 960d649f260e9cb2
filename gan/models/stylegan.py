"""A small StyleGAN2 (Karras et al. 2020) for 32x32 / 64x64 images that trains on CPU.

Generator = mapping network z -> w (N, w_dim), then a synthesis network that consumes `num_ws`
w vectors (the W+ space, one per modulated layer):

  learned 4x4 constant -> [x2 upsample, modulated 3x3 conv, modulated 3x3 conv] per resolution,
  each conv: style modulation + weight demodulation, per-pixel noise with a learned per-channel
  strength, bias, leaky ReLU * sqrt(2);
  skip architecture: a toRGB (1x1 modulated conv, no demodulation) at every resolution, the
  partial images upsampled and summed; final tanh.

Differences from the official StyleGAN2 (all deliberate, for size and CPU speed):
- The image goes through a final tanh (the repo's contract is images in [-1, 1]); the official
  generator outputs an unbounded image and only clamps it for display.
- Modulated convs are computed in the "non-fused" form: scale the input channels by the style,
  convolve with the shared weight, scale the output channels by the demodulation coefficient.
  This equals the per-sample weight w'_{ijk} = s_i w_{ijk} / sqrt(sum_{ik} (s_i w_{ijk})^2 + eps)
  exactly and avoids a grouped convolution, which is slow on XLA:CPU.
- Resampling is a plain x2 bilinear (or nearest) upsample before the conv and a 2x2 average pool in
  the discriminator, instead of the [1, 3, 3, 1] FIR filters with transposed / strided convs.
- Noise strength is per channel (officially one scalar per layer); it is initialised to zero.
- Channels: `width` at full resolution, doubling towards 4x4, capped at 4 * width.
- No path-length or R1 regularisation here: those are losses, not architecture.

Equalized learning rate (Karras et al. 2018) is used everywhere: parameters are initialised
N(0, 1) and scaled at run time by 1 / sqrt(fan_in) (and by the mapping network's learning-rate
multiplier, 0.01 as in StyleGAN2).

W / W+ for editing: `Generator.mapping(z, labels, cond, train=False, psi=...)` returns w (N, w_dim);
`Generator.synthesis(ws, train=False)` renders ws (N, num_ws, w_dim); `Generator(...).num_ws` is a
plain Python int. The running mean of w (truncation centre) is
`variables["batch_stats"]["mapping_network"]["w_avg"]` (see `w_avg`). Call the methods with
`generator.apply(variables, z, method=generator.mapping, train=False)` etc.

Discriminator: the StyleGAN2 residual discriminator: fromRGB 1x1, then per resolution a residual
block (3x3 conv -> 2x2 average pool -> 3x3 conv, skip = average pool -> 1x1 conv, the sum scaled
by 1/sqrt(2)), then at 4x4 a minibatch standard-deviation feature, 3x3 conv, dense layer h and the
logit psi(h) + <embed(y), h> / sqrt(C) (+ <Dense(cond), h> / sqrt(C)): projection (Miyato & Koyama
2018), the 1/sqrt(C) being the equalized-learning-rate scale of the embedding. No batch norm.

Randomness (noise inputs, style mixing) comes from the "noise" rng stream and only when it is
given; without it the generator is deterministic (zero noise, no mixing). Explicit noise maps, e.g.
to optimize them during inversion: `synthesis` with mutable=["noise_inputs"] and a "noise" rng
returns them as {"noise_inputs": {"synthesis_network": {layer: {"noise": (N, H, W, 1)}}}}; passing
that collection in the variables uses those maps instead of drawing (gan/editing/inversion.py).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from gan.models import layers

SQRT2 = math.sqrt(2.0)


def lrelu(x: jax.Array) -> jax.Array:
  """Leaky ReLU (slope 0.2) times sqrt(2), so unit-variance inputs keep roughly unit variance."""
  return nn.leaky_relu(x, 0.2) * SQRT2


def pixel_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Scales each vector of x (..., D) to unit mean square over the last axis."""
  return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


# --- Resampling ----------------------------------------------------------------------------------


def _bilinear_up_axis(x: jax.Array, axis: int) -> jax.Array:
  # Half-pixel-centre bilinear x2: output 2i = 3/4 x[i] + 1/4 x[i-1], 2i+1 = 3/4 x[i] + 1/4 x[i+1],
  # edges clamped (what jax.image.resize does), written with slices so the gradient is cheap.
  n = x.shape[axis]
  prev = jnp.concatenate([lax.slice_in_dim(x, 0, 1, axis=axis), lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis)
  nxt = jnp.concatenate([lax.slice_in_dim(x, 1, n, axis=axis), lax.slice_in_dim(x, n - 1, n, axis=axis)], axis)
  y = jnp.stack([0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt], axis=axis + 1)
  return y.reshape(x.shape[:axis] + (2 * n,) + x.shape[axis + 1:])


def upsample_bilinear(x: jax.Array) -> jax.Array:
  """(N, H, W, C) -> (N, 2H, 2W, C), bilinear with half-pixel centres (= jax.image.resize)."""
  return _bilinear_up_axis(_bilinear_up_axis(x, 1), 2)


def upsample_nearest(x: jax.Array) -> jax.Array:
  """(N, H, W, C) -> (N, 2H, 2W, C), each pixel repeated 2x2."""
  n, h, w, c = x.shape
  return jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c)).reshape(n, 2 * h, 2 * w, c)


UPSAMPLERS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "bilinear": upsample_bilinear, "nearest": upsample_nearest}


def get_upsampler(name: str) -> Callable[[jax.Array], jax.Array]:
  if name not in UPSAMPLERS:
    raise ValueError(f"Unknown upsample {name!r}; valid names: {sorted(UPSAMPLERS)}.")
  return UPSAMPLERS[name]


def downsample_avg(x: jax.Array) -> jax.Array:
  """(N, H, W, C) -> (N, H/2, W/2, C): mean over 2x2 blocks."""
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


# --- Equalized-learning-rate layers --------------------------------------------------------------


class EqualDense(nn.Module):
  """Dense layer with equalized learning rate: y = x @ (W * lr_mul / sqrt(fan_in)) + b * lr_mul.

  W is stored N(0, 1 / lr_mul^2) and the bias as bias_init / lr_mul, so the effective initial
  weight has std 1/sqrt(fan_in) and the effective initial bias is `bias_init`.
  """
  features: int
  use_bias: bool = True
  bias_init: float = 0.0
  lr_multiplier: float = 1.0
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    kernel = self.param("kernel", nn.initializers.normal(1.0 / self.lr_multiplier), (fan_in, self.features))
    dtype = self.dtype or x.dtype
    y = x.astype(dtype) @ (kernel * (self.lr_multiplier / math.sqrt(fan_in))).astype(dtype)
    if self.use_bias:
      bias = self.param("bias", nn.initializers.constant(self.bias_init / self.lr_multiplier), (self.features,))
      y = y + (bias * self.lr_multiplier).astype(dtype)
    return y


class EqualConv(nn.Module):
  """k x k convolution (stride 1, "SAME" padding) with equalized learning rate. NHWC -> NHWC."""
  features: int
  kernel_size: int = 3
  use_bias: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, fan_in = self.kernel_size, self.kernel_size ** 2 * x.shape[-1]
    kernel = self.param("kernel", nn.initializers.normal(1.0), (k, k, x.shape[-1], self.features))
    dtype = self.dtype or x.dtype
    y = lax.conv_general_dilated(x.astype(dtype), (kernel / math.sqrt(fan_in)).astype(dtype), (1, 1), "SAME",
                                 dimension_numbers=layers.DIMENSION_NUMBERS)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(dtype)
    return y


# --- Modulated convolution -----------------------------------------------------------------------


def modulated_conv(x: jax.Array, weight: jax.Array, styles: jax.Array, *, demodulate: bool = True,
                   eps: float = 1e-8) -> jax.Array:
  """StyleGAN2 modulated (and optionally demodulated) convolution, "SAME" padding, stride 1.

  Args:
    x: (N, H, W, I) input, in the computation dtype.
    weight: (k, k, I, O) shared kernel (already scaled by any equalized-lr gain).
    styles: (N, I) per-sample input-channel scales s.
    demodulate: divide each sample's output channel o by sqrt(sum_{k,k,i} (s_i w_{..io})^2 + eps).

  Returns:
    (N, H, W, O): identical to convolving sample n with its own kernel w * s_n (demodulated),
    computed by scaling activations instead of weights.
  """
  dtype = x.dtype
  y = lax.conv_general_dilated(x * styles[:, None, None, :].astype(dtype), weight.astype(dtype), (1, 1),
                               "SAME", dimension_numbers=layers.DIMENSION_NUMBERS)
  if demodulate:
    # sum_{k,k,i} (s_i w_kkio)^2 = sum_i s_i^2 (sum_kk w_kkio^2): an (N, I) x (I, O) product, in f32.
    w2 = jnp.sum(jnp.square(weight.astype(jnp.float32)), axis=(0, 1))
    d = lax.rsqrt(jnp.square(styles.astype(jnp.float32)) @ w2 + eps)
    y = y * d[:, None, None, :].astype(dtype)
  return y


class ModulatedConv(nn.Module):
  """Affine(w) -> styles (bias initialised to 1) -> `modulated_conv` with an equalized-lr kernel.

  x: (N, H, W, I); w: (N, w_dim) -> (N, H, W, features). No bias, no activation.
  """
  features: int
  kernel_size: int = 3
  demodulate: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    k, in_features = self.kernel_size, x.shape[-1]
    styles = EqualDense(in_features, bias_init=1.0, name="affine")(w.astype(jnp.float32))
    kernel = self.param("kernel", nn.initializers.normal(1.0), (k, k, in_features, self.features))
    kernel = kernel / math.sqrt(k * k * in_features)
    return modulated_conv(x.astype(self.dtype or x.dtype), kernel, styles, demodulate=self.demodulate)


class SynthesisLayer(nn.Module):
  """(optional x2 upsample) -> modulated 3x3 conv -> + noise * strength -> + bias -> lrelu*sqrt(2)."""
  features: int
  up: bool = False
  upsample: str = "bilinear"
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    if self.up:
      x = get_upsampler(self.upsample)(x)
    x = ModulatedConv(self.features, 3, demodulate=True, dtype=self.dtype, name="conv")(x, w)
    strength = self.param("noise_strength", nn.initializers.zeros, (self.features,))
    noise = None
    if self.has_variable("noise_inputs", "noise") or (
        self.is_mutable_collection("noise_inputs") and not self.is_initializing()):
      # Explicit per-layer noise maps (inversion optimizes them): drawn from the "noise" rng into a
      # mutable "noise_inputs" collection, or passed in that collection. Never created by init:
      # they have the batch's shape.
      noise = self.variable("noise_inputs", "noise", lambda: jax.random.normal(
          self.make_rng("noise"), x.shape[:3] + (1,), jnp.float32)).value
    elif self.has_rng("noise"):
      noise = jax.random.normal(self.make_rng("noise"), x.shape[:3] + (1,), jnp.float32)
    if noise is not None:
      x = x + noise.astype(x.dtype) * strength.astype(x.dtype)
    x = x + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype)
    return lrelu(x)


class ToRGB(nn.Module):
  """1x1 modulated conv without demodulation, plus bias: (N, H, W, I) -> (N, H, W, channels) float32."""
  channels: int
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
    y = ModulatedConv(self.channels, 1, demodulate=False, dtype=self.dtype, name="conv")(x, w)
    return y.astype(jnp.float32) + self.param("bias", nn.initializers.zeros, (self.channels,))


# --- Generator -----------------------------------------------------------------------------------


def synthesis_widths(image_size: int, width: int) -> tuple[int, ...]:
  """Channels per resolution from 4x4 to image_size: `width` at full size, doubling, capped at 4*width."""
  return tuple(layers.channel_widths(width, layers.num_upsamplings(image_size) + 1, max_width=4 * width))


def num_ws_for(image_size: int) -> int:
  """How many w vectors the synthesis network consumes: 1 conv + toRGB at 4x4, then 2 convs per x2
  (each toRGB shares its w with the next resolution's first conv, as in StyleGAN2)."""
  return 2 * layers.num_upsamplings(image_size) + 2


class MappingNetwork(nn.Module):
  """z (N, z_dim) [+ labels (N,), cond (N, cond_dim)] -> w (N, w_dim); keeps the running mean w_avg."""
  w_dim: int = 128
  num_layers: int = 4
  num_classes: int = 0
  cond_dim: int = 0
  lr_multiplier: float = 0.01
  truncation_psi: float = 1.0
  w_avg_beta: float = 0.995

  @nn.compact
  def __call__(self, z: jax.Array, labels: Optional[jax.Array] = None, cond: Optional[jax.Array] = None, *,
               train: bool, psi: Union[float, jax.Array, None] = None, update_w_avg: bool = True) -> jax.Array:
    # As StyleGAN2-ADA: normalize z and each conditioning embedding separately, then concatenate.
    parts = [pixel_norm(z.astype(jnp.float32))]
    if self.num_classes:
      if labels is None:
        raise ValueError("This generator is class-conditional: pass labels of shape (N,).")
      table = self.param("class_embed", nn.initializers.normal(1.0), (self.num_classes, self.w_dim))
      parts.append(pixel_norm(table[labels]))
    if self.cond_dim:
      if cond is None:
        raise ValueError(f"This generator is conditioned on a vector: pass cond of shape (N, {self.cond_dim}).")
      parts.append(pixel_norm(EqualDense(self.w_dim, name="cond_embed")(cond.astype(jnp.float32))))
    x = jnp.concatenate(parts, axis=-1)
    for i in range(self.num_layers):
      x = lrelu(EqualDense(self.w_dim, lr_multiplier=self.lr_multiplier, name=f"fc{i}")(x))

    w_avg = self.variable("batch_stats", "w_avg", jnp.zeros, (self.w_dim,), jnp.float32)
    if train and update_w_avg and not self.is_initializing():
      batch_mean = jnp.mean(lax.stop_gradient(x), axis=0)
      w_avg.value = batch_mean + self.w_avg_beta * (w_avg.value - batch_mean)   # lerp(mean, w_avg, beta)
    if psi is None:
      psi = 1.0 if train else self.truncation_psi
    if isinstance(psi, (int, float)) and psi == 1:
      return x
    return w_avg.value + psi * (x - w_avg.value)


class SynthesisNetwork(nn.Module):
  """ws (N, num_ws, w_dim) -> images (N, image_size, image_size, channels) float32 in [-1, 1]."""
  image_size: int = 32
  channels: int = 1
  width: int = 32
  upsample: str = "bilinear"
  dtype: Any = None
  remat: bool = False              # recompute each layer's activations in the backward pass

  @property
  def num_ws(self) -> int:
    return num_ws_for(self.image_size)

  @nn.compact
  def __call__(self, ws: jax.Array, *, train: bool) -> jax.Array:
    del train  # noise is governed by the presence of the "noise" rng, not by train
    if ws.ndim != 3 or ws.shape[1] != self.num_ws:
      raise ValueError(f"synthesis expects ws of shape (N, {self.num_ws}, w_dim), got {ws.shape}.")
    up = get_upsampler(self.upsample)
    widths = synthesis_widths(self.image_size, self.width)
    dtype = self.dtype or jnp.float32
    const = self.param("const", nn.initializers.normal(1.0), (4, 4, widths[0]))
    x = jnp.broadcast_to(const.astype(dtype), (ws.shape[0],) + const.shape)
    layer = nn.remat(SynthesisLayer) if self.remat else SynthesisLayer
    x = layer(widths[0], dtype=self.dtype, name="b4_conv1")(x, ws[:, 0])
    image = ToRGB(self.channels, dtype=self.dtype, name="b4_torgb")(x, ws[:, 1])
    for i, c in enumerate(widths[1:]):
      res, j = 8 * 2 ** i, 1 + 2 * i
      x = layer(c, up=True, upsample=self.upsample, dtype=self.dtype, name=f"b{res}_conv0")(x, ws[:, j])
      x = layer(c, dtype=self.dtype, name=f"b{res}_conv1")(x, ws[:, j + 1])
      image = up(image) + ToRGB(self.channels, dtype=self.dtype, name=f"b{res}_torgb")(x, ws[:, j + 2])
    # The contract wants images in [-1, 1]; official StyleGAN2 has no tanh here.
    return jnp.tanh(image)


class Generator(nn.Module):
  """StyleGAN2 generator. __call__(z (N, z_dim), labels, cond, *, train) -> (N, S, S, C) float32 in [-1, 1].

  Works for any z_dim. Parameters: {"mapping_network": ..., "synthesis_network": ...};
  batch_stats: {"mapping_network": {"w_avg": (w_dim,)}}.
  """
  image_size: int = 32
  channels: int = 1
  width: int = 32                  # channels at full resolution; doubles towards 4x4, capped at 4*width
  num_classes: int = 0
  cond_dim: int = 0
  w_dim: int = 128
  mapping_layers: int = 4
  mapping_lr_multiplier: float = 0.01
  style_mixing_prob: float = 0.9
  truncation_psi: float = 1.0      # used when train=False and mapping gets no psi
  w_avg_beta: float = 0.995
  upsample: str = "bilinear"       # "bilinear" | "nearest"
  dtype: Any = None
  remat: bool = False              # rematerialize synthesis layers (less activation memory)

  def setup(self):
    get_upsampler(self.upsample)   # fail early on an unknown name
    self.mapping_network = MappingNetwork(
        w_dim=self.w_dim, num_layers=self.mapping_layers, num_classes=self.num_classes, cond_dim=self.cond_dim,
        lr_multiplier=self.mapping_lr_multiplier, truncation_psi=self.truncation_psi,
        w_avg_beta=self.w_avg_beta)
    self.synthesis_network = SynthesisNetwork(image_size=self.image_size, channels=self.channels,
                                              width=self.width, upsample=self.upsample, dtype=self.dtype,
                                              remat=self.remat)

  @property
  def num_ws(self) -> int:
    """How many w vectors `synthesis` consumes (the size of the W+ space is num_ws * w_dim)."""
    return num_ws_for(self.image_size)

  def mapping(self, z: jax.Array, labels: Optional[jax.Array] = None, cond: Optional[jax.Array] = None, *,
              train: bool, psi: Union[float, jax.Array, None] = None) -> jax.Array:
    """z (N, z_dim) -> w (N, w_dim) float32.

    train=True updates w_avg (needs mutable=["batch_stats"]). psi: truncation w_avg + psi (w - w_avg);
    default 1.0 when training, else `truncation_psi`.
    """
    return self.mapping_network(z, labels, cond, train=train, psi=psi)

  def synthesis(self, ws: jax.Array, *, train: bool) -> jax.Array:
    """ws (N, num_ws, w_dim) -> images (N, S, S, C) float32 in [-1, 1]."""
    return self.synthesis_network(ws, train=train)

  def __call__(self, z: jax.Array, labels: Optional[jax.Array] = None, cond: Optional[jax.Array] = None, *,
               train: bool) -> jax.Array:
    w = self.mapping_network(z, labels, cond, train=train)
    ws = jnp.broadcast_to(w[:, None, :], (w.shape[0], self.num_ws, w.shape[1]))
    if train and self.style_mixing_prob > 0 and self.has_rng("noise"):
      # Style mixing regularisation: one crossover layer per batch, as in StyleGAN2; layers at and
      # after `cutoff` take w(z'). cutoff = num_ws (no mixing) with probability 1 - p.
      key_z, key_cut, key_mix = jax.random.split(self.make_rng("noise"), 3)
      z2 = jax.random.normal(key_z, z.shape, jnp.float32)
      w2 = self.mapping_network(z2, labels, cond, train=train, update_w_avg=False)
      cutoff = jax.random.randint(key_cut, (), 1, self.num_ws)
      cutoff = jnp.where(jax.random.uniform(key_mix, ()) < self.style_mixing_prob, cutoff, self.num_ws)
      ws = jnp.where((jnp.arange(self.num_ws) < cutoff)[None, :, None], ws, w2[:, None, :])
    return self.synthesis_network(ws, train=train)


def w_avg(variables: dict) -> jax.Array:
  """The generator's running mean of w, (w_dim,), from its variables (the truncation centre)."""
  return variables["batch_stats"]["mapping_network"]["w_avg"]


# --- Discriminator -------------------------------------------------------------------------------


def minibatch_stddev(x: jax.Array, group_size: int = 4, eps: float = 1e-8) -> jax.Array:
  """Appends the minibatch standard-deviation feature (Karras et al. 2018, StyleGAN2 grouping).

  The batch is split into N / G groups of G samples, G the largest divisor of N that is
  <= min(group_size, N) (so any N works); sample i belongs to group i mod (N / G) (the official
  x.reshape(G, -1, ...) layout). Per group,
  the std over its members of every feature (population std, + eps inside the sqrt) is averaged
  over H, W, C; that scalar becomes a constant extra channel for the group's samples.

  x: (N, H, W, C) -> (N, H, W, C + 1).
  """
  n, h, w, c = x.shape
  g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
  y = x.astype(jnp.float32).reshape(g, n // g, h, w, c)
  y = jnp.sqrt(jnp.var(y, axis=0) + eps).mean(axis=(1, 2, 3))      # (N / G,)
  y = jnp.tile(y, g)                                                 # (N,): sample i -> y[i mod N/G]
  return jnp.concatenate([x, jnp.broadcast_to(y[:, None, None, None].astype(x.dtype), (n, h, w, 1))], axis=-1)


class Discriminator(nn.Module):
  """StyleGAN2 residual discriminator. __call__(images (N, S, S, C), labels, cond, *, train) -> logits (N,)."""
  image_size: int = 32
  channels: int = 1
  width: int = 32                  # channels at full resolution; doubles towards 4x4, capped at 4*width
  num_classes: int = 0
  cond_dim: int = 0
  mbstd_group_size: int = 4
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, labels: Optional[jax.Array] = None, cond: Optional[jax.Array] = None, *,
               train: bool) -> jax.Array:
    del train  # no batch statistics
    if x.shape[1:] != (self.image_size, self.image_size, self.channels):
      raise ValueError(f"Discriminator expects images of shape (N, {self.image_size}, {self.image_size}, "
                       f"{self.channels}), got {x.shape}.")
    if self.num_classes and labels is None:
      raise ValueError("This discriminator is class-conditional: pass labels of shape (N,).")
    if self.cond_dim and cond is None:
      raise ValueError(f"This discriminator is conditioned on a vector: pass cond of shape (N, {self.cond_dim}).")
    dtype = self.dtype or jnp.float32
    widths = synthesis_widths(self.image_size, self.width)[::-1]       # full resolution first
    x = lrelu(EqualConv(widths[0], 1, dtype=dtype, name="fromrgb")(x.astype(dtype)))
    for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
      res = self.image_size // 2 ** i
      skip = EqualConv(c_out, 1, use_bias=False, dtype=dtype, name=f"b{res}_skip")(downsample_avg(x))
      h = lrelu(EqualConv(c_in, 3, dtype=dtype, name=f"b{res}_conv0")(x))
      h = lrelu(EqualConv(c_out, 3, dtype=dtype, name=f"b{res}_conv1")(downsample_avg(h)))
      x = (skip + h) * (1 / SQRT2)
    x = minibatch_stddev(x, self.mbstd_group_size)
    x = lrelu(EqualConv(widths[-1], 3, dtype=dtype, name="b4_conv")(x))
    h = lrelu(EqualDense(widths[-1], dtype=dtype, name="b4_fc")(x.reshape(x.shape[0], -1)))
    h = h.astype(jnp.float32)
    logits = EqualDense(1, name="b4_out")(h)[:, 0]
    scale = 1 / math.sqrt(h.shape[-1])
    if self.num_classes:
      table = self.param("class_projection", nn.initializers.normal(1.0), (self.num_classes, h.shape[-1]))
      logits = logits + jnp.sum(table[labels] * h, axis=-1) * scale
    if self.cond_dim:
      projected = EqualDense(h.shape[-1], use_bias=False, name="cond_projection")(cond.astype(jnp.float32))
      logits = logits + jnp.sum(projected * h, axis=-1) * scale
    return logits
