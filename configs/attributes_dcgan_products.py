"""Attribute-conditioned DCGAN on product photos: a user profile (brightness, colour, size, shape)
steers generation, e.g. "light, small products".

  python -m gan.main --config configs/attributes_dcgan_products.py --workdir runs/attr_products
  python -m gan.sample --workdir runs/attr_products --attributes brightness=0.8,size=0.3 --out light_small.png

Each photo's condition is its measured attribute vector (gan/attributes.py ATTRIBUTE_NAMES, all in
[0, 1]); class labels (shoe / handbag) condition G and D too.
Expect (estimate): as configs/dcgan_products.py.
"""

from configs import dcgan_products
from gan import attributes


def get_config():
  config = dcgan_products.get_config()
  config.data.condition = "attributes"
  config.model.cond_dim = len(attributes.ATTRIBUTE_NAMES)
  return config
