"""A tiny config shared by the tests: a few steps of a very narrow DCGAN, well under a minute on CPU.

  python -m gan.main --config configs/tiny.py --workdir /tmp/tiny --config.data.dir=DIR

Point data.dir at any folder of MNIST-format .gz files (the tests write a small one).
Samples are noise: it checks the plumbing, not quality.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.data.max_examples = 256
  config.model.z_dim = 16
  config.model.g_width = 8
  config.model.d_width = 8
  config.model.embed_dim = 8
  config.train.batch_size = 16
  config.train.steps = 4
  config.train.log_every = 2
  config.train.sample_every = 2
  config.train.checkpoint_every = 2
  config.train.keep_checkpoints = 2
  config.eval.every = 0
  config.sample.grid_rows = 4
  config.sample.grid_columns = 4
  config.sample.standing_stats_batch = 64
  return config
