"""Command line: draw samples from a trained run's latest checkpoint into a PNG grid.

  python -m gan.sample --workdir runs/dcgan --num 64 --out grid.png
  python -m gan.sample --workdir runs/cdcgan --label sneaker --num 16 --out sneakers.png
  python -m gan.sample --workdir runs/text_dcgan --text "a dark ankle boot" --num 16 --out boots.png
  python -m gan.sample --workdir runs/attr_dcgan --attributes brightness=0.8,size=0.3 --out light_small.png

Uses the EMA generator (--noema for the raw one) with re-estimated batch-norm statistics.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, NamedTuple, Optional, Sequence

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan import checkpointing
from gan import cli
from gan import conditioning
from gan import provenance
from gan import sampling
from gan.tasks import generation


class SampleError(cli.UserError):
  """A bad flag value of gan.sample (label, attributes, output path); the message says the fix."""


# What the command line reports as one "error: ..." line (exit code 1) instead of a traceback.
USER_ERRORS = (cli.UserError, conditioning.ConditionError, checkpointing.CheckpointMismatchError,
               checkpointing.CheckpointCorruptError)


def parse_label(label: str, class_names: Sequence[str]) -> int:
  """A class id from a name (case-insensitive, a unique prefix is enough) or a number."""
  if label.strip().lstrip("-").isdigit():
    index = int(label)
    if not 0 <= index < len(class_names):
      raise SampleError(f"--label {index} is out of range: this model has classes 0..{len(class_names) - 1}.")
    return index
  wanted = label.strip().lower()
  names = [n.lower() for n in class_names]
  matches = [i for i, n in enumerate(names) if n == wanted] or [
      i for i, n in enumerate(names) if n.startswith(wanted) or n.replace("-", "").startswith(wanted)]
  if len(matches) != 1:
    listing = ", ".join(f"{i} {n}" for i, n in enumerate(class_names))
    problem = "is ambiguous" if matches else "is not a class of this model"
    raise SampleError(f"--label {label!r} {problem}. Valid labels: {listing}.")
  return matches[0]


def parse_attributes(spec: str, pool: sampling.ConditionPool) -> np.ndarray:
  """"brightness=0.8,size=0.3" -> an attribute vector: the training data's mean with those entries set."""
  from gan import attributes  # pylint: disable=g-import-not-at-top
  vector = np.asarray(pool.cond, np.float32).mean(0)
  if vector.shape[0] != len(attributes.ATTRIBUTE_NAMES):
    raise SampleError("--attributes needs a model trained with data.condition='attributes'.")
  for item in filter(None, (part.strip() for part in spec.split(","))):
    name, _, value = item.partition("=")
    name = name.strip()
    if name not in attributes.ATTRIBUTE_NAMES:
      raise SampleError(f"Unknown attribute {name!r} in --attributes; valid: {', '.join(attributes.ATTRIBUTE_NAMES)}.")
    try:
      number = float(value)
    except ValueError:
      raise SampleError(f"--attributes {name}={value!r}: the value must be a number in [0, 1].") from None
    if not 0.0 <= number <= 1.0:
      raise SampleError(f"--attributes {name}={number}: values are in [0, 1] (the training data's range).")
    vector[attributes.ATTRIBUTE_NAMES.index(name)] = number
  return vector


class Samples(NamedTuple):
  """What `sample_images` drew: uint8 images (num, S, S, C) in [0, 255], the suggested grid columns,
  the checkpoint step they come from and what was done, in words (the image's provenance record)."""
  images: np.ndarray
  columns: int
  step: int
  operations: list[str]


class LoadedRun(NamedTuple):
  """A generation run opened once for many draws (the studio keeps one per run).

  generate: jit-compiled fn(params, batch_stats, z (N, z_dim), labels (N,) | None, key, cond (N, D) | None)
  -> images (N, S, S, C) in [-1, 1]; compiled once per batch shape, reused across draws.
  """
  config: ml_collections.ConfigDict
  generator: Any
  state: Any
  meta: dict
  pool: Optional[sampling.ConditionPool]
  generate: Callable[..., jax.Array]


def load_run(workdir: str) -> LoadedRun:
  """Opens the latest checkpoint of a generation run (and its condition pool when it has one)."""
  config, generator, state, meta = generation.load(workdir)
  pool = conditioning.load_pool(workdir) if config.model.get("cond_dim", 0) else None
  standing = config.sample.standing_stats_batch
  generate = jax.jit(lambda p, s, z, labels, key, cond: sampling.generate(generator, p, s, z, labels, key,
                                                                          standing, cond, pool))
  return LoadedRun(config, generator, state, meta, pool, generate)


def sample_images(workdir: str, num: int, label: Optional[str] = None, seed: int = 0, use_ema: bool = True,
                  text: Optional[str] = None, attribute_spec: Optional[str] = None) -> Samples:
  """Draws `num` images from the run's latest checkpoint (see Samples).

  Conditions: `label` (class-conditional models), `text` (a caption, text-conditioned models),
  `attribute_spec` ("name=value,...", attribute-conditioned models); continuous-conditioned models
  without text / attributes draw conditions of real training examples.
  """
  if num <= 0:
    raise SampleError(f"--num must be positive, got {num}.")
  return draw(load_run(workdir), num, label, seed, use_ema, text, attribute_spec)


def draw(run: LoadedRun, num: int, label: Optional[str] = None, seed: int = 0, use_ema: bool = True,
         text: Optional[str] = None, attribute_spec: Optional[str] = None) -> Samples:
  """sample_images on an opened run: the same images for the same arguments (a pure function of
  the checkpoint, `seed` and the conditions)."""
  if num <= 0:
    raise SampleError(f"--num must be positive, got {num}.")
  config, generator, state, meta, pool = run.config, run.generator, run.state, run.meta, run.pool
  num_classes = generator.num_classes
  z_key, stats_key, cond_key = jax.random.split(jax.random.PRNGKey(seed), 3)
  z = jax.random.normal(z_key, (num, config.model.z_dim), jnp.float32)
  columns = math.ceil(math.sqrt(num))
  labels, cond = None, None
  operations = [f"sample {num} images from the {'EMA' if use_ema else 'raw'} generator, z ~ N(0, I) of seed {seed}"]
  if label is not None:
    if not num_classes:
      raise SampleError("--label needs a class-conditional model; this run is unconditional.")
    index = parse_label(label, meta["class_names"])
    labels = jnp.full((num,), index, jnp.int32)
    operations.append(f"label {meta['class_names'][index]} (class {index})")
  elif num_classes:   # one row per class
    columns = math.ceil(num / num_classes)
    labels = jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), columns)[:num]
    operations.append(f"one row per class ({num_classes} classes)")
  condition = config.data.get("condition", "none")
  if (text is not None and condition != "text") or (attribute_spec is not None and condition != "attributes"):
    raise SampleError(f"--text needs a model trained with data.condition='text' and --attributes one with "
                      f"'attributes'; this run has data.condition={condition!r}.")
  if pool is not None:
    if text is not None:
      try:
        vector = conditioning.load_text_conditioner(config.data.text_encoder_dir).embed([text])[0]
      except ValueError as e:   # unknown words: the message lists the closest known ones
        raise SampleError(str(e)) from None
      cond = jnp.tile(vector[None], (num, 1))
      operations.append(f"text {text!r}")
    elif attribute_spec is not None:
      cond = jnp.tile(parse_attributes(attribute_spec, pool)[None], (num, 1))
      operations.append(f"attributes {attribute_spec} (the others at the training data's mean)")
    else:
      _, cond = sampling.draw_conditions(cond_key, num, num_classes, pool)
      operations.append(f"{condition} conditions of random training examples")
  params = state.ema_g_params if use_ema else state.g_params
  images = run.generate(params, state.g_batch_stats, z, labels, stats_key, cond)
  return Samples(sampling.to_uint8(images), columns, int(meta["step"]), operations)


def check_output_path(out: str) -> None:
  """SampleError unless `out` can be written as an image (checked before any sampling)."""
  folder = os.path.dirname(os.path.abspath(out))
  if not os.path.isdir(folder):
    raise SampleError(f"--out {out}: the folder {folder} does not exist; create it or choose another path.")
  if os.path.isdir(out):
    raise SampleError(f"--out {out} is a folder; give a file name such as {os.path.join(out, 'samples.png')}.")
  if os.path.splitext(out)[1].lower() not in provenance.IMAGE_FORMATS:
    raise SampleError(f"--out {out}: unknown image extension; use .png, .jpg or .jpeg (the formats that carry "
                      "the provenance record).")


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Command-line flags, defined only when run as a program (the module is also a library)."""
  flags.DEFINE_string("workdir", None, "Workdir of a training run.", flag_values=flag_values)
  flags.DEFINE_integer("num", 64, "Number of images.", flag_values=flag_values)
  flags.DEFINE_string("out", "samples.png", "Output grid, .png or .jpg (with its provenance record inside).",
                      flag_values=flag_values)
  flags.DEFINE_string("label", None, "Class name (e.g. sneaker) or id (e.g. 7); conditional models only.",
                      flag_values=flag_values)
  flags.DEFINE_string("text", None, 'A description, e.g. "a red handbag"; text-conditioned models only.',
                      flag_values=flag_values)
  flags.DEFINE_string("attributes", None, "e.g. brightness=0.8,size=0.3 (values in [0, 1]); "
                      "attribute-conditioned models only.", flag_values=flag_values)
  flags.DEFINE_integer("seed", 0, "Seed of the latents.", flag_values=flag_values)
  flags.DEFINE_boolean("ema", True, "Use the EMA generator weights.", flag_values=flag_values)
  flags.DEFINE_integer("columns", 0, "Grid columns (0 = automatic).", flag_values=flag_values)
  flags.mark_flags_as_required(["workdir"], flag_values=flag_values)


def run_cli(f: flags.FlagValues, argv: Sequence[str]) -> None:
  cli.check_no_arguments(argv[1:])
  check_output_path(f.out)
  samples = sample_images(f.workdir, f.num, f.label, f.seed, f.ema, f.text, f.attributes)
  columns = f.columns or samples.columns
  rec = provenance.image_record("generated", run=f.workdir, step=samples.step, seed=f.seed,
                                operations=[*samples.operations, f"grid of {columns} columns"])
  provenance.write_image(f.out, sampling.make_grid(samples.images, columns), rec)
  print(f"Wrote {len(samples.images)} samples to {f.out}")


def main(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """`python -m gan.sample`: user errors print one paragraph "error: ..." and exit with code 1."""
  cli.run_command(lambda: run_cli(flag_values, argv), USER_ERRORS)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=cli.parse_flags)
