"""Style transfer for users: a command line and `stylize_image` for notebooks.

  python -m gan.stylize --content shoe.jpg --style starry_night.jpg --out out.png
  python -m gan.stylize --content shoe.jpg --style starry_night.jpg --style wave.jpg \
      --weights 0.7,0.3 --method gatys --alpha 0.8 --preserve-color luminance --mask product \
      --size 256 --steps 300 --out out.png
  python -m gan.stylize --content photos/ --style wave.jpg --method adain \
      --adain_dir runs/adain_products --out stylized/       # batch: one PNG per input image
  python -m gan.stylize --content shoe.jpg --profile profile.json --out out.png
  python -m gan.stylize --method cyclegan --workdir runs/cyclegan_products --content shoe.jpg \
      --out bag.png [--direction a2b|b2a] [--alpha 0.7] [--mask product]
  python -m gan.stylize --method pix2pix --workdir runs/pix2pix_products --content edges.png --out photo.png

Methods:
  gatys:    optimises the image (gan/style/gatys.py): `--steps` Adam steps at `--size`, slow
            (seconds to minutes per image on CPU), any style, no training.
  adain:    one forward pass of a decoder trained by `python -m gan.style.adain` (gan/style/
            adain.py), read from `--adain_dir` (default runs/adain_products); fast, any style.
  cyclegan: one forward pass of a generator trained by CycleGAN (gan/style/translation.py;
            python -m gan.main --config configs/cyclegan_products.py --workdir RUN), read from
            `--workdir`: `--direction` a2b (default: shoe -> handbag for the products run) or b2a.
            The style is the other domain, so there is no --style / --weights / --profile.
  pix2pix:  the same for a pix2pix run: `--content` is an edge map (black lines on white), the
            output the photo it suggests (direction edges2photo).
  Translation runs work at their training resolution (data.image_size): the content is resized
  to it, translated, and the output resized to `--size` (default: that resolution). --alpha
  blends the output with the content, --mask keeps the content outside the product (or inside),
  --preserve-color keeps the content's colours (cyclegan only: an edge map has none).
  Python: translate_image(content_path, "cyclegan", workdir) or, for arrays,
  gan.style.translation.load(workdir) + translate(...).

Feature extractor (`--extractor`, gan/style/vgg.py; nothing is downloaded at run time, a missing
weight file is an error with instructions): "vgg16" is torchvision's ImageNet VGG16 fetched once
with `python -m gan.weights fetch vgg16`; "vgg" the pretrained VGG-19 of a torchvision .pth / Keras
.h5 file; "random" the weight-free random-feature network (gan/style/random_features.py: colour and
texture statistics, no learned semantics, weaker results); "auto" (the default) takes the first
available of vgg16, vgg and random (--vgg-weights: a VGG-19 file, which then goes first, or a
folder to look in instead of $PRODUCTGAN_WEIGHTS_DIR) and logs which and why (a warning for
random). The extractor actually used is printed for every output and stored in the PNG's
"stylize" text chunk. For --method adain the extractor is the one the decoder was trained with
(rebuilt from its saved name); an explicit --extractor that differs is an error.

Images: content and styles are read with gan.style.controls.load_image: shorter side resized to
`--size`, centre-cropped to a square; outputs are size x size PNGs. Controls
(gan/style/controls.py): --alpha is the style strength (pixel blend for gatys, feature-space
interpolation for adain), --preserve-color keeps the content's colours (luminance or histogram),
--mask restricts the style to the product or to the background (white-background photos).

--profile: a JSON StyleProfile (controls.StyleProfile: styles, weights, alpha, preserve_color,
mask, method). Flags given on the command line override its fields; relative style paths in it
are relative to the profile file's folder; --style replaces its styles (and its weights).

Errors (missing or unreadable image, alpha outside [0, 1], weights that do not match the styles,
unknown method / mask / colour mode, missing weights or model) print one line "error: ..." on
stderr and exit with code 1.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import dataclasses
import json
import os
from pathlib import Path
import sys
from typing import Any, Optional, Union

import numpy as np

PathLike = Union[str, os.PathLike]

STYLE_METHODS = ("gatys", "adain")           # take style images
TRANSLATION_METHODS = ("cyclegan", "pix2pix")  # take a trained translation workdir
METHODS = STYLE_METHODS + TRANSLATION_METHODS
EXTRACTORS = ("auto", "vgg16", "vgg", "random")   # = gan.style.adain.EXTRACTORS, without importing jax
DEFAULT_ADAIN_DIR = os.path.join("runs", "adain_products")
DEFAULT_SIZE = 256
DEFAULT_STEPS = 300
# gan.data.IMAGE_EXTENSIONS, repeated so that the CLI does not import the data module.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class StylizeError(ValueError):
  """A user error; the message says what is wrong and how to fix it."""


def _one_line(error: BaseException) -> str:
  return " ".join(str(error).split())


def _check_method(method: str) -> str:
  if method not in METHODS:
    raise StylizeError(f"Unknown method {method!r}; valid: {', '.join(METHODS)}.")
  return method


def _check_options(style_paths: Sequence[PathLike], weights: Optional[Sequence[float]], alpha: float,
                   preserve_color: Optional[str], mask: Optional[str], size: int,
                   steps: int) -> tuple[float, Optional[np.ndarray]]:
  """Validates the controls; returns (alpha, the style weights or None for equal ones)."""
  from gan.losses import style as style_losses  # pylint: disable=g-import-not-at-top
  from gan.style import controls  # pylint: disable=g-import-not-at-top
  if not style_paths:
    raise StylizeError("At least one style image is needed (--style PATH).")
  try:
    alpha = float(alpha)
  except (TypeError, ValueError):
    raise StylizeError(f"alpha must be a number in [0, 1], got {alpha!r}.") from None
  if not 0.0 <= alpha <= 1.0:
    raise StylizeError(f"alpha (style strength) must be in [0, 1], got {alpha}.")
  if weights is not None:
    if len(weights) != len(style_paths):
      raise StylizeError(f"Got {len(weights)} style weights for {len(style_paths)} styles: give "
                         "one weight per --style.")
    try:
      weights = style_losses.check_blend_weights(weights, len(style_paths))
    except ValueError as e:
      raise StylizeError(_one_line(e)) from None
  if preserve_color is not None and preserve_color not in controls.COLOR_METHODS:
    raise StylizeError(f"Unknown preserve-color {preserve_color!r}; valid: "
                       f"{', '.join(controls.COLOR_METHODS)}.")
  if mask is not None and mask not in controls.MASK_REGIONS:
    raise StylizeError(f"Unknown mask {mask!r}; valid: {', '.join(controls.MASK_REGIONS)}.")
  if size < 8:
    raise StylizeError(f"size must be >= 8, got {size}.")
  if steps < 1:
    raise StylizeError(f"steps must be >= 1, got {steps}.")
  return alpha, weights


def _load(path: PathLike, size: int, what: str) -> np.ndarray:
  """(size, size, 3) float32 in [-1, 1]; StylizeError naming `what` on a missing / bad file."""
  from gan.style import controls  # pylint: disable=g-import-not-at-top
  try:
    return controls.load_image(path, size)
  except FileNotFoundError as e:
    raise StylizeError(f"{what}: {_one_line(e)}; check the path.") from None
  except ValueError as e:    # unreadable, or too large (data.read_rgb says which)
    advice = "" if "too large" in str(e) else " Give a readable image file (JPEG, PNG, BMP, WebP)."
    raise StylizeError(f"{what}: {_one_line(e).rstrip('.')}.{advice}") from None


def resolve_extractor(extractor: Any = "auto", vgg_weights: Optional[PathLike] = None):
  """A FeatureExtractor from "auto" / "vgg16" / "vgg" / "random" (gan.style.adain.resolve_extractor),
  or `extractor` itself when it already is one. StylizeError when VGG weights are missing."""
  from gan.style import adain  # pylint: disable=g-import-not-at-top
  from gan.style.features import FeatureExtractor  # pylint: disable=g-import-not-at-top
  if isinstance(extractor, FeatureExtractor):
    return extractor
  if extractor not in EXTRACTORS:
    raise StylizeError(f"Unknown extractor {extractor!r}; valid: {', '.join(EXTRACTORS)}.")
  try:
    return adain.resolve_extractor(extractor, vgg_weights)
  except (ValueError, FileNotFoundError) as e:  # missing (also gan.weights.MissingWeightsError) or malformed
    raise StylizeError(_one_line(e)) from None


def _load_adain(adain_dir: Optional[PathLike], extractor: Any, vgg_weights: Optional[PathLike]):
  from gan.style import adain  # pylint: disable=g-import-not-at-top
  from gan.style.features import FeatureExtractor  # pylint: disable=g-import-not-at-top
  adain_dir = Path(adain_dir or DEFAULT_ADAIN_DIR)
  if not (adain_dir / adain.CONFIG_FILE).is_file():
    raise StylizeError(f"--method adain needs a trained decoder: {adain_dir} has no "
                       f"{adain.CONFIG_FILE}. Train one with python -m gan.style.adain --workdir "
                       f"{adain_dir} (or pass --adain_dir).")
  if extractor not in (None, "auto") and not isinstance(extractor, FeatureExtractor):
    if extractor not in EXTRACTORS:
      raise StylizeError(f"Unknown extractor {extractor!r}; valid: {', '.join(EXTRACTORS)}.")
    try:
      saved = str(json.loads((adain_dir / adain.CONFIG_FILE).read_text(encoding="utf-8"))["extractor"])
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise StylizeError(f"Cannot read {adain_dir / adain.CONFIG_FILE}: {_one_line(e)}") from None
    wanted = {"vgg16": "vgg16", "vgg": "vgg19", "random": "random("}[extractor]
    if not saved.startswith(wanted):
      raise StylizeError(f"The AdaIN decoder in {adain_dir} was trained with extractor {saved!r}; "
                         f"--extractor {extractor} does not match it (use --extractor auto).")
    extractor = None
  try:
    return adain.load(adain_dir, extractor if isinstance(extractor, FeatureExtractor) else None,
                      vgg_weights=vgg_weights)
  except (FileNotFoundError, ValueError) as e:
    raise StylizeError(_one_line(e)) from None


@dataclasses.dataclass(frozen=True)
class Stylizer:
  """Styles, controls and the network loaded once; call it on content image paths.

  Attributes:
    method: one of METHODS.
    extractor_name: the feature extractor that produces the images (translation methods: the
      generator and its run).
    run: content path -> (size, size, 3) uint8.
  """
  method: str
  extractor_name: str
  run: Callable[[PathLike], np.ndarray]

  def __call__(self, content_path: PathLike) -> np.ndarray:
    return self.run(content_path)


def make_stylizer(style_paths: Sequence[PathLike], method: str = "gatys", *,
                  weights: Optional[Sequence[float]] = None, alpha: float = 1.0,
                  preserve_color: Optional[str] = None, mask: Optional[str] = None,
                  size: int = DEFAULT_SIZE, steps: int = DEFAULT_STEPS, extractor: Any = "auto",
                  adain_dir: Optional[PathLike] = None, vgg_weights: Optional[PathLike] = None,
                  style_weight: Optional[float] = None) -> Stylizer:
  """Validates everything and loads styles and networks once (see `stylize_image`)."""
  from gan import sampling  # pylint: disable=g-import-not-at-top
  from gan.style import controls  # pylint: disable=g-import-not-at-top
  from gan.style import gatys  # pylint: disable=g-import-not-at-top
  method = _check_method(method)
  if method in TRANSLATION_METHODS:
    raise StylizeError(f"--method {method} uses a trained generator, not style images: call "
                       "make_translation_stylizer / translate_image with its workdir.")
  style_paths = list(style_paths)
  alpha, weights = _check_options(style_paths, weights, alpha, preserve_color, mask, size, steps)
  styles = [_load(path, size, f"style image {k + 1}") for k, path in enumerate(style_paths)]

  if method == "adain":
    model = _load_adain(adain_dir, extractor, vgg_weights)
    name = model.extractor_name

    def stylized(content: np.ndarray) -> np.ndarray:
      return model.stylize(content, styles, alpha=alpha, style_weights=weights)

    pixel_alpha = 1.0  # applied in feature space above
  else:
    network = resolve_extractor(extractor, vgg_weights)
    name = network.name
    kwargs = {} if style_weight is None else {"style_weight": float(style_weight)}

    def stylized(content: np.ndarray) -> np.ndarray:
      return gatys.stylize(content, styles, network, style_weights=weights, steps=steps,
                           **kwargs).image

    pixel_alpha = alpha

  def run(content_path: PathLike) -> np.ndarray:
    content = _load(content_path, size, "content image")
    out = controls.apply_controls(content, stylized(content), alpha=pixel_alpha,
                                  color=preserve_color, region=mask)
    return sampling.to_uint8(out)

  return Stylizer(method, name, run)


def stylize_image(content_path: PathLike, style_paths: Union[PathLike, Sequence[PathLike]],
                  method: str = "gatys", *, weights: Optional[Sequence[float]] = None,
                  alpha: float = 1.0, preserve_color: Optional[str] = None,
                  mask: Optional[str] = None, size: int = DEFAULT_SIZE, steps: int = DEFAULT_STEPS,
                  extractor: Any = "auto", adain_dir: Optional[PathLike] = None,
                  vgg_weights: Optional[PathLike] = None,
                  style_weight: Optional[float] = None) -> np.ndarray:
  """Stylizes one image file; returns (size, size, 3) uint8.

  Args:
    content_path: the photo (any PIL-readable file); resized / centre-cropped to size x size.
    style_paths: one style image path or a list of them.
    method: "gatys" or "adain" ("cyclegan": not implemented, raises StylizeError).
    weights: one per style, >= 0, summing to 1; None: equal.
    alpha: style strength in [0, 1].
    preserve_color: None, "luminance" or "histogram".
    mask: None (whole image), "product" or "background": where the style goes.
    size: output side in pixels.
    steps: optimisation steps (gatys only).
    extractor: "auto", "vgg16", "vgg", "random" or a gan.style.features.FeatureExtractor (see the
      module docstring; adain: must match the decoder's).
    adain_dir: the trained decoder (adain only); None: runs/adain_products.
    vgg_weights: a VGG-19 weight file, or a folder with vgg16.npz / a VGG-19 file (None:
      $PRODUCTGAN_WEIGHTS_DIR).
    style_weight: gatys' style weight (None: gan.style.gatys' default).

  Raises:
    StylizeError: any user error (bad file, option or missing model / weights).
  """
  if isinstance(style_paths, (str, os.PathLike)):
    style_paths = [style_paths]
  return make_stylizer(style_paths, method, weights=weights, alpha=alpha,
                       preserve_color=preserve_color, mask=mask, size=size, steps=steps,
                       extractor=extractor, adain_dir=adain_dir, vgg_weights=vgg_weights,
                       style_weight=style_weight)(content_path)


def make_translation_stylizer(method: str, workdir: Optional[PathLike], *, direction: Optional[str] = None,
                              alpha: float = 1.0, preserve_color: Optional[str] = None,
                              mask: Optional[str] = None, size: Optional[int] = None) -> Stylizer:
  """Loads a CycleGAN / pix2pix run once; the Stylizer maps a content path to (size, size, 3) uint8.

  The content is read at the run's data.image_size, translated in `direction` (cyclegan "a2b" (default)
  or "b2a"; pix2pix "edges2photo"), resized to `size` (None: the run's resolution, no resize) and
  blended with the content read at `size`: gan.style.controls.apply_controls(alpha, preserve_color, mask).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from gan import sampling  # pylint: disable=g-import-not-at-top
  from gan.style import controls  # pylint: disable=g-import-not-at-top
  from gan.style import translation  # pylint: disable=g-import-not-at-top
  if method not in TRANSLATION_METHODS:
    raise StylizeError(f"Unknown translation method {method!r}; valid: {', '.join(TRANSLATION_METHODS)}.")
  if not workdir:
    raise StylizeError(f"--method {method} needs --workdir RUN, a trained {method} run (python -m gan.main "
                       f"--config configs/{method}_products.py --workdir RUN).")
  try:
    alpha = float(alpha)
  except (TypeError, ValueError):
    raise StylizeError(f"alpha must be a number in [0, 1], got {alpha!r}.") from None
  if not 0.0 <= alpha <= 1.0:
    raise StylizeError(f"alpha (translation strength) must be in [0, 1], got {alpha}.")
  if preserve_color is not None and preserve_color not in controls.COLOR_METHODS:
    raise StylizeError(f"Unknown preserve-color {preserve_color!r}; valid: {', '.join(controls.COLOR_METHODS)}.")
  if preserve_color is not None and method == "pix2pix":
    raise StylizeError("--preserve-color does not apply to --method pix2pix: the content is an edge map, "
                       "it has no colours to keep.")
  if mask is not None and mask not in controls.MASK_REGIONS:
    raise StylizeError(f"Unknown mask {mask!r}; valid: {', '.join(controls.MASK_REGIONS)}.")
  if size is not None and size < 8:
    raise StylizeError(f"size must be >= 8, got {size}.")
  try:
    model = translation.load(os.fspath(workdir))
  except ValueError as e:   # TranslationError and checkpointing's mismatch / corrupt-checkpoint errors
    raise StylizeError(_one_line(e)) from None
  if model.task != method:
    raise StylizeError(f"{workdir} is a {model.task} run: use --method {model.task}.")
  directions = translation.DIRECTIONS[method]
  direction = direction or directions[0]
  if direction not in directions:
    raise StylizeError(f"Unknown --direction {direction!r} for {method}; valid: " + ", ".join(
        f"{d} ({model.domains[d][0]} -> {model.domains[d][1]})" for d in directions) + ".")
  side = size or model.image_size

  def run(content_path: PathLike) -> np.ndarray:
    content = _load(content_path, model.image_size, "content image")
    out = translation.translate(model, content[None], direction)[0]
    if side != model.image_size:
      resized = Image.fromarray(sampling.to_uint8(out)).resize((side, side), Image.Resampling.BICUBIC)
      out = translation.to_float(np.asarray(resized))
      content = _load(content_path, side, "content image")
    return sampling.to_uint8(controls.apply_controls(content, out, alpha=alpha, color=preserve_color,
                                                     region=mask))

  source, target = model.domains[direction]
  return Stylizer(method, f"{method} generator {direction} ({source} -> {target}) of {workdir}, step "
                          f"{model.step}", run)


def translate_image(content_path: PathLike, method: str, workdir: PathLike, *, direction: Optional[str] = None,
                    alpha: float = 1.0, preserve_color: Optional[str] = None, mask: Optional[str] = None,
                    size: Optional[int] = None) -> np.ndarray:
  """Translates one image file with a trained CycleGAN / pix2pix run; (size, size, 3) uint8.

  See make_translation_stylizer. Raises StylizeError on any user error.
  """
  return make_translation_stylizer(method, workdir, direction=direction, alpha=alpha,
                                   preserve_color=preserve_color, mask=mask, size=size)(content_path)


def write_png(path: PathLike, image: np.ndarray, description: str) -> None:
  """(H, W, 3) uint8 -> PNG with a "stylize" text chunk saying how it was made."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from PIL import PngImagePlugin  # pylint: disable=g-import-not-at-top
  info = PngImagePlugin.PngInfo()
  info.add_text("stylize", description)
  Image.fromarray(image).save(path, format="PNG", pnginfo=info)


def content_outputs(content: PathLike, out: PathLike) -> list[tuple[Path, Path]]:
  """[(input, output PNG)]: a file -> `out` (must end in .png); a folder -> every image in it
  (sorted) -> out/<name>.png."""
  content, out = Path(content), Path(out)
  if content.is_dir():
    inputs = sorted(p for p in content.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not inputs:
      raise StylizeError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in the content folder {content}.")
    if out.exists() and not out.is_dir():
      raise StylizeError(f"--content is a folder, so --out must be a folder; {out} is a file.")
    outputs = [out / f"{p.stem}.png" for p in inputs]
    clashes = sorted({o.name for o in outputs if outputs.count(o) > 1})
    if clashes:
      raise StylizeError(f"Several inputs in {content} would be written to the same output "
                         f"{', '.join(clashes)}; rename them.")
    return list(zip(inputs, outputs))
  if not content.is_file():
    raise StylizeError(f"content image: Image file not found: {content}")
  if out.is_dir():
    return [(content, out / f"{content.stem}.png")]
  if out.suffix.lower() != ".png":
    raise StylizeError(f"Outputs are PNG: --out must end in .png (or be a folder), got {out}.")
  return [(content, out)]


def _parse_weights(text: Optional[str]) -> Optional[list[float]]:
  if text is None:
    return None
  try:
    return [float(w) for w in text.split(",")]
  except ValueError:
    raise StylizeError(f"--weights must be comma-separated numbers, e.g. 0.7,0.3; got {text!r}.") from None


def load_profile(path: PathLike):
  """A controls.StyleProfile from JSON, style paths made relative to the profile's folder."""
  from gan.style import controls  # pylint: disable=g-import-not-at-top
  path = Path(path)
  try:
    profile = controls.StyleProfile.from_json(path.read_text(encoding="utf-8"))
  except OSError as e:
    raise StylizeError(f"Cannot read the profile {path}: {_one_line(e)}") from None
  except ValueError as e:
    raise StylizeError(f"Invalid profile {path}: {_one_line(e)}") from None
  profile.styles = [str(path.parent / s) for s in profile.styles]
  return profile


class _Parser(argparse.ArgumentParser):
  """Usage errors exit with code 1 and one line, as the other errors."""

  def error(self, message: str):
    self.exit(1, f"error: {message} (see python -m gan.stylize --help)\n")


def _parser() -> argparse.ArgumentParser:
  p = _Parser(prog="python -m gan.stylize",
              description="Stylize product photos (see the docstring of gan/stylize.py).")
  p.add_argument("--content", required=True, help="Content image, or a folder of images.")
  p.add_argument("--style", action="append", default=None,
                 help="Style image; repeat for several styles.")
  p.add_argument("--weights", default=None, help="One weight per style, summing to 1, e.g. 0.7,0.3.")
  p.add_argument("--method", default=None, help=f"{', '.join(METHODS)} (default gatys).")
  p.add_argument("--alpha", type=float, default=None, help="Style strength in [0, 1] (default 1).")
  p.add_argument("--preserve-color", "--preserve_color", dest="preserve_color", default=None,
                 help="luminance or histogram: keep the content's colours.")
  p.add_argument("--mask", default=None, help="product or background: the region to stylize.")
  p.add_argument("--profile", default=None, help="StyleProfile JSON; flags override its fields.")
  p.add_argument("--size", type=int, default=None,
                 help=f"Output side in pixels (default {DEFAULT_SIZE}; cyclegan / pix2pix: the run's resolution).")
  p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="Optimisation steps (gatys).")
  p.add_argument("--style-weight", "--style_weight", dest="style_weight", type=float, default=None,
                 help="gatys style weight (default: gan.style.gatys').")
  p.add_argument("--extractor", default="auto", help=f"{', '.join(EXTRACTORS)} (default auto).")
  p.add_argument("--vgg-weights", "--vgg_weights", dest="vgg_weights", default=None,
                 help="VGG-19 weight file, or folder with vgg16.npz / a VGG-19 file (default "
                 "$PRODUCTGAN_WEIGHTS_DIR).")
  p.add_argument("--adain_dir", "--adain-dir", dest="adain_dir", default=DEFAULT_ADAIN_DIR,
                 help="Trained AdaIN decoder (python -m gan.style.adain).")
  p.add_argument("--workdir", default=None, help="Trained run of --method cyclegan / pix2pix (gan.main).")
  p.add_argument("--direction", default=None,
                 help="cyclegan: a2b (default) or b2a; pix2pix: edges2photo (the only one).")
  p.add_argument("--out", required=True, help="Output PNG, or a folder for a content folder.")
  return p


def _run_translation_cli(args: argparse.Namespace) -> int:
  """--method cyclegan / pix2pix: translate the content with a trained generator."""
  if not args.workdir:
    make_translation_stylizer(args.method, None)   # raises the "needs --workdir" error
  if args.style or args.weights or args.profile:
    raise StylizeError(f"--method {args.method} translates with the generator of --workdir; it takes no "
                       "--style / --weights / --profile (those are for gatys and adain).")
  pairs = content_outputs(args.content, args.out)
  if len(pairs) == 1:  # an unreadable photo fails before the generator is loaded
    _load(pairs[0][0], 8, "content image")
  alpha = 1.0 if args.alpha is None else args.alpha
  stylizer = make_translation_stylizer(args.method, args.workdir, direction=args.direction, alpha=alpha,
                                       preserve_color=args.preserve_color, mask=args.mask, size=args.size)
  description = f"method={stylizer.method}; generator={stylizer.extractor_name}; alpha={alpha}"
  for source, target in pairs:
    target.parent.mkdir(parents=True, exist_ok=True)
    image = stylizer(source)
    write_png(target, image, description)
    print(f"Wrote {target} ({image.shape[0]}x{image.shape[1]}, {stylizer.extractor_name})")
  return 0


def run_cli(args: argparse.Namespace) -> int:
  """Stylizes and writes the outputs; raises StylizeError on user errors."""
  if args.method in TRANSLATION_METHODS:
    return _run_translation_cli(args)
  if args.workdir or args.direction:
    raise StylizeError("--workdir / --direction are for --method cyclegan or pix2pix (trained translation runs).")
  if args.size is None:
    args.size = DEFAULT_SIZE
  profile = load_profile(args.profile) if args.profile else None
  styles = args.style or (profile.styles if profile else None)
  if not styles:
    raise StylizeError("Give at least one --style (or a --profile with styles).")
  weights = _parse_weights(args.weights)
  if weights is None and profile is not None and not args.style:
    weights = profile.weights

  def pick(flag_value, field, default):
    if flag_value is not None:
      return flag_value
    return getattr(profile, field) if profile is not None else default

  method = pick(args.method, "method", "gatys")
  alpha = pick(args.alpha, "alpha", 1.0)
  preserve_color = pick(args.preserve_color, "preserve_color", None)
  mask = pick(args.mask, "mask", None)
  _check_method(method)
  pairs = content_outputs(args.content, args.out)
  if len(pairs) == 1:  # an unreadable photo fails before any network is loaded
    _load(pairs[0][0], max(args.size, 8), "content image")
  stylizer = make_stylizer(styles, method, weights=weights, alpha=alpha,
                           preserve_color=preserve_color, mask=mask, size=args.size,
                           steps=args.steps, extractor=args.extractor, adain_dir=args.adain_dir,
                           vgg_weights=args.vgg_weights, style_weight=args.style_weight)
  description = (f"method={stylizer.method}; extractor={stylizer.extractor_name}; "
                 f"styles={','.join(map(str, styles))}; alpha={alpha}")
  for source, target in pairs:
    target.parent.mkdir(parents=True, exist_ok=True)
    write_png(target, stylizer(source), description)
    print(f"Wrote {target} ({args.size}x{args.size}, method {stylizer.method}, extractor "
          f"{stylizer.extractor_name})")
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = _parser().parse_args(argv)
  try:
    return run_cli(args)
  except StylizeError as e:
    print(f"error: {_one_line(e)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
  sys.exit(main())
