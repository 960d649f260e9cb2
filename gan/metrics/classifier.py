"""The domain classifier: a small CNN trained here on the dataset's classes.

Its penultimate-layer features (`features`, 128-d) are the default feature space for FID, KID and
precision/recall on small product datasets, and its class probabilities give the Inception Score,
product-recognition accuracy and class histograms. (InceptionV3 features of upsampled 28x28
grayscale images say little about Fashion-MNIST; a network trained on the domain does.)

Input: images (N, S, S, C) float32 in [-1, 1], exactly what the GAN generates and the input
pipeline produces.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

FEATURE_DIM = 128


class Classifier(nn.Module):
  """Three conv stages (two 3x3 convs + BN + ReLU each, 2x2 max-pool), global average pool,
  a 128-d feature layer and the class logits."""
  num_classes: int = 10
  width: int = 32
  dropout: float = 0.3
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> tuple[jax.Array, jax.Array]:
    """Returns (logits (N, num_classes), features (N, 128))."""
    for stage in range(3):
      for _ in range(2):
        x = nn.Conv(self.width * 2 ** stage, (3, 3), use_bias=False, dtype=self.dtype)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
      self.sow("intermediates", f"stage{stage}", x)   # taps of the perceptual distance
    x = jnp.mean(x, axis=(1, 2))
    features = nn.relu(nn.Dense(FEATURE_DIM, dtype=self.dtype, name="features")(x)).astype(jnp.float32)
    h = nn.Dropout(self.dropout, deterministic=not train)(features)
    logits = nn.Dense(self.num_classes, name="logits")(h).astype(jnp.float32)
    return logits, features


def perceptual_distance(model: Classifier, variables: Any, a: jax.Array, b: jax.Array) -> jax.Array:
  """LPIPS-style distance in the domain classifier's feature space, per image: (N,) float32 >= 0.

  a, b: (N, S, S, C) in [-1, 1]. For each conv stage's output, channel vectors are scaled to unit
  length at every position (as LPIPS does, without its learned channel weights), the squared
  difference is summed over channels and averaged over positions; the stages are averaged.
  0 for identical images; larger for images the classifier "sees" as more different.
  """
  def taps(x):
    _, state = model.apply(variables, x, train=False, mutable=["intermediates"])
    return [v[0] for _, v in sorted(state["intermediates"].items())]

  def unit(f):
    return f / (jnp.linalg.norm(f, axis=-1, keepdims=True) + 1e-10)

  per_stage = [jnp.mean(jnp.sum(jnp.square(unit(fa) - unit(fb)), -1), axis=(1, 2))
               for fa, fb in zip(taps(a), taps(b))]
  return jnp.mean(jnp.stack(per_stage), axis=0)
