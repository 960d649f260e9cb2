"""Every config file is valid: it loads, passes check_config and builds its models."""

import glob
import importlib
import os

import jax
import jax.numpy as jnp
import pytest

from gan import models
from gan import train

CONFIGS = sorted(os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(os.path.join(os.path.dirname(__file__), "..", "configs", "*.py"))
                 if not p.endswith("__init__.py"))


# Not GAN configs: the classifier's, and the enhancement models' (checked in tests/test_enhance.py).
@pytest.mark.parametrize("name", [c for c in CONFIGS if not c.startswith("classifier_")
                                  and c != "enhance_products"])
def test_config_is_valid_and_builds(name):
  config = importlib.import_module(f"configs.{name}").get_config()
  train.check_config(config)
  generator, discriminator = models.build(config)
  assert generator.image_size == discriminator.image_size == config.data.image_size
  assert generator.num_classes == (config.data.num_classes if config.model.conditional else 0)
  assert generator.cond_dim == discriminator.cond_dim == config.model.cond_dim
  # Shapes only (no FLOPs): the models accept the config's data.
  z = jnp.zeros((2, config.model.z_dim))
  labels = jnp.zeros((2,), jnp.int32)
  cond = jnp.zeros((2, config.model.cond_dim)) if config.model.cond_dim else None
  shapes = jax.eval_shape(lambda: generator.init_with_output(jax.random.PRNGKey(0), z, labels, cond, train=False)[0])
  assert shapes.shape == (2, config.data.image_size, config.data.image_size, config.data.channels)


def test_model_options_unknown_to_the_architecture_are_rejected():
  config = importlib.import_module("configs.dcgan_fashion_mnist").get_config()
  config.model.generator = {"w_dim": 64}
  with pytest.raises(ValueError, match="config.model.generator has options \\['w_dim'\\]"):
    models.build(config)
