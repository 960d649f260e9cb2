"""Latent edits with a continuous strength, and reports of what each edit changed.

Edits map W+ latents (N, num_ws, w_dim) and a strength to new latents; strength 0 is the identity
(bit for bit: every edit adds strength * something, or lerps by strength):
  apply_direction         walk along a Direction (gan/editing/directions.py), on its layer range:
                          colour, size, shape, class walks, PCA components;
  style_mix               take a layer range from another product's latents (lerp by strength);
  interpolate             lerp between two latents (e.g. an inverted shoe and handbag);
  category_ws             w(z, class) of a class-conditional generator, for category interpolation
                          by `interpolate` between category_ws(z, a) and category_ws(z, b).

Measurement and trust: `measure` turns images into named per-image numbers (the measured
attributes of gan/attributes.py, one indicator per dominant-colour name and the domain classifier's
class probabilities); `edit_report` compares the numbers before and after an edit: how much the
target moved and how much everything else moved. `run_edit` does render -> edit -> render ->
measure -> report for a list of strengths.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan import attributes
from gan import sampling
from gan.editing import directions as directions_lib
from gan.editing import inversion

# Attributes whose mean absolute change edit_report lists. color_x / color_y / color_value encode the
# dominant colour's name and jump when it flips: that is reported as dominant_color_changed instead.
CONTINUOUS = tuple(n for n in attributes.ATTRIBUTE_NAMES if not n.startswith("color_")) + attributes.POSE_NAMES

Strength = Union[float, jax.Array]
EditFn = Callable[[jax.Array, Strength], jax.Array]     # (ws, strength) -> ws
Measurements = dict[str, np.ndarray]                   # name -> (N,) float64


# --- Edits ---------------------------------------------------------------------------------------


def layer_mask(num_ws: int, layers: Optional[tuple[int, int]]) -> jax.Array:
  """(num_ws,) float32: 1 on layers [start, stop), 0 elsewhere; all ones for None."""
  if layers is None:
    return jnp.ones((num_ws,), jnp.float32)
  start, stop = layers
  if not 0 <= start < stop <= num_ws:
    raise ValueError(f"layers must be a range [start, stop) with 0 <= start < stop <= {num_ws}, got {layers}.")
  return ((jnp.arange(num_ws) >= start) & (jnp.arange(num_ws) < stop)).astype(jnp.float32)


def _check_ws(ws: jax.Array) -> jax.Array:
  ws = jnp.asarray(ws, jnp.float32)
  if ws.ndim != 3:
    raise ValueError(f"Edits take W+ latents (N, num_ws, w_dim), got shape {ws.shape}; broadcast w "
                     "with gan.editing.inversion.broadcast_w.")
  return ws


def _per_sample(strength: Strength) -> jax.Array:
  s = jnp.asarray(strength, jnp.float32)
  return s.reshape(-1, 1, 1) if s.ndim else s


def apply_direction(ws: jax.Array, direction: directions_lib.Direction, strength: Strength) -> jax.Array:
  """ws + strength * direction.scale * direction.vector on direction.layers.

  ws: (N, num_ws, w_dim); strength: a scalar or (N,) per sample, in standard deviations of w along
  the direction (negative values go the other way).
  """
  ws = _check_ws(ws)
  if direction.vector.shape != (ws.shape[-1],):
    raise ValueError(f"Direction {direction.name!r} has shape {direction.vector.shape}, latents have w_dim {ws.shape[-1]}.")
  step = jnp.asarray(direction.vector * direction.scale, jnp.float32)
  delta = layer_mask(ws.shape[1], direction.layers)[:, None] * step[None, :]
  return ws + _per_sample(strength) * delta[None]


def interpolate(ws_a: jax.Array, ws_b: jax.Array, t: Strength) -> jax.Array:
  """(1 - t) ws_a + t ws_b: t = 0 gives ws_a, 1 gives ws_b, exactly (scalar or (N,) t)."""
  ws_a, ws_b = _check_ws(ws_a), _check_ws(ws_b)
  if ws_a.shape != ws_b.shape:
    raise ValueError(f"Latents to interpolate must have the same shape, got {ws_a.shape} and {ws_b.shape}.")
  return _lerp(ws_a, ws_b, _per_sample(t))


def _lerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
  # (1 - t) a + t b rather than a + t (b - a): exactly a at t = 0 and exactly b at t = 1.
  return (1.0 - t) * a + t * b


def style_mix(ws_a: jax.Array, ws_b: jax.Array, layers: tuple[int, int], strength: Strength = 1.0) -> jax.Array:
  """Product a with product b's styles on layers [start, stop): coarse layers carry shape and size,
  fine ones colour and texture. strength lerps those layers from a (0) to b (1)."""
  ws_a, ws_b = _check_ws(ws_a), _check_ws(ws_b)
  if ws_a.shape != ws_b.shape:
    raise ValueError(f"Latents to mix must have the same shape, got {ws_a.shape} and {ws_b.shape}.")
  mask = layer_mask(ws_a.shape[1], layers)[None, :, None]
  return _lerp(ws_a, ws_b, _per_sample(strength) * mask)


def category_ws(generator: nn.Module, variables: Any, z: jax.Array, labels: jax.Array) -> jax.Array:
  """W+ latents (N, num_ws, w_dim) of z (N, z_dim) with class labels (N,) (class-conditional StyleGAN).

  Category interpolation: interpolate(category_ws(.., z, a), category_ws(.., z, b), t) keeps the
  latent z (the product's "style") and moves its class embedding's effect from a to b.
  """
  if not getattr(generator, "num_classes", 0):
    raise ValueError("category_ws needs a class-conditional StyleGAN (model.conditional=True); for an "
                     "unconditional one walk along a class probe direction (directions.fit_logistic_probe).")
  w = generator.apply(variables, z, labels, method=generator.mapping, train=False)
  return inversion.broadcast_w(w, generator.num_ws)


def direction_edit(direction: directions_lib.Direction) -> EditFn:
  """apply_direction with the direction bound: an EditFn for run_edit."""
  return lambda ws, strength: apply_direction(ws, direction, strength)


def mix_edit(ws_b: jax.Array, layers: tuple[int, int]) -> EditFn:
  """style_mix towards ws_b on `layers`, as an EditFn."""
  return lambda ws, strength: style_mix(ws, ws_b, layers, strength)


# --- Measurement ---------------------------------------------------------------------------------


class DomainClassifier(NamedTuple):
  """The domain classifier (gan.metrics.train_classifier.load): model, variables, class names and
  the image size it was trained at (images are bilinearly resized to it)."""
  model: nn.Module
  variables: Any
  class_names: tuple[str, ...]
  image_size: int

  @classmethod
  def load(cls, workdir: str) -> DomainClassifier:
    from gan.metrics import train_classifier  # pylint: disable=g-import-not-at-top
    model, variables, meta = train_classifier.load(workdir)
    return cls(model, variables, tuple(meta["class_names"]), int(meta["config"]["data"]["image_size"]))

  def probabilities(self, images: jax.Array) -> np.ndarray:
    """(N, num_classes) softmax probabilities of images (N, S, S, C) in [-1, 1]."""
    return np.asarray(_classify(self.model, self.image_size, self.variables, jnp.asarray(images, jnp.float32)))

  def perceptual(self) -> inversion.Perceptual:
    """Its perceptual distance as a loss (gan.editing.inversion.classifier_perceptual)."""
    return inversion.classifier_perceptual(self.model, self.variables, self.image_size)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _classify(model: nn.Module, image_size: int, variables: Any, images: jax.Array) -> jax.Array:
  if images.shape[1] != image_size:
    images = jax.image.resize(images, (images.shape[0], image_size, image_size, images.shape[-1]), "bilinear")
  logits, _ = model.apply(variables, images, train=False)
  return jax.nn.softmax(logits, axis=-1)


def color_key(name: str) -> str:
  return f"color={name}"


def class_key(name: str) -> str:
  return f"p({name})"


def measure(images: jax.Array | np.ndarray, classifier: Optional[DomainClassifier] = None,
            background: str = "auto") -> Measurements:
  """Per-image numbers of images (N, S, S, C) in [-1, 1]: name -> (N,) float64.

  attributes.ATTRIBUTE_NAMES (continuous, in [0, 1]: brightness, size, width, height, aspect,
  saturation, hue_x, hue_y, color_x, color_y, color_value), attributes.POSE_NAMES (in [0, 1]:
  orientation, the silhouette's tilt, and facing, which way its thin end points; see
  attributes.pose_vectors), "color=<name>" (1 when that is the dominant colour, for every
  attributes.COLOR_NAMES) and, with a classifier, "p(<class>)" its class probabilities.
  """
  pixels = sampling.to_uint8(images)
  measured = attributes.measure(pixels, background)
  names = attributes.ATTRIBUTE_NAMES + attributes.POSE_NAMES
  vectors = np.concatenate([attributes.attribute_vectors(measured), attributes.pose_vectors(measured)], -1)
  out = {name: vectors[:, i].astype(np.float64) for i, name in enumerate(names)}
  for index, name in enumerate(attributes.COLOR_NAMES):
    out[color_key(name)] = (measured["dominant_color"] == index).astype(np.float64)
  if classifier is not None:
    probs = classifier.probabilities(images)
    for index, name in enumerate(classifier.class_names):
      out[class_key(name)] = probs[:, index].astype(np.float64)
  return out


def edit_report(before: Measurements, after: Measurements, target: Optional[str]) -> dict[str, Any]:
  """What an edit changed, from measurements of the same images before and after it.

  Returns a JSON-able dict:
    target, target_before / target_after: means of the target's number (None without a target);
    target_change: mean(after - before) of the target (signed: the edit's effect);
    other_changes: {name: mean |after - before|} for every attribute of CONTINUOUS except the target;
    max_other_change: [name, value] the largest of those;
    dominant_color_changed: fraction of images whose dominant colour name changed;
    class_prob_change: mean over images of the total variation between the class distributions
      (0.5 * sum |p_after - p_before|, in [0, 1]) and class_flip_rate: fraction of images whose most
      probable class changed (both only when a classifier was measured).
  """
  if set(before) != set(after):
    raise ValueError("before and after must be measurements of the same kind (same keys).")
  if target is not None and target not in before:
    raise ValueError(f"Unknown target {target!r}; measured: {', '.join(sorted(before))}.")
  report: dict[str, Any] = {"target": target}
  if target is not None:
    report["target_before"] = float(np.mean(before[target]))
    report["target_after"] = float(np.mean(after[target]))
    report["target_change"] = float(np.mean(after[target] - before[target]))
  others = {name: float(np.mean(np.abs(after[name] - before[name])))
            for name in CONTINUOUS if name in before and name != target}
  report["other_changes"] = others
  if others:
    name = max(others, key=others.get)
    report["max_other_change"] = [name, others[name]]
  colors = [color_key(n) for n in attributes.COLOR_NAMES if color_key(n) in before]
  if colors:
    dominant_before = np.argmax(np.stack([before[c] for c in colors]), axis=0)
    dominant_after = np.argmax(np.stack([after[c] for c in colors]), axis=0)
    report["dominant_color_changed"] = float(np.mean(dominant_before != dominant_after))
  classes = sorted(k for k in before if k.startswith("p("))
  if classes:
    p_before = np.stack([before[c] for c in classes], axis=-1)
    p_after = np.stack([after[c] for c in classes], axis=-1)
    report["class_prob_change"] = float(np.mean(0.5 * np.abs(p_after - p_before).sum(-1)))
    report["class_flip_rate"] = float(np.mean(np.argmax(p_before, -1) != np.argmax(p_after, -1)))
  return report


def run_edit(render_ws: Callable[[jax.Array], jax.Array], measure_fn: Callable[[jax.Array], Measurements],
             ws: jax.Array, edit: EditFn, strengths: Sequence[float], target: Optional[str],
             before: Optional[Measurements] = None) -> tuple[dict[float, jax.Array], list[dict[str, Any]]]:
  """Applies `edit` at each strength and reports it.

  render_ws: ws (N, num_ws, w_dim) -> images (use fixed noise so before and after differ only by the
  edit); measure_fn: images -> Measurements (e.g. functools.partial(measure, classifier=...));
  before: measurements of render_ws(ws) if already known. Returns ({strength: images}, [report per
  strength, each with its "strength"]).
  """
  ws = _check_ws(ws)
  if before is None:
    before = measure_fn(render_ws(ws))
  images, reports = {}, []
  for strength in strengths:
    edited = render_ws(edit(ws, float(strength)))
    images[float(strength)] = edited
    reports.append({"strength": float(strength), **edit_report(before, measure_fn(edited), target)})
  return images, reports
