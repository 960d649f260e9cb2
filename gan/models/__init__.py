"""Architectures. Each module exports `Generator` and `Discriminator` with the same signatures:

  Generator(...)(z: (N, z_dim), labels: (N,) int | None, cond: (N, cond_dim) | None, *, train)
      -> images (N, S, S, C) in [-1, 1]
  Discriminator(...)(images, labels | None, cond | None, *, train) -> logits (N,)
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from gan.models import dcgan
from gan.models import resnet
from gan.models import stylegan

ARCHITECTURES = {"dcgan": dcgan, "resnet": resnet, "stylegan": stylegan}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _fields(module_class: type[nn.Module]) -> set[str]:
  return {f.name for f in dataclasses.fields(module_class)} - {"parent", "name"}


def _kwargs(module_class: type[nn.Module], shared: dict, specific: ml_collections.ConfigDict | dict,
            key: str) -> dict:
  """`shared` options the class has, then the architecture-specific `config.model.<key>` ones."""
  fields = _fields(module_class)
  kwargs = {k: v for k, v in shared.items() if k in fields}
  unknown = sorted(set(specific) - fields)
  if unknown:
    raise ValueError(f"config.model.{key} has options {unknown} that {module_class.__module__}."
                     f"{module_class.__name__} does not take; valid: {sorted(fields)}.")
  return {**kwargs, **dict(specific)}


G_CONDITIONINGS = ("embedding", "cbn")
D_NORMS = ("batch", "none")


def config_problems(config: ml_collections.ConfigDict) -> list[str]:
  """What is wrong with the config.model keys every architecture reads (one message per key)."""
  m, problems = config.model, []
  if m.name not in ARCHITECTURES:
    problems.append(f"Unknown model.name {m.name!r}; valid names: {sorted(ARCHITECTURES)}.")
  if m.get("dtype", "float32") not in DTYPES:
    problems.append(f"Unknown model.dtype {m.dtype!r}; valid: {sorted(DTYPES)}.")
  if m.g_conditioning not in G_CONDITIONINGS:
    problems.append(f"Unknown model.g_conditioning {m.g_conditioning!r}; valid: {list(G_CONDITIONINGS)}.")
  if m.d_norm not in D_NORMS:
    problems.append(f"Unknown model.d_norm {m.d_norm!r}; valid: {list(D_NORMS)}.")
  return problems


def build(config: ml_collections.ConfigDict) -> tuple[nn.Module, nn.Module]:
  """Returns (generator, discriminator) flax modules for `config.model` and `config.data`.

  Options every architecture has (sizes, conditioning, dtype) come from the top of config.model;
  options only some have (e.g. DCGAN's d_norm) are passed to those that have them; anything else goes
  in config.model.generator / config.model.discriminator (dicts of constructor arguments).
  """
  m = config.model
  if problems := config_problems(config):
    raise ValueError(" ".join(problems))
  dtype_name = m.get("dtype", "float32")
  arch = ARCHITECTURES[m.name]
  common = dict(image_size=config.data.image_size, channels=config.data.channels,
                num_classes=config.data.num_classes if m.conditional else 0, cond_dim=m.get("cond_dim", 0),
                dtype=None if dtype_name == "float32" else DTYPES[dtype_name], remat=m.get("remat", False))
  g_shared = dict(common, width=m.g_width, conditioning=m.g_conditioning, embed_dim=m.embed_dim,
                  bn_momentum=m.bn_momentum)
  d_shared = dict(common, width=m.d_width, norm=m.d_norm, bn_momentum=m.bn_momentum,
                  spectral_norm=m.get("d_spectral_norm", False))
  generator = arch.Generator(**_kwargs(arch.Generator, g_shared, m.get("generator", {}), "generator"))
  discriminator = arch.Discriminator(**_kwargs(arch.Discriminator, d_shared, m.get("discriminator", {}),
                                               "discriminator"))
  return generator, discriminator
