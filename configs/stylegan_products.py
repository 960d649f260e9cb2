"""A small unconditional StyleGAN2 on the colour product photos (shoes, handbags), 64x64 RGB: the
generator that gan/editing inverts real photos into and edits (experiments/benchmark_editing.py).

  python -m gan.main --config configs/stylegan_products.py --workdir runs/stylegan_products
  python -m gan.sample --workdir runs/stylegan_products --num 64 --out stylegan_products.png
  python -m gan.main --config configs/inversion_encoder_products.py --workdir runs/stylegan_products/encoder
  python experiments/benchmark_editing.py --workdir runs/stylegan_products \
      --classifier runs/classifier_products

Unconditional on purpose: a real photo is inverted without knowing its class, shoes and handbags
share one W space (so one encoder, one PCA and one set of attribute directions cover both), and
the class becomes one more attribute with a linear direction in W (InterFaceGAN-style category
walks, probed with the domain classifier). A class-conditional generator works with gan/editing
too (pass labels), but its W is two clusters joined by the class embedding.

64x64, the resolution of the other product configs, the domain classifier and LPIPS (it was 32x32
until issue #25: 4.3x fewer FLOPs, but too small for the edits to be seen). Width 16 (16 channels at
64x64, 32 at 32x32, 64 at 16x16 and below), w_dim 128, 4 mapping layers, so num_ws = 10; style mixing
p = 0.9; non-saturating loss with lazy R1 (gamma 1, every 16 steps) and DiffAugment, which 1,600
training photos need. The train step is 53.8 GFLOP at batch 32 (XLA cost analysis; 12.4 at 32x32).
Measured (2026-12-08, 2-core AMD EPYC with AVX-512, alone on the machine):
experiments/benchmark_throughput.py ran it at 55 images/s at batch 32 (585 ms per step, 1.7
steps/s) and 63 images/s at batch 16, so the 4,000 steps take ~40 min of CPU; at 32x32 the 5,000
steps had taken 983 s (AVX-512 Xeon) to 2,086 s (AVX2 EPYC). Time the step first with
  python experiments/benchmark_throughput.py --config configs/stylegan_products.py --batch_sizes 32
"""

from configs import dcgan_products
from configs import default


def get_config():
  config = default.get_config()
  config.data = dcgan_products.get_config().data   # RGB photos, shoe / handbag, flips
  config.data.image_size = 64
  config.model.name = "stylegan"
  config.model.z_dim = 128
  config.model.g_width = 16
  config.model.d_width = 16
  config.model.generator = {"w_dim": 128, "mapping_layers": 4, "style_mixing_prob": 0.9}
  config.reg.r1_gamma = 1.0
  config.reg.r1_every = 16
  config.reg.diff_augment = "color,translation,cutout"
  config.optimizer.g_lr = config.optimizer.d_lr = 2e-3 * 16 / 17   # StyleGAN2's lazy-R1 correction
  config.optimizer.b1 = 0.0
  config.optimizer.b2 = 0.99
  config.train.batch_size = 32
  config.train.steps = 4000
  config.train.ema_decay = 0.995
  config.eval.classifier_dir = "runs/classifier_products"
  config.eval.every = 0                 # FID with the products classifier: gan.evaluate after training
  config.sample.grid_rows = 8
  config.sample.grid_columns = 8
  return config
