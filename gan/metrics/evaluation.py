"""Generated vs real images in the feature space of a feature network: the machinery of every FID here.

Feature networks (`FEATURE_NETWORKS`, by `make_feature_network`):
  domain     the domain classifier (task "classifier", read by gan.metrics.train_classifier.load;
             meaningful on small grayscale product images; also gives class probabilities:
             Inception Score, class histograms, recognition accuracy);
  inception  InceptionV3 pool3 of the TF 2015-12-05 graph (`python -m gan.weights fetch inception`),
             StyleGAN's protocol (uint8 images, NVIDIA bilinear resize to 299; gan/metrics/inception.py),
             for numbers comparable with published FIDs. No classifier head: no Inception Score.

`real_features` computes (and caches per dataset, split, network and resolution) the features of a
real split, `sample_features` those of a generator's samples (one jit per batch that generates and
extracts), `compare` the metrics between two such sets (FID, KID, precision / recall / density /
coverage and, with a classifier head, IS and class diagnostics). The task modules (gan/tasks/) build
their in-training evaluators from these, gan.evaluate its reports.
"""

from __future__ import annotations

import functools
import os
import time
import zipfile
from typing import Any, Callable, NamedTuple, Optional

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan import data
from gan import sampling
from gan.metrics import diversity
from gan.metrics import fid
from gan.metrics import inception
from gan.metrics import inception_score
from gan.metrics import kid
from gan.metrics import precision_recall
from gan.metrics import train_classifier


class FeatureNetwork(NamedTuple):
  name: str                    # cache key and report label
  extract: Callable[[Any, jax.Array], tuple[Optional[jax.Array], jax.Array]]
  #                            (variables, images (N, S, S, C) in [-1, 1]) -> (logits (N, K) | None, features (N, D))
  variables: Any
  class_names: Optional[tuple[str, ...]]   # the dataset's classes (domain); None for ImageNet logits
  cache_dir: str               # where real-data features are cached
  batch_size: int              # images per jit call
  description: str
  protocol: Optional[dict[str, Any]] = None   # how features are computed, for metrics.json


def domain_network(classifier_dir: str) -> FeatureNetwork:
  model, variables, meta = train_classifier.load(classifier_dir)
  return FeatureNetwork(
      name="domain", extract=lambda v, x: model.apply(v, x, train=False), variables=variables,
      class_names=tuple(meta["class_names"]), cache_dir=os.path.join(classifier_dir, "reference_features"),
      batch_size=500, description=f"domain classifier {os.path.abspath(classifier_dir)} "
                                  f"(test accuracy {meta['test_accuracy']:.4f})")


DEFAULT_CLASSIFIER = "runs/classifier_fashion_mnist"


def check_classifier_matches(classifier_dir: str, data_config: ml_collections.ConfigDict) -> None:
  """Raises ValueError when the domain classifier was trained on images of other channels than the
  run's data (e.g. the Fashion-MNIST classifier for an RGB products run)."""
  if not os.path.isdir(os.path.join(classifier_dir, "checkpoints")):
    return   # train_classifier.load says how to train it
  _, _, meta = train_classifier.load(classifier_dir)
  channels = meta["config"]["data"]["channels"]
  if channels != data_config.channels:
    raise ValueError(
        f"The domain classifier in {classifier_dir} was trained on {channels}-channel "
        f"{meta['config']['data'].get('name', '')} images, but the run generates {data_config.channels}-channel "
        f"{data_config.get('name', '')} images: pass --classifier with a classifier of the run's data "
        "(e.g. runs/classifier_products for the product photos, runs/classifier_fashion_mnist for Fashion-MNIST).")


def inception_network(weights_dir: Optional[str] = None, resizer: str = "nvidia") -> FeatureNetwork:
  """InceptionV3 pool3 features by StyleGAN's protocol (gan/metrics/inception.py); no logits.

  The cache key names the resizer and the weights' sha256, so features computed another way are
  never reused.
  """
  model, variables = inception.load_fid_inception(weights_dir)
  record = inception.weights_record(weights_dir)

  def extract(v, x):
    return None, model.apply(v, inception.preprocess(x, resizer=resizer))

  cache = os.path.join(os.environ.get("PRODUCTGAN_CACHE_DIR", os.path.expanduser("~/.cache/productgan")),
                       "reference_features")
  protocol = {"network": "InceptionV3 pool3 (TF inception-2015-12-05, StyleGAN's export)",
              "weights": f"{record['package']}=={record['version']}:{record['member']}",
              "weights_sha256": record["sha256"], "resizer": resizer, "quantized_to_uint8": True,
              "input": "uint8 levels resized to 299x299, then (x - 128) / 128; grayscale replicated to RGB"}
  # Small batches on CPU: XLA:CPU's images/s fall above ~16 images of 299x299 (the activations'
  # temporaries outgrow the host-memory settings of gan/host_memory.py; experiments/README.md).
  batch_size = 16 if jax.default_backend() == "cpu" else 128
  return FeatureNetwork(name=f"inception_{resizer}_{record['sha256'][:8]}", extract=extract,
                        variables=variables, class_names=None, cache_dir=cache, batch_size=batch_size,
                        description=f"InceptionV3 (TF 2015-12-05 weights from {protocol['weights']}), "
                                    f"{resizer} bilinear resize to 299, uint8-quantized",
                        protocol=protocol)


FEATURE_NETWORKS = {"domain": domain_network, "inception": inception_network}


@functools.lru_cache(maxsize=8)


def _jitted_features_and_probs(extract: Callable) -> Callable:
  """jit(variables, images) -> (features, probs | None), compiled once per network (train and test share it)."""
  def features_and_probs(variables, images):
    logits, features = extract(variables, images)
    return features, None if logits is None else jax.nn.softmax(logits)
  return jax.jit(features_and_probs)


def _concat(parts: list[Any]) -> Optional[np.ndarray]:
  return None if parts[0] is None else np.concatenate(parts)


def real_features(net: FeatureNetwork, data_config: ml_collections.ConfigDict, split: str, num: int = 0
                  ) -> dict[str, np.ndarray]:
  """{"features": (N, D), "probs": (N, K) (networks with a head), "labels": (N,)} of a real split.

  num > 0: only `num` images, evenly spaced over the split (every class of a class-sorted split is
  represented), e.g. 10,000 of Fashion-MNIST's 60,000 training images for Inception features
  (60,000 take ~40 min on a 2-core CPU). Cached on disk per (dataset, split, channels, network,
  resolution, num); a cache entry that cannot be read or does not hold the expected rows is
  recomputed, never used.
  """
  config = data_config.copy_and_resolve_references()
  config.split, config.max_examples = split, 0
  key = f"{split}_{config.channels}ch" + (f"_{num}even" if num else "")
  path = fid.stats_cache_path(net.cache_dir, dataset=config.name, split=key, features=net.name,
                              resolution=config.image_size).replace(".npz", "-features.npz")
  dataset = data.load_dataset(config)
  index = np.arange(len(dataset.images))
  if num and num < len(index):
    index = np.linspace(0, len(index) - 1, num).round().astype(int)
  labels = dataset.labels[index]
  if os.path.exists(path):
    try:
      with np.load(path, allow_pickle=False) as cached:
        result = {k: cached[k] for k in cached.files}
      if len(result["features"]) == len(index) and np.array_equal(result["labels"], labels):
        return result
      logging.warning("Cached features %s do not match the %s split now (%d rows, expected %d): recomputing.",
                      path, split, len(result["features"]), len(index))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
      logging.warning("Cached features %s are unreadable (%s): recomputing.", path, e)
  result = {**features_of(net, dataset.images[index]), "labels": labels}
  os.makedirs(net.cache_dir, exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez(tmp, **result)
  os.replace(tmp, path)        # atomic: a crash never leaves a half-written cache entry
  return result


class _Progress:
  """Logs "<what>: done / total images, images/s" at most every `every` seconds (Inception features
  of 10,000 images take minutes on a CPU)."""

  def __init__(self, what: str, total: int, every: float = 30.0):
    self.what, self.total, self.every = what, total, every
    self.start = self.last = time.perf_counter()

  def __call__(self, done: int) -> None:
    now = time.perf_counter()
    if now - self.last >= self.every or done >= self.total:
      self.last = now
      logging.info("%s: %d / %d images, %.1f images/s", self.what, done, self.total,
                   done / max(now - self.start, 1e-9))


def features_of(net: FeatureNetwork, images: np.ndarray) -> dict[str, np.ndarray]:
  """{"features": (N, D), "probs": (N, K)} of images (N, S, S, C), uint8 [0, 255] or float32 [-1, 1].

  Runs in net.batch_size batches (uint8 batches are scaled one at a time, so a large split never
  exists in float32 all at once).
  """
  extract = _jitted_features_and_probs(net.extract)
  scale = train_classifier.to_model_input if images.dtype == np.uint8 else (lambda x: x)
  progress = _Progress(f"{net.name} features of real images", len(images))
  outputs = []
  for i in range(0, len(images), net.batch_size):
    batch = images[i:i + net.batch_size]
    rows = len(batch)
    if rows < net.batch_size and len(images) > net.batch_size:
      # The last partial batch is padded to the full size: one compiled program serves every batch.
      batch = np.concatenate([batch, np.repeat(batch[-1:], net.batch_size - rows, axis=0)])
    features, probs = jax.device_get(extract(net.variables, scale(batch)))
    outputs.append((features[:rows], None if probs is None else probs[:rows]))
    progress(i + rows)
  result = {"features": np.concatenate([o[0] for o in outputs])}
  probs = _concat([o[1] for o in outputs])
  return result if probs is None else {**result, "probs": probs}


def make_feature_sampler(generator, net: FeatureNetwork, z_dim: int, num_samples: Optional[int] = None
                         ) -> Callable[..., Any]:
  """A jitted fn(g_params, g_batch_stats, net_variables, key, pool=None) -> (features, probs, labels).

  Labels are uniform over the classes, or, with a sampling.ConditionPool, (label, condition) rows of
  the training data (continuous-conditioned generators: the caption's or attributes' class).
  One batch of net.batch_size images is generated (eval-mode BN) and passed through the feature
  network in one jit; only features leave the device. Parameters are arguments, so training can
  call it again without recompiling. Batches hold net.batch_size images, or `num_samples` when fewer
  are needed in all (no images are generated to be thrown away).
  """
  num_classes = generator.num_classes
  batch_size = min(net.batch_size, num_samples) if num_samples else net.batch_size

  @jax.jit
  def generate_and_extract(g_params, g_batch_stats, net_variables, key, pool=None):
    z_key, label_key = jax.random.split(key)
    z = jax.random.normal(z_key, (batch_size, z_dim), jnp.float32)
    labels, cond = sampling.draw_conditions(label_key, batch_size, num_classes, pool)
    images = sampling.apply_eval(generator, g_params, g_batch_stats, z, labels, cond)
    logits, features = net.extract(net_variables, images)
    return features, None if logits is None else jax.nn.softmax(logits), labels

  return generate_and_extract


def sample_features(sampler, generator, g_params, g_batch_stats, net_variables, *, num_samples: int,
                    seed: int, z_dim: int, standing_stats_batch: int,
                    pool: Optional[sampling.ConditionPool] = None) -> dict[str, Any]:
  """Features (N, D), probabilities (N, K) and conditioning labels (N,) | None of N generated images.

  BN statistics are re-estimated for `g_params` once (see sampling.standing_batch_stats).
  """
  num_classes = generator.num_classes
  stats_key, key = jax.random.split(jax.random.PRNGKey(seed))
  stats = sampling.standing_batch_stats(generator, g_params, g_batch_stats, stats_key, standing_stats_batch,
                                        z_dim, num_classes, pool)
  outputs = [sampler(g_params, stats, net_variables, jax.random.fold_in(key, 0), pool)]
  per_batch = outputs[0][0].shape[0]
  progress = _Progress("generated images and their features", num_samples)
  for i in range(1, -(-num_samples // per_batch)):
    outputs.append(sampler(g_params, stats, net_variables, jax.random.fold_in(key, i), pool))
    if i % 16 == 0:   # an occasional wait keeps the count honest and costs nothing measurable
      jax.block_until_ready(outputs[-1])
      progress(min((i + 1) * per_batch, num_samples))
  features, probs, labels = (None if c is None else c[:num_samples]
                             for c in map(_concat, map(list, zip(*jax.device_get(outputs)))))
  result = {"features": features, "labels": labels if num_classes or pool is not None else None}
  return result if probs is None else {**result, "probs": probs}


def _real_subset(real: np.ndarray, n: int, seed: int) -> np.ndarray:
  return real[np.random.default_rng(seed).permutation(len(real))[:n]]


def fid_kid(real: np.ndarray, fake: np.ndarray, seed: int) -> dict[str, float]:
  """{"fid", "kid", "kid_std"} of feature sets real (N, D) and fake (M, D): FID uses every real row,
  KID a random real subset of min(N, M) rows (the subset `compare` uses for precision / recall)."""
  fid_value = fid.fid_from_features(real, fake)
  n = min(len(real), len(fake))
  kid_mean, kid_std = kid.kernel_inception_distance(_real_subset(real, n, seed), fake[:n],
                                                    subset_size=min(1000, n), seed=seed)
  return {"fid": fid_value, "kid": kid_mean, "kid_std": kid_std}


def compare(real: dict[str, np.ndarray], fake: dict[str, np.ndarray], net: FeatureNetwork, seed: int,
            conditional_labels: Optional[np.ndarray] = None) -> dict[str, float]:
  """All distribution metrics between two feature sets (fake may be another real split).

  FID uses every real feature; KID and precision/recall a random real subset of the fake count.
  """
  n = min(len(real["features"]), len(fake["features"]))
  real_subset = _real_subset(real["features"], n, seed)
  results = {
      **fid_kid(real["features"], fake["features"], seed),
      **precision_recall.precision_recall_density_coverage(real_subset, fake["features"][:n]),
      "mean_pairwise_feature_distance": diversity.mean_pairwise_distance(fake["features"], seed=seed),
  }
  if "probs" in fake:   # networks with a classifier head (the domain classifier)
    is_mean, is_std = inception_score.inception_score(fake["probs"])
    results.update({f"inception_score_{net.name}": is_mean, f"inception_score_{net.name}_std": is_std})
  if net.class_names is not None:
    num_classes = len(net.class_names)
    hist_fake = diversity.class_histogram(fake["probs"], num_classes)
    results["class_kl_to_real"] = diversity.kl_to_reference(
        hist_fake, diversity.class_histogram(real["labels"], num_classes))
    results["classes_covered"] = diversity.classes_covered(hist_fake)
    if conditional_labels is not None:
      results["recognition_accuracy"] = np.mean(np.argmax(fake["probs"], -1) == conditional_labels)
  return {k: float(v) for k, v in results.items()}


def make_feature_network(features: str, data_config: ml_collections.ConfigDict, classifier_dir: Optional[str] = None,
                         weights_dir: Optional[str] = None, resizer: str = "nvidia") -> FeatureNetwork:
  """The feature network `features` ("domain" | "inception") for a run's data."""
  if features not in FEATURE_NETWORKS:
    raise ValueError(f"Unknown features {features!r}; valid: {sorted(FEATURE_NETWORKS)}.")
  if features == "domain":
    classifier_dir = classifier_dir or DEFAULT_CLASSIFIER
    check_classifier_matches(classifier_dir, data_config)
    return domain_network(classifier_dir)
  if resizer not in inception.RESIZERS:
    raise ValueError(f"Unknown resizer {resizer!r}; valid: {', '.join(inception.RESIZERS)}.")
  return inception_network(weights_dir, resizer)
