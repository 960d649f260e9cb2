"""DiffAugment: explicit-parameter ops against numpy, and invariants of the random policies."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan import augment

KEY = jax.random.PRNGKey(0)
# Compiled once per (shape, policy): op-by-op eager dispatch would dominate the test time.
aug = jax.jit(augment.diff_augment, static_argnames="policy")
translate = jax.jit(augment.translate)
cutout = jax.jit(augment.cutout, static_argnames="size")


def _images(shape=(8, 16, 16, 3), seed=1):
  return jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=-1.0, maxval=1.0)


def _shift_with_zero_fill(image, dy, dx):
  """np.roll, then zero the rows / columns that wrapped around."""
  out = np.roll(image, (dy, dx), axis=(0, 1))
  if dy > 0:
    out[:dy] = 0
  elif dy < 0:
    out[dy:] = 0
  if dx > 0:
    out[:, :dx] = 0
  elif dx < 0:
    out[:, dx:] = 0
  return out


def test_same_key_same_output_and_different_key_different_output():
  x = _images()
  a = aug(x, KEY)
  np.testing.assert_array_equal(a, aug(x, KEY))
  assert not np.allclose(a, aug(x, jax.random.PRNGKey(1)))


def test_same_key_applies_the_same_transform_to_different_batches():
  # translation and cutout are linear in the images, so one transform T gives T(a + b) = T(a) + T(b).
  a, b = _images(seed=2), _images(seed=3)
  t = lambda x: aug(x, KEY, "translation,cutout")
  np.testing.assert_allclose(t(a + b), t(a) + t(b), atol=1e-6)


def test_examples_get_different_transforms():
  x = jnp.broadcast_to(_images((1, 16, 16, 3)), (8, 16, 16, 3))
  out = np.asarray(aug(x, KEY))
  assert len({out[i].tobytes() for i in range(8)}) == 8


def test_empty_policy_is_identity():
  x = _images()
  np.testing.assert_array_equal(augment.diff_augment(x, KEY, ""), x)


def test_unknown_policy_lists_valid_names():
  with pytest.raises(ValueError, match="colour.*color.*cutout.*translation"):
    augment.diff_augment(_images(), KEY, "colour,translation")


@pytest.mark.parametrize("shape", [(2, 32, 32, 1), (2, 64, 64, 3)])
def test_contract_shapes_are_kept(shape):
  x = _images(shape)
  out = aug(x, KEY)
  assert out.shape == shape and out.dtype == x.dtype
  assert not np.allclose(out, x)


# --- translation

def test_translate_matches_np_roll_with_zero_fill():
  x = np.arange(2 * 6 * 5 * 2, dtype=np.float32).reshape(2, 6, 5, 2) + 1.0  # no zeros of its own
  shifts = [(2, -1), (-3, 4)]
  out = translate(jnp.asarray(x), jnp.array(shifts))
  for i, (dy, dx) in enumerate(shifts):
    np.testing.assert_array_equal(out[i], _shift_with_zero_fill(x[i], dy, dx))
  # Shifts of a whole image size or more leave nothing.
  np.testing.assert_array_equal(translate(jnp.asarray(x), jnp.array([[6, 0], [0, -5]])), 0.0)


def test_random_translation_is_an_integer_shift_of_at_most_an_eighth():
  # Recover each example's shift by search over a wider range; s = 32 / 8 = 4.
  x = np.asarray(_images((32, 32, 32, 1)))
  out = np.asarray(aug(jnp.asarray(x), KEY, "translation"))
  found = []
  for i in range(len(x)):
    matches = [(dy, dx) for dy, dx in itertools.product(range(-8, 9), repeat=2)
               if np.array_equal(out[i], _shift_with_zero_fill(x[i], dy, dx))]
    assert len(matches) == 1, f"example {i} is not a pure integer shift"
    found.append(matches[0])
  found = np.array(found)
  assert np.abs(found).max() <= 4
  assert len({tuple(s) for s in found}) > 8  # varied per example


# --- cutout

def test_cutout_inside_zeroes_exactly_a_half_size_square():
  x = jnp.ones((1, 16, 16, 3))
  out = np.asarray(cutout(x, jnp.array([[8, 6]]), 8))
  # Rows 8 - 4 ... 11, columns 6 - 4 ... 9, in every channel.
  expected = np.ones((16, 16, 3), np.float32)
  expected[4:12, 2:10] = 0
  np.testing.assert_array_equal(out[0], expected)
  assert np.sum(out[0, :, :, 0] == 0) == (16 // 2) * (16 // 2)


def test_cutout_is_clipped_at_the_border():
  # Centred on a corner, only a quarter of the 8x8 square is inside the image.
  out = np.asarray(cutout(jnp.ones((2, 16, 16, 1)), jnp.array([[0, 0], [16, 16]]), 8))
  assert np.sum(out[0] == 0) == 16 and np.all(out[0, :4, :4] == 0)
  assert np.sum(out[1] == 0) == 16 and np.all(out[1, 12:, 12:] == 0)


def test_random_cutout_zeroes_one_clipped_half_size_square_per_example():
  x = jnp.ones((64, 16, 16, 3))
  out = np.asarray(aug(x, KEY, "cutout"))
  assert set(np.unique(out)) <= {0.0, 1.0}
  counts = []
  for img in out:
    holes = img == 0
    np.testing.assert_array_equal(holes, holes[:, :, :1].repeat(3, axis=2))  # same in all channels
    rows, cols = np.nonzero(holes[:, :, 0])
    # One axis-aligned rectangle (the clipped square): its bounding box is all zeros.
    assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert 4 <= rows.max() - rows.min() + 1 <= 8 and 4 <= cols.max() - cols.min() + 1 <= 8
    counts.append(len(rows))
  assert max(counts) == 64 and min(counts) < 64  # sometimes fully inside, sometimes clipped


# --- colour

def test_brightness_adds_one_value_per_example():
  # A constant image is unchanged by saturation and contrast, so "color" only shifts it
  # (1 channel to share the compiled function with the next test; adjust_color covers 3).
  x = jnp.full((32, 8, 8, 1), 0.2)
  out = np.asarray(aug(x, KEY, "color"))
  offsets = out[:, 0, 0, 0] - 0.2
  np.testing.assert_allclose(out, (0.2 + offsets)[:, None, None, None] * np.ones_like(out), atol=1e-6)
  assert np.all(np.abs(offsets) <= 0.5) and np.std(offsets) > 0.1


def test_adjust_color_matches_the_reference_formulas():
  x = np.asarray(_images((3, 4, 4, 3)))
  b, s, c = np.array([0.3, -0.1, 0.0]), np.array([0.0, 1.0, 2.0]), np.array([1.0, 0.5, 1.5])
  out = np.asarray(jax.jit(augment.adjust_color)(jnp.asarray(x), b, s, c))
  y = x + b[:, None, None, None]
  m = y.mean(axis=3, keepdims=True)
  y = (y - m) * s[:, None, None, None] + m
  m = y.mean(axis=(1, 2, 3), keepdims=True)
  np.testing.assert_allclose(out, (y - m) * c[:, None, None, None] + m, atol=1e-6)
  # Saturation 0 turns the first example grey: all channels equal.
  np.testing.assert_allclose(out[0], out[0, :, :, :1].repeat(3, axis=2), atol=1e-6)


def test_random_color_on_one_channel_is_affine_per_example():
  # With C = 1 saturation is the identity: out = c * (x - mean x) + mean x + b, c in [0.5, 1.5].
  x = np.asarray(_images((32, 8, 8, 1)))
  out = np.asarray(aug(jnp.asarray(x), KEY, "color"))
  dx = x - x.mean(axis=(1, 2, 3), keepdims=True)
  slope = np.sum(dx * out, axis=(1, 2, 3)) / np.sum(dx * dx, axis=(1, 2, 3))
  offset = out.mean(axis=(1, 2, 3)) - x.mean(axis=(1, 2, 3))
  np.testing.assert_allclose(out, slope[:, None, None, None] * dx + x.mean(axis=(1, 2, 3), keepdims=True)
                             + offset[:, None, None, None], atol=1e-5)
  assert np.all((slope >= 0.5) & (slope <= 1.5)) and np.all(np.abs(offset) <= 0.5)


# --- gradients

def test_gradients_flow_through_every_policy():
  x = _images()
  grad = jax.jit(jax.grad(lambda x: jnp.sum(augment.diff_augment(x, KEY))))(x)
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_color_gradient_of_sum_is_one():
  # Saturation and contrast keep the image sum, and brightness adds a constant: d sum / dx = 1.
  x = _images()
  grad = jax.jit(jax.grad(lambda x: jnp.sum(augment.diff_augment(x, KEY, "color"))))(x)
  np.testing.assert_allclose(grad, 1.0, atol=1e-5)


def test_translation_and_cutout_gradient_is_the_kept_pixel_mask():
  # For a linear op that only moves or drops pixels, d sum / dx is 1 where a pixel survives.
  x = _images()
  t = lambda x: aug(x, KEY, "translation,cutout")
  grad = np.asarray(jax.jit(jax.grad(lambda x: jnp.sum(t(x))))(x))
  assert set(np.unique(grad)) <= {0.0, 1.0}
  # The survivors are exactly what an all-ones image keeps, counted both ways.
  np.testing.assert_allclose(grad.sum(axis=(1, 2, 3)), np.asarray(t(jnp.ones_like(x))).sum(axis=(1, 2, 3)))
