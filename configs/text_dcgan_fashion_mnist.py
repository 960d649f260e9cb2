"""Text-conditional DCGAN on Fashion-MNIST: "generate a dark ankle boot".

Captions come from the data: class name + attributes measured on each image (gan/attributes.py),
e.g. "a dark ankle boot", "a light, wide bag". A text encoder is trained first, contrastively
against images (task "text_encoder", configs/text_encoder_fashion_mnist.py), and its caption
embeddings condition G (concatenated to z) and D (projection):

  python -m gan.main --config configs/text_encoder_fashion_mnist.py --workdir runs/text_encoder_fashion_mnist
  python -m gan.main --config configs/text_dcgan_fashion_mnist.py --workdir runs/text_dcgan
  python -m gan.sample --workdir runs/text_dcgan --text "a dark ankle boot" --num 16 --out boots.png

Expect: text encoder ~1 min (measured, configs/text_encoder_fashion_mnist.py), GAN 3,000 steps
~15 min (estimate) on a 2-core CPU (the class-conditional DCGAN's recognition accuracy passed 0.8 by
step 1,000).
"""

from configs import default
from configs import text_encoder_fashion_mnist


def get_config():
  config = default.get_config()
  config.data.condition = "text"
  config.data.text_encoder_dir = "runs/text_encoder_fashion_mnist"
  config.model.cond_dim = text_encoder_fashion_mnist.get_config().model.embed_dim   # 32
  config.model.embed_dim = 32
  config.train.steps = 3000
  return config
