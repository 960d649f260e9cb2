"""DCGAN on Fashion-MNIST, 32x32 grayscale, unconditional: the default run.

  python -m gan.main --config configs/dcgan_fashion_mnist.py --workdir runs/dcgan

Data: the official Fashion-MNIST .gz files in $PRODUCTGAN_DATA_DIR/fashion_mnist
(default: ../shared/data/fashion_mnist next to the clone).
Expect: 9,000 steps at batch 64 (~9.6 epochs), about 25-30 min on a 2-core CPU.
Samples (runs/dcgan/samples/step_*.png) show blobs at step 500, recognisable shirts, trousers,
shoes and bags by step ~2,000, and all ten classes with clean silhouettes by the end.
"""

from configs import default


def get_config():
  return default.get_config()
