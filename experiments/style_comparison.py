"""Random features vs ImageNet VGG16 for style transfer on product photos: figure and VGG16-space losses.

  python -m gan.main --config configs/adain_products.py --workdir runs/adain_products      # VGG16 decoder
  python -m gan.main --config configs/adain_products.py --workdir runs/adain_products_random \
      --config.adain.extractor=random                                                        # random decoder
  python experiments/style_comparison.py --adain_vgg16 runs/adain_products \
      --adain_random runs/adain_products_random --figure runs/style_comparison/style_random_vs_vgg16

The same 4 held-out product photos (val split: two shoes, two handbags) x 4 paintings are stylized
four ways: Gatys with the random-filter network and with VGG16 (same recipe: `gatys.stylize`
defaults, `--size` px, `--steps` Adam steps, content init), and AdaIN with the decoder trained on
each encoder. Every result is measured in the same space whatever made it:
  - style: the Gram-matrix loss at VGG16 relu1_1 ... relu5_1 (Gatys' layers; equal weights, Grams
    normalised by h * w as in gan/losses/style.py) between the result and the painting,
  - content: the feature MSE at VGG16 relu4_2 between the result and the photo,
  - LPIPS-VGG between the photo and the result (how much of the photo's look changed).
A strength sweep (alpha 0, 0.25, 0.5, 0.75, 1; Gatys: pixel blend, AdaIN: feature-space alpha)
on every pair gives the same three numbers per alpha, averaged over the 16 pairs.

Writes <figure>.png (rows: photo x painting; columns: photo, painting, Gatys random, Gatys VGG16,
AdaIN random, AdaIN VGG16) with its sidecar <figure>.json (every number), and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from configs import dcgan_products, default  # pylint: disable=g-import-not-at-top
from gan import data, figures, host_memory, provenance, sampling, stylize  # pylint: disable=g-import-not-at-top
from gan.losses import style as style_losses  # pylint: disable=g-import-not-at-top
from gan.metrics import lpips  # pylint: disable=g-import-not-at-top
from gan.style import adain, controls, gatys  # pylint: disable=g-import-not-at-top

PHOTOS = (0, 100, 233, 350)          # val split: 0-199 shoes, 200-399 handbags
STYLES = ("starry_night", "mosaic", "the_scream", "wave")
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
METHODS = ("gatys_random", "gatys_vgg16", "adain_random", "adain_vgg16")


def vgg16_targets(vgg16, photo: np.ndarray, painting: np.ndarray) -> tuple[dict, dict]:
  """(the painting's Grams at relu1_1..relu5_1, the photo's relu4_2 features): computed once per pair.

  photo: (H, W, 3) float in [-1, 1]; painting: (h, w, 3) float in [-1, 1], any size.
  """
  grams = gatys.style_targets([painting], vgg16, vgg16.default_style_layers)
  return grams, vgg16.apply(photo[None], vgg16.default_content_layers)


def vgg16_measures(vgg16, lpips_model, targets: tuple[dict, dict], photo: np.ndarray,
                   result: np.ndarray) -> dict[str, float]:
  """Style (Gram, relu1_1..relu5_1), content (relu4_2) losses in VGG16 space and LPIPS(photo, result).

  targets: `vgg16_targets(vgg16, photo, painting)`; photo, result: (H, W, 3) float in [-1, 1].
  """
  style_layers, content_layers = vgg16.default_style_layers, vgg16.default_content_layers
  grams, reference = targets
  out = vgg16.apply(result[None], style_layers + content_layers)
  weights = {layer: 1.0 / len(style_layers) for layer in style_layers}
  style = style_losses.style_loss({l: out[l] for l in style_layers}, grams, weights)
  content = style_losses.content_loss({l: out[l] for l in content_layers}, reference)
  perceptual = lpips.distance(lpips_model, photo[None], result[None])
  return {"style_vgg16": float(style), "content_vgg16": float(content),
          "lpips_vgg": float(jnp.mean(perceptual))}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--adain_vgg16", default="runs/adain_products")
  parser.add_argument("--adain_random", default="runs/adain_products_random")
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--figure", default="runs/style_comparison/style_random_vs_vgg16")
  args = parser.parse_args(argv)
  rec = provenance.record(command=" ".join(sys.argv))

  photos_config = dcgan_products.get_config().data
  photos_config.update(split="val", image_size=args.size, max_examples=0)
  photos = data.load_dataset(photos_config).images[list(PHOTOS)].astype(np.float32) / 127.5 - 1.0
  paintings = [controls.load_image(os.path.join(default.data_root(), "styles", f"{name}.jpg"), args.size)
               for name in STYLES]
  extractors = {"random": stylize.resolve_extractor("random"), "vgg16": stylize.resolve_extractor("vgg16")}
  decoders = {"random": adain.load(args.adain_random), "vgg16": adain.load(args.adain_vgg16)}
  for name, model in decoders.items():
    print(f"AdaIN {name}: encoder {model.extractor_name} ({args.adain_random if name == 'random' else args.adain_vgg16})")
  vgg16, lpips_model = extractors["vgg16"], lpips.load("vgg")

  rows, images, sweep = [], [], []
  for i, photo in zip(PHOTOS, photos):
    for name, painting in zip(STYLES, paintings):
      results, seconds = {}, {}
      targets = vgg16_targets(vgg16, photo, painting)
      for kind, extractor in extractors.items():
        start = time.perf_counter()
        results[f"gatys_{kind}"] = gatys.stylize(photo, [painting], extractor, steps=args.steps).image
        seconds[f"gatys_{kind}"] = time.perf_counter() - start
        start = time.perf_counter()
        results[f"adain_{kind}"] = decoders[kind].stylize(photo, [painting])
        seconds[f"adain_{kind}"] = time.perf_counter() - start
      for method in METHODS:
        row = {"photo": i, "style": name, "method": method, "seconds": round(seconds[method], 2),
               **vgg16_measures(vgg16, lpips_model, targets, photo, np.asarray(results[method]))}
        rows.append(row)
        print(json.dumps(row), flush=True)
      images.append([photo, painting] + [np.asarray(results[m]) for m in METHODS])
      # Strength sweep with VGG16 (both methods' own alpha control).
      for alpha in ALPHAS:
        for method, result in (
            ("gatys_vgg16", controls.blend(photo, np.asarray(results["gatys_vgg16"]), alpha)),
            ("adain_vgg16", decoders["vgg16"].stylize(photo, [painting], alpha=alpha))):
          sweep.append({"photo": i, "style": name, "method": method, "alpha": alpha,
                        **vgg16_measures(vgg16, lpips_model, targets, photo, np.asarray(result))})

  def mean_std(selected, key):
    values = np.array([r[key] for r in selected])
    return float(values.mean()), float(values.std())

  summary = {}
  print("\n| method | style loss (VGG16 Gram) | content loss (VGG16 relu4_2) | LPIPS-VGG(photo, result) | s / image |")
  print("|---|---:|---:|---:|---:|")
  for method in METHODS:
    selected = [r for r in rows if r["method"] == method]
    summary[method] = {key: mean_std(selected, key)
                       for key in ("style_vgg16", "content_vgg16", "lpips_vgg", "seconds")}
    s = summary[method]
    print(f"| {method} | {s['style_vgg16'][0]:.4g} +- {s['style_vgg16'][1]:.2g} | "
          f"{s['content_vgg16'][0]:.4g} +- {s['content_vgg16'][1]:.2g} | "
          f"{s['lpips_vgg'][0]:.3f} +- {s['lpips_vgg'][1]:.3f} | {s['seconds'][0]:.2f} |")
  # The painting itself and the untouched photo: the two ends of the style / content scales.
  ends = [vgg16_measures(vgg16, lpips_model, vgg16_targets(vgg16, photo, painting), photo, photo)
          for photo in photos for painting in paintings]
  summary["photo_unchanged"] = {key: mean_std(ends, key) for key in ("style_vgg16", "content_vgg16", "lpips_vgg")}
  s = summary["photo_unchanged"]
  print(f"| photo unchanged | {s['style_vgg16'][0]:.4g} +- {s['style_vgg16'][1]:.2g} | 0 | 0 | |")

  strength = {}
  print("\n| alpha | Gatys VGG16 style | Gatys LPIPS | AdaIN VGG16 style | AdaIN LPIPS |")
  print("|---:|---:|---:|---:|---:|")
  for alpha in ALPHAS:
    line = [f"{alpha:g}"]
    for method in ("gatys_vgg16", "adain_vgg16"):
      selected = [r for r in sweep if r["method"] == method and r["alpha"] == alpha]
      strength[f"{method}@{alpha:g}"] = {key: mean_std(selected, key)
                                         for key in ("style_vgg16", "content_vgg16", "lpips_vgg")}
      st = strength[f"{method}@{alpha:g}"]
      line += [f"{st['style_vgg16'][0]:.4g}", f"{st['lpips_vgg'][0]:.3f}"]
    print("| " + " | ".join(line) + " |")

  # AdaIN speed with each encoder: batch 8, after one warm-up call (compilation) per size.
  speed = {}
  for kind, model in decoders.items():
    for size in (64, 256):
      batch = np.asarray(jnp.tile(jnp.asarray(controls.load_image(
          os.path.join(default.data_root(), "styles", f"{STYLES[0]}.jpg"), size))[None], (8, 1, 1, 1)))
      model.stylize(batch, [paintings[1]])
      start = time.perf_counter()
      for _ in range(3):
        model.stylize(batch, [paintings[1]])
      speed[f"adain_{kind}@{size}"] = 3 * 8 / (time.perf_counter() - start)
  print("\nAdaIN images/s (batch 8, after compilation): " +
        ", ".join(f"{k} {v:.1f}" for k, v in speed.items()))

  # Rows: photo x painting; columns: photo, painting, the four methods (the PNG: 16 x 6 tiles).
  tiles = sampling.to_uint8(np.stack([np.stack(row) for row in images]).reshape(-1, args.size, args.size, 3))
  grid = sampling.make_grid(tiles, columns=2 + len(METHODS))
  png = args.figure + ".png"
  sidecar = figures.save_image(png, grid, config=vars(args), operations=[
      "rows: photo x painting; columns: photo, painting, Gatys random, Gatys VGG16, AdaIN random, AdaIN VGG16"],
      extra={"rows": [f"photo {i} x {name}" for i in PHOTOS for name in STYLES],
             "columns": ["photo", "painting"] + list(METHODS),
             "adain": {k: m.extractor_name for k, m in decoders.items()},
             "summary": summary, "strength": strength, "results": rows, "sweep": sweep,
             "adain_images_per_s": speed,
             "provenance": provenance.finish(rec)})
  print(f"Wrote {png} ({grid.shape[1]}x{grid.shape[0]}) and {sidecar}")
  return 0


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # a process setting: applied by the program, not on import
  sys.exit(main())
