"""Domain classifier for Fashion-MNIST (the feature network of FID/KID/precision-recall here).

  python -m gan.main --config configs/classifier_fashion_mnist.py --workdir runs/classifier_fashion_mnist

Trained by the shared loop as task "classifier" (gan/tasks/classifier.py): it resumes after a stop,
and its test accuracy (all 10,000 test images) is measured every eval.every steps and at the end and
saved with its checkpoints, where the metrics read it (gan.metrics.train_classifier.load).
Same data and preprocessing as the GAN configs (32x32 padded, [-1, 1]), random flips.
Expect: 3,000 steps at batch 128 (6.4 epochs) on a 2-core CPU, test accuracy ~92%.
"""

import ml_collections

from configs import default


def get_config():
  base = default.get_config()
  config = ml_collections.ConfigDict()
  config.task = "classifier"
  config.seed = 0
  config.data = base.data
  config.data.random_flip = True
  config.model = ml_collections.ConfigDict()
  config.model.width = 16              # channels of the first stage (x2 per stage)
  config.model.dropout = 0.3
  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.lr = 2e-3           # AdamW with cosine decay to 0 over train.steps
  config.optimizer.weight_decay = 1e-4
  # The loop's keys (checkpoints, the non-finite-loss policy) as in configs/default.py; ema_* and
  # sample_every are the GAN's, unused here (a classifier draws no sample grids).
  config.train = base.train
  config.train.batch_size = 128
  config.train.steps = 3000
  config.train.log_every = 200
  config.train.checkpoint_every = 500
  config.eval = ml_collections.ConfigDict()
  config.eval.every = 1000             # test accuracy every N steps and at the end
  config.eval.num_examples = 0         # held-out images to evaluate on (0 = all 10,000)
  return config
