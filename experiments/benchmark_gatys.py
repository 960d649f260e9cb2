"""Gatys style transfer on real product photos: losses reached and time per image.

  python experiments/benchmark_gatys.py --size 256 --steps 300          # the issue's setting
  python experiments/benchmark_gatys.py --size 128 --steps 200 --photos 0,233 --styles wave

Each (photo, style) pair is one `gan.style.gatys.stylize` call with its defaults (Adam, lr 0.02,
content init, style_weight 1e3) and the extractor `--extractor` resolves to (auto: VGG-19 when its
weights are found, else the random-feature network). Photos: the validation split of the products
(photo half; indices 0-199 shoes, 200-399 handbags), styles: the paintings, both under
`configs.default.data_root()`. The first call includes compilation (reported separately: later
calls with the same size reuse it). Prints one JSON line per pair and writes them all, with the
provenance record, to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top

from configs import dcgan_products, default  # pylint: disable=g-import-not-at-top
from gan import host_memory  # pylint: disable=g-import-not-at-top
from gan import data, provenance, stylize  # pylint: disable=g-import-not-at-top
from gan.style import controls, gatys  # pylint: disable=g-import-not-at-top


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--size", type=int, default=256)
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--photos", default="0,233", help="validation photo indices")
  parser.add_argument("--styles", default="starry_night,mosaic", help="painting names (styles/<name>.jpg)")
  parser.add_argument("--extractor", default="auto", choices=stylize.EXTRACTORS)
  parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "results", "gatys_benchmark.json"))
  args = parser.parse_args(argv)
  rec = provenance.record(command=" ".join(sys.argv))
  photos_config = dcgan_products.get_config().data
  photos_config.update(split="val", image_size=args.size, max_examples=0)
  indices = [int(i) for i in args.photos.split(",")]
  photos = data.load_dataset(photos_config).images[indices].astype(np.float32) / 127.5 - 1.0
  extractor = stylize.resolve_extractor(args.extractor)
  results = []
  for index, photo in zip(indices, photos):
    for name in args.styles.split(","):
      style = controls.load_image(os.path.join(default.data_root(), "styles", f"{name}.jpg"), args.size)
      start = time.perf_counter()
      result = gatys.stylize(photo, [style], extractor, steps=args.steps)
      seconds = time.perf_counter() - start
      h = result.history
      row = {"photo": index, "style": name, "size": args.size, "steps": args.steps,
             "extractor": extractor.name, "seconds": round(seconds, 2),
             "seconds_per_step": round(seconds / args.steps, 4),
             **{f"{term}_{when}": float(h[term][i]) for term in ("content", "style", "total")
                for when, i in (("first", 0), ("last", -1))}}
      print(json.dumps(row), flush=True)
      results.append(row)
  # The first call compiles; the others reuse it (same size and settings).
  if len(results) > 1:
    later = float(np.median([r["seconds"] for r in results[1:]]))
    print(f"{args.size}x{args.size}, {args.steps} steps, {extractor.name}: {later:.1f} s per image "
          f"(median after the first; first with compilation {results[0]['seconds']:.1f} s)")
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump({"results": results, "provenance": provenance.finish(rec)}, f, indent=1)
  return 0


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # a process setting: applied by the program, not on import
  sys.exit(main())
