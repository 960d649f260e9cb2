"""The 128x128 product configs (StyleGAN2 and DCGAN) at tiny widths: they validate, build one
stage per doubling of the image size, train 2 steps and write a sample grid. Own data: a small
folder of RGB PNGs (the real photos are not needed)."""

import importlib
import os

import numpy as np
from PIL import Image
import pytest

from configs import default
from gan import models
from gan import train

pytestmark = pytest.mark.usefixtures("persistent_compilation_cache")

# Tiny widths / latents and a 2x2 grid: the plumbing at 128 px, not image quality. DiffAugment and
# R1 (the same code at every size, tested elsewhere) are off: they double the step's compile time.
TINY = {"reg.diff_augment": "", "reg.r1_gamma": 0.0, "model.g_width": 2, "model.d_width": 2, "model.z_dim": 8, "model.embed_dim": 4,
        "train.batch_size": 2, "train.steps": 2, "train.log_every": 1, "train.sample_every": 2,
        "train.checkpoint_every": 2, "sample.grid_rows": 2, "sample.grid_columns": 2,
        "sample.standing_stats_batch": 8, "eval.every": 0}
TINY_STYLEGAN = {"model.generator.w_dim": 8, "model.generator.mapping_layers": 1}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
  """8 RGB 140x100 PNGs in two class folders (resized and centre-cropped to 128 by the loader)."""
  root = tmp_path_factory.mktemp("catalog128")
  rng = np.random.default_rng(0)
  for c, name in enumerate(("shoe", "handbag")):
    os.makedirs(root / name)
    for i in range(4):
      image = rng.integers(0, 60, (100, 140, 3), np.uint8)
      image[20 + 30 * c:50 + 30 * c, 30:110] = 220
      Image.fromarray(image).save(root / name / f"{i}.png")
  return str(root)


@pytest.mark.parametrize("name", ["dcgan_products128", "stylegan_products128"])
def test_128px_config_trains_two_steps_and_samples(tmp_path, catalog, name):
  config = importlib.import_module(f"configs.{name}").get_config()
  assert config.data.image_size == 128 and config.data.channels == 3
  generator, discriminator = models.build(config)       # full width: builds, one stage per doubling
  assert generator.image_size == discriminator.image_size == 128
  overrides = {**TINY, **(TINY_STYLEGAN if config.model.name == "stylegan" else {}),
               "data.source": "image_folder", "data.dir": catalog}
  config = default.apply_overrides(config, overrides)
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 2
  grid = np.asarray(Image.open(tmp_path / "samples" / "step_000002.png"))
  assert grid.shape == (2 * 130 + 2, 2 * 130 + 2, 3)     # 2x2 grid of 128x128 with 2 px padding
  assert grid.std() > 0
