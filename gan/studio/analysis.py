"""Statistics of human studies, pure numpy / scipy: Bradley-Terry scores with bootstrap intervals
(pairwise preference) and the fool rate with a binomial interval (real vs generated, HYPE-style).

Bradley-Terry: P(i preferred to j) = p_i / (p_i + p_j). Scores are log p, fixed by mean(log p) = 0
(only differences are identified). The MLE exists when every split of the runs into two groups has
a win in each direction; otherwise (e.g. a run that never won) a `prior` of pseudo-wins makes it
finite, stated in the results.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy import stats


def win_matrix(winners: np.ndarray, losers: np.ndarray, num_players: int) -> np.ndarray:
  """(K, K) float64: entry [i, j] = number of times i was preferred to j. winners/losers: (N,) ints."""
  wins = np.zeros((num_players, num_players))
  np.add.at(wins, (np.asarray(winners, int), np.asarray(losers, int)), 1.0)
  return wins


def mle_exists(wins: np.ndarray) -> bool:
  """True when the comparison graph "i beat j" is strongly connected (Zermelo / Ford's condition)."""
  k = wins.shape[0]
  beat = wins > 0

  def reach(adjacency: np.ndarray) -> np.ndarray:
    seen = np.zeros(k, bool)
    seen[0] = True
    frontier = seen.copy()
    while frontier.any():
      frontier = adjacency[frontier].any(0) & ~seen
      seen |= frontier
    return seen

  return k < 2 or (reach(beat).all() and reach(beat.T).all())


def bradley_terry(wins: np.ndarray, prior: float = 0.0, max_iters: int = 100_000, tol: float = 1e-12
                  ) -> np.ndarray:
  """Bradley-Terry log-scores (K,) with mean 0, by the MM (Zermelo) iteration (Hunter 2004):

    p_i <- W_i / sum_{j != i} n_ij / (p_i + p_j),  W_i = wins of i, n_ij = comparisons of i and j,

  renormalized to geometric mean 1 after each step; it increases the likelihood monotonically and
  converges to the MLE when it exists. prior: pseudo-wins added to every ordered pair of players
  (0 = the plain MLE; raises ValueError when it does not exist).
  """
  wins = np.asarray(wins, np.float64) + prior * (1.0 - np.eye(len(wins)))
  if prior == 0.0 and not mle_exists(wins):
    raise ValueError("The Bradley-Terry MLE does not exist (some group of runs never beat the rest); "
                     "pass prior > 0.")
  games = wins + wins.T
  total_wins = wins.sum(1)
  log_p = np.zeros(len(wins))
  for _ in range(max_iters):
    p = np.exp(log_p)
    denominator = (games / (p[:, None] + p[None, :])).sum(1)
    new = np.log(total_wins) - np.log(denominator)
    new -= new.mean()
    if np.max(np.abs(new - log_p)) < tol:
      return new
    log_p = new
  return log_p


def bootstrap_bradley_terry(winners: np.ndarray, losers: np.ndarray, num_players: int, num_resamples: int = 1000,
                            level: float = 0.95, seed: int = 0) -> dict[str, Any]:
  """Scores of the answers plus percentile bootstrap intervals over answers (resampled with
  replacement, `seed`ed RNG: the same answers give the same intervals).

  Returns:
    {"score": (K,), "low": (K,), "high": (K,), "prior": pseudo-wins used (0 when the MLE exists),
     "num_resamples"}; each resample uses prior 0.5 when its own MLE does not exist.
  """
  winners, losers = np.asarray(winners, int), np.asarray(losers, int)
  wins = win_matrix(winners, losers, num_players)
  prior = 0.0 if mle_exists(wins) else 0.5
  score = bradley_terry(wins, prior)
  rng = np.random.default_rng(seed)
  samples = np.empty((num_resamples, num_players))
  for b in range(num_resamples):
    pick = rng.integers(0, len(winners), len(winners))
    resampled = win_matrix(winners[pick], losers[pick], num_players)
    samples[b] = bradley_terry(resampled, 0.0 if mle_exists(resampled) else 0.5, tol=1e-9)
  alpha = (1.0 - level) / 2
  low, high = np.quantile(samples, [alpha, 1.0 - alpha], axis=0)
  return {"score": score, "low": low, "high": high, "prior": prior, "num_resamples": num_resamples}


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
  """Wilson score interval of a binomial proportion; (0, 1) when trials == 0."""
  if trials == 0:
    return 0.0, 1.0
  z = stats.norm.ppf(0.5 + level / 2)
  p = successes / trials
  centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
  half = z / (1 + z * z / trials) * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
  return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def clopper_pearson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
  """Exact (Clopper-Pearson) interval from beta quantiles; (0, 1) when trials == 0."""
  if trials == 0:
    return 0.0, 1.0
  alpha = 1.0 - level
  low = stats.beta.ppf(alpha / 2, successes, trials - successes + 1) if successes > 0 else 0.0
  high = stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes) if successes < trials else 1.0
  return float(low), float(high)


def preference_results(answers: Sequence[dict[str, Any]], runs: Sequence[str], num_resamples: int = 1000,
                       seed: int = 0) -> dict[str, Any]:
  """Per run: wins, comparisons, Bradley-Terry score and 95% bootstrap interval (None without answers)."""
  index = {run: i for i, run in enumerate(runs)}
  winners = [index[a["a_run"] if a["choice"] == "a" else a["b_run"]] for a in answers]
  losers = [index[a["b_run"] if a["choice"] == "a" else a["a_run"]] for a in answers]
  wins = win_matrix(np.array(winners, int), np.array(losers, int), len(runs))
  rows = [{"run": run, "wins": int(wins[i].sum()), "comparisons": int(wins[i].sum() + wins[:, i].sum()),
           "score": None, "low": None, "high": None} for i, run in enumerate(runs)]
  result: dict[str, Any] = {"kind": "preference", "answers": len(answers), "runs": rows, "prior": None}
  if answers and len(runs) >= 2:
    boot = bootstrap_bradley_terry(np.array(winners), np.array(losers), len(runs), num_resamples, seed=seed)
    for i, row in enumerate(rows):
      row.update(score=float(boot["score"][i]), low=float(boot["low"][i]), high=float(boot["high"][i]))
    result.update(prior=boot["prior"], num_resamples=num_resamples)
  return result


def fool_results(answers: Sequence[dict[str, Any]], runs: Sequence[str]) -> dict[str, Any]:
  """Fool rate (generated images answered "real") per run and overall, with Wilson 95% intervals;
  also how often real images were called real (the raters' baseline)."""
  def rate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    fooled = sum(a["choice"] == "real" for a in rows)
    low, high = wilson_interval(fooled, len(rows))
    return {"fooled": fooled, "n": len(rows), "rate": fooled / len(rows) if rows else None, "low": low, "high": high}

  generated = [a for a in answers if a["a_source"] == "generated"]
  real = [a for a in answers if a["a_source"] == "real"]
  real_called_real = sum(a["choice"] == "real" for a in real)
  return {"kind": "real_vs_generated", "answers": len(answers),
          "runs": [{"run": run, **rate([a for a in generated if a["a_run"] == run])} for run in runs],
          "overall": rate(generated),
          "real": {"called_real": real_called_real, "n": len(real),
                   "rate": real_called_real / len(real) if real else None}}
