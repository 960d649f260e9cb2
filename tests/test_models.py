"""DCGAN shapes, ranges, conditioning maths and the standing batch-norm statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from gan import models
from gan import sampling
from gan.models import dcgan


@pytest.mark.parametrize("size,channels,conditioning", [(32, 1, "embedding"), (64, 3, "cbn")])
def test_generator_and_discriminator_shapes(size, channels, conditioning):
  g = dcgan.Generator(image_size=size, channels=channels, width=8, num_classes=3, conditioning=conditioning)
  d = dcgan.Discriminator(image_size=size, channels=channels, width=8, num_classes=3)
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 16))
  labels = jnp.array([0, 1, 2, 0])
  g_vars = g.init(jax.random.PRNGKey(1), z, labels, train=True)
  images, _ = g.apply(g_vars, z, labels, train=True, mutable=["batch_stats"])
  assert images.shape == (4, size, size, channels)
  assert float(jnp.max(jnp.abs(images))) <= 1.0      # tanh output
  d_vars = d.init(jax.random.PRNGKey(2), images, labels, train=True)
  logits, _ = d.apply(d_vars, images, labels, train=True, mutable=["batch_stats"])
  assert logits.shape == (4,)


def test_projection_discriminator_adds_label_embedding_dot_features():
  d = dcgan.Discriminator(image_size=32, channels=1, width=4, num_classes=2, norm="none")
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 32, 32, 1))
  variables = d.init(jax.random.PRNGKey(1), x, jnp.zeros(3, jnp.int32), train=True)
  params = variables["params"]
  embed = params["projection"]["embedding"]                  # (2, feature_dim)

  def logits(embedding, label):
    p = {**params, "projection": {"embedding": embedding}}
    return d.apply({"params": p}, x, jnp.full(3, label, jnp.int32), train=True)

  base = logits(jnp.zeros_like(embed), 0)                    # psi(h(x)) alone
  # logit(y=1) - logit(y=0) = <e1 - e0, h(x)>; the same inner product is what a zero embedding
  # with row 1 set to e1 - e0 adds to psi(h(x)).
  via_projection = logits(jnp.zeros_like(embed).at[1].set(embed[1] - embed[0]), 1) - base
  np.testing.assert_allclose(logits(embed, 1) - logits(embed, 0), via_projection, rtol=1e-4, atol=1e-4)
  assert float(jnp.max(jnp.abs(via_projection))) > 1e-4       # the label does matter


def test_unconditional_discriminator_ignores_labels_and_conditional_requires_them():
  g = dcgan.Generator(image_size=32, channels=1, width=4, num_classes=2)
  with pytest.raises(ValueError, match="pass labels"):
    g.init(jax.random.PRNGKey(0), jnp.zeros((2, 8)), None, train=True)


def test_models_build_rejects_unknown_architecture():
  config = tiny.get_config()
  config.model.name = "stylegan9"
  with pytest.raises(ValueError, match="valid names: \\['dcgan', 'resnet', 'stylegan'\\]"):
    models.build(config)


def test_standing_stats_are_exact_batch_statistics():
  g = dcgan.Generator(image_size=32, channels=1, width=4)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, 8))
  variables = g.init(jax.random.PRNGKey(1), z, None, train=True)
  key = jax.random.PRNGKey(5)
  stats = sampling.standing_batch_stats(g, variables["params"], variables["batch_stats"], key, 256, 8, 0)
  # The first BN sees the dense layer's output: recompute its mean/variance by hand.
  z_all = jax.random.normal(jax.random.split(key)[0], (256, 8))
  dense = variables["params"]["Dense_0"]
  h = (z_all @ dense["kernel"] + dense["bias"]).reshape(256, 4, 4, -1)
  np.testing.assert_allclose(stats["BatchNorm_0"]["mean"], h.mean((0, 1, 2)), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(stats["BatchNorm_0"]["var"], h.var((0, 1, 2)), rtol=1e-3, atol=1e-5)


def test_grid_helpers():
  z, labels = sampling.grid_inputs(jax.random.PRNGKey(0), 4, num_classes=3, rows=0, columns=2)
  np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2])
  np.testing.assert_array_equal(z[0], z[2])          # same latent down a column
  assert sampling.to_uint8(np.array([-1.0, 0.0, 1.0, 2.0])).tolist() == [0, 128, 255, 255]
  grid = sampling.make_grid(np.full((3, 2, 2, 1), 7, np.uint8), columns=2, padding=1)
  assert grid.shape == (7, 7, 1) and grid[1, 1, 0] == 7 and grid[0, 0, 0] == 0 and grid[4, 4, 0] == 0
