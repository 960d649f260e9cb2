"""SNGAN-style ResNet GAN on Fashion-MNIST, class-conditional: conditional batch norm in G, a
spectrally normalised projection discriminator, hinge loss (Miyato et al. 2018).

  python -m gan.main --config configs/resnet_fashion_mnist.py --workdir runs/resnet

Widths are small (32 at full resolution) so it trains on a CPU; lr 2e-4, betas (0, 0.9) as SNGAN.
Expect (estimate): ~4,000 steps at batch 64 in about an hour on a 2-core CPU; time it with
experiments/benchmark_throughput.py --config configs/resnet_fashion_mnist.py.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.name = "resnet"
  config.model.conditional = True
  config.model.g_width = 32
  config.model.d_width = 32
  config.model.d_spectral_norm = True
  config.loss.name = "hinge"
  config.optimizer.b1 = 0.0
  config.optimizer.b2 = 0.9
  config.train.steps = 4000
  return config
