"""The recipe study: candidate defaults against the textbook DCGAN at one wall-clock budget (issue #29).

  # stage 1, screening: every candidate, one seed, 5 training minutes each (~1 h on a 2-core CPU)
  python -m experiments.benchmark --sweep configs/sweeps/recipes.py:screen --workdir runs/sweep_recipes_screen
  # stage 2 (successive halving): the best of stage 1 + the textbook and current default, 2 seeds,
  # 20 training minutes each (~40 min per candidate on a 2-core CPU)
  python -m experiments.benchmark --sweep configs/sweeps/recipes.py:final=hinge_sn_ttur,ns_diffaug \
      --workdir runs/sweep_recipes

Every run is unconditional Fashion-MNIST at 32x32, batch 64, with train.steps far beyond what the
budget allows: train.time_budget_minutes ends it (gan/train.py: the loop's wall time, compilation
included, evaluation excluded), so a recipe with a slower step reaches fewer steps, which is the
point. Runs of one stage must run one at a time on one otherwise idle machine (a budget measured
beside other jobs is a smaller budget). Scored by the sweep runner on EVAL_SAMPLES samples of the
EMA generator (the raw G for recipes without EMA) with the domain classifier
(runs/classifier_fashion_mnist); `--features inception` scores the same runs in Inception space.

Candidates (overrides of configs/dcgan_textbook.py, the baseline, itself group "textbook"):
  default           the current configs/default.py (textbook + EMA 0.999)
  ema_9999          EMA 0.9999 (longer average)
  ttur              two-timescale Adam: D 4e-4, G 1e-4 (Heusel et al. 2017)
  hinge_sn_ttur     hinge loss, spectral norm in D instead of batch norm, TTUR, betas (0, 0.9), EMA
  ns_r1             D without batch norm + R1 (gamma 0.1, Mescheder et al. 2018), EMA
  ns_diffaug        DiffAugment color,translation on real and fake (Zhao et al. 2020), EMA
  ragan             relativistic average loss (Jolicoeur-Martineau 2018), EMA
  wgan_gp           WGAN-GP (5 critic updates, Adam 1e-4 / 0.5 / 0.9, no BN in D), EMA
  narrow            G and D width 32 (about 3.5x cheaper steps: more of them in the budget), EMA
  wide              G and D width 96, EMA
  resnet_sngan      the ResNet/SNGAN architecture (width 32, hinge, spectral norm, betas (0, 0.9)), EMA
"""

from configs import dcgan_textbook

EMA = {"train.ema_decay": 0.999}
CANDIDATES = {
    "textbook": {},
    "default": EMA,
    "ema_9999": {"train.ema_decay": 0.9999},
    "ttur": {**EMA, "optimizer.d_lr": 4e-4, "optimizer.g_lr": 1e-4},
    "hinge_sn_ttur": {**EMA, "loss.name": "hinge", "model.d_norm": "none", "model.d_spectral_norm": True,
                      "optimizer.d_lr": 4e-4, "optimizer.g_lr": 1e-4, "optimizer.b1": 0.0, "optimizer.b2": 0.9},
    "ns_r1": {**EMA, "model.d_norm": "none", "reg.r1_gamma": 0.1},
    "ns_diffaug": {**EMA, "reg.diff_augment": "color,translation"},
    "ragan": {**EMA, "loss.name": "relativistic_average"},
    "wgan_gp": {**EMA, "loss.name": "wasserstein", "loss.d_steps": 5, "reg.gp_weight": 10.0,
                "model.d_norm": "none", "optimizer.g_lr": 1e-4, "optimizer.d_lr": 1e-4, "optimizer.b2": 0.9},
    "narrow": {**EMA, "model.g_width": 32, "model.d_width": 32},
    "wide": {**EMA, "model.g_width": 96, "model.d_width": 96},
    "resnet_sngan": {**EMA, "model.name": "resnet", "model.g_width": 32, "model.d_width": 32,
                     "model.d_norm": "none", "model.d_spectral_norm": True, "loss.name": "hinge",
                     "optimizer.b1": 0.0, "optimizer.b2": 0.9},
}
# Always in the final stage: what the study is about.
BASELINES = ("textbook", "default")
STAGES = {"screen": (5.0, (0,)), "final": (20.0, (0, 1))}   # budget in minutes, seeds
EVAL_SAMPLES = 10000


def _parse(arg: str) -> tuple[str, tuple[str, ...]]:
  stage, _, groups = arg.partition("=")
  if stage not in STAGES:
    raise ValueError(f"Unknown stage {stage!r} of the recipe sweep: use configs/sweeps/recipes.py:screen "
                     "or configs/sweeps/recipes.py:final=<group>,<group> (groups of stage 1).")
  chosen = tuple(g for g in groups.split(",") if g) if stage == "final" else tuple(CANDIDATES)
  unknown = [g for g in chosen if g not in CANDIDATES]
  if unknown:
    raise ValueError(f"Unknown recipe group(s) {unknown}; valid: {', '.join(CANDIDATES)}.")
  if stage == "final":
    chosen = BASELINES + tuple(g for g in chosen if g not in BASELINES)
  return stage, chosen


def get_base_config(arg: str = "screen"):
  stage, _ = _parse(arg)
  config = dcgan_textbook.get_config()
  config.train.time_budget_minutes = STAGES[stage][0]
  config.train.steps = 1_000_000     # the budget ends every run
  config.train.checkpoint_every = 2000
  config.train.sample_every = 2000
  config.eval.every = 0              # the sweep runner evaluates each finished run
  return config


def get_sweep(arg: str = "screen") -> list[dict]:
  """One dict of config overrides per run; "group" names the recipe, "seed" is averaged over."""
  stage, groups = _parse(arg)
  return [{"group": group, "seed": seed, **CANDIDATES[group]} for group in groups for seed in STAGES[stage][1]]
