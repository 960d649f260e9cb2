"""Enhancement and repair of real product photos: super-resolution, denoising, inpainting.

  nice python -m experiments.benchmark_enhance --workdir runs/enhance \
      [--tasks superres_x2,superres_x4,superres_x4_noadv,denoise_gaussian,denoise_jpeg,inpaint] \
      [--retrain] [--steps N] [--classifier runs/classifier_products] [--figure docs/enhance_products.png]

Trains each model of configs/enhance_products.py on the 1,600 training photos (64x64) with the shared
loop (python -m gan.main's, task "enhance": an interrupted benchmark resumes the model it was
training; skipped when workdir/<task> holds a finished one, unless --retrain, which deletes it
first) and evaluates it on the 400 held-out val photos
with fixed-seed synthetic degradations:
  superres_x2 / x4:  PSNR, SSIM, perceptual distance vs bicubic upsampling of the bicubic-
                     downscaled photo. superres_x4_noadv is x4 without the adversarial term
                     (loss.adversarial_weight = 0): the PSNR-vs-perceptual trade-off.
  denoise_gaussian:  sigma 0.1 (on [0, 1]) Gaussian noise; vs the noisy input, a Gaussian filter
                     and non-local means (scikit-image), their parameter tuned on 64 training photos.
  denoise_jpeg:      JPEG quality 10 (Pillow); the same baselines.
  inpaint:           box and free-form holes (gan.editing.inpaint masks, fixed keys); vs a grey fill
                     and biharmonic inpainting (scikit-image); PSNR / SSIM over the whole image, PSNR
                     over the hole, perceptual distance. With --stylegan (an unconditional
                     StyleGAN run, e.g. runs/stylegan_products), masked W+ inversion
                     (gan.editing.inpaint.masked_inversion, --inversion_steps, pixel loss only)
                     joins on the first --inversion_images val photos, with the other methods
                     rescored on the same subset. The StyleGAN renders at its own resolution
                     (32 px for configs/stylegan_products.py), upsampled into the 64 px hole.
Time per image: the mean over the val set (batches of 100 for the models, after compilation;
one image at a time for the scikit-image baselines), on the machine in the JSON's provenance.

Perceptual distance: gan.metrics.classifier.perceptual_distance over the products' domain
classifier (runs/classifier_products) - the same network the perceptual loss uses when it exists,
so that column favours the trained models; PSNR / SSIM do not. Writes
experiments/results/enhance_benchmark.json and .md, and the figure (code: `make_figure`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from typing import Any, Callable, NamedTuple, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import logging  # pylint: disable=g-import-not-at-top
import jax  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from configs import default as default_config  # pylint: disable=g-import-not-at-top
from configs import enhance_products  # pylint: disable=g-import-not-at-top
from gan import host_memory  # pylint: disable=g-import-not-at-top
from gan import data  # pylint: disable=g-import-not-at-top
from gan import figures  # pylint: disable=g-import-not-at-top
from gan import provenance  # pylint: disable=g-import-not-at-top
from gan import sampling  # pylint: disable=g-import-not-at-top
from gan import train  # pylint: disable=g-import-not-at-top
from gan.editing import background  # pylint: disable=g-import-not-at-top
from gan.editing import denoise  # pylint: disable=g-import-not-at-top
from gan.editing import enhance_train  # pylint: disable=g-import-not-at-top
from gan.editing import inpaint  # pylint: disable=g-import-not-at-top
from gan.editing import superres  # pylint: disable=g-import-not-at-top
from gan.tasks import generation

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# Task -> (config argument, config overrides): the ablation is a config override.
VARIANTS = {
    "superres_x2": ("superres_x2", {}),
    "superres_x4": ("superres_x4", {}),
    "superres_x4_noadv": ("superres_x4", {"loss.adversarial_weight": 0.0}),
    "denoise_gaussian": ("denoise_gaussian", {}),
    "denoise_jpeg": ("denoise_jpeg", {}),
    "inpaint": ("inpaint", {}),
}
EVAL_SEED = 1234          # degradations of the val photos (training uses config.seed = 0)
TUNE_IMAGES = 64          # training photos used to pick the baselines' parameter
BATCH = 100


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
  start = time.perf_counter()
  out = fn()
  if isinstance(out, jax.Array):
    out.block_until_ready()
  return out, time.perf_counter() - start


def per_image_ms(fn: Callable[[], Any], num: int, warmup: Optional[Callable[[], Any]] = None
                 ) -> tuple[Any, float]:
  """(fn(), milliseconds per image of that call); `warmup` runs first (compilation)."""
  if warmup is not None:
    warmup()
  out, seconds = timed(fn)
  return out, 1000.0 * seconds / num


def load_photos(split: str, limit: int = 0) -> np.ndarray:
  config = enhance_products.get_config("superres_x2").data
  config.split = split
  config.max_examples = limit
  return data.load_dataset(config).images


def get_model(name: str, workdir: str, retrain: bool, steps: Optional[int]) -> enhance_train.Enhancer:
  """The model of `name` in workdir/<name>: trained there by the shared loop (task "enhance") unless
  it already reached its steps; an unfinished run resumes. --retrain deletes the folder first."""
  variant, overrides = VARIANTS[name]
  directory = os.path.join(workdir, name)
  config = default_config.apply_overrides(enhance_products.get_config(variant), overrides)
  if steps:
    config.train.steps = steps
  if retrain and os.path.isdir(directory):
    print(f"--retrain: deleting {directory}", flush=True)
    shutil.rmtree(directory)
  try:
    model = enhance_train.load(directory)
    if model.meta["step"] >= config.train.steps:
      return model
  except FileNotFoundError:
    pass
  print(f"Training {name} ({config.train.steps} steps) -> {directory}", flush=True)
  train.train_and_evaluate(config, directory)
  return enhance_train.load(directory)


def training_info(model: enhance_train.Enhancer, directory: str) -> dict[str, Any]:
  """Steps, wall seconds of all attempts (the run's provenance.json) and the losses used."""
  loss = model.config.loss
  wall = provenance.read(os.path.join(directory, provenance.RUN_RECORD)).get("total_wall_seconds")
  return {"steps": model.meta["step"], "train_seconds": wall,
          "perceptual_loss": loss.perceptual if loss.perceptual_weight > 0 else "none",
          "adversarial": loss.adversarial if loss.adversarial_weight > 0 else "off",
          "eval": model.meta.get("eval", {})}


def scores(outputs: Any, targets: np.ndarray, perceptual, masks: Optional[np.ndarray] = None
           ) -> dict[str, float]:
  result = enhance_train.evaluate(outputs, targets, perceptual)
  if masks is not None:
    result["hole_psnr"] = inpaint.hole_psnr(outputs, targets, masks)
  return {k: round(v, 4) for k, v in result.items()}


def batched(fn: Callable[..., Any], *arrays: np.ndarray) -> np.ndarray:
  return np.concatenate([np.asarray(fn(*(a[i:i + BATCH] for a in arrays)))
                         for i in range(0, len(arrays[0]), BATCH)])


def eval_superres(model: enhance_train.Enhancer, hr: np.ndarray, perceptual) -> dict[str, Any]:
  scale = superres.scale_of(model)
  lr = batched(lambda x: superres.downscale(x, scale), hr)
  bicubic, bicubic_ms = per_image_ms(lambda: batched(lambda x: superres.upscale_bicubic(x, scale), lr),
                                     len(hr), warmup=lambda: superres.upscale_bicubic(lr[:BATCH], scale))
  sr, model_ms = per_image_ms(lambda: superres.super_resolve(model, lr, BATCH), len(hr),
                              warmup=lambda: superres.super_resolve(model, lr[:BATCH], BATCH))
  return {"methods": {"bicubic": {**scores(bicubic, hr, perceptual), "ms_per_image": round(bicubic_ms, 3)},
                      "model": {**scores(sr, hr, perceptual), "ms_per_image": round(model_ms, 3)}},
          "outputs": {"lr": lr, "bicubic": bicubic, "model": sr}}


def eval_denoise(model: enhance_train.Enhancer, clean: np.ndarray, train_clean: np.ndarray,
                 perceptual) -> dict[str, Any]:
  cfg = model.config.denoise
  def degrade(images: np.ndarray, key: jax.Array) -> np.ndarray:
    if cfg.degradation == "jpeg":
      return np.asarray(enhance_train.to_float(
          denoise.jpeg_compress(sampling.to_uint8(images), cfg.jpeg_quality)))
    return np.asarray(denoise.add_gaussian_noise(key, images, cfg.sigma))

  gaussian_noise = cfg.degradation == "gaussian"
  nlm_sigma = cfg.sigma if gaussian_noise else 0.0
  nlm_grid = [round(f * cfg.sigma, 4) for f in denoise.NLM_H_FACTORS] if gaussian_noise else denoise.NLM_H_JPEG
  noisy = degrade(clean, jax.random.PRNGKey(EVAL_SEED))
  tune_noisy = degrade(train_clean, jax.random.PRNGKey(EVAL_SEED + 1))
  g_sigma, _ = denoise.tune_baseline(denoise.gaussian_filter, tune_noisy, train_clean, "sigma",
                                     denoise.GAUSSIAN_SIGMAS)
  nlm_h, _ = denoise.tune_baseline(denoise.nl_means, tune_noisy, train_clean, "h", nlm_grid,
                                   noise_sigma=nlm_sigma)
  gaussian, gaussian_ms = per_image_ms(lambda: denoise.gaussian_filter(noisy, g_sigma), len(clean))
  nlm, nlm_ms = per_image_ms(lambda: denoise.nl_means(noisy, nlm_h, nlm_sigma), len(clean))
  out, model_ms = per_image_ms(lambda: denoise.denoise(model, noisy, BATCH), len(clean),
                               warmup=lambda: denoise.denoise(model, noisy[:BATCH], BATCH))
  return {"methods": {
      "input": scores(noisy, clean, perceptual),
      f"gaussian_filter(sigma={g_sigma})": {**scores(gaussian, clean, perceptual), "ms_per_image": round(gaussian_ms, 3)},
      f"nl_means(h={nlm_h})": {**scores(nlm, clean, perceptual), "ms_per_image": round(nlm_ms, 3)},
      "model": {**scores(out, clean, perceptual), "ms_per_image": round(model_ms, 3)}},
      "outputs": {"noisy": noisy, "nl_means": nlm, "model": out}}


class MaskedInversion(NamedTuple):
  """A StyleGAN to fill holes with, and how much of the val set to spend it on."""
  generator: Any
  variables: Any
  stats: Any
  workdir: str
  num_images: int
  options: Any


def load_masked_inversion(workdir: str, num_images: int, steps: int) -> MaskedInversion:
  """The unconditional StyleGAN run in `workdir` (its EMA generator) set up for masked inversion."""
  from gan.editing import inversion  # pylint: disable=g-import-not-at-top
  _, generator, state, _ = generation.load(workdir)
  if not inversion.is_stylegan(generator) or generator.num_classes:
    sys.exit(f"error: --stylegan {workdir} is not an unconditional StyleGAN run "
             "(train one with configs/stylegan_products.py).")
  variables = {"params": state.ema_g_params, "batch_stats": state.g_batch_stats}
  stats = inversion.w_statistics(generator, variables, jax.random.PRNGKey(EVAL_SEED))
  # Pixel loss only: the perceptual network is the one the table scores with.
  options = inversion.ProjectionOptions(steps=steps, perceptual_weight=0.0)
  return MaskedInversion(generator, variables, stats, workdir, num_images, options)


def eval_masked_inversion(inverter: MaskedInversion, clean: np.ndarray, masks: np.ndarray,
                          others: dict[str, np.ndarray], perceptual) -> dict[str, Any]:
  """Masked inversion vs the other methods' outputs, all scored on the first num_images photos."""
  from gan.editing import inversion  # pylint: disable=g-import-not-at-top
  n = min(inverter.num_images, len(clean))
  key = jax.random.PRNGKey(EVAL_SEED)
  noise = inversion.draw_noise(inverter.generator, inverter.variables, n, jax.random.fold_in(key, 1))
  start = time.perf_counter()
  filled, _ = inpaint.masked_inversion(inverter.generator, inverter.variables, clean[:n], masks[:n], key,
                                       options=inverter.options, noise=noise, stats=inverter.stats)
  seconds = time.perf_counter() - start   # includes the projector's compilation (one batch)
  subset = {name: scores(out[:n], clean[:n], perceptual, masks[:n]) for name, out in others.items()}
  subset["masked_inversion"] = {**scores(filled, clean[:n], perceptual, masks[:n]),
                                "ms_per_image": round(1000 * seconds / n, 3)}
  return {"images": n, "stylegan": inverter.workdir, "steps": inverter.options.steps,
          "resolution": inverter.generator.image_size, "methods": subset, "filled": filled}


def eval_inpaint(model: enhance_train.Enhancer, clean: np.ndarray, perceptual,
                 inverter: Optional[MaskedInversion] = None) -> dict[str, Any]:
  results, outputs = {}, {}
  for kind in ("box", "free_form"):
    masks = np.asarray(inpaint.random_masks(jax.random.PRNGKey(EVAL_SEED), len(clean), clean.shape[1], kind))
    masked = np.asarray(inpaint.mask_out(clean, masks))
    bih, bih_ms = per_image_ms(lambda: inpaint.biharmonic(masked, masks), len(clean))
    out, model_ms = per_image_ms(lambda: inpaint.inpaint(model, clean, masks, BATCH), len(clean),
                                 warmup=lambda: inpaint.inpaint(model, clean[:BATCH], masks[:BATCH], BATCH))
    results[kind] = {"hole_fraction": round(float(masks.mean()), 4),
                     "grey_fill": scores(masked, clean, perceptual, masks),
                     "biharmonic": {**scores(bih, clean, perceptual, masks), "ms_per_image": round(bih_ms, 3)},
                     "model": {**scores(out, clean, perceptual, masks), "ms_per_image": round(model_ms, 3)}}
    outputs[kind] = {"masked": masked, "biharmonic": bih, "model": out}
    if inverter is not None:
      print(f"Masked inversion, {kind} holes", flush=True)
      subset = eval_masked_inversion(inverter, clean, masks,
                                     {"grey_fill": masked, "biharmonic": bih, "model": out}, perceptual)
      outputs[kind]["masked_inversion"] = subset.pop("filled")
      results[f"{kind}_subset"] = {"hole_fraction": round(float(masks[:subset["images"]].mean()), 4), **subset}
  if inverter is None:
    results["masked_inversion"] = "not run (pass --stylegan DIR of an unconditional StyleGAN run)"
  return {"methods": results, "outputs": outputs}


def markdown(record: dict[str, Any]) -> str:
  lines = [f"Perceptual distance: {record['perceptual_metric']}. Val photos: {record['val_images']}.", ""]
  lines += ["| task | method | PSNR (dB) | SSIM | perceptual | hole PSNR (dB) | ms / image |",
            "|---|---|---:|---:|---:|---:|---:|"]

  def row(task: str, method: str, m: dict[str, Any]) -> str:
    cell = lambda k, f: (f % m[k]) if k in m else ""
    return (f"| {task} | {method} | {cell('psnr', '%.2f')} | {cell('ssim', '%.4f')} | "
            f"{cell('perceptual', '%.4f')} | {cell('hole_psnr', '%.2f')} | {cell('ms_per_image', '%.2f')} |")

  for task, result in record["tasks"].items():
    methods = result["methods"]
    if task == "inpaint":
      for kind in ("box", "free_form"):
        for method, m in methods[kind].items():
          if isinstance(m, dict):
            lines.append(row(f"inpaint {kind} ({100 * methods[kind]['hole_fraction']:.0f}% hole)", method, m))
        subset = methods.get(f"{kind}_subset")
        if subset:
          name = (f"inpaint {kind}, first {subset['images']} photos "
                  f"({100 * subset['hole_fraction']:.0f}% hole)")
          for method, m in subset["methods"].items():
            label = (f"masked W+ inversion ({subset['steps']} steps, {subset['resolution']} px StyleGAN)"
                     if method == "masked_inversion" else method)
            lines.append(row(name, label, m))
      if "masked_inversion" in methods:
        lines.append(f"| inpaint | masked GAN inversion | {methods['masked_inversion']} | | | | |")
    else:
      for method, m in methods.items():
        lines.append(row(task, method, m))
  wall = record.get("provenance", {}).get("wall_seconds")
  lines += ["", "Training (machine in the JSON's provenance" +
            (f"; the whole benchmark took {wall:.0f} s" if wall is not None else "") + "):", ""]
  for task, result in record["tasks"].items():
    info = result["train"]
    lines.append(f"- {task}: {info['steps']} steps, {info['train_seconds']} s, perceptual loss "
                 f"{info['perceptual_loss']}, adversarial {info['adversarial']}")
  return "\n".join(lines) + "\n"


def make_figure(path: str, clean: np.ndarray, evaluated: dict[str, Any], indices: list[int],
                config: Optional[dict[str, Any]] = None) -> None:
  """One row per val photo: HR, x4 input / bicubic / model, Gaussian noise / NLM / model,
  JPEG / model, box hole / biharmonic / model, background on a gradient. Writes the PNG and its
  provenance sidecar <stem>.json (`config`: the benchmark's arguments)."""
  def pick(task: str, *keys: str) -> Callable[[int], np.ndarray]:
    outputs = evaluated[task]["outputs"]
    for key in keys:
      outputs = outputs[key]
    return lambda i: outputs[i]

  def upsampled(task: str, factor: int) -> Callable[[int], np.ndarray]:
    lr = evaluated[task]["outputs"]["lr"]
    return lambda i: np.repeat(np.repeat(lr[i], factor, 0), factor, 1)

  columns = [("photo", lambda i: clean[i])]
  if "superres_x4" in evaluated:
    columns += [("x4 input", upsampled("superres_x4", 4)), ("bicubic", pick("superres_x4", "bicubic")),
                ("SR x4", pick("superres_x4", "model"))]
  if "denoise_gaussian" in evaluated:
    columns += [("noise 0.1", pick("denoise_gaussian", "noisy")),
                ("NLM", pick("denoise_gaussian", "nl_means")),
                ("denoised", pick("denoise_gaussian", "model"))]
  if "denoise_jpeg" in evaluated:
    columns += [("JPEG q10", pick("denoise_jpeg", "noisy")), ("deblocked", pick("denoise_jpeg", "model"))]
  if "inpaint" in evaluated:
    columns += [("box hole", pick("inpaint", "box", "masked")),
                ("biharmonic", pick("inpaint", "box", "biharmonic")),
                ("inpainted", pick("inpaint", "box", "model"))]
  size = clean.shape[1]
  new = background.linear_gradient("#fbe3c0", "#4a78c2", size, size)
  columns.append(("background", lambda i: background.replace_background(clean[i], new)[0]))
  tiles = np.stack([sampling.to_uint8(fn(i)) for i in indices for _, fn in columns])
  grid = sampling.make_grid(tiles, len(columns))
  figures.save_image(path, grid, config=config, extra={"columns": [n for n, _ in columns],
                                                      "val_indices": [int(i) for i in indices]},
                     operations=["enhancement examples: " + ", ".join(n for n, _ in columns)])
  print(f"Wrote {path} ({os.path.getsize(path) // 1024} KB): columns " + ", ".join(n for n, _ in columns))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default=os.path.join("runs", "enhance"))
  parser.add_argument("--tasks", default=",".join(VARIANTS))
  parser.add_argument("--retrain", action="store_true", help="Train even when a model exists.")
  parser.add_argument("--steps", type=int, default=0, help="Override train.steps (0: the config's).")
  parser.add_argument("--num_val", type=int, default=0, help="Val photos to use (0: all 400).")
  parser.add_argument("--classifier", default=enhance_train.DEFAULT_CLASSIFIER_DIR)
  parser.add_argument("--out", default=os.path.join(RESULTS, "enhance_benchmark.json"))
  parser.add_argument("--figure", default=os.path.join("docs", "enhance_products.png"))
  parser.add_argument("--stylegan", default="",
                      help="Unconditional StyleGAN run for masked-inversion inpainting (e.g. runs/stylegan_products).")
  parser.add_argument("--inversion_images", type=int, default=50, help="Val photos to invert per mask kind.")
  parser.add_argument("--inversion_steps", type=int, default=300, help="W+ projection steps.")
  args = parser.parse_args()
  start_time = time.time()
  logging.set_verbosity(logging.INFO)
  tasks = args.tasks.split(",")
  unknown = [t for t in tasks if t not in VARIANTS]
  if unknown:
    sys.exit(f"error: unknown tasks {unknown}; valid: {', '.join(VARIANTS)}")

  val = np.asarray(enhance_train.to_float(load_photos("val", args.num_val)))
  tune = np.asarray(enhance_train.to_float(load_photos("train", TUNE_IMAGES)))
  perceptual = (enhance_train.classifier_perceptual(args.classifier)
                if enhance_train.classifier_available(args.classifier) else None)
  record = {"command": " ".join(["python -m experiments.benchmark_enhance"] + sys.argv[1:]),
            "val_images": len(val), "eval_seed": EVAL_SEED,
            "perceptual_metric": perceptual.name if perceptual else "n/a (no domain classifier)",
            "devices": str(jax.devices()), "tasks": {}}
  evaluated = {}
  for task in tasks:
    model = get_model(task, args.workdir, args.retrain, args.steps)
    print(f"Evaluating {task}", flush=True)
    if model.task.name == "superres":
      result = eval_superres(model, val, perceptual)
    elif model.task.name == "denoise":
      result = eval_denoise(model, val, tune, perceptual)
    else:
      inverter = (load_masked_inversion(args.stylegan, args.inversion_images, args.inversion_steps)
                  if args.stylegan else None)
      result = eval_inpaint(model, val, perceptual, inverter)
    evaluated[task] = result
    directory = os.path.join(args.workdir, task)
    record["tasks"][task] = {"methods": result["methods"], "train": training_info(model, directory),
                             "workdir": directory}
    print(json.dumps(record["tasks"][task]["methods"], indent=1), flush=True)
  # Wall time covers training the models that were not already there.
  record["provenance"] = provenance.finish(provenance.record(config=vars(args), seed=EVAL_SEED,
                                                             start_time=start_time))
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
  table = markdown(record)
  with open(os.path.splitext(args.out)[0] + ".md", "w", encoding="utf-8") as f:
    f.write(table)
  print(table)
  if args.figure:
    make_figure(args.figure, val, evaluated, indices=[3, 150, 260, 330] if len(val) > 330 else [0, 1],
                config=vars(args))


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # a process setting: applied by the program, not on import
  main()
