"""Figure of trained translation runs on held-out product photos: edges | pix2pix | real, and
shoe -> handbag / handbag -> shoe with CycleGAN.

  python experiments/translation_figure.py --pix2pix runs/pix2pix_products \
      --cyclegan runs/cyclegan_products --out docs/translation_products.png [--rows 6 --scale 2]

Rows are spread evenly over the held-out ("val") split of each run's data (half shoes, half
handbags for pix2pix; shoes for the A -> B columns and handbags for B -> A). Either run may be left
out (--pix2pix "" or --cyclegan ""). The PNG is refused above --max_kb (300 KB by default): lower
--scale or --rows.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top

from gan import data  # pylint: disable=g-import-not-at-top
from gan import figures  # pylint: disable=g-import-not-at-top
from gan import sampling  # pylint: disable=g-import-not-at-top
from gan.tasks import translation  # pylint: disable=g-import-not-at-top

GAP = 8          # pixels between column groups
HEADER = 14      # pixels of caption above each group


def _spread(n: int, rows: int) -> np.ndarray:
  return np.linspace(0, n - 1, min(rows, n)).round().astype(int)


def pix2pix_columns(workdir: str, rows: int) -> tuple[list[np.ndarray], list[str]]:
  """[edges, pix2pix output, real photo] uint8 (rows, S, S, 3) each, from the held-out pairs."""
  model = translation.load(workdir)
  val = translation.load_pairs(model.config.data, data.held_out_split(model.config.data))
  pick = _spread(len(val), rows)
  out = sampling.to_uint8(translation.translate(model, val.pairs[pick]))
  return [val.pairs[pick], out, val.images[pick]], ["edges", f"pix2pix ({model.step} steps)", "real photo"]


def cyclegan_columns(workdir: str, rows: int) -> tuple[list[np.ndarray], list[str]]:
  """[A, G_AB(A), B, G_BA(B)] uint8 (rows, S, S, 3) each, from the held-out photos."""
  model = translation.load(workdir)
  config = model.config
  val_a, val_b = translation.load_domains(config.data, data.held_out_split(config.data),
                                          config.translation.domain_a, config.translation.domain_b)
  a, b = val_a.images[_spread(len(val_a), rows)], val_b.images[_spread(len(val_b), rows)]
  (name_a, name_b) = model.domains["a2b"]
  return ([a, sampling.to_uint8(translation.translate(model, a, "a2b")), b,
           sampling.to_uint8(translation.translate(model, b, "b2a"))],
          [name_a, f"CycleGAN -> {name_b}", name_b, f"-> {name_a} ({model.step} st.)"])


def compose(groups: list[tuple[list[np.ndarray], list[str]]], scale: int) -> np.ndarray:
  """Column groups side by side, GAP pixels apart, a caption strip above: (H, W, 3) uint8."""
  rows = min(len(columns[0]) for columns, _ in groups)
  side = groups[0][0][0].shape[1] * scale
  widths = [len(columns) * side for columns, _ in groups]
  canvas = Image.new("RGB", (sum(widths) + GAP * (len(groups) - 1), HEADER + rows * side), "white")
  draw = ImageDraw.Draw(canvas)
  x = 0
  for (columns, captions), width in zip(groups, widths):
    for c, (column, caption) in enumerate(zip(columns, captions)):
      draw.text((x + c * side + 2, 1), caption, fill="black")
      for r in range(rows):
        tile = Image.fromarray(column[r]).resize((side, side), Image.Resampling.NEAREST)
        canvas.paste(tile, (x + c * side, HEADER + r * side))
    x += width + GAP
  return np.asarray(canvas)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--pix2pix", default="runs/pix2pix_products")
  parser.add_argument("--cyclegan", default="runs/cyclegan_products")
  parser.add_argument("--out", default="docs/translation_products.png")
  parser.add_argument("--rows", type=int, default=6)
  parser.add_argument("--scale", type=int, default=2, help="Nearest-neighbour upscaling of the 64 px images.")
  parser.add_argument("--max_kb", type=int, default=300)
  args = parser.parse_args(argv)
  groups = []
  if args.pix2pix:
    groups.append(pix2pix_columns(args.pix2pix, args.rows))
  if args.cyclegan:
    groups.append(cyclegan_columns(args.cyclegan, args.rows))
  if not groups:
    parser.error("give --pix2pix and/or --cyclegan")
  image = compose(groups, args.scale)
  titles = [t for _, ts in groups for t in ts]
  sidecar = figures.save_image(args.out, image, config=vars(args), extra={"columns": titles},
                               operations=["translation examples: " + ", ".join(titles)])
  kb = os.path.getsize(args.out) / 1024
  if kb > args.max_kb:
    os.remove(args.out)
    os.remove(sidecar)
    print(f"error: the figure is {kb:.0f} KB > {args.max_kb} KB; lower --scale or --rows.", file=sys.stderr)
    return 1
  print(f"Wrote {args.out} ({image.shape[1]}x{image.shape[0]}, {kb:.0f} KB) and {sidecar}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
