"""What can be trained: one module per task, each giving the shared loop (gan/train.py) a `common.Task`.

  generation         a GAN from noise, optionally conditioned (generation.py)
  pix2pix, cyclegan  paired edge map -> photo / unpaired A <-> B translation (translation.py)
  classifier         the domain classifier, the feature network of the domain FIDs (classifier.py)
  text_encoder       the caption encoder of text-conditioned GANs (text_encoder.py)
  enhance            super-resolution, denoising, inpainting models (enhance.py)
  adain_decoder      the AdaIN style-transfer decoder (adain_decoder.py)
  inversion_encoder  the image -> W+ encoder of a StyleGAN run (inversion_encoder.py)

`config.task` picks the module from TASKS (a plain dict); the contract every module fulfils is in
gan/tasks/common.py. `restore(workdir)` opens a finished or running run of any task.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import ml_collections

from gan import runs
from gan.tasks import adain_decoder
from gan.tasks import classifier
from gan.tasks import enhance
from gan.tasks import generation
from gan.tasks import inversion_encoder
from gan.tasks import text_encoder
from gan.tasks import translation

TASKS: dict[str, ModuleType] = {
    "generation": generation,
    "pix2pix": translation,
    "cyclegan": translation,
    "classifier": classifier,
    "text_encoder": text_encoder,
    "enhance": enhance,
    "adain_decoder": adain_decoder,
    "inversion_encoder": inversion_encoder,
}


def get(config: ml_collections.ConfigDict) -> ModuleType:
  """The module of config.task; runs.ConfigError naming the valid tasks otherwise."""
  name = runs.task_of(config)
  if name not in TASKS:
    raise runs.ConfigError(f"Invalid config:\n  Unknown task {name!r}; valid: {list(TASKS)}.")
  return TASKS[name]


def restore(workdir: str) -> tuple[ml_collections.ConfigDict, Any, dict[str, Any]]:
  """(config, state, meta) of the latest checkpoint of a run of any task, on one device.

  Raises:
    runs.RunError: not a run, or no checkpoint yet; runs.ConfigError: a task this code does not know.
    checkpointing.CheckpointMismatchError / CheckpointCorruptError: see gan/checkpointing.py.
  """
  config = runs.load_config(workdir)
  module = get(config)
  state, meta = runs.restore_checkpoint(
      workdir, runs.on_one_device(module.abstract_state(config)), module.shape_signature(config),
      config.train.keep_checkpoints,
      train_command=module.TRAIN_COMMAND.format(task=runs.task_of(config), workdir="{workdir}"))
  return config, state, meta
