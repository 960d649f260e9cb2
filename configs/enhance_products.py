"""Enhancement models of the colour product photos: super-resolution, denoising, inpainting.

One config, the task picked by the argument after the colon (gan/editing/enhance_train.py):

  python -m gan.editing.enhance_train --config configs/enhance_products.py:superres_x2 --workdir runs/enhance/superres_x2
  python -m gan.editing.enhance_train --config configs/enhance_products.py:superres_x4 --workdir runs/enhance/superres_x4
  python -m gan.editing.enhance_train --config configs/enhance_products.py:denoise_gaussian --workdir runs/enhance/denoise_gaussian
  python -m gan.editing.enhance_train --config configs/enhance_products.py:denoise_jpeg --workdir runs/enhance/denoise_jpeg
  python -m gan.editing.enhance_train --config configs/enhance_products.py:inpaint --workdir runs/enhance/inpaint

or all of them plus the evaluation: `python -m experiments.benchmark_enhance` (experiments/README.md).
Data: the 1,600 training photos (photo half, 64x64, random flips) of configs/dcgan_products.py;
held-out evaluation on the 400 val photos. Perceptual loss: the products' domain classifier
(runs/classifier_products) when it exists, else fixed random features (loss.perceptual = "auto").

Measured (2026-11-29, 1,200 steps each, 400 val photos; PSNR dB / SSIM / perceptual distance over
a domain classifier; all commands and the full table in experiments/README.md, "Enhancement"):
  superres_x2       31.35 / 0.947 / 0.036   vs bicubic 25.33 / 0.885 / 0.181      (11 min)
  superres_x4       24.52 / 0.801 / 0.131   vs bicubic 20.29 / 0.664 / 0.458      (7 min)
                    (adversarial_weight=0: 24.63 / 0.803 / 0.136)
  denoise_gaussian  30.60 / 0.907 / 0.031   vs non-local means 26.76 / 0.884 / 0.088 (10 min)
  denoise_jpeg      27.25 / 0.853 / 0.064   vs non-local means 25.85 / 0.835 / 0.121 (10 min)
  inpaint (box)     24.68 / 0.878 / 0.063   vs biharmonic 24.52 / 0.882 / 0.077    (17 min)
  inpaint (strokes) 29.27 / 0.938 / 0.032   vs biharmonic 30.29 / 0.958 / 0.033
Times: training wall time on the 2-core CPU shared with other jobs (load average 12-15). The
perceptual loss was the random-feature fallback (no domain classifier existed at training time).
"""

import ml_collections

from configs import dcgan_products

TASKS = ("superres_x2", "superres_x4", "denoise_gaussian", "denoise_jpeg", "inpaint")


def get_config(task: str = "superres_x2"):
  if task not in TASKS:
    raise ValueError(f"Unknown enhancement task {task!r}; valid: {', '.join(TASKS)} "
                     "(configs/enhance_products.py:TASK).")
  config = ml_collections.ConfigDict()
  config.task = task.split("_")[0]     # superres | denoise | inpaint (gan.editing.enhance_train.TASK_MODULES)
  config.variant = task                # the argument this config was built from
  config.seed = 0                      # parameters, batch order, flips and degradations
  config.data = dcgan_products.get_config().data   # photo view, 64x64, RGB, random_flip

  config.superres = ml_collections.ConfigDict()
  config.superres.scale = 4 if task == "superres_x4" else 2   # 2 or 4: 64x64 from 32x32 / 16x16
  config.superres.downscale = "bicubic"    # bicubic (antialiased) | area: how LR images are made

  config.denoise = ml_collections.ConfigDict()
  config.denoise.degradation = "jpeg" if task == "denoise_jpeg" else "gaussian"   # gaussian | jpeg
  config.denoise.sigma = 0.1               # Gaussian noise std on the [0, 1] intensity scale
  config.denoise.jpeg_quality = 10         # Pillow JPEG quality (1-95) of the training pairs

  config.inpaint = ml_collections.ConfigDict()
  config.inpaint.mask = "mixed"            # box | free_form | mixed (50/50): training holes

  config.model = ml_collections.ConfigDict()    # gan.editing.enhance_train.ResidualGenerator
  config.model.width = 32                  # channels at the input resolution
  config.model.num_blocks = 4              # residual blocks at the lowest resolution
  config.model.down = 0                    # stride-2 downsamplings (U-Net skips)
  config.model.dilations = (1,)            # dilation of block b: dilations[b % len]
  config.model.max_width = 128             # channel cap
  if config.task == "superres":
    config.model.width = 48                # the blocks run at the low resolution: cheap
  if config.task == "denoise":
    config.model.down = 1                  # blocks at 32x32: receptive field and cost
    config.model.max_width = 48
  if config.task == "inpaint":
    config.model.width = 24
    config.model.down = 2                  # blocks at 16x16, dilated: they see the whole photo
    config.model.dilations = (1, 2, 4, 8)
    config.model.max_width = 64

  config.discriminator = ml_collections.ConfigDict()   # PatchDiscriminator (adversarial term)
  config.discriminator.width = 32
  config.discriminator.num_layers = 3      # one logit per 38x38 patch

  config.loss = ml_collections.ConfigDict()
  config.loss.pixel_weight = 1.0           # mean |out - clean| on the [-1, 1] scale
  config.loss.perceptual = "auto"          # auto | classifier | random | none
  config.loss.classifier_dir = "runs/classifier_products"   # for "classifier" / "auto"
  config.loss.perceptual_weight = 0.05
  config.loss.adversarial = "non_saturating"   # a name of gan.losses.adversarial.LOSSES
  # SRGAN's 1e-3 next to its perceptual loss; next to an L1 pixel loss (ESRGAN) more is needed for
  # the term to matter. Denoising keeps it small: its job is fidelity. 0 disables D entirely.
  config.loss.adversarial_weight = 1e-3 if config.task == "denoise" else 5e-3

  config.train = ml_collections.ConfigDict()
  # Sized for <= ~10-15 min per model on a shared 2-core CPU (~2 steps/s for super-resolution and
  # denoising at batch 16 of 32x32 crops; inpainting works on whole 64x64 photos).
  config.train.batch_size = 8 if config.task == "inpaint" else 16
  config.train.crop = 0 if config.task == "inpaint" else 32   # random crops (0: whole photos);
  #   inpainting needs the whole photo around a hole, the others only local context
  config.train.steps = {"superres": 1200, "denoise": 1200, "inpaint": 1200}[config.task]
  config.train.g_lr = 1e-3                 # Adam, cosine decay to 5%
  config.train.d_lr = 2e-4
  config.train.log_every = 100
  return config
