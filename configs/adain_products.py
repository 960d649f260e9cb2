"""The AdaIN decoder of feed-forward style transfer, trained on product photos x style paintings.

  python -m gan.main --config configs/adain_products.py --workdir runs/adain_products
  python -m gan.main --config configs/adain_products.py --workdir runs/adain_products --config.adain.extractor=random
  python -m gan.stylize --method adain --adain_dir runs/adain_products --content shoe.jpg --style wave.jpg --out s.png

Task "adain_decoder" (gan/tasks/adain_decoder.py; the model in gan/style/adain.py). Content: the
1,600 training product photos (photo half, 64x64, no flips); styles: every image of
$PRODUCTGAN_DATA_DIR/styles, resized to a shorter side of adain.style_scale x 64 px, one random 64x64
crop per content photo. Encoder (adain.extractor): "auto" takes ImageNet VGG16 (`python -m
gan.weights fetch vgg16`), else a VGG-19 weight file, else the random-feature fallback with a
warning, decided at the run's first start and kept in its config.json (so a restart continues with
the same encoder); or name one: "vgg16", "vgg", "random", or a full extractor name such as
"random(seed=0,scales=3,features=128,kernel=7)". Sample grids: photo | style crop | stylized for
held-out val photos; evaluation: the training losses on eval.num_images fixed val photo / style
crop pairs (the best checkpoint has the lowest "total").

Measured (2026-12-08, 2-core AMD EPYC with AVX-512, beside the test suite and another training, so
times are upper bounds; experiments/README.md, "Style transfer"): random features, 800 steps in 616 s,
losses at step 800 content 0.099, style 0.014 (the 2026-12-06 run with tanh / lr 5e-4: 0.089 / 0.013);
VGG16, 2,000 steps in 2,064 s: eval style loss 20.6 / 15.7 / 18.2 / 34.6 at steps 500 / 1,000 / 1,500 /
2,000 (dark images at the end): not yet a usable decoder (issue #25); its best checkpoint is step 1,000.
"""

import os

import ml_collections

from configs import dcgan_products
from configs import default


def get_config():
  config = default.get_config()        # the loop's keys (train.*, eval.every, data.prefetch, ...)
  config.task = "adain_decoder"
  config.seed = 0                      # decoder initialisation, photo order, style crops
  config.data = dcgan_products.get_config().data   # product photos, 64x64 RGB
  config.data.resize = "resize"
  config.data.random_flip = False

  config.adain = ml_collections.ConfigDict()
  config.adain.extractor = "auto"      # auto | vgg16 | vgg | random | an extractor's full name
  config.adain.vgg_weights = ""        # a VGG-19 file, or a folder with vgg16.npz ("": the default places)
  config.adain.encoder_layer = ""      # "": relu4_1 for VGG, "content" for random features
  config.adain.style_layers = ()       # (): relu1_1..relu4_1 for VGG, the "scale<s>" layers for random
  config.adain.styles_dir = os.path.join(default.data_root(), "styles")
  config.adain.style_scale = 2.0       # >= 1: a crop covers 1 / style_scale of a painting's shorter side
  config.adain.style_weight = 10.0     # the paper's with VGG (extractor-dependent)
  config.adain.decoder = ml_collections.ConfigDict()   # gan.style.adain.Decoder
  config.adain.decoder.width = 64      # channels at full resolution, doubled per level
  config.adain.decoder.convs_per_level = 2
  config.adain.decoder.padding = "reflect"   # reflect | same
  # clip (straight-through): with VGG16's feature scale a tanh output saturated within the first
  # 100 steps of lr 5e-4 and never recovered (a constant image, zero gradients: issue #25's first run).
  config.adain.decoder.output = "clip"       # tanh | clip

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.lr = 1e-4           # Adam, as Huang & Belongie 2017

  config.train.batch_size = 8
  config.train.steps = 2000
  config.train.log_every = 100
  config.train.sample_every = 500
  config.train.checkpoint_every = 500
  config.eval.every = 500              # losses on fixed held-out pairs (0 = off)
  config.eval.num_images = 32
  config.eval.seed = 0                 # their style crops
  config.sample.grid_rows = 6
  return config
