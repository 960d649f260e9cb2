"""Directions in a StyleGAN's W space, to edit generated or inverted images along.

Unsupervised: `fit_pca` / `pca_directions`, the principal axes of sampled w (GANSpace, Harkonen et
al. 2020), optionally restricted to a range of synthesis layers (coarse layers: pose, size, shape;
fine layers: colour, texture).
Supervised (InterFaceGAN, Shen et al. 2020): `fit_linear_probe` (ridge regression of a measured
attribute on w) and `fit_logistic_probe` (a label, e.g. the domain classifier's class or a dominant
colour); the probe's weight vector is the direction (`probe_direction`). `conditional_direction`
removes from it the components along other probes' weight vectors, so that moving along it leaves
those probes' scores exactly unchanged: "change the colour, keep the size and the class".

`attribute_directions` does this for the measured attributes (ATTRIBUTE_PROBES of
gan.editing.edits.measure's numbers: brightness, size, aspect, colour, orientation, facing, ...),
each plain and conditional on HELD: what experiments/benchmark_editing.py saves for
`python -m gan.edit --op direction --direction NAME`.

A Direction's strength is in standard deviations of the sampled w along it: strength 1 moves every
w by one such standard deviation. Apply it with gan.editing.edits.apply_direction. Vectors are
float64 numpy arrays (w_dim,) on the host: fitting is small linear algebra on a few thousand w.
"""

from __future__ import annotations

from collections.abc import Sequence
import os
from typing import Any, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan.editing import inversion


# Measured attributes (names of gan.editing.edits.measure, in [0, 1]) with a linear probe, and the
# probes a conditional direction holds fixed ("class": the domain classifier's, when there is one).
ATTRIBUTE_PROBES = ("brightness", "size", "aspect", "saturation", "hue_x", "hue_y", "orientation", "facing")
HELD = ("brightness", "size", "aspect", "class")


class Direction(NamedTuple):
  """name; vector: (w_dim,) unit; scale: std of the sampled w along vector (strength 1 = one std);
  layers: the [start, stop) range of W+ layers it edits, None for all."""
  name: str
  vector: np.ndarray
  scale: float
  layers: Optional[tuple[int, int]] = None


def sample_w(generator: nn.Module, variables: Any, key: jax.Array, num: int, *,
             labels: Optional[jax.Array] = None, psi: float = 1.0, batch_size: int = 1000) -> np.ndarray:
  """num w = mapping(z, labels) with z ~ N(0, I), truncation psi: (num, w_dim) float32 numpy."""
  if num < 1:
    raise ValueError(f"num must be >= 1, got {num}.")
  z_dim = inversion.z_dim_of(variables)
  if getattr(generator, "num_classes", 0) and labels is None:
    raise ValueError("This generator is class-conditional: pass labels of shape (num,).")
  mapping = jax.jit(lambda z, y: generator.apply(variables, z, y, method=generator.mapping, train=False, psi=psi))
  z = jax.random.normal(key, (num, z_dim), jnp.float32)
  out = [np.asarray(mapping(z[i:i + batch_size], None if labels is None else labels[i:i + batch_size]))
         for i in range(0, num, batch_size)]
  return np.concatenate(out)


# --- PCA (GANSpace) ------------------------------------------------------------------------------


class PCA(NamedTuple):
  """mean: (D,); components: (K, D) orthonormal rows, by decreasing variance; variances: (K,) the
  sample variance along each component; explained: (K,) the fraction of the total variance."""
  mean: np.ndarray
  components: np.ndarray
  variances: np.ndarray
  explained: np.ndarray


def _as_matrix(ws: np.ndarray, what: str = "ws") -> np.ndarray:
  ws = np.asarray(ws, np.float64)
  if ws.ndim != 2 or ws.shape[0] < 2:
    raise ValueError(f"{what} must be (N >= 2, w_dim) vectors, got shape {ws.shape}.")
  return ws


def fit_pca(ws: np.ndarray, num_components: Optional[int] = None) -> PCA:
  """Principal components of ws (N, D) by SVD of the centred data, in float64.

  Signs are fixed (each component's largest-magnitude entry is positive), so results are
  reproducible across LAPACK builds.
  """
  ws = _as_matrix(ws)
  k = min(ws.shape) if num_components is None else num_components
  if not 1 <= k <= min(ws.shape):
    raise ValueError(f"num_components must be in [1, {min(ws.shape)}], got {num_components}.")
  mean = ws.mean(axis=0)
  _, s, vt = np.linalg.svd(ws - mean, full_matrices=False)
  components = vt[:k]
  signs = np.sign(components[np.arange(k), np.argmax(np.abs(components), axis=1)])
  variances = s ** 2 / (ws.shape[0] - 1)
  return PCA(mean, components * signs[:, None], variances[:k], variances[:k] / variances.sum())


def pca_directions(pca: PCA, num: Optional[int] = None, layers: Optional[tuple[int, int]] = None,
                   prefix: str = "pc") -> list[Direction]:
  """The first `num` principal components as Directions ("pc0", ...) scaled by their std."""
  num = len(pca.variances) if num is None else min(num, len(pca.variances))
  suffix = "" if layers is None else f"@{layers[0]}-{layers[1]}"
  return [Direction(f"{prefix}{i}{suffix}", pca.components[i], float(np.sqrt(pca.variances[i])), layers)
          for i in range(num)]


# --- Linear probes (InterFaceGAN) ----------------------------------------------------------------


class LinearProbe(NamedTuple):
  """A linear score ws @ weight + bias predicting an attribute (kind "linear") or the logit of a
  label (kind "logistic"). quality: R^2 ("linear") or accuracy ("logistic") on held-out samples."""
  name: str
  kind: str
  weight: np.ndarray
  bias: float
  quality: float

  def scores(self, ws: np.ndarray) -> np.ndarray:
    """(N,) probe scores of ws (N, D) (or (N, L, D) W+: per layer, averaged: exact for equal layers)."""
    ws = np.asarray(ws, np.float64)
    if ws.ndim == 3:
      ws = ws.mean(axis=1)
    return ws @ self.weight + self.bias


def _split(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  if not 0 <= holdout < 1:
    raise ValueError(f"holdout is a fraction in [0, 1), got {holdout}.")
  order = np.random.default_rng(seed).permutation(n)
  cut = n - int(round(holdout * n))
  if cut < 2:
    raise ValueError(f"Too few samples ({n}) to fit a probe with holdout={holdout}.")
  return order[:cut], (order[cut:] if cut < n else order[:cut])


def fit_linear_probe(ws: np.ndarray, targets: np.ndarray, name: str, *, l2: float = 1e-3,
                     holdout: float = 0.2, seed: int = 0) -> LinearProbe:
  """Ridge regression targets (N,) ~ ws (N, D) @ weight + bias, fitted on 1 - holdout of the samples.

  The penalty is l2 * N_fit * |weight|^2 on centred data (bias unpenalised); quality is R^2 on the
  held-out samples (on the fitting samples when holdout = 0).
  """
  ws = _as_matrix(ws)
  y = np.asarray(targets, np.float64)
  if y.shape != (ws.shape[0],):
    raise ValueError(f"targets must have shape ({ws.shape[0]},), got {y.shape}.")
  fit, test = _split(len(y), holdout, seed)
  x_mean, y_mean = ws[fit].mean(0), y[fit].mean()
  xc = ws[fit] - x_mean
  gram = xc.T @ xc + l2 * len(fit) * np.eye(ws.shape[1])
  weight = np.linalg.solve(gram, xc.T @ (y[fit] - y_mean))
  bias = float(y_mean - x_mean @ weight)
  residual = y[test] - (ws[test] @ weight + bias)
  total = np.sum(np.square(y[test] - y[test].mean()))
  r2 = float(1 - np.sum(np.square(residual)) / total) if total > 0 else 0.0
  return LinearProbe(name, "linear", weight, bias, r2)


def fit_logistic_probe(ws: np.ndarray, labels: np.ndarray, name: str, *, l2: float = 1e-3,
                       holdout: float = 0.2, seed: int = 0, iterations: int = 30) -> LinearProbe:
  """L2-regularised logistic regression of binary labels (N,) on ws (N, D), by Newton's method.

  The penalty is l2 * N_fit / 2 * |weight|^2 (bias unpenalised); ws are centred and scaled by their
  overall std while fitting (the returned weight and bias are for raw ws). Quality: held-out accuracy.
  """
  ws = _as_matrix(ws)
  y = np.asarray(labels).astype(np.float64)
  if y.shape != (ws.shape[0],) or not np.all((y == 0) | (y == 1)):
    raise ValueError(f"labels must be (N,) = ({ws.shape[0]},) zeros and ones, got shape {y.shape}.")
  fit, test = _split(len(y), holdout, seed)
  if y[fit].min() == y[fit].max():
    raise ValueError(f"Probe {name!r}: every fitting sample has label {int(y[fit][0])}; a logistic probe "
                     "needs both labels (sample more, or drop this attribute).")
  x_mean = ws[fit].mean(0)
  x_std = float(ws[fit].std()) or 1.0
  x = np.concatenate([(ws[fit] - x_mean) / x_std, np.ones((len(fit), 1))], axis=1)
  n, d = x.shape
  penalty = l2 * n * np.eye(d)
  penalty[-1, -1] = 0.0
  theta = np.zeros(d)
  for _ in range(iterations):
    p = 1.0 / (1.0 + np.exp(-np.clip(x @ theta, -30, 30)))
    grad = x.T @ (p - y[fit]) + penalty @ theta
    hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(d)
    step = np.linalg.solve(hessian, grad)
    theta -= step
    if np.max(np.abs(step)) < 1e-10:
      break
  weight = theta[:-1] / x_std
  bias = float(theta[-1] - x_mean @ weight)
  accuracy = float(np.mean(((ws[test] @ weight + bias) > 0) == (y[test] == 1)))
  return LinearProbe(name, "logistic", weight, bias, accuracy)


def _unit(vector: np.ndarray, what: str) -> np.ndarray:
  norm = np.linalg.norm(vector)
  if not norm > 0:
    raise ValueError(f"{what} is the zero vector: it has no direction.")
  return vector / norm


def _scale(ws: np.ndarray, unit: np.ndarray) -> float:
  return float(np.std(_as_matrix(ws) @ unit))


def probe_direction(probe: LinearProbe, ws: np.ndarray, layers: Optional[tuple[int, int]] = None) -> Direction:
  """The probe's normal (weight / |weight|: its score grows along it), scaled by the std of ws along it."""
  unit = _unit(probe.weight, f"Probe {probe.name!r}'s weight")
  suffix = "" if layers is None else f"@{layers[0]}-{layers[1]}"
  return Direction(probe.name + suffix, unit, _scale(ws, unit), layers)


def orthogonalize(vector: np.ndarray, held: np.ndarray, tol: float = 1e-6) -> np.ndarray:
  """The unit vector along the part of `vector` (D,) orthogonal to every row of `held` (K, D).

  Uses an orthonormal basis of the rows' span (QR), so correlated held vectors are fine. Raises
  when `vector` lies (within tol, relative) in that span: there is nothing left to move along.
  """
  vector = np.asarray(vector, np.float64)
  held = np.asarray(held, np.float64).reshape(-1, vector.shape[0])
  if held.shape[0] == 0:
    return _unit(vector, "vector")
  q, r = np.linalg.qr(held.T)
  q = q[:, np.abs(np.diag(r)) > tol * max(np.abs(np.diag(r)).max(), 1e-300)]   # drop dependent rows
  residual = vector - q @ (q.T @ vector)
  if np.linalg.norm(residual) <= tol * np.linalg.norm(vector):
    raise ValueError("The target direction lies in the span of the held directions: moving along it "
                     "necessarily changes the held attributes. Hold fewer attributes.")
  return residual / np.linalg.norm(residual)


def conditional_direction(target: LinearProbe, held: Sequence[LinearProbe], ws: np.ndarray,
                          layers: Optional[tuple[int, int]] = None) -> Direction:
  """InterFaceGAN conditional manipulation: the target probe's normal projected orthogonally to the
  held probes' normals. Every held probe's score is unchanged along it (exactly, being linear); the
  target's score still grows. Named "target|held1,held2"."""
  if not held:
    return probe_direction(target, ws, layers)
  unit = orthogonalize(target.weight, np.stack([p.weight for p in held]))
  suffix = "" if layers is None else f"@{layers[0]}-{layers[1]}"
  name = f"{target.name}|{','.join(p.name for p in held)}{suffix}"
  return Direction(name, unit, _scale(ws, unit), layers)


def fit_attribute_probes(ws: np.ndarray, measured: dict[str, np.ndarray],
                         names: Sequence[str] = ATTRIBUTE_PROBES) -> dict[str, LinearProbe]:
  """{name: linear probe of measured[name] (N,) on ws (N, D)} for the `names` that were measured and
  vary over the samples (a constant attribute, e.g. the aspect of a barely trained generator's
  full-frame blobs, has no direction to find)."""
  return {name: fit_linear_probe(ws, measured[name], name) for name in names
          if name in measured and np.ptp(np.asarray(measured[name])) > 0}


def attribute_directions(probes: dict[str, LinearProbe], ws: np.ndarray, held: Sequence[str] = HELD,
                         layers: Optional[tuple[int, int]] = None) -> dict[str, tuple[Direction, Direction]]:
  """{name: (plain direction "name", conditional direction "name|held,...")} of every probe: the
  conditional one holds the probes of `held` (those present, other than itself) fixed."""
  return {name: (probe_direction(probe, ws, layers),
                 conditional_direction(probe, [probes[h] for h in held if h in probes and h != name], ws, layers))
          for name, probe in probes.items()}


# --- Saving --------------------------------------------------------------------------------------

DIRECTIONS_FILE = "directions.npz"


def save_directions(path: str, directions: Sequence[Direction]) -> None:
  """Writes Directions to an .npz (names, (K, w_dim) vectors, scales, layer ranges; no pickle)."""
  if not directions:
    raise ValueError("No directions to save.")
  names = [d.name for d in directions]
  if len(set(names)) != len(names):
    raise ValueError(f"Direction names must be unique, got {names}.")
  layers = np.array([d.layers if d.layers is not None else (-1, -1) for d in directions], np.int64)
  np.savez(path, names=np.array(names), vectors=np.stack([np.asarray(d.vector, np.float64) for d in directions]),
           scales=np.array([d.scale for d in directions], np.float64), layers=layers)


def load_directions(path: str) -> dict[str, Direction]:
  """{name: Direction} written by `save_directions`.

  Raises:
    FileNotFoundError: no file at `path`.
    ValueError: the file is not a directions file.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No directions file {path}.")
  try:
    with np.load(path, allow_pickle=False) as saved:
      names, vectors, scales, layers = (saved[k] for k in ("names", "vectors", "scales", "layers"))
  except (OSError, ValueError, KeyError) as e:
    raise ValueError(f"{path} is not a directions file written by save_directions ({e}).") from None
  return {str(n): Direction(str(n), v, float(s), None if l[0] < 0 else (int(l[0]), int(l[1])))
          for n, v, s, l in zip(names, vectors, scales, layers)}
