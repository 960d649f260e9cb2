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
  domain     the domain classifier (task "classifier", gan/tasks/classifier.py; the default:
             meaningful on small grayscale product images);
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

import json
import os
import time
from typing import Any, Optional

from absl import app
from absl import flags
from clu import metric_writers
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan import cli
from gan import conditioning
from gan import data
from gan import runs
from gan import sampling
from gan.metrics import evaluation
from gan.metrics import lpips
from gan.metrics import train_classifier
from gan.tasks import classifier
from gan.tasks import generation
from gan.tasks import translation


def classification_accuracy_score(workdir: str, classifier_dir: str, num_samples: int, steps: int = 0,
                                  seed: int = 0, batch_size: int = 500) -> float:
  """CAS (Ravuri & Vinyals 2019): train a classifier on generated (image, label) pairs only, with the
  domain classifier's own recipe (config.train.steps unless `steps` > 0), and return its accuracy
  on the real test split. Compare it with the domain classifier's test accuracy (trained on real).
  """
  config, generator, state, meta = generation.load(workdir)
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
  model, variables = classifier.fit(recipe, generated, metric_writers.LoggingWriter())
  return train_classifier.evaluate(model, variables, data.held_out_dataset(config.data))


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
    net = translation.domain_classifier_or_none(classifier_dir, "gan.evaluate")
  else:
    net = evaluation.make_feature_network(features, config.data, classifier_dir, weights_dir, resizer)
  split = data.held_out_split(config.data)
  floor, baselines = {}, {}
  if model.task == "pix2pix":
    val = translation.load_pairs(config.data, split)
    inputs, targets = translation.to_float(val.pairs), translation.to_float(val.images)
    real = evaluation.real_features(net, config.data, split) if net is not None else None
    metrics = translation.pix2pix_metrics(translation.translate(model, inputs), targets, net, real, seed)
    mean_photo = translation.to_float(translation.load_pairs(config.data, config.data.split).images).mean(0)
    baselines["edge_map"] = translation.pix2pix_metrics(inputs, targets, net, real, seed)
    baselines["mean_train_photo"] = translation.pix2pix_metrics(np.broadcast_to(mean_photo, targets.shape), targets)
    if net is not None:
      train_real = evaluation.real_features(net, config.data, config.data.split)
      pick = np.random.default_rng(seed).permutation(len(train_real["features"]))[:len(targets)]
      floor = translation.fid_kid_metrics(real, translation.select_rows(train_real, pick), seed)
  else:
    if net is None:
      raise FileNotFoundError(f"CycleGAN evaluation needs the domain classifier in {classifier_dir}: train it "
                              "with python -m gan.main --config configs/classifier_products.py "
                              f"--workdir {classifier_dir}.")
    references, val_a, val_b = translation.cyclegan_references(net, config)
    metrics = translation.cyclegan_metrics(model.generator, model.params, val_a, val_b, references, net, seed)
    real_b, real_a = evaluation.features_of(net, val_b), evaluation.features_of(net, val_a)
    floor = {**translation.fid_kid_metrics(references["b"], real_b, seed, "_a2b"),
             **translation.fid_kid_metrics(references["a"], real_a, seed, "_b2a")}
    baselines["input_unchanged"] = {**translation.fid_kid_metrics(references["b"], real_a, seed, "_a2b"),
                                    **translation.fid_kid_metrics(references["a"], real_b, seed, "_b2a")}
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
  if features not in evaluation.FEATURE_NETWORKS:
    raise ValueError(f"Unknown --features {features!r}; valid: {sorted(evaluation.FEATURE_NETWORKS)}.")
  if reference_split not in ("train", "test"):
    raise ValueError(f"Unknown reference split {reference_split!r}; valid: train, test (the held-out split).")
  start = time.perf_counter()
  config, generator, state, _ = generation.load(workdir)
  classifier_dir = classifier_dir or config.eval.classifier_dir or evaluation.DEFAULT_CLASSIFIER
  net = evaluation.make_feature_network(features, config.data, classifier_dir, weights_dir, resizer)
  held_out = data.held_out_split(config.data)
  reference_name, floor_name = ("train", held_out) if reference_split == "train" else (held_out, "train")
  fake = evaluation.sample_features(evaluation.make_feature_sampler(generator, net, config.model.z_dim, num_samples), generator,
                         state.ema_g_params, state.g_batch_stats, net.variables, num_samples=num_samples,
                         seed=seed, z_dim=config.model.z_dim,
                         standing_stats_batch=config.sample.standing_stats_batch,
                         pool=conditioning.load_pool(workdir) if config.model.cond_dim else None)
  reference = evaluation.real_features(net, config.data, reference_name, num_reference)
  floor_fake = evaluation.real_features(net, config.data, floor_name, num_samples)
  floor = evaluation.compare(reference, floor_fake, net, seed, floor_fake["labels"] if fake["labels"] is not None else None)
  model_metrics = evaluation.compare(reference, fake, net, seed, fake["labels"])
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


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Command-line flags, defined only when run as a program (the module is also a library)."""
  flags.DEFINE_string("workdir", None, "Training run to evaluate.", flag_values=flag_values)
  flags.DEFINE_string("classifier", None,
                      "Workdir of the domain classifier (task 'classifier'); default the run's "
                      f"config.eval.classifier_dir, else {evaluation.DEFAULT_CLASSIFIER}.",
                      flag_values=flag_values)
  flags.DEFINE_integer("num_samples", 10_000, "Generated samples.", flag_values=flag_values)
  flags.DEFINE_integer("seed", 0, "Seed of latents and subsets.", flag_values=flag_values)
  flags.DEFINE_enum("features", "domain", sorted(evaluation.FEATURE_NETWORKS), "Feature network.",
                    flag_values=flag_values)
  flags.DEFINE_string("weights_dir", None, "Folder of fetched weights (default $PRODUCTGAN_WEIGHTS_DIR or the "
                      "user cache; see gan/weights.py).", flag_values=flag_values)
  flags.DEFINE_enum("resizer", "nvidia", ["nvidia", "pytorch_fid"], "Inception resizer: StyleGAN's (default) "
                    "or pytorch-fid's; FIDs of different resizers are not comparable.", flag_values=flag_values)
  flags.DEFINE_enum("reference", "train", ["train", "test"], "Real split the samples are compared with "
                    "(test: the held-out split, as Lucic et al. 2018).", flag_values=flag_values)
  flags.DEFINE_integer("num_reference", 0, "Reference images, evenly spaced over the split (0 = all).", flag_values=flag_values)
  flags.DEFINE_integer("cas_samples", 0, "Generated images for the classification accuracy score (0 = skip).", flag_values=flag_values)
  flags.DEFINE_integer("cas_steps", 0, "Training steps of the CAS classifier (0 = the domain classifier's).", flag_values=flag_values)
  flags.mark_flags_as_required(["workdir"], flag_values=flag_values)


# Library errors of a bad run or bad flag values (e.g. a classifier of other channels, too few
# images for a KID subset) are ValueErrors / FileNotFoundErrors with a message that says the fix.
USER_ERRORS = (cli.UserError, FileNotFoundError, ValueError)


def run_cli(f: flags.FlagValues, argv) -> None:
  cli.check_no_arguments(argv[1:])
  if runs.task_of(runs.load_config(f.workdir)) != "generation":
    # Image translation: held-out PSNR / SSIM / FID; the classifier defaults to the run's own.
    record = evaluate_translation_run(f.workdir, f.classifier, f.seed, f.features, f.weights_dir, f.resizer)
  else:
    record = evaluate_run(f.workdir, f.classifier, f.num_samples, f.seed, f.features, f.weights_dir,
                          f.resizer, f.reference, f.num_reference, f.cas_samples, f.cas_steps)
  print(format_table(record))
  print(f"\n{record['computed_with']}\nWrote {os.path.join(f.workdir, 'metrics.json')}")


def main(argv, flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """`python -m gan.evaluate`: user errors print one paragraph "error: ..." and exit with code 1."""
  cli.run_command(lambda: run_cli(flag_values, argv), USER_ERRORS)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
