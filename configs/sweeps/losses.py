"""The small loss study: 6 adversarial losses x class-conditional DCGAN x 3 seeds on Fashion-MNIST.

  python -m experiments.benchmark --sweep configs/sweeps/losses.py --workdir runs/sweep_losses

Same architecture, data, batch (64) and number of generator updates (train.steps) for every loss;
each loss uses its usual recipe (below): WGAN-GP is a critic with 5 updates per G update, no batch
norm in D (the gradient penalty is per example) and Adam(1e-4, 0.5, 0.9) as in Gulrajani et al.;
the others use the DCGAN recipe, Adam(2e-4, 0.5, 0.999). Evaluated with the domain classifier
(runs/classifier_fashion_mnist) on 5,000 samples of the EMA generator.
Budget: 800 steps per run (recognisable classes, far from converged). Measured on a 2-core CPU:
6-8 min per run, 34-36 min per WGAN-GP run (five critic updates with the penalty's second
derivative); ~3 h 15 min for the 18 runs (experiments/README.md). `:full` (the argument after the
file name) runs 9,000 steps per run, ~36 h on the same CPU, ~2 h on one GPU (estimates).
`:short` runs 200 steps per run, the budget meant to finish the 18 runs in about an hour on the
2-core CPU: measured 2026-12-06 alone on that CPU, 33.9 min for all 18 (1.0-1.2 min of training
per run, 4.5-4.6 min per WGAN-GP run, ~10 s of evaluation each; experiments/results/
sweep_losses_short.md).
"""

from configs import cdcgan_fashion_mnist

LOSSES = ("non_saturating", "minimax", "least_squares", "hinge", "relativistic_average", "wasserstein")
SEEDS = (0, 1, 2)

# Per-loss recipe, on top of the base config.
RECIPES = {
    "wasserstein": {"loss.d_steps": 5, "reg.gp_weight": 10.0, "model.d_norm": "none",
                    "optimizer.g_lr": 1e-4, "optimizer.d_lr": 1e-4, "optimizer.b2": 0.9},
}


STEPS = {"": 800, "short": 200, "full": 9000}


def get_base_config(arg: str = ""):
  if arg not in STEPS:
    raise ValueError(f"Unknown argument {arg!r} of the losses sweep: use one of {sorted(STEPS)} "
                     "(configs/sweeps/losses.py[:short|:full]).")
  config = cdcgan_fashion_mnist.get_config()
  config.train.steps = STEPS[arg]
  config.train.checkpoint_every = min(400, STEPS[arg] // 2)
  config.train.sample_every = config.train.checkpoint_every
  config.eval.every = 0             # the sweep runner evaluates each finished run
  return config


def get_sweep(arg: str = "") -> list[dict]:
  """One dict of config overrides per run; "group" names what is compared, "seed" is averaged over."""
  del arg
  return [{"group": loss, "loss.name": loss, "seed": seed, **RECIPES.get(loss, {})}
          for loss in LOSSES for seed in SEEDS]


EVAL_SAMPLES = 5000
