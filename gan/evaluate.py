"""Command line: evaluate a training run's generator with the domain classifier's features.

  python -m gan.evaluate --workdir runs/dcgan --classifier runs/classifier_fashion_mnist \
      [--num_samples 10000] [--seed 0]

Generates `num_samples` images from the latest checkpoint (EMA generator), one jit per batch that
generates and extracts features, and reports FID, KID, precision / recall / density / coverage,
the domain Inception Score, class histogram diagnostics (KL to the real class distribution,
classes covered), sample diversity and, for conditional models, product-recognition accuracy
(does "generate a sneaker" give a sneaker?). Next to them: the real-data floor, the same metrics
between the train and test splits. Writes workdir/metrics.json and prints a table.

Real-data features are computed once per (dataset, split, classifier, resolution) and cached in
the classifier's folder (reference_features/).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable, Optional

from absl import app
from absl import logging
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan import data
from gan import sample
from gan import sampling
from gan.metrics import diversity
from gan.metrics import fid
from gan.metrics import inception_score
from gan.metrics import kid
from gan.metrics import precision_recall
from gan.metrics import train_classifier

FEATURES = ("domain",)


def real_features(model, variables, data_config: ml_collections.ConfigDict, split: str, cache_dir: str,
                  batch_size: int = 1000) -> dict[str, np.ndarray]:
  """{"features": (N, D), "probs": (N, C), "labels": (N,)} of a real split, cached on disk."""
  path = fid.stats_cache_path(cache_dir, dataset=data_config.name, split=split, features="domain",
                              resolution=data_config.image_size).replace(".npz", "-features.npz")
  if os.path.exists(path):
    with np.load(path) as cached:
      return dict(cached)
  config = data_config.copy_and_resolve_references()
  config.split, config.max_examples = split, 0
  dataset = data.load_dataset(config)
  logits, features = train_classifier.predict(model, variables, train_classifier.to_model_input(dataset.images),
                                              batch_size)
  result = {"features": features, "probs": np.asarray(jax.nn.softmax(logits)), "labels": dataset.labels}
  os.makedirs(cache_dir, exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez(tmp, **result)
  os.replace(tmp, path)        # atomic: a crash never leaves a half-written cache entry
  return result


def make_feature_sampler(generator, model, z_dim: int, batch_size: int = 500) -> Callable[..., Any]:
  """A jitted fn(g_params, g_batch_stats, classifier_variables, key) -> (features, probs, labels).

  One batch of `batch_size` images is generated (eval-mode BN) and classified in one jit; only
  features leave the device. Parameters are arguments, so training can call it again without
  recompiling.
  """
  num_classes = generator.num_classes

  @jax.jit
  def generate_and_classify(g_params, g_batch_stats, classifier_variables, key):
    z_key, label_key = jax.random.split(key)
    z = jax.random.normal(z_key, (batch_size, z_dim), jnp.float32)
    labels = jax.random.randint(label_key, (batch_size,), 0, max(num_classes, 1))
    images = generator.apply({"params": g_params, "batch_stats": g_batch_stats}, z,
                             labels if num_classes else None, train=False)
    logits, features = model.apply(classifier_variables, images, train=False)
    return features, jax.nn.softmax(logits), labels

  return generate_and_classify


def sample_features(sampler, generator, g_params, g_batch_stats, classifier_variables, *, num_samples: int,
                    seed: int, z_dim: int, standing_stats_batch: int) -> dict[str, Any]:
  """Features (N, D), probabilities (N, C) and conditioning labels (N,) | None of N generated images.

  BN statistics are re-estimated for `g_params` once (see sampling.standing_batch_stats).
  """
  num_classes = generator.num_classes
  stats_key, key = jax.random.split(jax.random.PRNGKey(seed))
  stats = sampling.standing_batch_stats(generator, g_params, g_batch_stats, stats_key, standing_stats_batch,
                                        z_dim, num_classes)
  outputs = [sampler(g_params, stats, classifier_variables, jax.random.fold_in(key, 0))]
  per_batch = outputs[0][0].shape[0]
  outputs += [sampler(g_params, stats, classifier_variables, jax.random.fold_in(key, i))
              for i in range(1, -(-num_samples // per_batch))]
  features, probs, labels = (np.concatenate(x)[:num_samples] for x in zip(*jax.device_get(outputs)))
  return {"features": features, "probs": probs, "labels": labels if num_classes else None}


def compare(real: dict[str, np.ndarray], fake: dict[str, np.ndarray], num_classes: int, seed: int,
            conditional_labels: Optional[np.ndarray] = None) -> dict[str, float]:
  """All distribution metrics between two feature sets (fake may be another real split)."""
  mu_r, sigma_r = fid.mean_cov(fid.update(fid.empty_stats(real["features"].shape[1]), real["features"]))
  mu_f, sigma_f = fid.mean_cov(fid.update(fid.empty_stats(fake["features"].shape[1]), fake["features"]))
  n = min(len(real["features"]), len(fake["features"]))
  rng = np.random.default_rng(seed)
  real_subset = real["features"][rng.permutation(len(real["features"]))[:n]]
  kid_mean, kid_std = kid.kernel_inception_distance(real_subset, fake["features"][:n],
                                                    subset_size=min(1000, n), seed=seed)
  is_mean, is_std = inception_score.inception_score(fake["probs"])
  hist_fake = diversity.class_histogram(fake["probs"], num_classes)
  hist_real = diversity.class_histogram(real["labels"], num_classes)
  results = {
      "fid": fid.frechet_distance(mu_r, sigma_r, mu_f, sigma_f),
      "kid": kid_mean, "kid_std": kid_std,
      **precision_recall.precision_recall_density_coverage(real_subset, fake["features"][:n]),
      "inception_score_domain": is_mean, "inception_score_domain_std": is_std,
      "class_kl_to_real": diversity.kl_to_reference(hist_fake, hist_real),
      "classes_covered": float(diversity.classes_covered(hist_fake)),
      "mean_pairwise_feature_distance": diversity.mean_pairwise_distance(fake["features"], seed=seed),
  }
  if conditional_labels is not None:
    results["recognition_accuracy"] = float(np.mean(np.argmax(fake["probs"], -1) == conditional_labels))
  return {k: float(v) for k, v in results.items()}


def make_training_evaluator(config: ml_collections.ConfigDict, generator
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
  model, variables, meta = train_classifier.load(classifier_dir)
  real = real_features(model, variables, config.data, "train", os.path.join(classifier_dir, "reference_features"))
  sampler = make_feature_sampler(generator, model, config.model.z_dim)
  num_classes = len(meta["class_names"])

  def evaluate_state(state) -> dict[str, float]:
    fake = sample_features(sampler, generator, state.ema_g_params, state.g_batch_stats, variables,
                           num_samples=config.eval.num_samples, seed=config.eval.seed, z_dim=config.model.z_dim,
                           standing_stats_batch=config.sample.standing_stats_batch)
    return compare(real, fake, num_classes, config.eval.seed, fake["labels"])

  return evaluate_state


def evaluate_run(workdir: str, classifier_dir: str, num_samples: int = 10_000, seed: int = 0,
                 features: str = "domain") -> dict[str, Any]:
  """Computes the metrics of a run, writes workdir/metrics.json and returns its content."""
  if features not in FEATURES:
    raise ValueError(f"Unknown --features {features!r}; available here: {list(FEATURES)}.")
  start = time.perf_counter()
  model, variables, classifier_meta = train_classifier.load(classifier_dir)
  config, generator, state, _ = sample.load_run(workdir)
  sampler = make_feature_sampler(generator, model, config.model.z_dim)
  fake = sample_features(sampler, generator, state.ema_g_params, state.g_batch_stats, variables,
                         num_samples=num_samples, seed=seed, z_dim=config.model.z_dim,
                         standing_stats_batch=config.sample.standing_stats_batch)
  cache_dir = os.path.join(classifier_dir, "reference_features")
  real_train = real_features(model, variables, config.data, "train", cache_dir)
  real_test = real_features(model, variables, config.data, "test", cache_dir)
  num_classes = len(classifier_meta["class_names"])
  model_metrics = compare(real_train, fake, num_classes, seed, fake["labels"])
  floor = compare(real_train, {k: v[:num_samples] for k, v in real_test.items()}, num_classes, seed)
  floor["recognition_accuracy"] = float(np.mean(np.argmax(real_test["probs"], -1) == real_test["labels"]))
  record = {
      "model": model_metrics,
      "real_data_floor": floor,
      "computed_with": {
          "features": f"domain classifier {os.path.abspath(classifier_dir)} "
                      f"(test accuracy {classifier_meta['test_accuracy']:.4f})",
          "reference_split": "train", "floor": "train vs test", "dataset": config.data.name,
          "num_samples": num_samples, "seed": seed, "generator": "EMA",
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
  flags.DEFINE_string("features", "domain", "Feature network: domain.")


def main(argv):
  del argv
  try:
    f = flags.FLAGS
    record = evaluate_run(f.workdir, f.classifier, f.num_samples, f.seed, f.features)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  print(format_table(record))
  print(f"\n{record['computed_with']}\nWrote {os.path.join(flags.FLAGS.workdir, 'metrics.json')}")


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
