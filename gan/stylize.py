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
  adain:    one forward pass of a decoder trained by `python -m gan.main --config
            configs/adain_products.py` (gan/style/adain.py), read from `--adain_dir` (default
            runs/adain_products); fast, any style.
  cyclegan: one forward pass of a generator trained by CycleGAN (gan/tasks/translation.py;
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
  gan.tasks.translation.load(workdir) + translate(...).

Feature extractor (`--extractor`, gan/style/vgg.py; nothing is downloaded at run time, a missing
weight file is an error with instructions): "vgg16" is torchvision's ImageNet VGG16 fetched once
with `python -m gan.weights fetch vgg16`; "vgg" the pretrained VGG-19 of a torchvision .pth / Keras
.h5 file; "random" the weight-free random-feature network (gan/style/random_features.py: colour and
texture statistics, no learned semantics, weaker results); "auto" (the default) takes the first
available of vgg16, vgg and random (--vgg-weights: a VGG-19 file, which then goes first, or a
folder to look in instead of $PRODUCTGAN_WEIGHTS_DIR) and logs which and why (a warning for
random). The extractor actually used is printed for every output and stored in its provenance
record. For --method adain the extractor is the one the decoder was trained with
(rebuilt from its saved name); an explicit --extractor that differs is an error.

Images: content and styles are read with gan.style.controls.load_image: shorter side resized to
`--size`, centre-cropped to a square; outputs are size x size PNGs (or one .jpg), each carrying its
provenance record: method, extractor, style files and weights, strength, colour / mask controls, the
trained model's run and step, the source file (`python -m gan.provenance show OUT`). Controls
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

from collections.abc import Callable, Sequence
import dataclasses
import os
from pathlib import Path
from typing import Any, Optional, Union

from absl import app
from absl import flags
import numpy as np

from gan import cli

PathLike = Union[str, os.PathLike]

STYLE_METHODS = ("gatys", "adain")           # take style images
TRANSLATION_METHODS = ("cyclegan", "pix2pix")  # take a trained translation workdir
METHODS = STYLE_METHODS + TRANSLATION_METHODS
EXTRACTORS = ("auto", "vgg16", "vgg", "random")   # = gan.style.adain.EXTRACTORS, without importing jax
DEFAULT_ADAIN_DIR = os.path.join("runs", "adain_products")
DEFAULT_SIZE = 256
DEFAULT_STEPS = 300


class StylizeError(cli.UserError):
  """A user error; the message says what is wrong and how to fix it."""


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
      raise StylizeError(cli.one_line(e)) from None
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


# Smaller images hold too few pixels for a style (Gram statistics of a few feature positions) or a
# recognisable content; upscaling them to --size would only blur.
MIN_IMAGE_SIDE = 16


def _load(path: PathLike, size: int, what: str) -> np.ndarray:
  """(size, size, 3) float32 in [-1, 1]; StylizeError naming `what` on a missing / bad / tiny /
  animated file. Grey, palette, CMYK and transparent images are converted to RGB (on white)."""
  from gan.style import controls  # pylint: disable=g-import-not-at-top
  try:
    image = controls.load_image(path, size)
    width, height = _image_size(path)
    if min(width, height) < MIN_IMAGE_SIDE:
      raise StylizeError(f"{what}: {path} is {width}x{height} px, too small to transfer style from or to "
                         f"(at least {MIN_IMAGE_SIDE} px per side); use a larger image.")
    return image
  except FileNotFoundError as e:
    raise StylizeError(f"{what}: {cli.one_line(e)}; check the path.") from None
  except ValueError as e:    # unreadable, or too large (data.read_rgb says which)
    advice = "" if "too large" in str(e) else " Give a readable image file (JPEG, PNG, BMP, WebP)."
    raise StylizeError(f"{what}: {cli.one_line(e).rstrip('.')}.{advice}") from None


def _image_size(path: PathLike) -> tuple[int, int]:
  """(width, height) of a readable image file, from its header."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    return image.size


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
    raise StylizeError(cli.one_line(e)) from None


def _load_adain(adain_dir: Optional[PathLike], extractor: Any, vgg_weights: Optional[PathLike]):
  from gan.style import adain  # pylint: disable=g-import-not-at-top
  from gan.style.features import FeatureExtractor  # pylint: disable=g-import-not-at-top
  adain_dir = Path(adain_dir or DEFAULT_ADAIN_DIR)
  try:
    saved = str(adain.run_config(adain_dir).adain.extractor)
  except FileNotFoundError as e:
    raise StylizeError(f"--method adain needs a trained decoder: {cli.one_line(e)} (or pass --adain_dir).") from None
  except ValueError as e:
    raise StylizeError(cli.one_line(e)) from None
  if extractor not in (None, "auto") and not isinstance(extractor, FeatureExtractor):
    if extractor not in EXTRACTORS:
      raise StylizeError(f"Unknown extractor {extractor!r}; valid: {', '.join(EXTRACTORS)}.")
    wanted = {"vgg16": "vgg16", "vgg": "vgg19", "random": "random("}[extractor]
    if not saved.startswith(wanted):
      raise StylizeError(f"The AdaIN decoder in {adain_dir} was trained with extractor {saved!r}; "
                         f"--extractor {extractor} does not match it (use --extractor auto).")
    extractor = None
  try:
    return adain.load(adain_dir, extractor if isinstance(extractor, FeatureExtractor) else None,
                      vgg_weights=vgg_weights)
  except (FileNotFoundError, ValueError) as e:
    raise StylizeError(cli.one_line(e)) from None


@dataclasses.dataclass(frozen=True)
class Stylizer:
  """Styles, controls and the network loaded once; call it on content image paths.

  Attributes:
    method: one of METHODS.
    extractor_name: the feature extractor that produces the images (translation methods: the
      generator and its run).
    run: content path -> (size, size, 3) uint8.
    operations: what it does, in words (the outputs' provenance record), e.g. ("gatys style transfer,
      300 steps, extractor vgg16", "styles wave.jpg", "strength (alpha) 0.8").
    model_dir: the trained model's folder (adain, cyclegan, pix2pix); None for gatys.
    model_step: that model's checkpoint step.
  """
  method: str
  extractor_name: str
  run: Callable[[PathLike], np.ndarray]
  operations: tuple[str, ...] = ()
  model_dir: Optional[str] = None
  model_step: Optional[int] = None

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
    model_dir, model_step = os.fspath(adain_dir or DEFAULT_ADAIN_DIR), model.info.get("steps")
    how = f"adain style transfer (decoder of {model_dir}), extractor {name}"

    def stylized(content: np.ndarray) -> np.ndarray:
      return model.stylize(content, styles, alpha=alpha, style_weights=weights)

    pixel_alpha = 1.0  # applied in feature space above
  else:
    network = resolve_extractor(extractor, vgg_weights)
    name = network.name
    model_dir, model_step = None, None
    how = f"gatys style transfer, {steps} steps, extractor {name}" + (
        f", style weight {style_weight:g}" if style_weight is not None else "")
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

  shares = [] if weights is None else [f" ({float(w):g})" for w in weights]
  styles_text = ", ".join(Path(p).name + (shares[i] if shares else "") for i, p in enumerate(style_paths))
  operations = (how, f"styles {styles_text}", *_control_words(alpha, preserve_color, mask), f"size {size}")
  return Stylizer(method, name, run, operations, model_dir, model_step)


def _control_words(alpha: float, preserve_color: Optional[str], mask: Optional[str]) -> list[str]:
  """The controls (gan.style.controls.apply_controls) in words, for the provenance record."""
  words = [f"strength (alpha) {alpha:g}"]
  if preserve_color is not None:
    words.append(f"keep the content's colours ({preserve_color})")
  if mask is not None:
    words.append(f"restyle the {mask} only")
  return words


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
  from gan.tasks import translation  # pylint: disable=g-import-not-at-top
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
    raise StylizeError(cli.one_line(e)) from None
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
  operations = (f"{method} translation {direction} ({source} -> {target})",
                *_control_words(alpha, preserve_color, mask), f"size {side}")
  return Stylizer(method, f"{method} generator {direction} ({source} -> {target}) of {workdir}, step "
                          f"{model.step}", run, operations, os.fspath(workdir), int(model.step))


def translate_image(content_path: PathLike, method: str, workdir: PathLike, *, direction: Optional[str] = None,
                    alpha: float = 1.0, preserve_color: Optional[str] = None, mask: Optional[str] = None,
                    size: Optional[int] = None) -> np.ndarray:
  """Translates one image file with a trained CycleGAN / pix2pix run; (size, size, 3) uint8.

  See make_translation_stylizer. Raises StylizeError on any user error.
  """
  return make_translation_stylizer(method, workdir, direction=direction, alpha=alpha,
                                   preserve_color=preserve_color, mask=mask, size=size)(content_path)


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
    raise StylizeError(f"Cannot read the profile {path}: {cli.one_line(e)}") from None
  except ValueError as e:
    raise StylizeError(f"Invalid profile {path}: {cli.one_line(e)}") from None
  profile.styles = [str(path.parent / s) for s in profile.styles]
  return profile


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Command-line flags, defined only when run as a program (the module is also a library)."""
  fv = flag_values
  flags.DEFINE_string("content", None, "Content image, or a folder of images.", flag_values=fv)
  flags.DEFINE_multi_string("style", None, "Style image; repeat for several styles.", flag_values=fv)
  flags.DEFINE_string("weights", None, "One weight per style, summing to 1, e.g. 0.7,0.3.", flag_values=fv)
  flags.DEFINE_string("method", None, f"{', '.join(METHODS)} (default gatys).", flag_values=fv)
  flags.DEFINE_float("alpha", None, "Style strength in [0, 1] (default 1).", flag_values=fv)
  flags.DEFINE_string("preserve_color", None, "luminance or histogram: keep the content's colours.",
                      flag_values=fv)
  flags.DEFINE_string("mask", None, "product or background: the region to stylize.", flag_values=fv)
  flags.DEFINE_string("profile", None, "StyleProfile JSON; flags override its fields.", flag_values=fv)
  flags.DEFINE_integer("size", None, f"Output side in pixels (default {DEFAULT_SIZE}; cyclegan / pix2pix: the "
                       "run's resolution).", flag_values=fv)
  flags.DEFINE_integer("steps", DEFAULT_STEPS, "Optimisation steps (gatys).", flag_values=fv)
  flags.DEFINE_float("style_weight", None, "gatys style weight (default: gan.style.gatys').", flag_values=fv)
  flags.DEFINE_string("extractor", "auto", f"{', '.join(EXTRACTORS)} (default auto).", flag_values=fv)
  flags.DEFINE_string("vgg_weights", None, "VGG-19 weight file, or folder with vgg16.npz / a VGG-19 file "
                      "(default $PRODUCTGAN_WEIGHTS_DIR).", flag_values=fv)
  flags.DEFINE_string("adain_dir", DEFAULT_ADAIN_DIR, "Trained AdaIN decoder (python -m gan.main --config "
                      "configs/adain_products.py).", flag_values=fv)
  flags.DEFINE_string("workdir", None, "Trained run of --method cyclegan / pix2pix (gan.main).", flag_values=fv)
  flags.DEFINE_string("direction", None, "cyclegan: a2b (default) or b2a; pix2pix: edges2photo (the only one).",
                      flag_values=fv)
  flags.DEFINE_string("out", None, "Output .png / .jpg (its provenance record inside), or a folder for a "
                      "content folder.", flag_values=fv)
  cli.alias_dashes(["preserve_color", "style_weight", "vgg_weights", "adain_dir"], fv)
  # --features vgg16: the name the style-transfer docs use for the feature network.
  flags.DEFINE_alias("features", "extractor", flag_values=fv)
  flags.mark_flags_as_required(["content", "out"], flag_values=fv)


def _run_translation_cli(args: flags.FlagValues) -> None:
  """--method cyclegan / pix2pix: translate the content with a trained generator."""
  if not args.workdir:
    make_translation_stylizer(args.method, None)   # raises the "needs --workdir" error
  if args.style or args.weights or args.profile:
    raise StylizeError(f"--method {args.method} translates with the generator of --workdir; it takes no "
                       "--style / --weights / --profile (those are for gatys and adain).")
  pairs = cli.image_outputs(args.content, args.out, "--content")
  if len(pairs) == 1:  # an unreadable photo fails before the generator is loaded
    _load(pairs[0][0], 8, "content image")
  alpha = 1.0 if args.alpha is None else args.alpha
  stylizer = make_translation_stylizer(args.method, args.workdir, direction=args.direction, alpha=alpha,
                                       preserve_color=args.preserve_color, mask=args.mask, size=args.size)
  write_outputs(stylizer, pairs)


def run_cli(args: flags.FlagValues, argv: Sequence[str]) -> None:
  """Stylizes and writes the outputs as the flags `args` say (argv: what absl left, the program
  first); raises StylizeError on user errors."""
  cli.check_no_arguments(argv[1:])
  if args.method in TRANSLATION_METHODS:
    _run_translation_cli(args)
    return
  if args.workdir or args.direction:
    raise StylizeError("--workdir / --direction are for --method cyclegan or pix2pix (trained translation runs).")
  size = DEFAULT_SIZE if args.size is None else args.size
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
  pairs = cli.image_outputs(args.content, args.out, "--content")
  if len(pairs) == 1:  # an unreadable photo fails before any network is loaded
    _load(pairs[0][0], max(size, 8), "content image")
  stylizer = make_stylizer(styles, method, weights=weights, alpha=alpha,
                           preserve_color=preserve_color, mask=mask, size=size,
                           steps=args.steps, extractor=args.extractor, adain_dir=args.adain_dir,
                           vgg_weights=args.vgg_weights, style_weight=args.style_weight)
  write_outputs(stylizer, pairs)


def write_outputs(stylizer: Stylizer, pairs: Sequence[tuple[Path, Path]]) -> None:
  """Stylizes each (content, output) pair (cli.image_outputs) and writes the output with its
  provenance record (the stylizer's operations, model run and step, the content file)."""
  from gan import provenance  # pylint: disable=g-import-not-at-top
  for source, target in pairs:
    image = stylizer(source)
    rec = provenance.image_record("stylized", run=stylizer.model_dir, step=stylizer.model_step,
                                  operations=stylizer.operations, extra={"source": source.name})
    provenance.write_image(target, image, rec)
    network = "" if stylizer.method in TRANSLATION_METHODS else "extractor "   # a generator names itself
    print(f"Wrote {target} ({image.shape[1]}x{image.shape[0]}, method {stylizer.method}, "
          f"{network}{stylizer.extractor_name})")


def main(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """`python -m gan.stylize`: user errors print one paragraph "error: ..." and exit with code 1."""
  cli.run_command(lambda: run_cli(flag_values, argv))


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
