"""pix2pix on the product photos: edge map -> colour photo (shoes and handbags, 64x64 RGB).

  python -m gan.main --config configs/pix2pix_products.py --workdir runs/pix2pix_products
  python -m gan.evaluate --workdir runs/pix2pix_products      # PSNR / SSIM / FID on the 400 val pairs
  python -m gan.stylize --method pix2pix --workdir runs/pix2pix_products --content edges.png --out photo.png
  python -m gan.main --config configs/pix2pix_products.py:tiny ...   # the tests' tiny setting

Data: the 1,600 training pairs of $PRODUCTGAN_DATA_DIR/products/edges2shoes_edges2handbags/train,
data.view="pair" (Dataset.images = photos, the targets; Dataset.pairs = edge maps, the inputs), random
flips of both together; evaluation on the 400 held-out "val" pairs. U-Net generator (6 levels, 1x1
bottleneck), PatchGAN with 2 stride-2 layers (34x34 patches on a 14x14 grid; the paper's 70x70
field would cover a whole 64 px image, i.e. a global D), non-saturating loss + 100 x L1, Adam 2e-4
(beta1 0.5), batch 16; widths halved (32) for the 2-core CPU.

Measured (2026-12-06, idle 2-core CPU): 2,683 steps (27 epochs) in a 20-min budget, 2.0-2.4
steps/s at batch 16 (stopped by SIGTERM; train.steps is 3,000). Held-out val pairs (400): PSNR
14.67 dB, SSIM 0.465 (edge map itself: 8.67 dB / 0.341; mean training photo: 11.35 dB / 0.190),
FID 2.61 with the products' domain classifier (floor 2.80, edge maps 13.98); experiments/README.md,
"Image translation".
"""

from configs import dcgan_products
from configs import default


def get_config(arg: str = ""):
  config = default.get_config()
  config.task = "pix2pix"
  config.data = dcgan_products.get_config().data   # 64x64 RGB photos, shoe / handbag, flips
  config.data.view = "pair"
  config.loss.name = "non_saturating"
  config.translation.g_width = 32
  config.translation.d_width = 32
  config.translation.unet_depth = 6
  config.translation.d_layers = 2
  config.translation.lambda_l1 = 100.0
  config.train.batch_size = 16
  config.train.steps = 3000
  config.train.log_every = 50
  config.train.sample_every = 500
  config.train.checkpoint_every = 500
  config.eval.every = 1000
  config.eval.classifier_dir = "runs/classifier_products"
  config.sample.grid_rows = 8
  if arg == "tiny":   # the tests' setting: a few steps of very narrow networks on 16x16 images
    config.data.image_size = 16
    config.data.max_examples = 32
    config.translation.g_width = 4
    config.translation.d_width = 4
    config.translation.unet_depth = 4
    config.translation.d_layers = 1
    config.train.batch_size = 4
    config.train.steps = 3
    config.train.log_every = 1
    config.train.sample_every = 2
    config.train.checkpoint_every = 2
    config.eval.every = 0
    config.sample.grid_rows = 4
  elif arg:
    raise ValueError(f"Unknown config argument {arg!r}; valid: '' or 'tiny'.")
  return config
