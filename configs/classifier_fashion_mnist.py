"""Domain classifier for Fashion-MNIST (the feature network of FID/KID/precision-recall here).

  python -m gan.metrics.train_classifier --config configs/classifier_fashion_mnist.py \
      --workdir runs/classifier_fashion_mnist

Same data and preprocessing as the GAN configs (32x32 padded, [-1, 1]), random flips.
Expect: 3,000 steps at batch 128 (6.4 epochs) on a 2-core CPU, test accuracy ~92%.
"""

import ml_collections

from configs import default


def get_config():
  gan_config = default.get_config()
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = gan_config.data
  config.data.random_flip = True
  config.model = ml_collections.ConfigDict()
  config.model.width = 16              # channels of the first stage (x2 per stage)
  config.model.dropout = 0.3
  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 128
  config.train.steps = 3000
  config.train.learning_rate = 2e-3    # AdamW with cosine decay to 0
  config.train.weight_decay = 1e-4
  config.train.log_every = 200
  config.eval_examples = 0             # test images to evaluate on (0 = all 10,000)
  return config
