"""DCGAN on real colour product photos (shoes and handbags), 64x64 RGB, unconditional.

  python -m gan.main --config configs/dcgan_products.py --workdir runs/products

Data: the 1,600 training photos of $PRODUCTGAN_DATA_DIR/products/edges2shoes_edges2handbags/train
(default ../shared/data/...): 512x256 JPEGs whose left half is the photo (the right half, an edge
map, is cut off by data.crop="left_half"). A flat folder is read as one class; for a conditional
model give the image_folder one subfolder per class.
Expect (an estimate, not yet measured end to end): 6,000 steps at batch 64, about 1 h on a 2-core
CPU, since a 64x64x3 step costs roughly 4x the 32x32x1 one (time it with
experiments/benchmark_throughput.py --config configs/dcgan_products.py).
"""

import os

from configs import default


def get_config():
  config = default.get_config()
  config.data.source = "image_folder"
  config.data.name = "edges2shoes_edges2handbags"
  config.data.dir = os.path.join(default.data_root(), "products", "edges2shoes_edges2handbags", "train")
  config.data.crop = "left_half"
  config.data.image_size = 64
  config.data.channels = 3
  config.data.random_flip = True
  config.data.num_classes = 1
  config.train.steps = 6000
  config.sample.grid_rows = 8
  config.sample.grid_columns = 8
  return config
