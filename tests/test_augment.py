"""DiffAugment and ADA: explicit-parameter ops against numpy / jnp, and invariants of the random policies."""

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


# --- ADA (adaptive discriminator augmentation)

# One shape per jitted function (p is traced): each compiles once for the whole module.
ada = jax.jit(augment.ada_augment, static_argnames="groups")
blit = jax.jit(augment.blit)
warp = jax.jit(augment.affine_warp)
color = jax.jit(lambda x, *factors: augment.apply_color_matrix(x, augment.color_matrix(*factors)))
ADA_SHAPE = (8, 16, 16, 3)
BLIT_SHAPE = (512, 8, 8, 3)


def _sorted_pixels(images):
  """Each image's pixels (rows of C values) in lexicographic order: equal iff a pixel permutation."""
  flat = np.asarray(images).reshape(len(images), -1, images.shape[-1])
  return np.stack([f[np.lexsort(f.T[::-1])] for f in flat])


def test_ada_with_p_zero_is_the_identity_exactly():
  x = _images(ADA_SHAPE)
  np.testing.assert_array_equal(ada(x, KEY, 0.0), x)


def test_blit_flips_and_quarter_turns_match_jnp():
  x = _images(BLIT_SHAPE)
  n = len(x)
  none = jnp.zeros((n,), bool)
  for k in range(4):
    np.testing.assert_array_equal(blit(x, none, jnp.full((n,), k), jnp.zeros((n, 2), jnp.int32)),
                                  jnp.rot90(x, k, axes=(1, 2)))
  np.testing.assert_array_equal(blit(x, ~none, jnp.zeros((n,), jnp.int32), jnp.zeros((n, 2), jnp.int32)),
                                x[:, :, ::-1])


def test_blit_integer_shift_mirrors_the_border_in():
  x = np.asarray(_images(BLIT_SHAPE))
  n = len(x)
  shifts = np.zeros((n, 2), np.int32)
  shifts[0] = (2, -1)
  out = np.asarray(blit(jnp.asarray(x), jnp.zeros((n,), bool), jnp.zeros((n,), jnp.int32), shifts))
  np.testing.assert_array_equal(out[0], np.pad(x[0], ((2, 0), (0, 1), (0, 0)), "reflect")[:8, 1:])


def test_ada_blit_at_p_one_permutes_pixels_exactly():
  # Flips and quarter turns only (integer shifts duplicate mirrored pixels): a permutation of the pixels.
  x = _images(BLIT_SHAPE)
  n = x.shape[0]
  keys = jax.random.split(KEY, 2)
  flip, turns = jax.random.bernoulli(keys[0], 0.5, (n,)), jax.random.randint(keys[1], (n,), 0, 4)
  out = blit(x, flip, turns, jnp.zeros((n, 2), jnp.int32))
  np.testing.assert_array_equal(_sorted_pixels(out), _sorted_pixels(x))
  # And the random blit at p = 1 moves every image's pixels around without changing their values.
  out = np.asarray(ada(x, KEY, 1.0, "blit"))
  assert set(out.ravel()) <= set(np.asarray(x).ravel())
  # Unchanged only without flip, turn and shift: 1/2 x 1/4 x (1/2)^2 = 3% of the images.
  assert np.mean([not np.array_equal(out[i], x[i]) for i in range(n)]) > 0.9


def test_affine_warp_identity_and_quarter_turn():
  x = _images(ADA_SHAPE)
  n = len(x)
  np.testing.assert_allclose(warp(x, jnp.broadcast_to(jnp.eye(3), (n, 3, 3))), x, atol=1e-5)
  inverse = jnp.linalg.inv(augment.rotation_2d(jnp.full((n,), jnp.pi / 2)))
  np.testing.assert_allclose(warp(x, inverse), jnp.rot90(x, 1, axes=(1, 2)), atol=1e-5)


def test_affine_warp_half_pixel_shift_averages_neighbours():
  x = _images(ADA_SHAPE)
  n = len(x)
  out = np.asarray(warp(x, augment.translation_2d(jnp.full((n,), 0.5), jnp.zeros((n,)))))
  # Output column j samples column j + 0.5 (the last one mirrors back onto itself).
  np.testing.assert_allclose(out[:, :, :-1], (x[:, :, :-1] + x[:, :, 1:]) / 2, atol=1e-6)


def test_color_matrix_brightness_moves_the_mean_and_hue_keeps_grey():
  x = _images(ADA_SHAPE)
  n = len(x)
  b = jnp.linspace(-0.3, 0.3, n)
  one, zero = jnp.ones((n,)), jnp.zeros((n,))
  out = color(x, b, one, zero, zero, one)
  np.testing.assert_allclose(np.mean(out, axis=(1, 2, 3)) - np.mean(x, axis=(1, 2, 3)), b, atol=1e-6)
  grey = jnp.broadcast_to(x[..., :1], x.shape)       # grey pixels lie on the luma axis
  rotated = color(grey, zero, one, zero, jnp.full((n,), 2.0), one)
  np.testing.assert_allclose(rotated, grey, atol=1e-5)
  flipped = color(grey, zero, one, one, zero, one)
  np.testing.assert_allclose(flipped, -grey, atol=1e-5)   # luma flip negates grey
  # Contrast 2 doubles, saturation 0 gives each pixel its channel mean (grey).
  doubled = color(x, zero, 2 * one, zero, zero, one)
  np.testing.assert_allclose(doubled, 2 * x, atol=1e-6)
  desat = color(x, zero, one, zero, zero, zero)
  np.testing.assert_allclose(desat, jnp.broadcast_to(x.mean(-1, keepdims=True), x.shape), atol=1e-6)
  # One channel: brightness shifts the grey value by b.
  g = x[..., :1]
  np.testing.assert_allclose(color(g, b, one, zero, zero, one), g + b[:, None, None, None], atol=1e-6)


def test_ada_at_p_one_keeps_shape_range_and_gradients():
  x = _images(ADA_SHAPE)
  out = np.asarray(ada(x, KEY, 1.0))
  assert out.shape == x.shape and np.all(np.isfinite(out))
  assert np.abs(out).max() < 10      # colour factors are log-normal: values can leave [-1, 1], not explode
  assert len({out[i].tobytes() for i in range(8)}) == 8
  grad = jax.grad(lambda x: jnp.sum(ada(x, KEY, 1.0) ** 2))(x)
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_ada_applies_each_transform_with_probability_p():
  # x-flips only happen with probability p / 2 (applied with p, then a fair coin).
  p = 0.4
  n = BLIT_SHAPE[0]
  x = jnp.broadcast_to(_images((1,) + BLIT_SHAPE[1:]), BLIT_SHAPE)
  u = jax.random.uniform(KEY, (2, n))
  flip = augment._gate(u[0], p, u[1] < 0.5, False)
  assert abs(float(jnp.mean(flip)) - p / 2) < 0.05
  changed = np.mean([not np.array_equal(o, x[0]) for o in np.asarray(ada(x, KEY, p, "blit"))])
  # Unchanged: no flip (1 - p/2) x no turn (1 - 3p/4) x no shift (1 - p + p/4 per axis): 0.38 here.
  assert 0.5 < changed < 0.75


def test_ada_adjust_moves_p_by_the_images_shown():
  step = 16 * 4 / (500 * 1000)
  assert float(augment.ada_adjust(0.5, 64.0, 64.0, 0.6, 64, 500)) == pytest.approx(0.5 + step)
  assert float(augment.ada_adjust(0.5, -64.0, 64.0, 0.6, 64, 500)) == pytest.approx(0.5 - step)
  assert float(augment.ada_adjust(0.0, -64.0, 64.0, 0.6, 64, 500)) == 0.0            # clipped
  assert float(augment.ada_adjust(1.0, 64.0, 64.0, 0.6, 64, 0.001)) == 1.0


def test_unknown_ada_group_lists_valid_names():
  with pytest.raises(ValueError, match="Unknown ADA groups \\['colour'\\].*blit.*geom.*color"):
    augment.parse_ada_groups("blit,colour")
