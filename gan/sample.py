"""Command line: draw samples from a trained run's latest checkpoint into a PNG grid.

  python -m gan.sample --workdir runs/dcgan --num 64 --out grid.png
  python -m gan.sample --workdir runs/cdcgan --label sneaker --num 16 --out sneakers.png

Uses the EMA generator (--noema for the raw one) with re-estimated batch-norm statistics.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Optional, Sequence

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan import checkpointing
from gan import models
from gan import sampling
from gan import state as state_lib


class SampleError(ValueError):
  pass


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise SampleError(f"{path} not found: {workdir!r} is not a training workdir. Train first with "
                      f"python -m gan.main --config configs/... --workdir {workdir}")
  with open(path, encoding="utf-8") as f:
    return ml_collections.ConfigDict(json.load(f))


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


def load_run(workdir: str):
  """(config, generator, state, meta) of a training run's latest checkpoint."""
  config = load_config(workdir)
  generator, discriminator = models.build(config)
  g_tx, d_tx = state_lib.make_optimizers(config)
  target = jax.jit(lambda: state_lib.init_state(config, generator, discriminator, g_tx, d_tx))()
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise SampleError(f"No checkpoints in {workdir}: train first (or wait for the first checkpoint).")
  manager = checkpointing.make_manager(workdir, config.train.keep_checkpoints)
  try:
    restored = checkpointing.restore_latest(manager, target, checkpointing.shape_signature(config))
  finally:
    manager.close()
  if restored is None:
    raise SampleError(f"No complete checkpoint in {workdir}/checkpoints yet.")
  state, meta = restored
  return config, generator, state, meta


def sample_images(workdir: str, num: int, label: Optional[str] = None, seed: int = 0, use_ema: bool = True
                  ) -> tuple[np.ndarray, int]:
  """Returns (uint8 images (num, S, S, C), suggested grid columns) from the run's latest checkpoint."""
  if num <= 0:
    raise SampleError(f"--num must be positive, got {num}.")
  config, generator, state, meta = load_run(workdir)
  num_classes = generator.num_classes
  z_key, stats_key = jax.random.split(jax.random.PRNGKey(seed))
  z = jax.random.normal(z_key, (num, config.model.z_dim), jnp.float32)
  columns = math.ceil(math.sqrt(num))
  labels = None
  if label is not None:
    if not num_classes:
      raise SampleError("--label needs a class-conditional model; this run is unconditional.")
    labels = jnp.full((num,), parse_label(label, meta["class_names"]), jnp.int32)
  elif num_classes:   # one row per class
    columns = math.ceil(num / num_classes)
    labels = jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), columns)[:num]
  params = state.ema_g_params if use_ema else state.g_params
  images = jax.jit(lambda p, s: sampling.generate(generator, p, s, z, labels, stats_key,
                                                  config.sample.standing_stats_batch))(params, state.g_batch_stats)
  return sampling.to_uint8(images), columns


def define_flags() -> None:
  """Command-line flags, defined only when run as a program (the module is also a library)."""
  flags.DEFINE_string("workdir", None, "Workdir of a training run.")
  flags.DEFINE_integer("num", 64, "Number of images.")
  flags.DEFINE_string("out", "samples.png", "Output PNG grid.")
  flags.DEFINE_string("label", None, "Class name (e.g. sneaker) or id (e.g. 7); conditional models only.")
  flags.DEFINE_integer("seed", 0, "Seed of the latents.")
  flags.DEFINE_boolean("ema", True, "Use the EMA generator weights.")
  flags.DEFINE_integer("columns", 0, "Grid columns (0 = automatic).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    f = flags.FLAGS
    images, columns = sample_images(f.workdir, f.num, f.label, f.seed, f.ema)
  except (SampleError, checkpointing.CheckpointMismatchError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  sampling.save_png(flags.FLAGS.out, sampling.make_grid(images, flags.FLAGS.columns or columns))
  print(f"Wrote {len(images)} samples to {flags.FLAGS.out}")


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
