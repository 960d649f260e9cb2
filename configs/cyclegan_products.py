"""CycleGAN on the product photos: shoes (domain A) <-> handbags (domain B), unpaired, 64x64 RGB.

  python -m gan.main --config configs/cyclegan_products.py --workdir runs/cyclegan_products
  python -m gan.evaluate --workdir runs/cyclegan_products     # FID of A->B vs real B, B->A vs real A
  python -m gan.stylize --method cyclegan --workdir runs/cyclegan_products --content shoe.jpg \
      --out bag.png [--direction a2b|b2a]
  python -m gan.main --config configs/cyclegan_products.py:tiny ...  # the tests' tiny setting

Data: the 800 shoe and 800 handbag training photos of $PRODUCTGAN_DATA_DIR/products (class 0 and 1 of
data.source="products"), each domain drawn in its own order (unpaired), random flips; evaluation
translates the 200 + 200 held-out "val" photos. ResNet generators (c7s1-W, d2W, d4W, residual
blocks, u2W, uW, c7s1-3), PatchGAN per domain (2 stride-2 layers), least-squares loss, cycle
lambda 10, identity 0.5 x lambda, a pool of 50 past fakes per domain, Adam 2e-4 (beta1 0.5).
Smaller than the paper's for the 2-core CPU: W = 32, 4 residual blocks, batch 4.

Measured (2026-12-06, idle 2-core CPU): 1,041 steps (~5 epochs of the shoes) in a 20-min budget,
0.87-0.89 steps/s at batch 4 (stopped by SIGTERM; train.steps is 3,000); cycle L1 0.63 -> 0.21.
FID on the val photos with the products' domain classifier: shoe -> handbag 73.0, handbag -> shoe
55.3 (floor 5.2 / 2.4, untranslated input 138.7 / 135.0): textures and colours move, shapes mostly
do not (experiments/README.md, "Image translation"; docs/translation_products.png).
"""

from configs import dcgan_products
from configs import default


def get_config(arg: str = ""):
  config = default.get_config()
  config.task = "cyclegan"
  config.data = dcgan_products.get_config().data   # 64x64 RGB photos, shoe / handbag, flips
  config.loss.name = "least_squares"
  config.translation.g_width = 32
  config.translation.d_width = 32
  config.translation.resnet_blocks = 4
  config.translation.d_layers = 2
  config.translation.lambda_cycle = 10.0
  config.translation.lambda_identity = 0.5
  config.translation.pool_size = 50
  config.translation.domain_a = 0
  config.translation.domain_b = 1
  config.train.batch_size = 4
  config.train.steps = 3000
  config.train.log_every = 50
  config.train.sample_every = 500
  config.train.checkpoint_every = 500
  config.eval.every = 1000
  config.eval.classifier_dir = "runs/classifier_products"
  config.sample.grid_rows = 8
  if arg == "tiny":   # the tests' setting: a few steps of very narrow networks on 16x16 images
    config.data.image_size = 16
    config.translation.g_width = 4
    config.translation.d_width = 4
    config.translation.resnet_blocks = 1
    config.translation.d_layers = 1
    config.translation.pool_size = 3
    config.train.batch_size = 2
    config.train.steps = 3
    config.train.log_every = 1
    config.train.sample_every = 2
    config.train.checkpoint_every = 2
    config.eval.every = 0
    config.sample.grid_rows = 4
  elif arg:
    raise ValueError(f"Unknown config argument {arg!r}; valid: '' or 'tiny'.")
  return config
