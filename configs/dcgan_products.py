"""Class-conditional DCGAN on real colour product photos (shoes, handbags), 64x64 RGB, with DiffAugment.

  python -m gan.main --config configs/dcgan_products.py --workdir runs/products
  python -m gan.sample --workdir runs/products --label handbag --num 16 --out handbags.png

Data: the 1,600 training photos of $PRODUCTGAN_DATA_DIR/products/edges2shoes_edges2handbags/train
(default ../shared/data/...), data.source="products": the photo half of each 512x256 JPEG, labelled
shoe / handbag from the file numbering (see gan/data.py). 1,600 images is small for a GAN:
DiffAugment (colour, translation, cutout on real and fake) keeps D from memorising them.
Expect (an estimate, not yet measured end to end): 6,000 steps at batch 64, about 1 h 30 min on a
2-core CPU (a 64x64x3 step costs roughly 4x the 32x32x1 one; time it with
experiments/benchmark_throughput.py --config configs/dcgan_products.py).
"""

import os

from configs import default


def get_config():
  config = default.get_config()
  config.data.source = "products"
  config.data.name = "products_photo"   # names the cached real features of this view
  config.data.dir = os.path.join(default.data_root(), "products")
  config.data.split = "train"
  config.data.view = "photo"
  config.data.image_size = 64
  config.data.channels = 3
  config.data.random_flip = True
  config.data.num_classes = 2
  config.model.conditional = True
  config.reg.diff_augment = "color,translation,cutout"
  config.train.steps = 6000
  config.eval.every = 0                 # the domain classifier is Fashion-MNIST's
  config.sample.grid_rows = 8
  config.sample.grid_columns = 8
  return config
