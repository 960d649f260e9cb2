"""Domain classifier of the colour product photos (shoe / handbag, 64x64 RGB): the feature network
of FID, KID and the perceptual distance for products (translation, editing, enhancement).

  python -m gan.main --config configs/classifier_products.py --workdir runs/classifier_products

Same data and preprocessing as configs/dcgan_products.py (photo half, 64x64, [-1, 1]), random flips;
test accuracy on the 400 held-out val photos. Two classes are easy to tell apart, so its features are
weaker than an ImageNet network's: FIDs computed with it compare runs of this codebase with each
other, not with published numbers.
"""

from configs import classifier_fashion_mnist
from configs import dcgan_products


def get_config():
  config = classifier_fashion_mnist.get_config()
  config.data = dcgan_products.get_config().data
  config.data.random_flip = True
  config.model.width = 16
  config.train.batch_size = 64
  config.train.steps = 1500
  config.eval.every = 500
  config.eval.num_examples = 0
  return config
