"""Edit, enhance and repair product photos: GAN inversion and latent edits, super-resolution,
denoising, inpainting, new backgrounds.

  python -m gan.edit --op invert --workdir runs/stylegan_products --image shoe.jpg --out inverted.png
  python -m gan.edit --op direction --direction "size|brightness,aspect,class" --strength 2 \
      --workdir runs/stylegan_products --image shoe.jpg --out larger.png
  python -m gan.edit --op direction --direction "orientation|brightness,size,aspect,class" --strength -2 \
      --workdir runs/stylegan_products --image shoe.jpg --out tilted_clockwise.png
  python -m gan.edit --op superres --scale 4 --image small.png --out big.png
  python -m gan.edit --op superres --workdir runs/enhance/superres_x2 --image photos/ --out big/
  python -m gan.edit --op denoise --image noisy.jpg --strength 0.8 --out clean.png
  python -m gan.edit --op inpaint --image shoe.png --box 20,16,44,40 --out filled.png
  python -m gan.edit --op inpaint --image shoe.png --mask hole.png --out filled.png
  python -m gan.edit --op background --image shoe.png --background gradient:#ffffff,#88aaff --out new.png
  python -m gan.edit --op background --image photos/ --background beach.jpg --feather 1.5 --out new/

Ops (OPS maps each name to a function building its Op: the per-image edit and what it does, in
words; gan/editing/ holds the code):
  superres:   x2 or x4 (--scale; must match the model) with a model trained as task "enhance"
              (configs/enhance_products.py); --workdir default runs/enhance/superres_x<scale>.
  denoise:    Gaussian-noise or JPEG-artefact removal; --workdir default
              runs/enhance/denoise_gaussian (runs/enhance/denoise_jpeg for JPEG artefacts);
              --strength in [0, 1] blends input (0) and denoised (1).
  inpaint:    fills the region of --mask (a PNG of the image's size, white = fill) or of
              --box x0,y0,x1,y1 (pixels x0 <= x < x1, y0 <= y < y1); the other pixels are kept
              exactly; --method model (default: the trained inpainting generator, --workdir default
              runs/enhance/inpaint) or inversion (masked W+ inversion of the StyleGAN in --workdir,
              default runs/stylegan_products, at its resolution; --steps, default 300).
  background: cuts the product out of its plain (white by default, --photo-background) backdrop
              and puts it on --background: a colour (white, #RRGGBB), gradient:#TOP,#BOTTOM or an
              image file; --feather is the edge softness in pixels.
  invert:     the photo (centre square, resized to the generator's resolution) inverted into
              the W+ space of the unconditional StyleGAN in --workdir (default
              runs/stylegan_products): its encoder (<workdir>/encoder) refined by --steps of
              projection, or --steps of projection from the mean w; writes the reconstruction,
              --save-latent also the W+ latent (.npy).
  direction:  inverts, moves W+ along --direction (a name in <workdir>/editing/directions.npz,
              written by experiments/benchmark_editing.py: PCA axes "pc0"..., attribute directions
              "size", "color_red", "orientation" (tilt: + counterclockwise), "facing" (+ the thin
              end, e.g. a shoe's toe, to the right), ... and conditional ones
              "orientation|brightness,size,aspect,class" that hold the attributes after "|") by
              --strength standard deviations of w along it (in [-10, 10], default 1), renders;
              prints the measured attributes before and after.

Images are read at their own size (EXIF orientation applied, transparency composited on white).
The enhancement models are fully convolutional and were trained on 64x64 photos: results are best for
product photos of similar scale. --image may be a folder (every image in it, sorted) with --out
a folder: one PNG per input (--out may also be one .jpg). Every output carries its provenance
record (the model's run and step, --seed, the operations, e.g. "invert (W+, 300 steps from the
mean w, perceptual lpips_vgg)" then "direction size +2", the source file, git revision, time):
`python -m gan.provenance show OUT`. Errors (missing image, mask of another size, unknown op, scale or
strength out of range, missing model) print one line "error: ..." and exit with code 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import os
from pathlib import Path
from typing import Any, NamedTuple, Optional

from absl import app
from absl import flags
import numpy as np

from gan import cli

DEFAULT_RUNS = os.path.join("runs", "enhance")
DEFAULT_STYLEGAN = os.path.join("runs", "stylegan_products")
INPAINT_METHODS = ("model", "inversion")

Edit = Callable[[np.ndarray], np.ndarray]   # (H, W, 3) float32 in [-1, 1] -> (H', W', 3)


class Op(NamedTuple):
  """An op ready to run (what OPS' functions return): the per-image edit and what it does, for the
  provenance record inside each output (python -m gan.provenance show OUT)."""
  edit: Edit
  operations: list[str]          # in words, in order, e.g. ["invert (W+, 300 steps ...)", "direction size +2"]
  run: Optional[str] = None      # the trained model's workdir (None: no model, e.g. background)
  step: Optional[int] = None     # its checkpoint step
  seed: Optional[int] = None     # --seed, for the ops that draw noise (invert, direction, inpaint by inversion)


class EditError(cli.UserError):
  """A user error; the message says what is wrong and how to fix it."""


def read_image(path: os.PathLike | str) -> np.ndarray:
  """An image file at its own size -> (H, W, 3) float32 in [-1, 1] (see data.read_rgb)."""
  from gan import data  # pylint: disable=g-import-not-at-top
  try:
    image = data.read_rgb(path)
  except (FileNotFoundError, ValueError) as e:
    raise EditError(cli.one_line(e)) from None
  return np.asarray(image, np.float32) / 127.5 - 1.0


def read_mask(path: os.PathLike | str) -> np.ndarray:
  """A mask image -> (H, W, 1) float32, 1 where the pixel is light (>= 128 of 255): the hole."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  path = Path(path)
  if not path.is_file():
    raise EditError(f"Mask file not found: {path}")
  try:
    with Image.open(path) as image:
      grey = np.asarray(image.convert("L"))
  except OSError as e:
    raise EditError(f"Cannot read mask {path}: {cli.one_line(e)}") from None
  return (grey >= 128).astype(np.float32)[..., None]


def _load_model(workdir: str, task: str):
  from gan.editing import enhance_train  # pylint: disable=g-import-not-at-top
  try:
    return enhance_train.load(workdir, task)
  except (FileNotFoundError, ValueError) as e:
    raise EditError(cli.one_line(e)) from None


def _model_op(edit: Edit, operation: str, workdir: str, model) -> Op:
  """The Op of an enhancement model (an enhance_train.Enhancer) loaded from `workdir`."""
  return Op(edit, [operation], workdir, model.meta.get("step"))


# --- Ops: each validates its options, loads what it needs once, and returns the per-image edit.


def make_superres(args: flags.FlagValues) -> Op:
  from gan.editing import superres  # pylint: disable=g-import-not-at-top
  if args.scale is not None and args.scale not in superres.SCALES:
    raise EditError(f"--scale must be one of {superres.SCALES}, got {args.scale}.")
  workdir = args.workdir or os.path.join(DEFAULT_RUNS, f"superres_x{args.scale or 2}")
  model = _load_model(workdir, "superres")
  scale = superres.scale_of(model)
  if args.scale is not None and args.scale != scale:
    raise EditError(f"The model in {workdir} upscales x{scale}, but --scale {args.scale} was "
                    f"asked: pass --workdir of an x{args.scale} model (e.g. "
                    f"{os.path.join(DEFAULT_RUNS, f'superres_x{args.scale}')}).")
  return _model_op(lambda image: superres.super_resolve(model, image), f"super-resolution x{scale}", workdir, model)


def make_denoise(args: flags.FlagValues) -> Op:
  from gan.editing import denoise  # pylint: disable=g-import-not-at-top
  strength = 1.0 if args.strength is None else args.strength
  if not 0.0 <= strength <= 1.0:
    raise EditError(f"--strength must be in [0, 1] (0: the input, 1: fully denoised), got {strength}.")
  workdir = args.workdir or os.path.join(DEFAULT_RUNS, "denoise_gaussian")
  model = _load_model(workdir, "denoise")

  def edit(image: np.ndarray) -> np.ndarray:
    return image + strength * (denoise.denoise(model, image) - image)

  return _model_op(edit, f"denoise (strength {strength:g})", workdir, model)


def make_inpaint(args: flags.FlagValues) -> Op:
  from gan.editing import inpaint  # pylint: disable=g-import-not-at-top
  if (args.mask is None) == (args.box is None):
    raise EditError("--op inpaint needs exactly one of --mask MASK.png (white = fill) and "
                    "--box x0,y0,x1,y1.")
  box = None
  if args.box is not None:
    try:
      box = tuple(int(v) for v in args.box.split(","))
    except ValueError:
      box = ()
    if len(box) != 4:
      raise EditError(f"--box must be four integers x0,y0,x1,y1 (pixels), got {args.box!r}.")
  mask = read_mask(args.mask) if args.mask is not None else None
  if args.method not in INPAINT_METHODS:
    raise EditError(f"Unknown --method {args.method!r} for inpaint; valid: {', '.join(INPAINT_METHODS)}.")
  region = f"box {args.box}" if box is not None else f"mask {Path(args.mask).name}"
  if args.method == "inversion":
    g = _load_stylegan(args)
    options = _projection_options(args, from_encoder=False)   # the encoder would see the hole
    choice, perceptual = _perceptual(args)   # compares the known pixels only (the hole is weighted 0)
    fill = lambda image, hole: inpaint.masked_inversion(g.generator, g.variables, image, hole, g.key,
                                                        options=options, noise=g.noise, stats=g.stats,
                                                        perceptual=perceptual)[0]
    how = f"masked W+ inversion, {options.steps} steps, perceptual {choice}"
    run, step, seed = args.workdir or DEFAULT_STYLEGAN, g.step, args.seed
  else:
    run = args.workdir or os.path.join(DEFAULT_RUNS, "inpaint")
    model = _load_model(run, "inpaint")
    fill = lambda image, hole: inpaint.inpaint(model, image, hole)
    how, step, seed = "trained inpainting model", model.meta.get("step"), None

  def edit(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    if mask is not None and mask.shape[:2] != (h, w):
      raise EditError(f"The mask {args.mask} is {mask.shape[1]}x{mask.shape[0]} but the image is "
                      f"{w}x{h}: give a mask of the image's size.")
    try:
      hole = mask if mask is not None else inpaint.box_mask(h, w, box)
    except ValueError as e:
      raise EditError(cli.one_line(e)) from None
    return fill(image, hole)

  return Op(edit, [f"inpaint {region} ({how})"], run, step, seed)


def make_background(args: flags.FlagValues) -> Op:
  from gan.editing import background  # pylint: disable=g-import-not-at-top
  spec = args.background or "white"
  feather = background.DEFAULT_FEATHER if args.feather is None else args.feather
  if not feather >= 0:
    raise EditError(f"--feather (edge softness in pixels) must be >= 0, got {feather}.")
  if args.photo_background not in background.BACKGROUNDS:
    raise EditError(f"Unknown --photo-background {args.photo_background!r}; valid: "
                    f"{', '.join(background.BACKGROUNDS)}.")
  try:
    background.parse_background(spec, 2, 2)  # a bad colour or missing file fails before any work
  except (ValueError, FileNotFoundError) as e:
    raise EditError(f"--background: {cli.one_line(e)}") from None

  def edit(image: np.ndarray) -> np.ndarray:
    new = background.parse_background(spec, image.shape[0], image.shape[1])
    return background.replace_background(image, new, feather=feather,
                                         background=args.photo_background)[0]

  return Op(edit, [f"background {spec} (feather {feather:g} px, photo backdrop {args.photo_background})"])


MAX_DIRECTION_STRENGTH = 10.0    # in std of w along the direction; beyond it images leave the data


def _square_resize(image: np.ndarray, size: int) -> np.ndarray:
  """(H, W, 3) -> centre square crop -> (size, size, 3), antialiased (the generator's resolution)."""
  import jax  # pylint: disable=g-import-not-at-top
  h, w = image.shape[:2]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  square = image[top:top + side, left:left + side]
  return np.asarray(jax.image.resize(square, (size, size, 3), "bicubic", antialias=True)).clip(-1, 1)


class _StyleGAN(NamedTuple):
  generator: Any
  variables: Any
  encoder: Any            # inversion.TrainedEncoder, or None when the run has none
  stats: Any              # inversion.WStatistics
  noise: Any              # fixed noise maps for one image
  key: Any
  step: int               # the checkpoint step of the generator


def _load_stylegan(args: flags.FlagValues) -> _StyleGAN:
  """The unconditional StyleGAN run in --workdir (default runs/stylegan_products) and its encoder."""
  import jax  # pylint: disable=g-import-not-at-top
  from gan.tasks import generation  # pylint: disable=g-import-not-at-top
  from gan.editing import inversion  # pylint: disable=g-import-not-at-top
  workdir = args.workdir or DEFAULT_STYLEGAN
  if args.steps is not None and args.steps < 0:
    raise EditError(f"--steps (projection steps) must be >= 0, got {args.steps}.")
  try:
    _, generator, state, meta = generation.load(workdir)
  except (FileNotFoundError, ValueError) as e:
    raise EditError(f"{cli.one_line(e)} (--op {args.op} needs a trained StyleGAN run: python -m gan.main "
                    "--config configs/stylegan_products.py --workdir runs/stylegan_products)") from None
  if not inversion.is_stylegan(generator) or generator.num_classes:
    raise EditError(f"--op {args.op} works in the W+ space of an unconditional StyleGAN; {workdir} holds "
                    "another model. Pass --workdir of a configs/stylegan_products.py run.")
  variables = {"params": state.ema_g_params, "batch_stats": state.g_batch_stats}
  try:
    encoder, _ = inversion.load_encoder(os.path.join(workdir, "encoder"))
  except FileNotFoundError:
    encoder = None
  except ValueError as e:   # another kind of run, or checkpoints that do not fit
    raise EditError(f"{os.path.join(workdir, 'encoder')}: {cli.one_line(e)}") from None
  key = jax.random.PRNGKey(args.seed)
  stats = inversion.w_statistics(generator, variables, key)
  noise = inversion.draw_noise(generator, variables, 1, jax.random.fold_in(key, 1))
  return _StyleGAN(generator, variables, encoder, stats, noise, key, int(meta["step"]))


def _projection_options(args: flags.FlagValues, from_encoder: bool):
  """W+ projection settings: --steps (default 100 refining an encoder's guess, else 300 from the
  mean w); a refinement starts close, so a smaller step size and no latent perturbation."""
  from gan.editing import inversion  # pylint: disable=g-import-not-at-top
  steps = args.steps if args.steps is not None else (100 if from_encoder else 300)
  refine = {"latent_noise": 0.0, "learning_rate": 0.02} if from_encoder else {}
  return inversion.ProjectionOptions(steps=steps, **refine)


def _perceptual(args: flags.FlagValues) -> tuple[str, Any]:
  """(name, function or None) of the projection's perceptual term from --perceptual (auto: LPIPS-VGG
  when fetched, as StyleGAN2's projector; else the domain classifier's distance; else pixels only),
  said on stdout."""
  from gan.editing import edits  # pylint: disable=g-import-not-at-top
  from gan.editing import inversion  # pylint: disable=g-import-not-at-top
  try:
    choice = inversion.resolve_perceptual(args.perceptual, args.classifier)
  except ValueError as e:
    raise EditError(f"--perceptual {args.perceptual}: {cli.one_line(e)}") from None
  print(f"Inversion perceptual term: {choice}" + (" (pixel MSE only)" if choice == "none" else ""))
  if choice == "lpips_vgg":
    return choice, inversion.lpips_perceptual("vgg")
  if choice == "classifier":
    return choice, edits.DomainClassifier.load(args.classifier).perceptual()
  return choice, None


def _inverter(args: flags.FlagValues):
  """(StyleGAN, invert, what it does in words): invert(image (H, W, 3)) -> (W+ latents (1, num_ws,
  w_dim), noise maps, reconstruction (S, S, 3)): the run's encoder (<workdir>/encoder, python -m gan.main --config
  configs/inversion_encoder_products.py --workdir <workdir>/encoder) refined by --steps of W+
  projection, or without an encoder --steps of projection from the mean w."""
  from gan.editing import inversion  # pylint: disable=g-import-not-at-top
  g = _load_stylegan(args)
  options = _projection_options(args, g.encoder is not None)
  choice, perceptual = _perceptual(args)
  start = "refining the run's encoder" if g.encoder is not None else "from the mean w"
  description = f"invert (W+, {options.steps} steps {start}, perceptual {choice})"

  def invert(image: np.ndarray):
    target = _square_resize(image, g.generator.image_size)[None]
    init = (inversion.encode(g.encoder, target) if g.encoder is not None
            else inversion.initial_latents(g.generator, g.variables, "w+", 1, g.key, g.stats))
    result = inversion.project(g.generator, g.variables, target, g.key, space="w+", options=options, init=init,
                               noise=g.noise, stats=g.stats, perceptual=perceptual)
    return result.latents, result.noise, np.asarray(result.images[0])

  return g, invert, description


def make_invert(args: flags.FlagValues) -> Op:
  """The generator's reconstruction of the photo (its resolution); --save-latent keeps W+ (.npy)."""
  g, invert, description = _inverter(args)

  def edit(image: np.ndarray) -> np.ndarray:
    ws, _, reconstruction = invert(image)
    if args.save_latent:
      np.save(args.save_latent, np.asarray(ws[0]))
    return reconstruction

  return Op(edit, [description], args.workdir or DEFAULT_STYLEGAN, g.step, args.seed)


def make_direction(args: flags.FlagValues) -> Op:
  """Inverts the photo, moves its W+ along --direction by --strength (std of w along it), renders.
  Prints how the measured attributes (brightness, size, colour shares, ...) changed."""
  from gan.editing import directions  # pylint: disable=g-import-not-at-top
  from gan.editing import edits  # pylint: disable=g-import-not-at-top
  from gan.editing import inversion  # pylint: disable=g-import-not-at-top
  strength = 1.0 if args.strength is None else args.strength
  if not abs(strength) <= MAX_DIRECTION_STRENGTH:
    raise EditError(f"--strength of a direction edit is in std of w along it, within "
                    f"[-{MAX_DIRECTION_STRENGTH:g}, {MAX_DIRECTION_STRENGTH:g}] (typically -3..3), got {strength}.")
  if not args.direction:
    raise EditError("--op direction needs --direction NAME (the names are listed by --direction list).")
  workdir = args.workdir or DEFAULT_STYLEGAN
  path = os.path.join(workdir, "editing", directions.DIRECTIONS_FILE)
  try:
    known = directions.load_directions(path)
  except (FileNotFoundError, ValueError) as e:
    raise EditError(f"{cli.one_line(e)} Find the run's directions first: python experiments/benchmark_editing.py "
                    f"--workdir {workdir}") from None
  if args.direction not in known:
    import difflib  # pylint: disable=g-import-not-at-top
    close = difflib.get_close_matches(args.direction, known, n=5, cutoff=0.3)
    raise EditError(f"Unknown direction {args.direction!r}"
                    + (f"; closest: {', '.join(close)}" if close else "")
                    + f". The {len(known)} directions of {workdir}: {', '.join(known)}.")
  direction = known[args.direction]
  g, invert, description = _inverter(args)

  def edit(image: np.ndarray) -> np.ndarray:
    ws, noise, reconstruction = invert(image)
    edited = inversion.render(g.generator, g.variables, edits.apply_direction(ws, direction, strength), "w+",
                              noise=noise)
    before, after = edits.measure(reconstruction[None]), edits.measure(edited)
    changes = ", ".join(f"{k} {float(before[k][0]):.3f} -> {float(after[k][0]):.3f}"
                        for k in edits.CONTINUOUS if k in before)
    print(f"{direction.name} x{strength:g}: {changes}")
    return np.asarray(edited[0])

  return Op(edit, [description, f"direction {direction.name} {strength:+g}"], workdir, g.step, args.seed)


OPS: dict[str, Callable[[flags.FlagValues], Op]] = {
    "superres": make_superres,
    "denoise": make_denoise,
    "inpaint": make_inpaint,
    "background": make_background,
    "invert": make_invert,
    "direction": make_direction,
}


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Command-line flags, defined only when run as a program (the module is also a library)."""
  fv = flag_values
  flags.DEFINE_string("op", None, f"One of {', '.join(OPS)}.", flag_values=fv)
  flags.DEFINE_string("image", None, "Input image, or a folder of images.", flag_values=fv)
  flags.DEFINE_string("out", None, "Output .png / .jpg (its provenance record inside), or a folder for a "
                      "folder of inputs.", flag_values=fv)
  flags.DEFINE_string("workdir", None, f"Trained model (default {DEFAULT_RUNS}/<task>).", flag_values=fv)
  flags.DEFINE_integer("scale", None, "superres: 2 or 4.", flag_values=fv)
  flags.DEFINE_float("strength", None, "denoise: in [0, 1] (default 1); direction: std of w along it, in "
                     "[-10, 10] (default 1).", flag_values=fv)
  flags.DEFINE_string("mask", None, "inpaint: mask image of the image's size, white = fill.", flag_values=fv)
  flags.DEFINE_string("box", None, "inpaint: x0,y0,x1,y1 region to fill.", flag_values=fv)
  flags.DEFINE_string("method", "model", "inpaint: model (the trained inpainting generator) | inversion "
                      "(masked W+ inversion of the StyleGAN in --workdir, default runs/stylegan_products).",
                      flag_values=fv)
  flags.DEFINE_string("background", None, "background: white | #RRGGBB | gradient:#TOP,#BOTTOM | image path.",
                      flag_values=fv)
  flags.DEFINE_float("feather", None, "background: edge softness (pixels).", flag_values=fv)
  flags.DEFINE_string("photo_background", "white", "background: the photo's backdrop, white | black | plain.",
                      flag_values=fv)
  flags.DEFINE_string("direction", None, "direction: a name from <workdir>/editing/directions.npz, e.g. size, "
                      "orientation, facing, color_red, pc0, or \"orientation|brightness,size,aspect,class\".",
                      flag_values=fv)
  flags.DEFINE_integer("steps", None, "invert / direction: W+ projection steps (default 100 after the "
                       "encoder, else 300).", flag_values=fv)
  flags.DEFINE_string("save_latent", None, "invert: also save the W+ latent (num_ws, w_dim) to this .npy file.",
                      flag_values=fv)
  flags.DEFINE_integer("seed", 0, "invert / direction: noise maps and projection.", flag_values=fv)
  flags.DEFINE_enum("perceptual", "auto", ["auto", "lpips_vgg", "classifier", "none"],
                    "invert / direction: perceptual term of the projection (auto: LPIPS-VGG when fetched, as "
                    "StyleGAN2's projector, else the domain classifier's distance, else pixels only).",
                    flag_values=fv)
  flags.DEFINE_string("classifier", "runs/classifier_products", "invert / direction: the domain classifier "
                      "of --perceptual classifier.", flag_values=fv)
  cli.alias_dashes(["photo_background", "save_latent"], fv)
  flags.mark_flags_as_required(["op", "image", "out"], flag_values=fv)


def run_cli(args: flags.FlagValues, argv: Sequence[str]) -> None:
  """Edits --image into --out as the flags `args` say (argv: what absl left, the program first).
  Each output carries its provenance record: the op's run, step, seed and operations, the source."""
  from gan import provenance  # pylint: disable=g-import-not-at-top
  from gan import sampling  # pylint: disable=g-import-not-at-top
  cli.check_no_arguments(argv[1:])
  if args.op not in OPS:
    raise EditError(f"Unknown op {args.op!r}; valid: {', '.join(OPS)}.")
  pairs = cli.image_outputs(args.image, args.out, "--image")
  first = read_image(pairs[0][0])  # an unreadable image fails before any model is loaded
  op = OPS[args.op](args)
  for i, (source, target) in enumerate(pairs):
    result = op.edit(first if i == 0 else read_image(source))
    rec = provenance.image_record("edited", run=op.run, step=op.step, seed=op.seed, operations=op.operations,
                                  extra={"source": source.name})
    provenance.write_image(target, sampling.to_uint8(result), rec)
    print(f"Wrote {target} ({result.shape[1]}x{result.shape[0]}, op {args.op})")


def main(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """`python -m gan.edit`: user errors print one paragraph "error: ..." and exit with code 1."""
  cli.run_command(lambda: run_cli(flag_values, argv))


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
