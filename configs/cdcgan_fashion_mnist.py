"""Class-conditional DCGAN on Fashion-MNIST: class embedding in G, projection discriminator.

  python -m gan.main --config configs/cdcgan_fashion_mnist.py --workdir runs/cdcgan
  python -m gan.sample --workdir runs/cdcgan --label sneaker --num 16 --out sneakers.png

Expect: 9,000 steps at batch 64, about 35 min on a 2-core CPU (estimated from the unconditional
run; not yet measured end to end). Sample grids have one row per
class (T-shirt/top, Trouser, ..., Ankle boot); each row should be recognisably its class well before the end.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.conditional = True
  config.model.g_conditioning = "embedding"
  return config
