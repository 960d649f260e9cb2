"""Every config file is valid: it loads, passes check_config and builds its models."""

import glob
import importlib
import os

import jax
import jax.numpy as jnp
import pytest

from gan import models
from gan import tasks
from gan import train

CONFIGS = sorted(os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(os.path.join(os.path.dirname(__file__), "..", "configs", "*.py"))
                 if not p.endswith("__init__.py"))


# Not GAN configs: the classifier's and the text encoder's (below), and those of the enhancement
# models, the AdaIN decoder and the inversion encoder (checked in tests/test_enhance.py,
# test_adain.py and test_edit_latent.py).
AUXILIARY = [c for c in CONFIGS if c.startswith(("classifier_", "text_encoder_"))]
OTHER_TASKS = ("enhance_products", "adain_products", "inversion_encoder_products")


@pytest.mark.parametrize("name", [c for c in CONFIGS if c not in AUXILIARY and c not in OTHER_TASKS])
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


@pytest.mark.parametrize("name", AUXILIARY)
def test_auxiliary_config_is_valid_and_its_state_has_shapes(name):
  config = importlib.import_module(f"configs.{name}").get_config()
  train.check_config(config)
  module = tasks.get(config)
  assert module is tasks.TASKS[config.task]
  state = module.abstract_state(config)       # shapes only
  assert int(jax.tree.reduce(lambda n, s: n + s.size, jax.tree.leaves(state.params), 0)) > 0
