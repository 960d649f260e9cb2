"""Architectures. Each module exports `Generator` and `Discriminator` with the same signatures:

  Generator(...)(z: (N, z_dim), labels: (N,) int | None, *, train) -> images (N, S, S, C) in [-1, 1]
  Discriminator(...)(images, labels | None, *, train) -> logits (N,)
"""

from __future__ import annotations

import ml_collections

from gan.models import dcgan

ARCHITECTURES = {"dcgan": dcgan}


def build(config: ml_collections.ConfigDict):
  """Returns (generator, discriminator) flax modules for `config.model` and `config.data`."""
  name = config.model.name
  if name not in ARCHITECTURES:
    raise ValueError(f"Unknown model.name {name!r}; valid names: {sorted(ARCHITECTURES)}.")
  arch = ARCHITECTURES[name]
  num_classes = config.data.num_classes if config.model.conditional else 0
  common = dict(image_size=config.data.image_size, channels=config.data.channels, num_classes=num_classes)
  generator = arch.Generator(width=config.model.g_width, conditioning=config.model.g_conditioning,
                             embed_dim=config.model.embed_dim, bn_momentum=config.model.bn_momentum, **common)
  discriminator = arch.Discriminator(width=config.model.d_width, norm=config.model.d_norm,
                                     bn_momentum=config.model.bn_momentum, **common)
  return generator, discriminator
