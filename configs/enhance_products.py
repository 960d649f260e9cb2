"""Enhancement models of the colour product photos: super-resolution, denoising, inpainting.

Task "enhance" (gan/tasks/enhance.py, models in gan/editing/enhance_train.py); the variant after
the colon sets enhance.kind (superres / denoise / inpaint) and its settings:

  python -m gan.main --config configs/enhance_products.py:superres_x2 --workdir runs/enhance/superres_x2
  python -m gan.main --config configs/enhance_products.py:superres_x4 --workdir runs/enhance/superres_x4
  python -m gan.main --config configs/enhance_products.py:denoise_gaussian --workdir runs/enhance/denoise_gaussian
  python -m gan.main --config configs/enhance_products.py:denoise_jpeg --workdir runs/enhance/denoise_jpeg
  python -m gan.main --config configs/enhance_products.py:inpaint --workdir runs/enhance/inpaint

or all of them plus the evaluation: `python -m experiments.benchmark_enhance` (experiments/README.md).
Like every run they resume after a stop (rerun the same command). Data: the 1,600 training photos
(photo half, 64x64, random flips) of configs/dcgan_products.py; the in-training evaluation
(eval.every) reports PSNR / SSIM of eval.num_images held-out val photos with fixed degradations,
and the sample grids show degraded | restored | original val photos. Perceptual loss: the products'
domain classifier (runs/classifier_products) when it exists at the run's first start, else fixed
random features (loss.perceptual = "auto"; the choice is kept in the run's config.json).

Measured (2026-11-29, 1,200 steps each, 400 val photos; PSNR dB / SSIM / perceptual distance over
a domain classifier; all commands and the full table in experiments/README.md, "Enhancement"):
  superres_x2       31.35 / 0.947 / 0.036   vs bicubic 25.33 / 0.885 / 0.181      (11 min)
  superres_x4       24.52 / 0.801 / 0.131   vs bicubic 20.29 / 0.664 / 0.458      (7 min)
                    (adversarial_weight=0: 24.63 / 0.803 / 0.136)
  denoise_gaussian  30.60 / 0.907 / 0.031   vs non-local means 26.76 / 0.884 / 0.088 (10 min)
  denoise_jpeg      27.25 / 0.853 / 0.064   vs non-local means 25.85 / 0.835 / 0.121 (10 min)
  inpaint (box)     24.68 / 0.878 / 0.063   vs biharmonic 24.52 / 0.882 / 0.077    (17 min)
  inpaint (strokes) 29.27 / 0.938 / 0.032   vs biharmonic 30.29 / 0.958 / 0.033
Times: training wall time on the 2-core CPU shared with other jobs (load average 12-15), with the
private training loop this task replaced (batches drawn with replacement; now epochs of
gan/input_pipeline.py). The perceptual loss was the random-feature fallback (no domain classifier
existed at training time).
"""

import ml_collections

from configs import dcgan_products
from configs import default

VARIANTS = ("superres_x2", "superres_x4", "denoise_gaussian", "denoise_jpeg", "inpaint")


def get_config(variant: str = "superres_x2"):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown enhancement variant {variant!r}; valid: {', '.join(VARIANTS)} "
                     "(configs/enhance_products.py:VARIANT).")
  config = default.get_config()        # the loop's keys (train.*, eval.every, data.prefetch, ...)
  config.task = "enhance"
  config.enhance = ml_collections.ConfigDict()
  config.enhance.kind = variant.split("_")[0]   # superres | denoise | inpaint (gan.editing.enhance_train.TASK_MODULES)
  config.enhance.variant = variant     # the argument this config was built from
  config.seed = 0                      # parameters, batch order, flips, crops and degradations
  config.data = dcgan_products.get_config().data   # photo view, 64x64, RGB, random_flip

  config.superres = ml_collections.ConfigDict()
  config.superres.scale = 4 if variant == "superres_x4" else 2   # 2 or 4: 64x64 from 32x32 / 16x16
  config.superres.downscale = "bicubic"    # bicubic (antialiased) | area: how LR images are made

  config.denoise = ml_collections.ConfigDict()
  config.denoise.degradation = "jpeg" if variant == "denoise_jpeg" else "gaussian"   # gaussian | jpeg
  config.denoise.sigma = 0.1               # Gaussian noise std on the [0, 1] intensity scale
  config.denoise.jpeg_quality = 10         # Pillow JPEG quality (1-95) of the training pairs

  config.inpaint = ml_collections.ConfigDict()
  config.inpaint.mask = "mixed"            # box | free_form | mixed (50/50): training holes

  kind = config.enhance.kind
  config.model = ml_collections.ConfigDict()    # gan.editing.enhance_train.ResidualGenerator
  config.model.width = 32                  # channels at the input resolution
  config.model.num_blocks = 4              # residual blocks at the lowest resolution
  config.model.down = 0                    # stride-2 downsamplings (U-Net skips)
  config.model.dilations = (1,)            # dilation of block b: dilations[b % len]
  config.model.max_width = 128             # channel cap
  if kind == "superres":
    config.model.width = 48                # the blocks run at the low resolution: cheap
  if kind == "denoise":
    config.model.down = 1                  # blocks at 32x32: receptive field and cost
    config.model.max_width = 48
  if kind == "inpaint":
    config.model.width = 24
    config.model.down = 2                  # blocks at 16x16, dilated: they see the whole photo
    config.model.dilations = (1, 2, 4, 8)
    config.model.max_width = 64

  config.discriminator = ml_collections.ConfigDict()   # PatchDiscriminator (adversarial term)
  config.discriminator.width = 32
  config.discriminator.num_layers = 3      # one logit per 38x38 patch

  config.loss = ml_collections.ConfigDict()
  config.loss.pixel_weight = 1.0           # mean |out - clean| on the [-1, 1] scale
  config.loss.perceptual = "auto"          # auto | classifier | vgg16 (VGG feature loss) | random | none
  config.loss.classifier_dir = "runs/classifier_products"   # for "classifier" / "auto"
  config.loss.perceptual_weight = 0.05
  config.loss.adversarial = "non_saturating"   # a name of gan.losses.adversarial.LOSSES
  # SRGAN's 1e-3 next to its perceptual loss; next to an L1 pixel loss (ESRGAN) more is needed for
  # the term to matter. Denoising keeps it small: its job is fidelity. 0 disables D entirely.
  config.loss.adversarial_weight = 1e-3 if kind == "denoise" else 5e-3

  config.optimizer = ml_collections.ConfigDict()   # Adam, cosine decay to 5% over train.steps
  config.optimizer.g_lr = 1e-3
  config.optimizer.d_lr = 2e-4
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.99

  # Sized for <= ~10-15 min per model on a shared 2-core CPU (~2 steps/s for super-resolution and
  # denoising at batch 16 of 32x32 crops; inpainting works on whole 64x64 photos).
  config.train.batch_size = 8 if kind == "inpaint" else 16
  config.train.crop = 0 if kind == "inpaint" else 32   # random crops (0: whole photos);
  #   inpainting needs the whole photo around a hole, the others only local context
  config.train.steps = 1200
  config.train.log_every = 100
  config.train.sample_every = 400
  config.train.checkpoint_every = 200

  config.eval.every = 400                  # PSNR / SSIM on held-out photos (0 = off)
  config.eval.num_images = 100             # val photos, evenly spaced (shoes and handbags)
  config.eval.seed = 1234                  # their degradations (training uses config.seed)
  config.sample.grid_rows = 8              # val photos in the sample grids
  return config
