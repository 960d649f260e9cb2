"""WGAN-GP (Gulrajani et al. 2017) with the DCGAN architecture on Fashion-MNIST, class-conditional.

  python -m gan.main --config configs/wgan_gp_fashion_mnist.py --workdir runs/wgan_gp

The paper's recipe: 5 critic updates per generator update (each on its own real batch, all inside
one jitted step), gradient penalty 10 on real/fake interpolates, no batch norm in the critic (the
penalty is per example), Adam(1e-4, beta1 0.5, beta2 0.9).
Expect: each step costs ~3x a DCGAN step (five D updates); 3,000 steps ~35 min on a 2-core CPU
(estimate).
"""

from configs import cdcgan_fashion_mnist


def get_config():
  config = cdcgan_fashion_mnist.get_config()
  config.loss.name = "wasserstein"
  config.loss.d_steps = 5
  config.reg.gp_weight = 10.0
  config.model.d_norm = "none"
  config.optimizer.g_lr = config.optimizer.d_lr = 1e-4
  config.optimizer.b2 = 0.9
  config.train.steps = 3000
  return config
