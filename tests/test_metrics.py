"""Evaluation metrics against hand-computed values and reference implementations (scipy, skimage)."""

import io
import math

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist
from skimage.metrics import structural_similarity

from gan import data
from gan.metrics import diversity, fid, image, inception_score, kid, precision_recall


def random_psd(rng, dim, rank=None):
  a = rng.normal(size=(dim, rank or 2 * dim))
  return a @ a.T / a.shape[1]


# --- FID ---------------------------------------------------------------------------------------


def test_frechet_distance_identical_is_zero():
  rng = np.random.default_rng(0)
  mu, sigma = rng.normal(size=32), random_psd(rng, 32)
  assert abs(fid.frechet_distance(mu, sigma, mu, sigma)) < 1e-8


def test_frechet_distance_diagonal_closed_form():
  rng = np.random.default_rng(1)
  m1, m2 = rng.normal(size=16), rng.normal(size=16)
  a, b = rng.uniform(0.1, 3.0, 16), rng.uniform(0.1, 3.0, 16)
  expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  np.testing.assert_allclose(fid.frechet_distance(m1, np.diag(a), m2, np.diag(b)), expected, rtol=1e-12)


def test_frechet_distance_matches_scipy_sqrtm():
  rng = np.random.default_rng(2)
  mu1, mu2 = rng.normal(size=64), rng.normal(size=64)
  s1, s2 = random_psd(rng, 64), random_psd(rng, 64)
  # pytorch-fid: diff.dot(diff) + tr(s1) + tr(s2) - 2 tr(sqrtm(s1 s2)).
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  expected = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
  np.testing.assert_allclose(fid.frechet_distance(mu1, s1, mu2, s2), expected, rtol=1e-6)
  # Singular covariances (rank 8 < 64: fewer samples than dimensions) need no offset; square-rooting
  # the eigenvalues of s1^{1/2} s2 s1^{1/2} instead of an SVD gave -6e-6 here.
  s3 = random_psd(rng, 64, rank=8)
  assert abs(fid.frechet_distance(mu1, s3, mu1, s3)) < 1e-10


def test_streaming_stats_equal_all_at_once():
  rng = np.random.default_rng(3)
  features = rng.normal(size=(1000, 24)).astype(np.float32) * rng.uniform(0.5, 5, 24) + rng.normal(size=24)
  stats = fid.empty_stats(24)
  for batch in np.split(features, [1, 7, 300, 301, 777]):  # Uneven batches, including one row.
    stats = fid.update(stats, batch)
  mu, sigma = fid.mean_cov(stats)
  x = features.astype(np.float64)
  np.testing.assert_allclose(mu, x.mean(axis=0), rtol=0, atol=1e-10)
  np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=0, atol=1e-10)
  # merge of two halves == the whole.
  halves = [fid.update(fid.empty_stats(24), half) for half in np.split(features, [400])]
  np.testing.assert_allclose(fid.mean_cov(fid.merge(*halves))[1], sigma, rtol=0, atol=1e-10)


def test_stats_large_offset_no_cancellation():
  # |mean| / std = 1e5: E[x x^T] - mu mu^T would lose ~10 digits of float64 here.
  rng = np.random.default_rng(4)
  features = (1e3 + 1e-2 * rng.normal(size=(5000, 8))).astype(np.float32)
  stats = fid.empty_stats(8)
  for batch in np.array_split(features, 7):
    stats = fid.update(stats, batch)
  expected = np.cov(features.astype(np.float64), rowvar=False)
  np.testing.assert_allclose(fid.mean_cov(stats)[1], expected, rtol=1e-9, atol=1e-15)


def test_stats_errors():
  with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
    fid.update(fid.empty_stats(4), np.zeros((3, 5)))
  with pytest.raises(ValueError, match="at least 2"):
    fid.mean_cov(fid.update(fid.empty_stats(4), np.zeros((1, 4))))
  with pytest.raises(ValueError, match="sigma2 has shape"):
    fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))


def test_fid_from_features_matches_numpy_scipy():
  rng = np.random.default_rng(14)
  real = rng.normal(size=(300, 16)).astype(np.float32) * rng.uniform(0.5, 2, 16) + 3.0
  fake = (1.2 * rng.normal(size=(170, 16)) + 3.3).astype(np.float32)  # N != M.
  x, y = real.astype(np.float64), fake.astype(np.float64)
  s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
  diff = x.mean(0) - y.mean(0)
  expected = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
  assert expected > 1.0
  np.testing.assert_allclose(fid.fid_from_features(real, fake), expected, rtol=1e-6)
  # The smallest sets that have a covariance.
  np.testing.assert_allclose(fid.fid_from_features(real[:2], fake[:2]), fid.frechet_distance(
      x[:2].mean(0), np.cov(x[:2], rowvar=False), y[:2].mean(0), np.cov(y[:2], rowvar=False)), rtol=1e-9)


def test_fid_from_features_errors():
  with pytest.raises(ValueError, match=r"same D, got \(5, 4\) and \(5, 3\)"):
    fid.fid_from_features(np.zeros((5, 4)), np.zeros((5, 3)))
  with pytest.raises(ValueError, match=r"same D, got \(5,\)"):
    fid.fid_from_features(np.zeros(5), np.zeros((5, 1)))
  with pytest.raises(ValueError, match="at least 2 fake feature vectors.*got 1"):
    fid.fid_from_features(np.zeros((5, 4)), np.zeros((1, 4)))


def test_save_load_stats_and_cache_path(tmp_path):
  rng = np.random.default_rng(5)
  mu, sigma = rng.normal(size=10), random_psd(rng, 10)
  path = fid.stats_cache_path(tmp_path / "cache", dataset="fashion_mnist", split="train",
                              features="inception_v3", resolution=299)
  assert path.endswith("fashion_mnist-train-inception_v3-299px.npz")
  fid.save_stats(path, mu, sigma, num_samples=60000, dataset="fashion_mnist")
  mu2, sigma2, metadata = fid.load_stats(path)
  np.testing.assert_array_equal(mu2, mu)
  np.testing.assert_array_equal(sigma2, sigma)
  assert metadata == {"num_samples": 60000, "dataset": "fashion_mnist"}
  # Unsafe characters are replaced, and a hash keeps different keys apart.
  p1 = fid.stats_cache_path("c", dataset="a/b", split="train[:10%]", features="x", resolution=32)
  p2 = fid.stats_cache_path("c", dataset="a/b", split="train[10%:]", features="x", resolution=32)
  assert p1 != p2 and "/" not in p1[2:] and "[" not in p1


# --- KID ---------------------------------------------------------------------------------------


def mmd2_double_loop(x, y):
  k = lambda a, b: (a @ b / len(a) + 1) ** 3
  m = len(x)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
  return xx + yy - 2 * xy


def test_kid_matches_double_loop():
  rng = np.random.default_rng(6)
  real = rng.normal(size=(12, 5)).astype(np.float32)
  fake = (rng.normal(size=(12, 5)) + 0.5).astype(np.float32)
  # One subset of every sample: the subset is a permutation, which the MMD does not see.
  mean, std = kid.kernel_inception_distance(real, fake, num_subsets=1, subset_size=12)
  np.testing.assert_allclose(mean, mmd2_double_loop(fake.astype(np.float64), real.astype(np.float64)),
                             rtol=1e-5, atol=1e-6)
  assert std == 0.0


def test_kid_same_and_shifted_distributions():
  rng = np.random.default_rng(7)
  real, same, shifted = (rng.normal(size=(400, 16)).astype(np.float32) for _ in range(3))
  mean, std = kid.kernel_inception_distance(real, same, num_subsets=20, subset_size=100, seed=1)
  assert abs(mean) < 3 * std + 1e-3
  mean_shift, std_shift = kid.kernel_inception_distance(real, shifted + 1.0, num_subsets=20, subset_size=100)
  assert mean_shift > 10 * (abs(mean) + std) and mean_shift > 10 * std_shift


def test_kid_subset_size_error():
  with pytest.raises(ValueError, match=r"subset_size=1000 exceeds .*50 real, 40 fake.*subset_size <= 40"):
    kid.kernel_inception_distance(np.zeros((50, 4)), np.zeros((40, 4)))


def kid_torch_fidelity(features_1, features_2, subsets, subset_size, seed):
  """torch-fidelity's kid_features_to_metric (features_1: generated) in float64: (mean, std)."""
  rng = np.random.RandomState(seed)
  m = subset_size
  mmds = np.zeros(subsets)
  for i in range(subsets):
    f1 = features_1[rng.choice(len(features_1), m, replace=False)]
    f2 = features_2[rng.choice(len(features_2), m, replace=False)]
    k_11, k_22, k_12 = ((a @ b.T / a.shape[1] + 1) ** 3 for a, b in ((f1, f1), (f2, f2), (f1, f2)))
    within = (k_11.sum() - np.trace(k_11) + k_22.sum() - np.trace(k_22)) / (m * (m - 1))
    mmds[i] = within - 2 * k_12.sum() / (m * m)
  return np.mean(mmds), np.std(mmds)


@pytest.mark.parametrize("seed", [2020, 3])
def test_kid_subsets_match_torch_fidelity(seed):
  rng = np.random.default_rng(15)
  real = rng.normal(size=(260, 8)).astype(np.float32)
  fake = (1.1 * rng.normal(size=(190, 8)) + 0.3).astype(np.float32)  # N != M: the draw order shows.
  expected = kid_torch_fidelity(fake.astype(np.float64), real.astype(np.float64), 12, 100, seed)
  got = kid.kernel_inception_distance(real, fake, num_subsets=12, subset_size=100, seed=seed)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # Drawing real rows first gives other subsets and visibly other values: the check pins the order.
  swapped = kid_torch_fidelity(real.astype(np.float64), fake.astype(np.float64), 12, 100, seed)
  assert not np.allclose(got, swapped, rtol=1e-3)


# --- Inception Score ---------------------------------------------------------------------------


def test_inception_score_extremes():
  mean, std = inception_score.inception_score(np.full((50, 10), 0.1), num_splits=5)
  np.testing.assert_allclose([mean, std], [1.0, 0.0], atol=1e-12)
  one_hot = np.eye(10)[np.tile(np.arange(10), 5)]  # Each split of 10 rows holds every class once.
  mean, std = inception_score.inception_score(one_hot, num_splits=5, shuffle_seed=None)
  np.testing.assert_allclose([mean, std], [10.0, 0.0], atol=1e-9)
  # Sorted by class, each split holds one class and scores 1: the default shuffle prevents that.
  sorted_one_hot = np.eye(10)[np.repeat(np.arange(10), 50)]
  assert inception_score.inception_score(sorted_one_hot, shuffle_seed=None)[0] == pytest.approx(1.0)
  assert inception_score.inception_score(sorted_one_hot)[0] > 8.0


def test_inception_score_two_classes_by_hand():
  # p(y) = (0.75, 0.25); KL rows: log(4/3) and 0.5 log(2/3) + 0.5 log 2 = 0.5 log(4/3).
  mean, _ = inception_score.inception_score(np.array([[1.0, 0.0], [0.5, 0.5]]), num_splits=1)
  np.testing.assert_allclose(mean, (4 / 3) ** 0.75, rtol=1e-12)
  with pytest.raises(ValueError, match="softmax"):
    inception_score.inception_score(np.array([[2.0, -1.0]]), num_splits=1)


# --- Precision / recall / density / coverage ---------------------------------------------------


def prdc_brute_force(real, fake, pr_k=3, dc_k=5):
  rr, ff, rf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
  r_pr, r_dc = np.sort(rr, axis=1)[:, pr_k], np.sort(rr, axis=1)[:, dc_k]
  f_pr = np.sort(ff, axis=1)[:, pr_k]
  return {"precision": np.mean(np.any(rf <= r_pr[:, None], axis=0)),
          "recall": np.mean(np.any(rf <= f_pr[None, :], axis=1)),
          "density": np.mean(np.sum(rf <= r_dc[:, None], axis=0)) / dc_k,
          "coverage": np.mean(rf.min(axis=1) <= r_dc)}


def test_prdc_matches_brute_force():
  rng = np.random.default_rng(8)
  real = rng.normal(size=(230, 6)) + 50.0  # Far from the origin: exercises the centring.
  fake = 1.3 * rng.normal(size=(170, 6)) + 50.5
  got = precision_recall.precision_recall_density_coverage(real, fake, chunk_size=64)  # Uneven chunks.
  expected = prdc_brute_force(real, fake)
  for name in expected:
    np.testing.assert_allclose(got[name], expected[name], atol=1e-12, err_msg=name)
  assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1
  np.testing.assert_allclose(precision_recall.knn_radii(real, 3, chunk_size=64), np.sort(cdist(real, real), 1)[:, 3],
                             rtol=1e-4)


def test_prdc_identical_and_disjoint():
  rng = np.random.default_rng(9)
  x = rng.normal(size=(100, 4))
  same = precision_recall.precision_recall_density_coverage(x, x)
  assert same["precision"] == same["recall"] == same["coverage"] == 1.0
  far = precision_recall.precision_recall_density_coverage(x, x + 100.0)
  assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
  with pytest.raises(ValueError, match="more than k samples"):
    precision_recall.precision_recall_density_coverage(x[:5], x)


# --- Image metrics -----------------------------------------------------------------------------


def smooth_image(rng, size, channels):
  yy, xx = np.mgrid[0:size, 0:size] / size
  base = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (c + 1) * xx) * np.cos(3 * np.pi * yy)
                   for c in range(channels)], axis=-1)
  return base, np.clip(base + 0.05 * rng.normal(size=base.shape), 0, 1)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_skimage(channels):
  rng = np.random.default_rng(10 + channels)
  clean, noisy = smooth_image(rng, 40, channels)
  rand_a, rand_b = rng.uniform(size=(2, 33, 27, channels))
  pairs = [(clean, noisy, 1.0), (rand_a, 0.7 * rand_a + 0.3 * rand_b, 1.0),
           (2 * clean - 1, 2 * noisy - 1, 2.0)]  # [-1, 1] images.
  for a, b, data_range in pairs:
    expected = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=data_range, channel_axis=-1)
    np.testing.assert_allclose(image.ssim(a, b, data_range=data_range), expected, atol=1e-4)
  # Batched: one value per image; an image against itself is 1.
  batch = np.stack([clean, noisy])
  np.testing.assert_allclose(image.ssim(batch, batch, data_range=1.0), [1.0, 1.0], atol=1e-6)
  assert image.ssim(batch, batch[::-1], data_range=1.0).shape == (2,)


@pytest.mark.real_data
def test_ssim_and_psnr_match_skimage_on_real_product_photos(product_photos_dir):
  from PIL import Image
  from skimage.metrics import peak_signal_noise_ratio
  folder = product_photos_dir
  rng = np.random.default_rng(0)
  for name in ("1_AB.jpg", "250_AB.jpg"):          # a shoe and a handbag
    photo = np.asarray(Image.open(folder / name).convert("RGB"), np.float64)[:, :256] / 255.0
    degraded = np.clip(photo + 0.08 * rng.normal(size=photo.shape), 0, 1)
    expected = structural_similarity(photo, degraded, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1.0, channel_axis=-1)
    np.testing.assert_allclose(image.ssim(photo, degraded, data_range=1.0), expected, atol=1e-4)
    np.testing.assert_allclose(image.psnr(photo, degraded, data_range=1.0),
                               peak_signal_noise_ratio(photo, degraded, data_range=1.0), rtol=1e-4)


def jpeg_copy(image_u8, quality=20):
  """(H, W, 3) uint8 image after a Pillow JPEG encode and decode at `quality`."""
  from PIL import Image
  buffer = io.BytesIO()
  Image.fromarray(image_u8).save(buffer, format="JPEG", quality=quality)
  return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def skimage_ssim(a, b, data_range):
  return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                               data_range=data_range, channel_axis=-1)


def white_background_product(object_size):
  """(64, 64, 3) uint8: a shaded ellipse on a flat 255 background, and the background's share."""
  yy, xx = np.mgrid[0:64, 0:64] / 64.0
  inside = ((xx - 0.5) / 0.45) ** 2 + ((yy - 0.55) / 0.25) ** 2 < object_size
  shade = 0.25 + 0.35 * xx[..., None] + 0.1 * np.arange(3) / 2 + 0.05 * np.sin(9 * np.pi * yy)[..., None]
  return np.round(np.where(inside[..., None], shade, 1.0) * 255).astype(np.uint8), 1 - inside.mean()


def test_ssim_matches_skimage_on_jpeg_white_background():
  # The one-pass var = E[x^2] - E[x]^2 was off by 2.6e-5, 6.0e-5, 1.1e-4 and 1.4e-4 here on [0, 1]
  # (1.3e-5 .. 5.1e-5 on [-1, 1]), growing with the white share; the two-pass by at most 6e-8.
  for object_size, white_share in ((1.0, 0.65), (0.6, 0.79), (0.3, 0.90), (0.1, 0.96)):
    photo, white = white_background_product(object_size)
    assert white == pytest.approx(white_share, abs=0.01)
    a, b = photo / 255.0, jpeg_copy(photo) / 255.0
    assert 0.85 < skimage_ssim(a, b, 1.0) < 0.99
    for x, y, data_range in ((a, b, 1.0), (2 * a - 1, 2 * b - 1, 2.0)):  # [0, 1] and [-1, 1] images.
      np.testing.assert_allclose(image.ssim(x, y, data_range=data_range), skimage_ssim(x, y, data_range),
                                 rtol=0, atol=1e-6)


@pytest.mark.real_data
def test_ssim_matches_skimage_on_jpeg_compressed_real_product_photos(product_photos_dir):
  # Shoes and handbags at the project's 64x64, most on white: the one-pass formula was off by 3e-6
  # (250, no white) to 1.2e-4 (323, 70% white) on these; over all 2000 photos at JPEG quality 20
  # the two-pass statistics are within 1.5e-7.
  names = ("1_AB.jpg", "24_AB.jpg", "97_AB.jpg", "185_AB.jpg", "250_AB.jpg", "323_AB.jpg", "374_AB.jpg")
  photos = np.stack([data._decode_image(product_photos_dir / name, 64, 3, "left_half") for name in names])
  copies = np.stack([jpeg_copy(photo) for photo in photos])
  white_share = np.mean(np.all(photos >= 250, axis=-1), axis=(1, 2))
  assert white_share.max() > 0.8 and np.sum(white_share > 0.6) >= 4
  a, b = photos / 255.0, copies / 255.0
  expected = [skimage_ssim(x, y, 1.0) for x, y in zip(a, b)]
  np.testing.assert_allclose(image.ssim(a, b, data_range=1.0), expected, rtol=0, atol=1e-6)


def test_psnr_and_mse():
  rng = np.random.default_rng(12)
  x = rng.uniform(0, 0.9, size=(2, 16, 16, 3))
  np.testing.assert_allclose(image.psnr(x, x + 0.1, data_range=1.0), [20.0, 20.0], atol=1e-4)
  np.testing.assert_allclose(image.psnr(2 * x - 1, 2 * x - 0.8, data_range=2.0), [20.0, 20.0], atol=1e-4)
  assert np.isinf(image.psnr(x[0], x[0], data_range=1.0))
  a, b = np.zeros((2, 2, 1)), np.array([[1.0, 0.0], [0.0, 3.0]])[..., None]
  np.testing.assert_allclose(image.mse(a, b), 2.5)  # (1 + 9) / 4.
  with pytest.raises(ValueError, match="smaller than the 11x11"):
    image.ssim(np.zeros((8, 8, 1)), np.zeros((8, 8, 1)), data_range=1.0)
  with pytest.raises(ValueError, match="data_range"):
    image.psnr(a, b, data_range=0)


# --- Diversity ---------------------------------------------------------------------------------


def test_class_histogram_kl_and_coverage():
  collapsed = diversity.class_histogram(np.full(50, 3), num_classes=10)
  np.testing.assert_array_equal(collapsed, np.eye(10)[3])
  uniform = diversity.class_histogram(np.eye(10)[np.arange(100) % 10] * 0.8 + 0.02, num_classes=10)
  np.testing.assert_allclose(uniform, np.full(10, 0.1))
  np.testing.assert_allclose(diversity.kl_to_reference(collapsed, uniform), math.log(10), rtol=1e-9)
  assert diversity.kl_to_reference(uniform, uniform) == pytest.approx(0.0, abs=1e-12)
  # 3:1 over two classes against 1:1: 0.75 log 1.5 + 0.25 log 0.5.
  np.testing.assert_allclose(diversity.kl_to_reference([3, 1], [5, 5]), 0.75 * math.log(1.5) + 0.25 * math.log(0.5))
  # Generated mass on a class the reference lacks: large but finite.
  assert 10 < diversity.kl_to_reference([1, 1], [1, 0]) < 30
  assert diversity.classes_covered(collapsed) == 1
  assert diversity.classes_covered(uniform) == 10
  assert diversity.classes_covered([97, 1, 2, 0], min_fraction=0.015) == 2
  with pytest.raises(ValueError, match=r"in \[0, 10\)"):
    diversity.class_histogram(np.array([0, 10]), num_classes=10)


def test_mean_pairwise_distance():
  # Pairs: 5, 0, 5.
  np.testing.assert_allclose(diversity.mean_pairwise_distance([[0, 0], [3, 4], [0, 0]]), 10 / 3)
  rng = np.random.default_rng(13)
  x = rng.normal(size=(600, 5))
  exact = diversity.mean_pairwise_distance(x)  # 179,700 pairs > default max_pairs: sampled.
  np.testing.assert_allclose(exact, np.mean(cdist(x, x)[np.triu_indices(600, 1)]), rtol=0.01)
  np.testing.assert_allclose(diversity.mean_pairwise_distance(x, max_pairs=10**6, chunk_size=1000),
                             np.mean(cdist(x, x)[np.triu_indices(600, 1)]), rtol=1e-12)
