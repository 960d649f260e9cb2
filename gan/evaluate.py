"""Command line: evaluate a training run's generator in the feature space of a feature network.

  python -m gan.evaluate --workdir runs/dcgan [--features domain|inception] [--reference train|test] \
      [--classifier runs/classifier_fashion_mnist] [--num_samples 10000] [--seed 0]

The classifier defaults to the run's config.eval.classifier_dir (runs/classifier_products for the
product-photo configs); one trained on images of other channels than the run's is refused.

Generates `num_samples` images from the latest checkpoint (EMA generator), one jit per batch that
generates and extracts features, and reports FID, KID, precision / recall / density / coverage,
the Inception Score in that network's classes and, with the domain classifier, class-histogram
diagnostics (KL to the real class distribution, classes covered) and, for conditional models,
product-recognition accuracy (does "generate a sneaker" give a sneaker?). Next to them: the
real-data floor, the same metrics between the train and test splits. Writes workdir/metrics.json
and prints a table.

Feature networks:
  domain     the classifier trained by gan.metrics.train_classifier (the default: meaningful on
             small grayscale product images);
  inception  InceptionV3 pool3 of the TF 2015-12-05 graph (`python -m gan.weights fetch inception`),
             StyleGAN's protocol (uint8 images, NVIDIA bilinear resize to 299; gan/metrics/inception.py),
             for numbers comparable with published FIDs. No classifier head: no Inception Score.
             The protocol (weights file and sha256, resizer, sample count, reference split) is
             written into metrics.json.
Real-data features are computed once per (dataset, split, network, resolution) and cached.

Image translation runs (config.task "pix2pix" / "cyclegan") are detected from the workdir:

  python -m gan.evaluate --workdir runs/pix2pix_products [--classifier runs/classifier_products]

pix2pix: PSNR / SSIM (gan/metrics/image.py, [-1, 1] images, data_range 2) of G(edges) vs the real
photos of the held-out pairs and FID / KID of the outputs vs those photos, next to baselines (the
edge map itself, the mean training photo) and the floor (real training photos vs held-out photos).
CycleGAN: FID / KID of G_AB(held-out A) vs real training B and of G_BA(held-out B) vs real training
A, next to the floor (real held-out target photos) and the untranslated input. The classifier
defaults to the run's config.eval.classifier_dir; without it pix2pix skips FID / KID with a warning.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import zipfile
from typing import Any, Callable, NamedTuple, Optional

from absl import app
from absl import flags
from absl import logging
from clu import metric_writers
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan import conditioning
from gan import data
from gan import sample
from gan import sampling
from gan.metrics import diversity
from gan.metrics import fid
from gan.metrics import image as image_metrics
from gan.metrics import inception
from gan.metrics import inception_score
from gan.metrics import kid
from gan.metrics import lpips
from gan.metrics import precision_recall
from gan.metrics import train_classifier
from gan.style import translation


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


def classification_accuracy_score(workdir: str, classifier_dir: str, num_samples: int, steps: int = 0,
                                  seed: int = 0, batch_size: int = 500) -> float:
  """CAS (Ravuri & Vinyals 2019): train a classifier on generated (image, label) pairs only, with the
  domain classifier's own recipe (config.train.steps unless `steps` > 0), and return its accuracy
  on the real test split. Compare it with the domain classifier's test accuracy (trained on real).
  """
  config, generator, state, meta = sample.load_run(workdir)
  num_classes = generator.num_classes
  if not num_classes:
    raise ValueError("CAS needs a class-conditional generator (labels for the generated images); "
                     f"{workdir} is unconditional.")
  _, _, classifier_meta = train_classifier.load(classifier_dir)
  recipe = ml_collections.ConfigDict(classifier_meta["config"])
  if steps:
    recipe.train.steps = steps
  stats_key, key = jax.random.split(jax.random.PRNGKey(seed))
  stats = sampling.standing_batch_stats(generator, state.ema_g_params, state.g_batch_stats, stats_key,
                                        config.sample.standing_stats_batch, config.model.z_dim, num_classes)
  labels = (np.arange(-(-num_samples // batch_size) * batch_size) % num_classes).astype(np.int32)

  @jax.jit
  def generate(batch_labels, batch_key):
    z = jax.random.normal(batch_key, (batch_size, config.model.z_dim), jnp.float32)
    return sampling.apply_eval(generator, state.ema_g_params, stats, z, batch_labels)

  images = np.concatenate([sampling.to_uint8(generate(labels[i:i + batch_size], jax.random.fold_in(key, i)))
                           for i in range(0, len(labels), batch_size)])
  generated = data.Dataset(images[:num_samples], labels[:num_samples], tuple(meta["class_names"]))
  model, variables = train_classifier.fit(recipe, generated, metric_writers.LoggingWriter())
  test_config = config.data.copy_and_resolve_references()
  test_config.split, test_config.max_examples = data.held_out_split(config.data), 0
  return train_classifier.evaluate(model, variables, data.load_dataset(test_config))


def make_training_evaluator(config: ml_collections.ConfigDict, generator,
                            pool: Optional[sampling.ConditionPool] = None
                            ) -> Optional[Callable[[Any], dict[str, float]]]:
  """fn(state) -> metrics of the EMA generator for the train loop, or None when evaluation is off.

  config.eval.features picks the network: "domain" (off, with a warning saying how to enable it,
  when there is no trained domain classifier in config.eval.classifier_dir) or "inception"
  (StyleGAN's protocol against the training split; missing weights are an error naming the fetch
  command). Off when config.eval.every is 0.
  """
  if not config.eval.every:
    return None
  features = config.eval.get("features", "domain")
  if features not in FEATURE_NETWORKS:
    raise ValueError(f"Unknown config.eval.features {features!r}; valid: {sorted(FEATURE_NETWORKS)}.")
  classifier_dir = config.eval.classifier_dir
  if features == "domain" and not os.path.isdir(os.path.join(classifier_dir, "checkpoints")):
    logging.warning("In-training evaluation is off: no domain classifier in %r. Train one with "
                    "python -m gan.metrics.train_classifier --config configs/classifier_fashion_mnist.py "
                    "--workdir %s (or set --config.eval.every=0 to silence this).", classifier_dir, classifier_dir)
    return None
  net = make_feature_network(features, config.data, classifier_dir)
  real = real_features(net, config.data, "train", config.eval.get("num_reference", 0))
  sampler = make_feature_sampler(generator, net, config.model.z_dim, config.eval.num_samples)

  def evaluate_state(state) -> dict[str, float]:
    fake = sample_features(sampler, generator, state.ema_g_params, state.g_batch_stats, net.variables,
                           num_samples=config.eval.num_samples, seed=config.eval.seed, z_dim=config.model.z_dim,
                           standing_stats_batch=config.sample.standing_stats_batch, pool=pool)
    return compare(real, fake, net, config.eval.seed, fake["labels"])

  return evaluate_state


# --------------------------------------------------------------------------- image translation
# pix2pix: PSNR / SSIM of G(edges) against the real photos of the held-out pairs, and FID / KID of the
# outputs vs those real photos. CycleGAN: FID / KID of G_AB(held-out A) vs real training B and of
# G_BA(held-out B) vs real training A. Floors: the same distances for real held-out images.


def _translation_classifier(classifier_dir: str, who: str) -> Optional[FeatureNetwork]:
  """The domain classifier, or None with a warning saying how to train it (FID / KID skipped)."""
  if os.path.isdir(os.path.join(classifier_dir, "checkpoints")):
    return domain_network(classifier_dir)
  logging.warning("%s: no domain classifier in %r, so FID / KID are skipped. Train one with python -m "
                  "gan.metrics.train_classifier --config configs/classifier_products.py --workdir %s.",
                  who, classifier_dir, classifier_dir)
  return None


def _fid_kid(real: dict[str, np.ndarray], fake: dict[str, np.ndarray], seed: int, suffix: str = ""
             ) -> dict[str, float]:
  results = fid_kid(real["features"], fake["features"], seed)
  return {f"fid{suffix}": results["fid"], f"kid{suffix}": results["kid"]}


def _rows(features: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
  return {k: v[keep] for k, v in features.items()}


def pix2pix_metrics(outputs: np.ndarray, targets: np.ndarray, net: Optional[FeatureNetwork] = None,
                    real: Optional[dict[str, np.ndarray]] = None, seed: int = 0) -> dict[str, float]:
  """outputs, targets (N, S, S, C) float32 in [-1, 1] -> mean "psnr" (dB), "ssim" and, when its
  weights are fetched (`python -m gan.weights fetch lpips`), "lpips_alex" over the N pairs (images
  of at least 31 px), and with a feature network "fid" / "kid" of the outputs vs the `real`
  features (real_features)."""
  results = {"psnr": float(np.mean(image_metrics.psnr(outputs, targets, data_range=2.0))),
             "ssim": float(np.mean(image_metrics.ssim(outputs, targets, data_range=2.0)))}
  if lpips.available("alex") and min(outputs.shape[1:3]) >= lpips.MIN_SIZE["alex"]:
    results["lpips_alex"] = lpips.mean_distance(lpips.cached("alex"), outputs, targets)
  if net is not None:
    results.update(_fid_kid(real, features_of(net, outputs), seed))
  return results


def _cyclegan_references(net: FeatureNetwork, config: ml_collections.ConfigDict
                         ) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray, np.ndarray]:
  """(real training features per domain {"a", "b"}, held-out A images, held-out B images (float [-1, 1]))."""
  tr = config.translation
  train_real = real_features(net, config.data, config.data.split)
  references = {"a": _rows(train_real, train_real["labels"] == tr.domain_a),
                "b": _rows(train_real, train_real["labels"] == tr.domain_b)}
  val_a, val_b = translation.load_domains(config.data, data.held_out_split(config.data), tr.domain_a, tr.domain_b)
  return references, translation.to_float(val_a.images), translation.to_float(val_b.images)


def cyclegan_metrics(generator, g_params, val_a: np.ndarray, val_b: np.ndarray,
                     references: dict[str, dict[str, np.ndarray]], net: FeatureNetwork, seed: int = 0
                     ) -> dict[str, float]:
  """"fid_a2b" / "kid_a2b" (G_AB(val_a) vs real B), "fid_b2a" / "kid_b2a", and "fid", their mean FID."""
  fake_b = translation.run_generator(generator, g_params["a2b"], val_a)
  fake_a = translation.run_generator(generator, g_params["b2a"], val_b)
  results = {**_fid_kid(references["b"], features_of(net, fake_b), seed, "_a2b"),
             **_fid_kid(references["a"], features_of(net, fake_a), seed, "_b2a")}
  results["fid"] = 0.5 * (results["fid_a2b"] + results["fid_b2a"])
  return results


def make_translation_evaluator(config: ml_collections.ConfigDict, generator
                               ) -> Optional[Callable[[Any], dict[str, float]]]:
  """fn(translation state) -> held-out metrics for the train loop, or None when evaluation is off.

  Off when config.eval.every is 0. Without the domain classifier (config.eval.classifier_dir) pix2pix
  still reports PSNR / SSIM and CycleGAN is off, both with a warning.
  """
  if not config.eval.every:
    return None
  net = _translation_classifier(config.eval.classifier_dir, "In-training evaluation")
  seed = config.eval.seed
  if config.task == "pix2pix":
    split = data.held_out_split(config.data)
    val = translation.load_pairs(config.data, split)
    inputs, targets = translation.to_float(val.pairs), translation.to_float(val.images)
    real = real_features(net, config.data, split) if net is not None else None
    return lambda state: pix2pix_metrics(translation.run_generator(generator, state.g_params, inputs),
                                         targets, net, real, seed)
  if net is None:
    return None
  references, val_a, val_b = _cyclegan_references(net, config)
  return lambda state: cyclegan_metrics(generator, state.g_params, val_a, val_b, references, net, seed)


def evaluate_translation_run(workdir: str, classifier_dir: Optional[str] = None, seed: int = 0,
                             features: str = "domain", weights_dir: Optional[str] = None,
                             resizer: str = "nvidia") -> dict[str, Any]:
  """Held-out metrics of a pix2pix / CycleGAN run with floors and baselines; writes workdir/metrics.json.

  pix2pix: model PSNR / SSIM / FID / KID on the held-out pairs; baselines "edge_map" (the input
  itself as the output) and "mean_train_photo" (the mean training photo for every input); floor: FID /
  KID of as many real training photos vs the held-out photos. CycleGAN: model FID / KID per
  direction; floor: the real held-out images of the target domain; baseline "input_unchanged".
  classifier_dir None: the run's config.eval.classifier_dir. features "inception": FID / KID in
  InceptionV3 space (StyleGAN's protocol) instead of the domain classifier's.
  """
  start = time.perf_counter()
  model = translation.load(workdir)
  config = model.config
  classifier_dir = classifier_dir or config.eval.classifier_dir
  if features == "domain":
    net = _translation_classifier(classifier_dir, "gan.evaluate")
  else:
    net = make_feature_network(features, config.data, classifier_dir, weights_dir, resizer)
  split = data.held_out_split(config.data)
  floor, baselines = {}, {}
  if model.task == "pix2pix":
    val = translation.load_pairs(config.data, split)
    inputs, targets = translation.to_float(val.pairs), translation.to_float(val.images)
    real = real_features(net, config.data, split) if net is not None else None
    metrics = pix2pix_metrics(translation.translate(model, inputs), targets, net, real, seed)
    mean_photo = translation.to_float(translation.load_pairs(config.data, config.data.split).images).mean(0)
    baselines["edge_map"] = pix2pix_metrics(inputs, targets, net, real, seed)
    baselines["mean_train_photo"] = pix2pix_metrics(np.broadcast_to(mean_photo, targets.shape), targets)
    if net is not None:
      train_real = real_features(net, config.data, config.data.split)
      pick = np.random.default_rng(seed).permutation(len(train_real["features"]))[:len(targets)]
      floor = _fid_kid(real, _rows(train_real, pick), seed)
  else:
    if net is None:
      raise FileNotFoundError(f"CycleGAN evaluation needs the domain classifier in {classifier_dir}: train it "
                              "with python -m gan.metrics.train_classifier --config "
                              f"configs/classifier_products.py --workdir {classifier_dir}.")
    references, val_a, val_b = _cyclegan_references(net, config)
    metrics = cyclegan_metrics(model.generator, model.params, val_a, val_b, references, net, seed)
    real_b, real_a = features_of(net, val_b), features_of(net, val_a)
    floor = {**_fid_kid(references["b"], real_b, seed, "_a2b"),
             **_fid_kid(references["a"], real_a, seed, "_b2a")}
    baselines["input_unchanged"] = {**_fid_kid(references["b"], real_a, seed, "_a2b"),
                                    **_fid_kid(references["a"], real_b, seed, "_b2a")}
    for record in (floor, baselines["input_unchanged"]):
      record["fid"] = 0.5 * (record["fid_a2b"] + record["fid_b2a"])
  record = {
      "task": model.task,
      "model": metrics,
      "real_data_floor": floor,
      "baselines": baselines,
      "computed_with": {
          "features": net.description if net is not None else "none (no domain classifier: FID / KID skipped)",
          **({"protocol": net.protocol} if net is not None and net.protocol else {}),
          "held_out_split": split, "step": model.step, "seed": seed,
          "floor": ("real train photos vs held-out photos" if model.task == "pix2pix"
                    else "real held-out target-domain photos vs real train target-domain photos"),
          "psnr_ssim": "data_range 2 on [-1, 1] images, mean over held-out pairs" if model.task == "pix2pix" else "",
          "lpips": ("LPIPS-Alex v0.1 (gan/metrics/lpips.py), mean over held-out pairs"
                    if lpips.available("alex") else
                    "skipped: weights not fetched (python -m gan.weights fetch lpips)") if model.task == "pix2pix" else "",
          "seconds": time.perf_counter() - start,
      },
  }
  with open(os.path.join(workdir, "metrics.json"), "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
  return record


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


def evaluate_run(workdir: str, classifier_dir: Optional[str] = None, num_samples: int = 10_000, seed: int = 0,
                 features: str = "domain", weights_dir: Optional[str] = None, resizer: str = "nvidia",
                 reference_split: str = "train", num_reference: int = 0, cas_samples: int = 0,
                 cas_steps: int = 0) -> dict[str, Any]:
  """Computes the metrics of a run, writes workdir/metrics.json and returns its content.

  reference_split: the real split the generated images are compared with, "train" or "test" (the
  held-out split; Lucic et al. 2018 compare 10,000 samples with the 10,000 test images), all of it
  or `num_reference` evenly spaced images. The real-data floor compares `num_samples` evenly spaced
  images of the other split with the same reference.
  cas_samples > 0 also computes the classification accuracy score on that many generated images
  (conditional runs only; it trains a classifier: minutes on CPU).
  """
  if features not in FEATURE_NETWORKS:
    raise ValueError(f"Unknown --features {features!r}; valid: {sorted(FEATURE_NETWORKS)}.")
  if reference_split not in ("train", "test"):
    raise ValueError(f"Unknown reference split {reference_split!r}; valid: train, test (the held-out split).")
  start = time.perf_counter()
  config, generator, state, _ = sample.load_run(workdir)
  classifier_dir = classifier_dir or config.eval.classifier_dir or DEFAULT_CLASSIFIER
  net = make_feature_network(features, config.data, classifier_dir, weights_dir, resizer)
  held_out = data.held_out_split(config.data)
  reference_name, floor_name = ("train", held_out) if reference_split == "train" else (held_out, "train")
  fake = sample_features(make_feature_sampler(generator, net, config.model.z_dim, num_samples), generator,
                         state.ema_g_params, state.g_batch_stats, net.variables, num_samples=num_samples,
                         seed=seed, z_dim=config.model.z_dim,
                         standing_stats_batch=config.sample.standing_stats_batch,
                         pool=conditioning.load_pool(workdir) if config.model.cond_dim else None)
  reference = real_features(net, config.data, reference_name, num_reference)
  floor_fake = real_features(net, config.data, floor_name, num_samples)
  floor = compare(reference, floor_fake, net, seed, floor_fake["labels"] if fake["labels"] is not None else None)
  model_metrics = compare(reference, fake, net, seed, fake["labels"])
  if cas_samples:
    model_metrics["classification_accuracy_score"] = classification_accuracy_score(
        workdir, classifier_dir, cas_samples, cas_steps, seed)
    floor["classification_accuracy_score"] = train_classifier.load(classifier_dir)[2]["test_accuracy"]
  record = {
      "model": model_metrics,
      "real_data_floor": floor,
      "computed_with": {
          "features": net.description, "reference_split": reference_name,
          "floor": f"{floor_name} ({len(floor_fake['features'])} evenly spaced) vs {reference_name}",
          "dataset": config.data.name, "num_samples": num_samples,
          "num_reference": len(reference["features"]), "seed": seed, "generator": "EMA",
          "kid": "subsets of min(1000, N) drawn as torch-fidelity (gan/metrics/kid.py)",
          **({"protocol": net.protocol} if net.protocol else {}),
          "seconds": time.perf_counter() - start,
      },
  }
  with open(os.path.join(workdir, "metrics.json"), "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
  return record


def format_table(record: dict[str, Any]) -> str:
  """Markdown table: one row per metric; model, real-data floor and (translation) baseline columns."""
  baselines = record.get("baselines", {})
  floor_name = "real-data floor (train vs test)" if "baselines" not in record else "real-data floor"
  rows = [f"| metric | model | {floor_name} |" + "".join(f" baseline: {b} |" for b in baselines),
          "|---|---:|---:|" + "---:|" * len(baselines)]
  cell = lambda value: "" if value is None else f"{value:.4g}"
  for name, value in record["model"].items():
    others = [record["real_data_floor"].get(name)] + [b.get(name) for b in baselines.values()]
    rows.append(f"| {name} | {value:.4g} |" + "".join(f" {cell(v)} |" for v in others))
  return "\n".join(rows)


def define_flags() -> None:
  """Command-line flags, defined only when run as a program (the module is also a library)."""
  flags.DEFINE_string("workdir", None, "Training run to evaluate.")
  flags.DEFINE_string("classifier", None,
                      "Workdir of the domain classifier (gan.metrics.train_classifier); default the run's "
                      f"config.eval.classifier_dir, else {DEFAULT_CLASSIFIER}.")
  flags.DEFINE_integer("num_samples", 10_000, "Generated samples.")
  flags.DEFINE_integer("seed", 0, "Seed of latents and subsets.")
  flags.DEFINE_enum("features", "domain", sorted(FEATURE_NETWORKS), "Feature network.")
  flags.DEFINE_string("weights_dir", None, "Folder of fetched weights (default $PRODUCTGAN_WEIGHTS_DIR or the "
                      "user cache; see gan/weights.py).")
  flags.DEFINE_enum("resizer", "nvidia", ["nvidia", "pytorch_fid"], "Inception resizer: StyleGAN's (default) "
                    "or pytorch-fid's; FIDs of different resizers are not comparable.")
  flags.DEFINE_enum("reference", "train", ["train", "test"], "Real split the samples are compared with "
                    "(test: the held-out split, as Lucic et al. 2018).")
  flags.DEFINE_integer("num_reference", 0, "Reference images, evenly spaced over the split (0 = all).")
  flags.DEFINE_integer("cas_samples", 0, "Generated images for the classification accuracy score (0 = skip).")
  flags.DEFINE_integer("cas_steps", 0, "Training steps of the CAS classifier (0 = the domain classifier's).")


def main(argv):
  del argv
  f = flags.FLAGS
  try:
    if sample.load_config(f.workdir).get("task", "generation") != "generation":
      # Image translation: held-out PSNR / SSIM / FID; the classifier defaults to the run's own.
      record = evaluate_translation_run(f.workdir, f.classifier, f.seed, f.features, f.weights_dir, f.resizer)
    else:
      record = evaluate_run(f.workdir, f.classifier, f.num_samples, f.seed, f.features, f.weights_dir,
                            f.resizer, f.reference, f.num_reference, f.cas_samples, f.cas_steps)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print(format_table(record))
  print(f"\n{record['computed_with']}\nWrote {os.path.join(f.workdir, 'metrics.json')}")


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
