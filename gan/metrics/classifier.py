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
    x = jnp.mean(x, axis=(1, 2))
    features = nn.relu(nn.Dense(FEATURE_DIM, dtype=self.dtype, name="features")(x)).astype(jnp.float32)
    h = nn.Dropout(self.dropout, deterministic=not train)(features)
    logits = nn.Dense(self.num_classes, name="logits")(h).astype(jnp.float32)
    return logits, features
