"""Inversion and latent-edit benchmark of a trained StyleGAN on held-out real product photos.

  python experiments/benchmark_editing.py --workdir runs/stylegan_products \
      --classifier runs/classifier_products [--num_images 32] [--steps 200] [--encoder_steps 2000]

Inversion: the held-out split's photos (val for the products; `--num_images` of them, evenly spread
over the split, so shoes and handbags) are inverted by optimization in Z, W, W+ and W+ with
optimized noise (`--steps` Adam steps each, pixel MSE + the domain classifier's perceptual
distance, StyleGAN2 learning-rate ramp), by the encoder (trained on G's samples and the train
split's photos by the shared loop, `--encoder_steps`, in <workdir>/encoder and reused: task
"inversion_encoder", configs/inversion_encoder_products.py), and by the
encoder refined with `--refine_steps` optimization steps in W+. "mean_w" (no optimization, the
average product) is the floor. Reported per variant: PSNR and SSIM (images in [-1, 1], at the
generator's resolution), the perceptual distance (domain classifier, at its resolution), seconds
per image (the batch of `--num_images` optimized together, compile excluded and reported apart).

Edits: `--num_samples` w are drawn, rendered (fixed noise) and measured (gan/attributes.py + the
classifier); PCA of them gives GANSpace directions (all layers, coarse half, fine half), linear /
logistic probes give InterFaceGAN directions for brightness, size, aspect, saturation, hue,
orientation (the silhouette's tilt), facing (which way its thin end points), the class and the
common dominant colours (gan.editing.directions.ATTRIBUTE_PROBES + those), each also conditioned
(orthogonalized) on the others of brightness / size / aspect / class (directions.HELD). Every
direction edits `--num_edit` fresh samples at strengths -s and +s (`--strength`, in standard
deviations of w along the direction), and the report says how much the target moved and everything
else moved (edit_report); style mixing swaps the coarse / fine layers with another sample's; the
conditional colour / size / aspect / brightness / orientation / class edits are also applied to the
inverted real photos (encoder + refine latents). Strength 0 is checked to be the identity.

Writes <workdir>/editing_benchmark.json (or --out), <workdir>/editing/inversions.png (rows: photo,
then each variant), <workdir>/editing/edits.png (sampled products) and the real-photo edit figure
(--figure, default <workdir>/editing/real_edits.{pdf,png,json}: photo, inversion, conditional
brightness / size / orientation / class / colour edits at -+ --figure_strength, coarse-layer style mixing, a box
hole filled by masked W+ inversion; the README's docs/editing_products.png), and prints markdown
tables.

Cost: the optimizations dominate, each step a generator + domain-classifier forward and backward
pass per image. Measured on the 2-core CPU while ~14 other processes shared it (2026-11-29): one
projection step took ~0.12 s per 32x32 image with the perceptual loss (~0.04 s without), each
projector ~35-50 s to compile, an encoder step (batch 32, no perceptual loss) ~1 s; so the
defaults (32 images x 200 steps x 4 spaces, 2,000 encoder steps, 100 refinement steps) are a few
hours on such a shared machine and several times less alone. The encoder is saved and reused.
Quick check: --num_images 8 --steps 30 --refine_steps 10 --encoder_steps 20 --num_samples 600
--num_edit 16 (11 min on that shared machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import sys
import time
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import ml_collections  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from configs import default as default_config  # pylint: disable=g-import-not-at-top
from configs import inversion_encoder_products  # pylint: disable=g-import-not-at-top
from gan import host_memory  # pylint: disable=g-import-not-at-top
from gan import attributes  # pylint: disable=g-import-not-at-top
from gan import data  # pylint: disable=g-import-not-at-top
from gan import figures  # pylint: disable=g-import-not-at-top
from gan import provenance  # pylint: disable=g-import-not-at-top
from gan import runs  # pylint: disable=g-import-not-at-top
from gan import train  # pylint: disable=g-import-not-at-top
from gan import sampling  # pylint: disable=g-import-not-at-top
from gan.editing import directions  # pylint: disable=g-import-not-at-top
from gan.editing import edits  # pylint: disable=g-import-not-at-top
from gan.editing import inversion  # pylint: disable=g-import-not-at-top
from gan.metrics import image as image_metrics  # pylint: disable=g-import-not-at-top
from gan.metrics import lpips  # pylint: disable=g-import-not-at-top
from gan.tasks import generation

# Conditional edits also applied to the inverted photos (+ the colour probes). The attributes with a
# linear probe and the ones held fixed: gan.editing.directions.ATTRIBUTE_PROBES and HELD.
REAL_EDITS = ("size", "aspect", "brightness", "orientation", "class")


def _summary(values: np.ndarray) -> dict[str, float]:
  values = np.asarray(values, np.float64)
  return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
          "max": float(values.max())}


def train_photos(config: ml_collections.ConfigDict) -> np.ndarray:
  dataset = data.load_dataset(ml_collections.ConfigDict({**config.data.to_dict(), "split": "train"}))
  return dataset.images.astype(np.float32) / 127.5 - 1.0


def reconstruction_metrics(images: jax.Array, targets: jax.Array,
                           perceptual: Optional[inversion.Perceptual]) -> dict[str, Any]:
  out = {"psnr": _summary(image_metrics.psnr(images, targets, data_range=2.0)),
         "ssim": _summary(image_metrics.ssim(images, targets, data_range=2.0))}
  if perceptual is not None:
    out["perceptual"] = _summary(jax.jit(perceptual)(images, targets))
  if lpips.available("alex") and min(images.shape[1:3]) >= lpips.MIN_SIZE["alex"]:
    out["lpips_alex"] = _summary(lpips.distance(lpips.cached("alex"), images, targets))
  return out


def run_projection(generator, variables, targets, key, space, options, perceptual, init, stats):
  """(ProjectionResult, compile seconds, run seconds) with the compiled program timed apart."""
  noise = None
  if options.noise != "none":
    noise = inversion.draw_noise(generator, variables, targets.shape[0], jax.random.fold_in(key, 1))
  projector = inversion.make_projector(generator, space, options, perceptual)
  args = (variables, targets, init, noise, jax.random.fold_in(key, 2), stats.std)
  start = time.perf_counter()
  jax.block_until_ready(projector(*args, steps=1))   # compiles (and runs one step)
  compile_seconds = time.perf_counter() - start
  start = time.perf_counter()
  result = jax.block_until_ready(projector(*args))
  return result, compile_seconds, time.perf_counter() - start


def get_encoder(args, config, step: int, log):
  """The run's encoder, <workdir>/encoder: trained there by the shared loop (task "inversion_encoder",
  configs/inversion_encoder_products.py on the generator's data) until --encoder_steps, resuming an
  interrupted run; a folder trained against another checkpoint or with other settings is retrained.
  Returns (TrainedEncoder, {"train_seconds", "options"})."""
  directory = os.path.join(args.workdir, "encoder")
  encoder_config = default_config.apply_overrides(inversion_encoder_products.get_config(), {
      "seed": args.seed + 1, "encoder.generator_workdir": args.workdir, "encoder.classifier_dir": args.classifier,
      "encoder.perceptual": "classifier" if args.classifier else "none",
      "encoder.perceptual_weight": args.perceptual_weight, "train.steps": args.encoder_steps,
      "train.batch_size": args.encoder_batch})
  encoder_config.data = config.data
  wanted = {"generator_step": step, "perceptual": encoder_config.encoder.perceptual,
            "perceptual_weight": args.perceptual_weight, "batch_size": args.encoder_batch, "seed": args.seed + 1}
  try:
    saved = runs.load_config(directory)
    found = {"generator_step": saved.encoder.generator_step, "perceptual": saved.encoder.perceptual,
             "perceptual_weight": saved.encoder.perceptual_weight, "batch_size": saved.train.batch_size,
             "seed": saved.seed}
    if found != wanted:
      log(f"Retraining the encoder in {directory}: it was trained with {found}, not {wanted}.")
      shutil.rmtree(directory)
  except runs.RunError:
    pass
  log(f"Training the encoder ({args.encoder_steps} steps, batch {args.encoder_batch}; a finished run is reused)...")
  train.train_and_evaluate(encoder_config, directory)
  trained, _ = inversion.load_encoder(directory)
  record = provenance.read(os.path.join(directory, provenance.RUN_RECORD))
  return trained, {"train_seconds": record.get("total_wall_seconds") or 0.0,
                   "options": {**encoder_config.encoder.to_dict(), "steps": args.encoder_steps,
                               "batch_size": args.encoder_batch}}


def real_edit_columns(generator, variables, photos, ws, noise, inverted, conditional, probes, coarse,
                      classifier, perceptual, stats, args) -> list[tuple[str, jax.Array]]:
  """(title, images (R, S, S, C)) columns of the README's edit figure, on R = --figure_photos
  photos spread over the inverted ones: photo, inversion, the conditional brightness / size /
  orientation / class / best-probed colour edits at -+ --figure_strength, coarse layers from another photo, and a
  box hole filled by masked W+ inversion (gan.editing.inpaint)."""
  from gan.editing import inpaint  # pylint: disable=g-import-not-at-top
  rows = np.linspace(0, photos.shape[0] - 1, min(args.figure_photos, photos.shape[0])).round().astype(int)
  pick = lambda tree: jax.tree_util.tree_map(lambda x: x[rows], tree)
  ws, noise, photos = ws[rows], pick(noise), photos[rows]
  render = lambda w: inversion.render(generator, variables, w, "w+", noise=noise)
  s = args.figure_strength
  columns = [("photo", photos), ("inverted", inverted[rows])]
  other = classifier.class_names[0] if classifier is not None else "class 0"
  positive = classifier.class_names[1] if classifier is not None else "class 1"
  titles = {"brightness": ("darker", "lighter"), "size": ("smaller", "larger"),
            "orientation": ("tilted cw", "tilted ccw"), "class": (f"to {other}", f"to {positive}")}
  colours = sorted((n for n in conditional if n.startswith("color_")), key=lambda n: -probes[n].quality)
  for name in [n for n in titles if n in conditional] + colours[:1]:
    low, high = titles.get(name, (f"less {name[6:]}", f"more {name[6:]}"))
    columns += [(f"{low}\n({-s:+g})", render(edits.apply_direction(ws, conditional[name], -s))),
                (f"{high}\n({s:+g})", render(edits.apply_direction(ws, conditional[name], s)))]
  columns.append(("coarse layers\nof next row", render(edits.style_mix(ws, jnp.roll(ws, 1, axis=0), coarse, 1.0))))
  size = photos.shape[1]
  hole = inpaint.box_mask(size, size, (size // 4, size // 4, 3 * size // 4, 5 * size // 8))
  filled, _ = inpaint.masked_inversion(
      generator, variables, photos, hole, jax.random.PRNGKey(args.seed + 2), noise=noise, stats=stats,
      perceptual=perceptual, options=inversion.ProjectionOptions(steps=args.steps,
                                                                 perceptual_weight=args.perceptual_weight))
  columns += [("box hole", inpaint.mask_out(photos, hole[None])), ("filled by\ninversion", filled)]
  return columns


def real_edits_figure(path: str, columns: list[tuple[str, jax.Array]], record: dict[str, Any]) -> str:
  """One row per photo, one column per (title, images). Writes <path>.pdf / .png / .json (gan.figures)."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = columns[0][1].shape[0]
  figures.use_style()
  fig, axes = plt.subplots(rows, len(columns), squeeze=False,
                           figsize=figures.size("text", aspect=1.08 * rows / len(columns)))
  for c, (title, images) in enumerate(columns):
    tiles = sampling.to_uint8(images[:rows])
    for r in range(rows):
      ax = axes[r][c]
      ax.imshow(tiles[r], interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      for spine in ax.spines.values():
        spine.set_visible(False)
    axes[0][c].set_title(title, fontsize=6)
  fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93, wspace=0.04, hspace=0.04)
  titles = [t.replace("\n", " ") for t, _ in columns]
  figures.save_figure(fig, path, config=record["args"],
                      extra={"columns": titles, "checkpoint_step": record["checkpoint_step"], "workdir": record["workdir"]},
                      run=record["workdir"], step=record["checkpoint_step"],
                      operations=["real photos, their inversion and edits: " + ", ".join(titles)])
  plt.close(fig)
  return path


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="A trained StyleGAN run (configs/stylegan_products.py).")
  parser.add_argument("--classifier", default="runs/classifier_products",
                      help="Domain classifier workdir; '' to skip perceptual distances and class probes.")
  parser.add_argument("--num_images", type=int, default=32, help="Held-out real photos to invert.")
  parser.add_argument("--steps", type=int, default=200, help="Optimization steps of Z / W / W+ projection.")
  parser.add_argument("--refine_steps", type=int, default=100, help="W+ steps refining the encoder's guess.")
  parser.add_argument("--encoder_steps", type=int, default=2000)
  parser.add_argument("--encoder_batch", type=int, default=32)
  parser.add_argument("--perceptual_weight", type=float, default=1.0)
  parser.add_argument("--num_samples", type=int, default=4000, help="Sampled w for PCA and probes.")
  parser.add_argument("--num_edit", type=int, default=64, help="Fresh samples every edit is measured on.")
  parser.add_argument("--strength", type=float, default=2.0, help="Edits at -s and +s (std of w along them).")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default="", help="JSON path (default <workdir>/editing_benchmark.json).")
  parser.add_argument("--figure", default="", help="Real-photo edit figure, path without suffix "
                      "(default <workdir>/editing/real_edits; the README's: docs/editing_products).")
  parser.add_argument("--figure_photos", type=int, default=6, help="Real photos (rows) in that figure.")
  parser.add_argument("--figure_strength", type=float, default=4.0, help="Edit strength shown in that figure.")
  args = parser.parse_args()
  start_time = time.time()

  def log(message):
    print(message, file=sys.stderr, flush=True)

  config, generator, state, meta = generation.load(args.workdir)
  if not inversion.is_stylegan(generator):
    raise SystemExit(f"error: {args.workdir} is a {config.model.name} run; this benchmark needs a StyleGAN "
                     "(configs/stylegan_products.py). Z-only inversion of other models: gan.editing.inversion.project.")
  if generator.num_classes:
    raise SystemExit("error: this benchmark handles unconditional StyleGANs (as configs/stylegan_products.py); "
                     "for conditional ones pass labels to gan.editing.inversion / edits.category_ws yourself.")
  variables = {"params": state.ema_g_params, "batch_stats": state.g_batch_stats}
  step = int(meta["step"])
  classifier = None
  if args.classifier:
    if not os.path.isdir(os.path.join(args.classifier, "checkpoints")):
      raise SystemExit(f"error: no domain classifier in {args.classifier}. Train it with: python -m "
                       "gan.main --config configs/classifier_products.py --workdir "
                       f"{args.classifier} (or pass --classifier '' to skip perceptual distances).")
    classifier = edits.DomainClassifier.load(args.classifier)
  perceptual = classifier.perceptual() if classifier is not None else None
  key = jax.random.PRNGKey(args.seed)
  stats_key, inv_key, sample_key, edit_key, noise_key = jax.random.split(key, 5)
  stats = inversion.w_statistics(generator, variables, stats_key)
  record: dict[str, Any] = {
      "workdir": args.workdir, "checkpoint_step": step, "classifier": args.classifier or None,
      "date": datetime.datetime.now().isoformat(timespec="seconds"), "platform": platform.platform(),
      "devices": [str(d) for d in jax.devices()], "args": vars(args),
      "generator": {"image_size": generator.image_size, "num_ws": generator.num_ws,
                    "w_dim": int(stats.mean.shape[-1]), "w_std": float(stats.std)}}

  # --- Inversion -------------------------------------------------------------------------------
  targets, labels, split = data.held_out_sample(config.data, args.num_images)
  targets = jnp.asarray(targets)
  record["inversion"] = {"split": split, "num_images": args.num_images,
                         "labels": np.bincount(labels, minlength=2).tolist(), "variants": {}}
  variants = record["inversion"]["variants"]
  panels = {"photo": targets}
  base = inversion.ProjectionOptions(steps=args.steps, perceptual_weight=args.perceptual_weight)
  mean_ws = inversion.initial_latents(generator, variables, "w+", args.num_images, inv_key, stats)
  fixed_noise = inversion.draw_noise(generator, variables, args.num_images, jax.random.fold_in(inv_key, 1))
  panels["mean_w"] = inversion.render(generator, variables, mean_ws, "w+", noise=fixed_noise)
  variants["mean_w"] = {**reconstruction_metrics(panels["mean_w"], targets, perceptual), "seconds_per_image": 0.0}
  plans = [("z", "z", base), ("w", "w", base), ("w+", "w+", base),
           ("w+_noise", "w+", dataclasses.replace(base, noise="optimize"))]
  for name, space, options in plans:
    log(f"Projecting into {name} ({options.steps} steps, {args.num_images} images)...")
    init = inversion.initial_latents(generator, variables, space, args.num_images, inv_key, stats)
    result, compile_s, run_s = run_projection(generator, variables, targets, inv_key, space, options, perceptual,
                                              init, stats)
    panels[name] = result.images
    variants[name] = {**reconstruction_metrics(result.images, targets, perceptual),
                      "seconds_per_image": run_s / args.num_images, "compile_seconds": compile_s,
                      "final_loss": float(result.losses[-1]), "options": dataclasses.asdict(options)}
    log(f"  PSNR {variants[name]['psnr']['mean']:.2f} dB, {run_s / args.num_images:.2f} s/image")

  trained, encoder_meta = get_encoder(args, config, step, log)
  inversion.encode(trained, targets).block_until_ready()     # compile for this batch shape
  start = time.perf_counter()
  encoded = jax.block_until_ready(inversion.encode(trained, targets))
  encode_s = time.perf_counter() - start
  panels["encoder"] = inversion.render(generator, variables, encoded, "w+", noise=fixed_noise)
  variants["encoder"] = {**reconstruction_metrics(panels["encoder"], targets, perceptual),
                         "seconds_per_image": encode_s / args.num_images,
                         "train_seconds": encoder_meta["train_seconds"], "encoder": encoder_meta["options"]}
  refine = dataclasses.replace(base, steps=args.refine_steps, latent_noise=0.0, learning_rate=0.02)
  result, compile_s, run_s = run_projection(generator, variables, targets, inv_key, "w+", refine, perceptual,
                                            encoded, stats)
  panels["encoder+refine"] = result.images
  real_ws = result.latents
  variants["encoder+refine"] = {**reconstruction_metrics(result.images, targets, perceptual),
                                "seconds_per_image": (encode_s + run_s) / args.num_images,
                                "compile_seconds": compile_s, "options": dataclasses.asdict(refine)}
  os.makedirs(os.path.join(args.workdir, "editing"), exist_ok=True)
  columns = min(args.num_images, 16)
  rows = [sampling.to_uint8(panels[k][:columns]) for k in panels]
  figures.save_image(os.path.join(args.workdir, "editing", "inversions.png"),
                     sampling.make_grid(np.concatenate(rows), columns), config=vars(args),
                     run=args.workdir, step=record["checkpoint_step"],
                     operations=[f"inversions of {args.workdir}, rows: targets then " + ", ".join(list(panels)[1:])])
  record["inversion"]["grid_rows"] = list(panels)

  # --- Directions --------------------------------------------------------------------------------
  log(f"Sampling and measuring {args.num_samples} images for directions...")
  measure = lambda images: edits.measure(images, classifier)
  chunk = 500
  render_noise = inversion.draw_noise(generator, variables, chunk, noise_key)

  def render_ws(ws):
    n = ws.shape[0]
    pieces = []
    for i in range(0, n, chunk):
      part = ws[i:i + chunk]
      noise = jax.tree_util.tree_map(lambda m, k=part.shape[0]: m[:k], render_noise)
      pieces.append(inversion.render(generator, variables, part, "w+", noise=noise))
    return jnp.concatenate(pieces)

  ws = directions.sample_w(generator, variables, sample_key, args.num_samples)
  ws_plus = inversion.broadcast_w(jnp.asarray(ws), generator.num_ws)
  measured = measure(render_ws(ws_plus))
  probes = directions.fit_attribute_probes(ws, measured)
  targets_of = {name: name for name in probes}
  if classifier is not None:
    positive = classifier.class_names[1]
    labels_fake = (measured[edits.class_key(positive)] > 0.5).astype(int)
    if 0 < labels_fake.mean() < 1:
      probes["class"] = directions.fit_logistic_probe(ws, labels_fake, "class")
      targets_of["class"] = edits.class_key(positive)
  for color in attributes.COLOR_NAMES:
    share = measured[edits.color_key(color)].mean()
    if 0.05 <= share <= 0.95:
      probes[f"color_{color}"] = directions.fit_logistic_probe(ws, measured[edits.color_key(color)], f"color_{color}")
      targets_of[f"color_{color}"] = edits.color_key(color)
  pca = directions.fit_pca(ws, 10)
  record["directions"] = {
      "num_samples": args.num_samples,
      "attribute_means": {k: float(np.mean(v)) for k, v in measured.items()},
      "probes": {n: {"kind": p.kind, "quality": p.quality, "target": targets_of[n]} for n, p in probes.items()},
      "pca_explained_variance": pca.explained.tolist()}

  num_ws = generator.num_ws
  coarse, fine = (0, num_ws // 2), (num_ws // 2, num_ws)
  plan: list[tuple[str, edits.EditFn, Optional[str], list[float]]] = []
  strengths = [-args.strength, args.strength]
  found: list[directions.Direction] = []     # saved for `python -m gan.edit --op direction`
  for layers in (None, coarse, fine):
    for direction in directions.pca_directions(pca, 5 if layers is None else 3, layers):
      plan.append((direction.name, edits.direction_edit(direction), None, strengths))
      found.append(direction)
  conditional = {}
  fine_directions = directions.attribute_directions(probes, ws, layers=fine)
  for name, (plain, held_fixed) in directions.attribute_directions(probes, ws).items():
    conditional[name] = held_fixed
    plan.append((name, edits.direction_edit(plain), targets_of[name], strengths))
    plan.append((conditional[name].name, edits.direction_edit(conditional[name]), targets_of[name], strengths))
    found += [plain, conditional[name]]
    if name.startswith(("color_", "hue_", "saturation")):
      fine_direction = fine_directions[name][1]
      plan.append((fine_direction.name, edits.direction_edit(fine_direction), targets_of[name], strengths))
      found.append(fine_direction)
  directions.save_directions(os.path.join(args.workdir, "editing", directions.DIRECTIONS_FILE), found)
  edit_ws = inversion.broadcast_w(jnp.asarray(directions.sample_w(generator, variables, edit_key, args.num_edit)),
                                  num_ws)
  other_ws = jnp.roll(edit_ws, 1, axis=0)
  for label, layers in (("coarse", coarse), ("fine", fine)):
    plan.append((f"style_mix_{label}@{layers[0]}-{layers[1]}", edits.mix_edit(other_ws, layers), None, [0.5, 1.0]))

  before = measure(render_ws(edit_ws))
  record["edits"] = []
  grid_rows = []
  for name, edit, target, edit_strengths in plan:
    identity = bool(jnp.array_equal(edit(edit_ws, 0.0), edit_ws))
    images, reports = edits.run_edit(render_ws, measure, edit_ws, edit, edit_strengths, target, before)
    record["edits"].append({"edit": name, "zero_strength_identity": identity, "reports": reports})
    if len(grid_rows) < 12 and target is not None and "|" in name:
      grid_rows.append(np.concatenate([sampling.to_uint8(images[min(images)][:4]),
                                       sampling.to_uint8(render_ws(edit_ws[:4])),
                                       sampling.to_uint8(images[max(images)][:4])]))
  if grid_rows:
    figures.save_image(os.path.join(args.workdir, "editing", "edits.png"),
                       sampling.make_grid(np.concatenate(grid_rows), 12), config=vars(args),
                       run=args.workdir, step=record["checkpoint_step"],
                       operations=[f"conditional direction edits of {args.workdir}: lowest strength, none, highest"])

  # Edits of the inverted real photos (encoder + refine latents, same noise as their inversion).
  real_before = measure(inversion.render(generator, variables, real_ws, "w+", noise=fixed_noise))
  render_real = lambda w: inversion.render(generator, variables, w, "w+", noise=fixed_noise)
  record["real_edits"] = []
  for name in [n for n in conditional if n in REAL_EDITS or n.startswith("color_")]:
    _, reports = edits.run_edit(render_real, measure, real_ws, edits.direction_edit(conditional[name]),
                                strengths, targets_of[name], real_before)
    record["real_edits"].append({"edit": conditional[name].name, "reports": reports})
  figure = args.figure or os.path.join(args.workdir, "editing", "real_edits")
  record["real_edits_figure"] = real_edits_figure(
      figure, real_edit_columns(generator, variables, targets, real_ws, fixed_noise, panels["encoder+refine"],
                                conditional, probes, coarse, classifier, perceptual, stats, args), record)

  record["provenance"] = provenance.finish(provenance.record(config=vars(args), seed=args.seed,
                                                             start_time=start_time))
  out = args.out or os.path.join(args.workdir, "editing_benchmark.json")
  with open(out, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=1)
  print(format_tables(record))
  print(f"\nWrote {out}, {os.path.join(args.workdir, 'editing')}/{{inversions,edits}}.png and "
        f"{record['real_edits_figure']}.{{pdf,png}}")


def format_tables(record: dict[str, Any]) -> str:
  inv = record["inversion"]
  lines = [f"Inversion of {inv['num_images']} held-out ({inv['split']}) photos, checkpoint step "
           f"{record['checkpoint_step']}:", "",
           "| variant | PSNR (dB) | SSIM | perceptual | s / image | compile (s) |",
           "|---|---:|---:|---:|---:|---:|"]
  for name, v in inv["variants"].items():
    perceptual = f"{v['perceptual']['mean']:.4f}" if "perceptual" in v else "-"
    compile_s = f"{v['compile_seconds']:.1f}" if "compile_seconds" in v else "-"
    lines.append(f"| {name} | {v['psnr']['mean']:.2f} ± {v['psnr']['std']:.2f} | {v['ssim']['mean']:.3f} | "
                 f"{perceptual} | {v['seconds_per_image']:.3f} | {compile_s} |")
  lines += ["", "Probes (held-out R^2 for linear, accuracy for logistic): " + ", ".join(
      f"{n} {p['quality']:.2f}" for n, p in record["directions"]["probes"].items()), "",
      "| edit | strength | target | target change | largest other change | dominant colour changed | "
      "class prob change | class flips | identity at 0 |", "|---|---:|---|---:|---|---:|---:|---:|---|"]
  for section in ("edits", "real_edits"):
    for item in record[section]:
      for r in item["reports"]:
        other = r.get("max_other_change", ["-", float("nan")])
        change = f"{r['target_change']:+.3f}" if r["target"] is not None else "-"
        prefix = "real: " if section == "real_edits" else ""
        lines.append(f"| {prefix}{item['edit']} | {r['strength']:+.1f} | {r['target'] or '-'} | {change} | "
                     f"{other[0]} {other[1]:.3f} | {r.get('dominant_color_changed', float('nan')):.2f} | "
                     f"{r.get('class_prob_change', float('nan')):.3f} | {r.get('class_flip_rate', float('nan')):.2f} | "
                     f"{item.get('zero_strength_identity', '-')} |")
  return "\n".join(lines)


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # a process setting: applied by the program, not on import
  main()
