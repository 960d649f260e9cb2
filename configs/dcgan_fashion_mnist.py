"""DCGAN on Fashion-MNIST, 32x32 grayscale, unconditional: the default run.

  python -m gan.main --config configs/dcgan_fashion_mnist.py --workdir runs/dcgan

Data: the official Fashion-MNIST .gz files in $PRODUCTGAN_DATA_DIR/fashion_mnist
(default: ../shared/data/fashion_mnist next to the clone).
Expect: 9,000 steps at batch 64 (~9.6 epochs), about 35 min on a 2-core CPU (4.3 steps/s;
measured 40 min wall while other jobs shared the machine).
Samples (runs/dcgan/samples/step_*.png) show blobs at step 300, recognisable shirts, trousers,
sneakers and boots by step 1,500, and all ten classes with clean silhouettes by the end
(docs/dcgan_fashion_mnist_step_9000.png).
"""

from configs import default


def get_config():
  return default.get_config()
