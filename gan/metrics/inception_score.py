"""Inception Score (Salimans et al. 2016), as computed by torch-fidelity and the original code."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np


def inception_score(probs: Any, num_splits: int = 10, shuffle_seed: Optional[int] = 2020) -> tuple[float, float]:
  """exp(E_x KL(p(y|x) || p(y))) per split; returns (mean, std) over splits, float64.

  probs: (N, C) class probabilities (softmax of the classifier's logits), rows summing to 1.
  p(y) is the mean prediction within each split, so rows sorted by class (e.g. class-conditional
  samples drawn class by class) would drag the score towards 1: the rows are first permuted with
  np.random.RandomState(shuffle_seed) (None: keep the order). Split i is rows [i N // S, (i + 1) N // S)
  of S = num_splits. Seed 2020, the splits and std = np.std over splits are torch-fidelity's.
  The score lies in [1, C]: 1 when all predictions are equal, C when they are confident and uniform
  over the classes.
  """
  probs = np.asarray(probs, np.float64)
  if probs.ndim != 2:
    raise ValueError(f"Expected probabilities of shape (N, C), got {probs.shape}.")
  if np.any(probs < 0) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
    raise ValueError("Rows of probs must be probability vectors (non-negative, summing to 1); "
                     "apply a softmax to classifier logits first.")
  if not 1 <= num_splits <= len(probs):
    raise ValueError(f"num_splits must be in [1, N={len(probs)}], got {num_splits}.")
  if shuffle_seed is not None:
    probs = probs[np.random.RandomState(shuffle_seed).permutation(len(probs))]
  n = len(probs)
  scores = []
  for i in range(num_splits):
    part = probs[i * n // num_splits:(i + 1) * n // num_splits]
    marginal = part.mean(axis=0)
    # p log(p / p(y)) with 0 log 0 = 0 (p(y) > 0 wherever some p > 0 in the split).
    has_mass = part > 0
    log_ratio = np.log(np.where(has_mass, part, 1.0)) - np.log(np.where(has_mass, marginal, 1.0))
    kl = np.sum(part * log_ratio, axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))
