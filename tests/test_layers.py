"""The adjoint transposed convolution against lax / flax references and a hand-computed case."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gan.models import layers


def _reference(y, kernel, stride):
  """PyTorch ConvTranspose2d(k, s, p=(k-s)/2) maths through lax (slow weight gradient on CPU)."""
  k = kernel.shape[0]
  p = (k - stride) // 2
  pad = (k - 1 - p, k - 1 - p + (k - stride) % 2)
  return lax.conv_transpose(y, kernel, (stride, stride), (pad, pad),
                            dimension_numbers=layers.DIMENSION_NUMBERS, transpose_kernel=True)


@pytest.mark.parametrize("k,s", [(4, 2), (3, 1), (6, 2), (4, 4)])
def test_conv_transpose_values_and_gradients_match_lax(k, s):
  ky, kw, kg = jax.random.split(jax.random.PRNGKey(0), 3)
  y = jax.random.normal(ky, (2, 5, 5, 3))
  kernel = jax.random.normal(kw, (k, k, 4, 3))
  out = layers.conv_transpose(y, kernel, s)
  ref = _reference(y, kernel, s)
  assert out.shape == (2, 5 * s, 5 * s, 4)
  np.testing.assert_allclose(out, ref, atol=1e-5)
  cotangent = jax.random.normal(kg, out.shape)
  grads = jax.grad(lambda y, w: jnp.sum(layers.conv_transpose(y, w, s) * cotangent), (0, 1))(y, kernel)
  ref_grads = jax.grad(lambda y, w: jnp.sum(_reference(y, w, s) * cotangent), (0, 1))(y, kernel)
  for g, r in zip(grads, ref_grads):
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-4)


def test_conv_transpose_of_a_delta_places_the_kernel():
  # One input pixel equal to 1: output[i, j] = kernel[i + p, j + p] (PyTorch semantics, p = 1).
  y = jnp.zeros((1, 1, 1, 1)).at[0, 0, 0, 0].set(1.0)
  kernel = jnp.arange(16.0).reshape(4, 4, 1, 1)
  np.testing.assert_array_equal(layers.conv_transpose(y, kernel, 2)[0, :, :, 0], [[5.0, 6.0], [9.0, 10.0]])


def test_conv_transpose_is_adjoint_of_strided_conv():
  kx, ky, kw = jax.random.split(jax.random.PRNGKey(1), 3)
  x = jax.random.normal(kx, (2, 8, 8, 3))
  y = jax.random.normal(ky, (2, 4, 4, 5))
  kernel = jax.random.normal(kw, (4, 4, 3, 5))
  lhs = jnp.vdot(layers.strided_conv(x, kernel, 2), y)
  rhs = jnp.vdot(x, layers.conv_transpose(y, kernel, 2))
  np.testing.assert_allclose(lhs, rhs, rtol=1e-5)


def test_conv_transpose_module_matches_flax_conv_transpose():
  x = jax.random.normal(jax.random.PRNGKey(2), (2, 4, 4, 6))
  ours = layers.ConvTranspose(5, use_bias=False)
  params = ours.init(jax.random.PRNGKey(3), x)
  kernel = params["params"]["kernel"]                      # (k, k, out, in)
  # flax.linen.ConvTranspose with transpose_kernel=True uses the same (k, k, out, in) layout.
  theirs = nn.ConvTranspose(5, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)), transpose_kernel=True,
                            use_bias=False)
  ref = theirs.apply({"params": {"kernel": kernel}}, x)
  np.testing.assert_allclose(ours.apply(params, x), ref, atol=1e-5)
  g_ours = jax.grad(lambda k: jnp.sum(jnp.sin(ours.apply({"params": {"kernel": k}}, x))))(kernel)
  g_ref = jax.grad(lambda k: jnp.sum(jnp.sin(theirs.apply({"params": {"kernel": k}}, x))))(kernel)
  np.testing.assert_allclose(g_ours, g_ref, rtol=1e-5, atol=1e-5)


def test_channel_widths_and_upsamplings():
  assert layers.num_upsamplings(32) == 3 and layers.num_upsamplings(64) == 4
  assert tuple(layers.channel_widths(64, 3)) == (256, 128, 64)
  with pytest.raises(ValueError, match="power of two"):
    layers.num_upsamplings(48)


def _conv_critic(fast: bool):
  """Three stride-2 4x4 convs + dense: DCGAN's critic, with nn.Conv or layers.DownsamplingConv."""

  class Critic(nn.Module):
    @nn.compact
    def __call__(self, x):
      for i, w in enumerate((4, 8, 16)):
        if fast:
          x = layers.DownsamplingConv(w, name=f"Conv_{i}")(x)
        else:
          x = nn.Conv(w, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), kernel_init=layers.dcgan_init,
                      name=f"Conv_{i}")(x)
        x = nn.leaky_relu(x, 0.2)
      return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]

  return Critic()


def test_downsampling_conv_matches_nn_conv_to_second_order():
  """Same parameters, values, weight and input gradients, and gradient-penalty gradients as nn.Conv."""
  x = jax.random.normal(jax.random.key(0), (3, 16, 16, 2))
  slow, fast = _conv_critic(False), _conv_critic(True)
  params = slow.init(jax.random.key(1), x)["params"]
  fast_params = fast.init(jax.random.key(1), x)["params"]
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, fast_params)
  np.testing.assert_array_equal(params["Conv_1"]["kernel"], fast_params["Conv_1"]["kernel"])

  def penalty(model, p, x):   # WGAN-GP's term: differentiates D's input gradient w.r.t. D's weights
    g = jax.grad(lambda xi: model.apply({"params": p}, xi).sum())(x)
    return ((jnp.sqrt((g ** 2).sum((1, 2, 3))) - 1.0) ** 2).mean()

  for f in (lambda m, p, x: m.apply({"params": p}, x).sum(), penalty):
    (v_slow, (gp_slow, gx_slow)) = jax.value_and_grad(f, argnums=(1, 2))(slow, params, x)
    (v_fast, (gp_fast, gx_fast)) = jax.value_and_grad(f, argnums=(1, 2))(fast, params, x)
    np.testing.assert_allclose(v_fast, v_slow, rtol=1e-5)
    np.testing.assert_allclose(gx_fast, gx_slow, rtol=1e-4, atol=1e-7)
    for a, b in zip(jax.tree.leaves(gp_fast), jax.tree.leaves(gp_slow)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    assert float(jnp.abs(jax.tree.leaves(gp_fast)[1]).max()) > 0


def test_downsampling_conv_refuses_sizes_not_divisible_by_the_stride():
  with pytest.raises(ValueError, match="divisible"):
    layers.DownsamplingConv(4).init(jax.random.key(0), jnp.zeros((1, 7, 8, 1)))
