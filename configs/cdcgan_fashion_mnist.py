"""Class-conditional DCGAN on Fashion-MNIST: class embedding in G, projection discriminator.

  python -m gan.main --config configs/cdcgan_fashion_mnist.py --workdir runs/cdcgan
  python -m gan.sample --workdir runs/cdcgan --label sneaker --num 16 --out sneakers.png

Expect: 9,000 steps at batch 64, about 25-30 min on a 2-core CPU. Sample grids have one row per
class (T-shirt/top, Trouser, ..., Ankle boot); each row is recognisably its class by step ~3,000.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.conditional = True
  config.model.g_conditioning = "embedding"
  return config
