"""A small StyleGAN2-style GAN on Fashion-MNIST: mapping network to W, modulated / demodulated
convolutions, per-layer noise, style mixing (p = 0.9), residual D with minibatch std; non-saturating
loss with lazy R1 (gamma 1, every 16 steps) as in StyleGAN2. Editing (gan/editing) works in its W / W+.

  python -m gan.main --config configs/stylegan_fashion_mnist.py --workdir runs/stylegan
  python -m gan.sample --workdir runs/stylegan --num 64 --out stylegan.png

Expect (estimate): ~4,000 steps at batch 32 in about an hour on a 2-core CPU; time it with
experiments/benchmark_throughput.py --config configs/stylegan_fashion_mnist.py.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = "stylegan"
  config.model.z_dim = 128
  config.model.g_width = 32
  config.model.d_width = 32
  config.model.generator = {"w_dim": 128, "mapping_layers": 4, "style_mixing_prob": 0.9}
  config.reg.r1_gamma = 1.0
  config.reg.r1_every = 16
  config.optimizer.g_lr = config.optimizer.d_lr = 2e-3 * 16 / 17   # StyleGAN2's lazy-R1 correction
  config.optimizer.b1 = 0.0
  config.optimizer.b2 = 0.99
  config.train.batch_size = 32
  config.train.steps = 4000
  config.train.ema_decay = 0.995
  return config
