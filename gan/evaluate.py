"""Command line: evaluate a training run's generator in the feature space of a feature network.

  python -m gan.evaluate --workdir runs/dcgan [--features domain|inception] \
      [--classifier runs/classifier_fashion_mnist] [--num_samples 10000] [--seed 0]

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
  inception  InceptionV3 with pytorch-fid's weights (gan/metrics/inception.py; images resized
             bilinearly to 299x299), for numbers comparable with published FIDs on photos.
Real-data features are computed once per (dataset, split, network, resolution) and cached.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
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
from gan.metrics import inception
from gan.metrics import inception_score
from gan.metrics import kid
from gan.metrics import precision_recall
from gan.metrics import train_classifier


class FeatureNetwork(NamedTuple):
  name: str                    # cache key and report label
  extract: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]
  #                            (variables, images (N, S, S, C) in [-1, 1]) -> (logits (N, K), features (N, D))
  variables: Any
  class_names: Optional[tuple[str, ...]]   # the dataset's classes (domain); None for ImageNet logits
  cache_dir: str               # where real-data features are cached
  batch_size: int              # images per jit call
  description: str


def domain_network(classifier_dir: str) -> FeatureNetwork:
  model, variables, meta = train_classifier.load(classifier_dir)
  return FeatureNetwork(
      name="domain", extract=lambda v, x: model.apply(v, x, train=False), variables=variables,
      class_names=tuple(meta["class_names"]), cache_dir=os.path.join(classifier_dir, "reference_features"),
      batch_size=500, description=f"domain classifier {os.path.abspath(classifier_dir)} "
                                  f"(test accuracy {meta['test_accuracy']:.4f})")


def inception_network(weights: Optional[str] = None) -> FeatureNetwork:
  model, variables = inception.load_fid_inception(weights)

  def extract(v, x):
    features, logits = model.apply(v, inception.preprocess(x))
    return logits, features

  cache = os.path.join(os.environ.get("PRODUCTGAN_CACHE_DIR", os.path.expanduser("~/.cache/productgan")),
                       "reference_features")
  return FeatureNetwork(name="inception", extract=extract, variables=variables, class_names=None,
                        cache_dir=cache, batch_size=50,
                        description="InceptionV3 (pytorch-fid 2015-12-05 weights), bilinear resize to 299")


FEATURE_NETWORKS = {"domain": domain_network, "inception": inception_network}


@functools.lru_cache(maxsize=8)
def _jitted_features_and_probs(extract: Callable) -> Callable:
  """jit(variables, images) -> (features, probs), compiled once per network (train and test share it)."""
  def features_and_probs(variables, images):
    logits, features = extract(variables, images)
    return features, jax.nn.softmax(logits)
  return jax.jit(features_and_probs)


def real_features(net: FeatureNetwork, data_config: ml_collections.ConfigDict, split: str
                  ) -> dict[str, np.ndarray]:
  """{"features": (N, D), "probs": (N, K), "labels": (N,)} of a real split, cached on disk."""
  path = fid.stats_cache_path(net.cache_dir, dataset=data_config.name, split=split, features=net.name,
                              resolution=data_config.image_size).replace(".npz", "-features.npz")
  if os.path.exists(path):
    with np.load(path) as cached:
      return dict(cached)
  config = data_config.copy_and_resolve_references()
  config.split, config.max_examples = split, 0
  dataset = data.load_dataset(config)
  extract = _jitted_features_and_probs(net.extract)
  outputs = []
  for i in range(0, len(dataset), net.batch_size):
    images = train_classifier.to_model_input(dataset.images[i:i + net.batch_size])
    outputs.append(jax.device_get(extract(net.variables, images)))
  result = {"features": np.concatenate([o[0] for o in outputs]),
            "probs": np.concatenate([o[1] for o in outputs]), "labels": dataset.labels}
  os.makedirs(net.cache_dir, exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez(tmp, **result)
  os.replace(tmp, path)        # atomic: a crash never leaves a half-written cache entry
  return result


def make_feature_sampler(generator, net: FeatureNetwork, z_dim: int) -> Callable[..., Any]:
  """A jitted fn(g_params, g_batch_stats, net_variables, key, pool=None) -> (features, probs, labels).

  Labels are uniform over the classes, or, with a sampling.ConditionPool, (label, condition) rows of
  the training data (continuous-conditioned generators: the caption's or attributes' class).
  One batch of net.batch_size images is generated (eval-mode BN) and passed through the feature
  network in one jit; only features leave the device. Parameters are arguments, so training can
  call it again without recompiling.
  """
  num_classes, batch_size = generator.num_classes, net.batch_size

  @jax.jit
  def generate_and_extract(g_params, g_batch_stats, net_variables, key, pool=None):
    z_key, label_key = jax.random.split(key)
    z = jax.random.normal(z_key, (batch_size, z_dim), jnp.float32)
    labels, cond = sampling.draw_conditions(label_key, batch_size, num_classes, pool)
    images = sampling.apply_eval(generator, g_params, g_batch_stats, z, labels, cond)
    logits, features = net.extract(net_variables, images)
    return features, jax.nn.softmax(logits), labels

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
  outputs += [sampler(g_params, stats, net_variables, jax.random.fold_in(key, i), pool)
              for i in range(1, -(-num_samples // per_batch))]
  features, probs, labels = (np.concatenate(x)[:num_samples] for x in zip(*jax.device_get(outputs)))
  return {"features": features, "probs": probs, "labels": labels if num_classes or pool is not None else None}


def compare(real: dict[str, np.ndarray], fake: dict[str, np.ndarray], net: FeatureNetwork, seed: int,
            conditional_labels: Optional[np.ndarray] = None) -> dict[str, float]:
  """All distribution metrics between two feature sets (fake may be another real split).

  FID uses every real feature; KID and precision/recall a random real subset of the fake count.
  """
  mu_r, sigma_r = fid.mean_cov(fid.update(fid.empty_stats(real["features"].shape[1]), real["features"]))
  mu_f, sigma_f = fid.mean_cov(fid.update(fid.empty_stats(fake["features"].shape[1]), fake["features"]))
  n = min(len(real["features"]), len(fake["features"]))
  real_subset = real["features"][np.random.default_rng(seed).permutation(len(real["features"]))[:n]]
  kid_mean, kid_std = kid.kernel_inception_distance(real_subset, fake["features"][:n],
                                                    subset_size=min(1000, n), seed=seed)
  is_mean, is_std = inception_score.inception_score(fake["probs"])
  results = {
      "fid": fid.frechet_distance(mu_r, sigma_r, mu_f, sigma_f),
      "kid": kid_mean, "kid_std": kid_std,
      **precision_recall.precision_recall_density_coverage(real_subset, fake["features"][:n]),
      f"inception_score_{net.name}": is_mean, f"inception_score_{net.name}_std": is_std,
      "mean_pairwise_feature_distance": diversity.mean_pairwise_distance(fake["features"], seed=seed),
  }
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

  Off when config.eval.every is 0, or (with a warning saying how to enable it) when there is no
  trained domain classifier in config.eval.classifier_dir.
  """
  if not config.eval.every:
    return None
  classifier_dir = config.eval.classifier_dir
  if not os.path.isdir(os.path.join(classifier_dir, "checkpoints")):
    logging.warning("In-training evaluation is off: no domain classifier in %r. Train one with "
                    "python -m gan.metrics.train_classifier --config configs/classifier_fashion_mnist.py "
                    "--workdir %s (or set --config.eval.every=0 to silence this).", classifier_dir, classifier_dir)
    return None
  net = domain_network(classifier_dir)
  real = real_features(net, config.data, "train")
  sampler = make_feature_sampler(generator, net, config.model.z_dim)

  def evaluate_state(state) -> dict[str, float]:
    fake = sample_features(sampler, generator, state.ema_g_params, state.g_batch_stats, net.variables,
                           num_samples=config.eval.num_samples, seed=config.eval.seed, z_dim=config.model.z_dim,
                           standing_stats_batch=config.sample.standing_stats_batch, pool=pool)
    return compare(real, fake, net, config.eval.seed, fake["labels"])

  return evaluate_state


def evaluate_run(workdir: str, classifier_dir: str, num_samples: int = 10_000, seed: int = 0,
                 features: str = "domain", inception_weights: Optional[str] = None,
                 cas_samples: int = 0, cas_steps: int = 0) -> dict[str, Any]:
  """Computes the metrics of a run, writes workdir/metrics.json and returns its content.

  cas_samples > 0 also computes the classification accuracy score on that many generated images
  (conditional runs only; it trains a classifier: minutes on CPU).
  """
  if features not in FEATURE_NETWORKS:
    raise ValueError(f"Unknown --features {features!r}; valid: {sorted(FEATURE_NETWORKS)}.")
  start = time.perf_counter()
  net = domain_network(classifier_dir) if features == "domain" else inception_network(inception_weights)
  config, generator, state, _ = sample.load_run(workdir)
  fake = sample_features(make_feature_sampler(generator, net, config.model.z_dim), generator,
                         state.ema_g_params, state.g_batch_stats, net.variables, num_samples=num_samples,
                         seed=seed, z_dim=config.model.z_dim,
                         standing_stats_batch=config.sample.standing_stats_batch,
                         pool=conditioning.load_pool(workdir) if config.model.cond_dim else None)
  real_train = real_features(net, config.data, "train")
  real_test = real_features(net, config.data, data.held_out_split(config.data))
  floor_fake = {k: v[:num_samples] for k, v in real_test.items()}
  floor = compare(real_train, floor_fake, net, seed,
                  floor_fake["labels"] if fake["labels"] is not None else None)
  model_metrics = compare(real_train, fake, net, seed, fake["labels"])
  if cas_samples:
    model_metrics["classification_accuracy_score"] = classification_accuracy_score(
        workdir, classifier_dir, cas_samples, cas_steps, seed)
    floor["classification_accuracy_score"] = train_classifier.load(classifier_dir)[2]["test_accuracy"]
  record = {
      "model": model_metrics,
      "real_data_floor": floor,
      "computed_with": {
          "features": net.description, "reference_split": "train", "floor": "train vs test",
          "dataset": config.data.name, "num_samples": num_samples, "seed": seed, "generator": "EMA",
          "seconds": time.perf_counter() - start,
      },
  }
  with open(os.path.join(workdir, "metrics.json"), "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
  return record


def format_table(record: dict[str, Any]) -> str:
  rows = ["| metric | model | real-data floor (train vs test) |", "|---|---:|---:|"]
  for name, value in record["model"].items():
    floor = record["real_data_floor"].get(name)
    rows.append(f"| {name} | {value:.4g} | {'' if floor is None else f'{floor:.4g}'} |")
  return "\n".join(rows)


def define_flags() -> None:
  """Command-line flags, defined only when run as a program (the module is also a library)."""
  flags.DEFINE_string("workdir", None, "Training run to evaluate.")
  flags.DEFINE_string("classifier", "runs/classifier_fashion_mnist",
                      "Workdir of the domain classifier (gan.metrics.train_classifier).")
  flags.DEFINE_integer("num_samples", 10_000, "Generated samples.")
  flags.DEFINE_integer("seed", 0, "Seed of latents and subsets.")
  flags.DEFINE_enum("features", "domain", sorted(FEATURE_NETWORKS), "Feature network.")
  flags.DEFINE_string("inception_weights", None, "pytorch-fid weight file (default: see gan/metrics/inception.py).")
  flags.DEFINE_integer("cas_samples", 0, "Generated images for the classification accuracy score (0 = skip).")
  flags.DEFINE_integer("cas_steps", 0, "Training steps of the CAS classifier (0 = the domain classifier's).")


def main(argv):
  del argv
  f = flags.FLAGS
  try:
    record = evaluate_run(f.workdir, f.classifier, f.num_samples, f.seed, f.features, f.inception_weights,
                          f.cas_samples, f.cas_steps)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print(format_table(record))
  print(f"\n{record['computed_with']}\nWrote {os.path.join(f.workdir, 'metrics.json')}")


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
