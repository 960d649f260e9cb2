"""The textbook DCGAN recipe (Radford, Metz & Chintala 2015) on Fashion-MNIST: the recipe study's baseline.

  python -m gan.main --config configs/dcgan_textbook.py --workdir runs/dcgan_textbook
  python -m experiments.benchmark --sweep configs/sweeps/recipes.py --workdir runs/sweep_recipes

What the paper prescribes and nothing more: the all-convolutional DCGAN generator and discriminator
with batch norm in both (gan/models/dcgan.py at widths 64), the non-saturating loss, Adam with
learning rate 2e-4 and beta1 0.5 for both networks, one D update per G update, no EMA of the
generator (samples come from the raw G), no augmentation and no D regulariser. Batch 64 (the paper
used 128), 32x32 grayscale images padded from 28x28, as every Fashion-MNIST config here.
Kept as its own config so the default (configs/default.py) is always compared against it at the
same budget (configs/sweeps/recipes.py, train.time_budget_minutes).
"""

from configs import default


def get_config():
  config = default.get_config()
  config.loss.name = "non_saturating"
  config.loss.d_steps = 1
  config.model.name = "dcgan"
  config.model.d_norm = "batch"
  config.model.d_spectral_norm = False
  config.reg.r1_gamma = 0.0
  config.reg.gp_weight = 0.0
  config.reg.diff_augment = ""
  config.optimizer.g_lr = config.optimizer.d_lr = 2e-4
  config.optimizer.b1, config.optimizer.b2 = 0.5, 0.999
  config.train.batch_size = 64
  config.train.ema_decay = 0.0          # no EMA: the generator as trained
  return config
