"""Text encoder of the text-conditional DCGAN on Fashion-MNIST (configs/text_dcgan_fashion_mnist.py).

  python -m gan.main --config configs/text_encoder_fashion_mnist.py --workdir runs/text_encoder_fashion_mnist

Trained by the shared loop as task "text_encoder" (gan/tasks/text_encoder.py): a CLIP-style text
tower and image tower, contrastively, on the captions of the 60,000 training images (class name +
measured attributes, e.g. "a dark ankle boot", "a light, wide bag"; gan/attributes.py). It resumes
after a stop; caption retrieval on the test split is measured every eval.every steps. The GAN loads
the latest checkpoint from its data.text_encoder_dir (gan.conditioning.load_text_conditioner).
Measured (2026-12-07, 2-core CPU shared with other jobs): 2,000 steps at batch 128 in 61 s
(37 steps/s); 124 distinct captions; top-1 caption retrieval on the 10,000 test images 0.649, 0.690,
0.739, 0.757 at steps 500 ... 2,000 (first 2,000 training images: 0.795; chance ~0.01).
"""

import ml_collections

from configs import default


def get_config():
  base = default.get_config()
  config = ml_collections.ConfigDict()
  config.task = "text_encoder"
  config.seed = 0
  config.data = base.data               # Fashion-MNIST, 32x32 padded, no flips
  config.model = ml_collections.ConfigDict()
  config.model.embed_dim = 32           # caption embedding size: the GAN's model.cond_dim
  config.model.width = 64               # text tower: transformer width (MLP 2x), heads, blocks
  config.model.num_heads = 4
  config.model.num_layers = 2
  config.model.image_width = 16         # image tower: channels of the first stride-2 conv (x2 per conv)
  # Capacities, so the shapes follow from the config: words of the training captions (+ <pad>,
  # <unk>; Fashion-MNIST's need ~20) and words per caption (at most 6 here).
  config.model.vocab_size = 64
  config.model.max_len = 8
  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.lr = 2e-3            # Adam, warm-up then cosine decay to 5%; gradients clipped to norm 1
  # The loop's keys (checkpoints, the non-finite-loss policy) as in configs/default.py; ema_* and
  # sample_every are the GAN's, unused here (no sample grids).
  config.train = base.train
  config.train.batch_size = 128
  config.train.steps = 2000
  config.train.log_every = 100
  config.train.checkpoint_every = 500
  config.eval = ml_collections.ConfigDict()
  config.eval.every = 500               # caption retrieval every N steps and at the end (0 = off)
  config.eval.num_train_examples = 2000  # training images whose retrieval is also reported
  return config
