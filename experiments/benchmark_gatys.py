"""Gatys style transfer on real product photos: losses reached and time per image.

  python experiments/benchmark_gatys.py --size 256 --steps 300          # the issue's setting
  python experiments/benchmark_gatys.py --size 128 --steps 200 --photos 0,233 --styles wave
  python experiments/benchmark_gatys.py --alternate 2     # vs PyTorch eager (experiments/gatys_pytorch.py)

Each (photo, style) pair is one `gan.style.gatys.stylize` call with its defaults (Adam, lr 0.02,
content init, style_weight 1e3) and the extractor `--extractor` resolves to (auto: ImageNet VGG16
when `python -m gan.weights fetch vgg16` has run, else a VGG-19 file, else the random-feature network). Photos: the validation split of the products
(photo half; indices 0-199 shoes, 200-399 handbags), styles: the paintings, both under
`configs.default.data_root()`. The first call includes compilation (reported separately: later
calls with the same size reuse it). Prints one JSON line per pair and writes them all, with the
provenance record, to `--out`.

--alternate N: N rounds of [this benchmark in a fresh process, experiments/gatys_pytorch.py (the same
recipe in PyTorch eager, same photos, paintings, size and steps) in a fresh process], so both see
the same machine state; the per-image time of each is the median over rounds of the pairs after
the first (the first includes JAX's compilation / PyTorch's warm-up). Reports the ratio PyTorch
seconds / JAX seconds (> 1: JAX faster) and writes both frameworks' rows to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
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
  parser.add_argument("--alternate", type=int, default=0,
                      help="rounds of JAX / PyTorch alternated in fresh processes (0: JAX only, here)")
  args = parser.parse_args(argv)
  rec = provenance.record(command=" ".join(sys.argv))
  if args.alternate:
    return alternate(args, rec)
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


def _run_json_lines(command: list[str]) -> list[dict]:
  out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
  return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def alternate(args: argparse.Namespace, rec: dict) -> int:
  """JAX and PyTorch alternated in fresh processes; prints the per-image times and the ratio."""
  here = os.path.dirname(os.path.abspath(__file__))
  common = ["--size", str(args.size), "--steps", str(args.steps), "--photos", args.photos, "--styles", args.styles]
  commands = {"jax": [sys.executable, os.path.join(here, "benchmark_gatys.py"), *common,
                      "--extractor", args.extractor, "--out", os.devnull],
              "torch": [sys.executable, os.path.join(here, "gatys_pytorch.py"), *common]}
  rows, later = [], {"jax": [], "torch": []}
  for round_ in range(args.alternate):
    for framework, command in commands.items():
      result = _run_json_lines(command)
      for row in result:
        row.update(round=round_, framework=row.get("framework", framework))
      rows += result
      later[framework] += [r["seconds"] for r in result[1:]]
      print(f"round {round_} {framework}: " + ", ".join(f"{r['seconds']:.1f}" for r in result) + " s", flush=True)
  seconds = {k: float(np.median(v)) for k, v in later.items()}
  ratio = seconds["torch"] / seconds["jax"]
  print(f"{args.size}x{args.size}, {args.steps} Adam steps: JAX {seconds['jax']:.1f} s / image, PyTorch eager "
        f"{seconds['torch']:.1f} s / image (medians after the first pair, {args.alternate} rounds): "
        f"{ratio:.2f}x PyTorch")
  with open(args.out, "w") as f:
    json.dump({"results": rows, "seconds_per_image": seconds, "ratio_torch_over_jax": ratio,
               "provenance": provenance.finish(rec)}, f, indent=1)
  return 0


if __name__ == "__main__":
  host_memory.retain_freed_memory()   # a process setting: applied by the program, not on import
  sys.exit(main())
