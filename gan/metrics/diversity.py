"""Diversity and mode-collapse measures: class histograms of generated samples and feature spread.

The class of a generated sample comes from a classifier trained on real data (passed in as its
probabilities or labels); comparing the histogram with the real one shows dropped or over-produced
modes, which FID mixes with image quality.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np


def class_histogram(probs_or_labels: Any, num_classes: int) -> np.ndarray:
  """(num_classes,) float64 fraction of samples per class, summing to 1.

  probs_or_labels: int labels (N,) in [0, num_classes), or class probabilities / logits
  (N, num_classes), counted by their argmax (hard assignments: a sample belongs to one mode).
  """
  values = np.asarray(probs_or_labels)
  if values.ndim == 2:
    if values.shape[1] != num_classes:
      raise ValueError(f"probabilities have {values.shape[1]} classes, expected num_classes={num_classes}.")
    labels = np.argmax(values, axis=1)
  elif values.ndim == 1 and np.issubdtype(values.dtype, np.integer):
    labels = values
  else:
    raise ValueError(f"Expected int labels (N,) or probabilities (N, C), got {values.dtype} {values.shape}.")
  if labels.size == 0 or labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f"Need at least one label, all in [0, {num_classes}); got {labels.size} labels "
                     f"in [{labels.min(initial=0)}, {labels.max(initial=0)}].")
  return np.bincount(labels, minlength=num_classes) / labels.size


def kl_to_reference(hist: Any, ref_hist: Any, eps: float = 1e-10) -> float:
  """KL(p_gen || p_real) = sum p log(p / q) in nats, float64, >= 0; 0 when the histograms match.

  hist, ref_hist: (C,) non-negative class counts or fractions (each normalised here). Classes with
  p = 0 contribute 0 (so dropped modes cost only through the renormalised rest; see
  `classes_covered` for those). q is smoothed to (q + eps) / sum(q + eps): without it a class that
  the generator produces but the reference lacks would make the KL infinite; with it that costs at
  most ~log(1 / eps) = 23 nats, and shifts the value by O(C eps) otherwise.
  """
  p, q = np.asarray(hist, np.float64), np.asarray(ref_hist, np.float64)
  if p.ndim != 1 or p.shape != q.shape:
    raise ValueError(f"Expected two (C,) histograms of the same length, got {p.shape} and {q.shape}.")
  if np.any(p < 0) or np.any(q < 0) or p.sum() <= 0 or q.sum() <= 0:
    raise ValueError("Histograms must be non-negative with a positive total.")
  p = p / p.sum()
  q = (q + eps) / np.sum(q + eps)
  nonzero = p > 0
  return float(np.sum(p[nonzero] * np.log(p[nonzero] / q[nonzero])))


def classes_covered(hist: Any, min_fraction: Optional[float] = None) -> int:
  """Number of classes holding a non-zero share >= `min_fraction` of the samples.

  hist: (C,) class counts or fractions. The default min_fraction, 0.1 / C (a tenth of the uniform
  share), keeps a few stray samples from counting as a generated mode.
  """
  hist = np.asarray(hist, np.float64)
  if hist.ndim != 1 or np.any(hist < 0) or hist.sum() <= 0:
    raise ValueError(f"Expected a (C,) non-negative histogram with a positive total, got shape {hist.shape}.")
  fractions = hist / hist.sum()
  if min_fraction is None:
    min_fraction = 0.1 / hist.size
  return int(np.sum((fractions > 0) & (fractions >= min_fraction)))


def mean_pairwise_distance(features: Any, max_pairs: int = 100_000, seed: int = 0,
                           chunk_size: int = 4096) -> float:
  """Mean Euclidean distance between two different samples, float64 (features (N, D)).

  Exact over all N (N - 1) / 2 pairs when that is at most `max_pairs`; otherwise an unbiased
  estimate from `max_pairs` random ordered pairs (i != j), drawn with `seed`. A collapsed generator
  gives values far below the real data's.
  """
  x = np.asarray(features, np.float64)
  if x.ndim != 2 or len(x) < 2:
    raise ValueError(f"Expected features (N, D) with N >= 2, got shape {x.shape}.")
  n = len(x)
  if n * (n - 1) // 2 <= max_pairs:
    i, j = np.triu_indices(n, k=1)
  else:
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, max_pairs)
    j = rng.integers(0, n - 1, max_pairs)
    j += j >= i  # Uniform over the n - 1 indices other than i.
  total = 0.0
  for start in range(0, len(i), chunk_size):  # Bounded memory: chunk_size x D differences at a time.
    diff = x[i[start:start + chunk_size]] - x[j[start:start + chunk_size]]
    total += np.sqrt(np.sum(diff * diff, axis=1)).sum()
  return total / len(i)
