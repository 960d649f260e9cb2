"""Every config key, with what it means. Other configs derive from this one.

This is the DCGAN on Fashion-MNIST (unconditional); `dcgan_fashion_mnist.py` documents the run.
  python -m gan.main --config configs/default.py --workdir runs/default
Override any key: --config.train.steps=2000 --config.loss.name=hinge
"""

import os
from pathlib import Path

import ml_collections

# ../shared/data next to the clone (this repo's CI); PRODUCTGAN_DATA_DIR points elsewhere.
_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_root() -> str:
  """Folder holding one sub-folder per local dataset (fashion_mnist/, products/, ...)."""
  return os.environ.get("PRODUCTGAN_DATA_DIR", str(_SHARED_DATA))


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted keys set, e.g. {"loss.name": "hinge", "seed": 3}.

  Keys are checked: an override of a key the config does not have is a ValueError (a typo would
  otherwise silently train the base config). The key "group" (a sweep's label) is skipped.
  """
  config = config.copy_and_resolve_references()
  for key, value in overrides.items():
    if key == "group":
      continue
    *path, leaf = key.split(".")
    node = config
    for part in path:
      if part not in node:
        raise ValueError(f"Override {key!r} is not a config key.")
      node = node[part]
    if leaf not in node:
      raise ValueError(f"Override {key!r} is not a config key.")
    node[leaf] = value
  return config


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0                       # parameters, noise and data order all derive from it
  # What gan/train.py trains, a key of gan.tasks.TASKS: "generation" (a GAN from noise: the model /
  # reg keys), "pix2pix" (paired edge map -> photo) or "cyclegan" (unpaired domain A <-> B; both use
  # config.translation, gan/tasks/translation.py), and the auxiliary models with their own config
  # files: "classifier", "text_encoder", "enhance", "adain_decoder", "inversion_encoder".
  config.task = "generation"

  config.data = ml_collections.ConfigDict()
  config.data.source = "idx"            # "idx" (MNIST-format .gz files), "image_folder", "tfds"
  config.data.name = "fashion_mnist"    # tfds name; also selects class names for "idx"
  config.data.dir = os.path.join(data_root(), "fashion_mnist")  # local folder (tfds: data_dir, "" = default)
  config.data.split = "train"
  config.data.image_size = 32           # 32, 64 or 128 (4 x a power of two; the models get one stage per doubling)
  config.data.channels = 1              # 1 (grayscale) or 3 (RGB)
  config.data.resize = "pad"            # 28 -> 32 by "pad" (zeros around) or "resize" (bicubic)
  config.data.crop = "none"             # image_folder only: "none", "left_half", "right_half"
  config.data.view = "photo"            # products only: "photo", "edges" or "pair" (photo + its edge map)
  config.data.products_subsets = "edges2shoes_edges2handbags"  # products only: comma list of subsets
  config.data.max_examples = 0          # 0 = all; else the first N (quick experiments)
  config.data.random_flip = False       # random horizontal flips of real images
  config.data.num_classes = 10          # must match the dataset for conditional models
  # Continuous condition vector per image (model.cond_dim must match): "none", "attributes"
  # (measured brightness, colour, size... see gan/attributes.py) or "text" (caption embeddings of
  # the text encoder in data.text_encoder_dir; see gan/text.py).
  config.data.condition = "none"
  config.data.text_encoder_dir = ""
  config.data.prefetch = 2              # batches kept ready on the devices

  config.model = ml_collections.ConfigDict()
  config.model.name = "dcgan"           # architecture file in gan/models/
  config.model.z_dim = 100              # latent dimension
  config.model.g_width = 64             # G channels at full resolution (x2 per halving)
  config.model.d_width = 64             # D channels of the first conv (x2 per halving)
  config.model.conditional = False      # class-conditional G and D (projection discriminator)
  config.model.g_conditioning = "embedding"  # "embedding" (concat to z) or "cbn" (conditional BN)
  config.model.embed_dim = 50           # class embedding size for "embedding"
  config.model.d_norm = "batch"         # D normalisation: "batch" or "none"
  config.model.d_spectral_norm = False  # spectral normalisation of every D layer (SNGAN)
  config.model.bn_momentum = 0.9        # running-average momentum of batch norm
  # Architecture-specific constructor arguments, e.g. {"w_dim": 128} for stylegan (see its Generator).
  config.model.generator = ml_collections.ConfigDict()
  config.model.discriminator = ml_collections.ConfigDict()
  config.model.cond_dim = 0             # size of the continuous condition (data.condition); 0 = none
  config.model.dtype = "float32"        # compute dtype: "float32" or "bfloat16" (mixed precision:
                                        # params, logits and losses stay float32)
  config.model.remat = False            # resnet / stylegan: recompute block activations in the backward
                                        # pass (less memory for large models, ~1/3 more compute)

  config.loss = ml_collections.ConfigDict()
  config.loss.name = "non_saturating"   # see gan/losses/adversarial.py: LOSSES
  config.loss.d_steps = 1               # D updates per G update, all inside one jitted step (WGAN-GP: 5);
                                        # each D update gets its own real batch

  # Regularizers and augmentation (gan/losses/regularizers.py, gan/augment.py); 0 / "" = off.
  config.reg = ml_collections.ConfigDict()
  config.reg.r1_gamma = 0.0             # R1: gamma / 2 * E||grad D(x_real)||^2 (Mescheder et al. 2018)
  config.reg.r1_every = 1               # lazy R1: every k steps, scaled by k (StyleGAN2 uses 16)
  config.reg.gp_weight = 0.0            # WGAN-GP: lambda * E(||grad D(x_hat)|| - 1)^2 (usually 10)
  config.reg.diff_augment = ""          # DiffAugment policy for real and fake, e.g. "color,translation,cutout"
  # Adaptive discriminator augmentation (Karras et al. 2020; gan/augment.py ada_augment): every image
  # D sees (real and fake) is augmented, each transformation with probability p per image. p starts
  # at p_init and every `interval` steps moves by sign(r_t - target) x (reals in the interval) /
  # (kimg x 1000), clipped to [0, 1], where r_t = E[sign(D(real))] over the interval (D's overfitting
  # heuristic). p is part of the train state (checkpointed); ada_p and ada_rt are logged. Groups: a
  # comma list of "blit" (flips, 90-degree rotations, integer shifts), "geom" (scale, rotation,
  # anisotropy, fractional shifts) and "color" (brightness, contrast, luma flip, hue, saturation).
  # Not together with diff_augment (one augmentation at a time).
  config.reg.ada = ml_collections.ConfigDict({
      "enabled": False, "target": 0.6, "interval": 4, "kimg": 500.0, "p_init": 0.0,
      "groups": "blit,geom,color"})

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = "adam"
  config.optimizer.g_lr = 2e-4
  config.optimizer.d_lr = 2e-4          # differs from g_lr for two-timescale updates
  config.optimizer.b1 = 0.5             # DCGAN's beta1
  config.optimizer.b2 = 0.999

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 64          # global batch, split over all devices
  config.train.steps = 9000             # one step = one D update + one G update
  config.train.log_every = 100          # metrics leave the device only this often
  config.train.sample_every = 500       # PNG + TensorBoard sample grid at fixed noise
  config.train.checkpoint_every = 1000
  config.train.keep_checkpoints = 3
  config.train.ema_decay = 0.999        # EMA generator (used for samples)
  config.train.ema_warmup = True        # decay ramps up as (1 + t) / (10 + t)
  # Fine-tuning (gan/finetune.py): "<workdir>[:<step>]" of another run (default step: its newest).
  # At the first start G, D and EMA weights come from it (optimizers, step and RNG fresh; arrays of
  # another shape, e.g. a class embedding, re-initialised and logged); a parent of another model.name,
  # width or data.image_size / channels is refused. Recorded in provenance.json. "" = from scratch.
  config.train.init_from = ""
  # A NaN/inf loss (caught every log_every steps, never saved): "stop" keeps the last good checkpoint
  # and exits with an error; "rollback" resumes from it with every optimizer.*lr multiplied by
  # rollback_lr_factor, at most max_rollbacks times (gan/train.py; logged in rollbacks.jsonl).
  # Wall-clock budget of the training loop in minutes (0 = none): the run stops at the first
  # log_every step past it, as if train.steps ended there (checkpoint, final samples and evaluation),
  # so recipes compared at one budget pay for a slower step. Compilation counts, evaluation and sample
  # grids do not; a resumed run continues the budget it had used (kept in each checkpoint's meta).
  config.train.time_budget_minutes = 0.0
  config.train.on_non_finite = "stop"
  config.train.rollback_lr_factor = 0.5
  config.train.max_rollbacks = 3

  config.eval = ml_collections.ConfigDict()
  config.eval.every = 1000              # FID etc. of the EMA generator every N steps (0 = off)
  config.eval.num_samples = 2000        # generated samples per evaluation
  config.eval.seed = 0
  # Domain classifier (task "classifier", configs/classifier_fashion_mnist.py); evaluation is skipped
  # with a warning when it has not been trained. The best checkpoint by FID is kept in best_checkpoint/.
  config.eval.classifier_dir = "runs/classifier_fashion_mnist"
  # Feature network of the in-training FID: "domain" (the classifier above; ~1 s per evaluation) or
  # "inception" (InceptionV3 at 299 px, StyleGAN's protocol, numbers comparable with papers; needs
  # `python -m gan.weights fetch inception`). Inception costs ~24 images/s on a 2-core CPU (AMD
  # EPYC): ~85 s per evaluation of the 2,000 samples above, plus once the reference features
  # (num_reference below: 10,000 take ~7 min, cached); experiments/README.md, "Pretrained perception".
  config.eval.features = "domain"
  # Real training images the in-training FID compares with, evenly spaced over the split (0 = all;
  # with Inception features use e.g. 10000: Fashion-MNIST's 60,000 take ~40 min on a 2-core CPU).
  config.eval.num_reference = 0

  config.sample = ml_collections.ConfigDict()
  config.sample.grid_columns = 10       # conditional grids: one row per class
  config.sample.grid_rows = 10          # unconditional grids
  config.sample.standing_stats_batch = 1024  # batch used to re-estimate BN statistics of the sampled G

  # Image translation (task "pix2pix" / "cyclegan"; gan/tasks/translation.py, gan/models/translation.py).
  # Translation sample grids show sample.grid_rows held-out examples: input | output | target (pix2pix)
  # or input | translation | translated back (cyclegan, half the rows per domain).
  config.translation = ml_collections.ConfigDict()
  config.translation.g_width = 64       # generator channels at full resolution (pix2pix U-Net: x2 per level
                                        # up to 8x; CycleGAN ResNet: W, 2W, 4W)
  config.translation.d_width = 64       # PatchGAN channels of the first conv (x2 per layer up to 8x)
  config.translation.norm = "instance"  # "instance" or "none" (instance norm: no batch statistics)
  config.translation.unet_depth = 6     # pix2pix: stride-2 levels; image_size / 2^depth is the bottleneck
  config.translation.dropout = 0.5      # pix2pix: dropout (G's noise) in the 3 innermost decoder layers
  config.translation.resnet_blocks = 9  # cyclegan: residual blocks (9 at 256 px in the paper)
  config.translation.d_layers = 3       # PatchGAN stride-2 layers: receptive field 70 px (3), 34 (2), 16 (1)
  config.translation.lambda_l1 = 100.0  # pix2pix: weight of mean |G(x) - y| (Isola et al.)
  config.translation.lambda_cycle = 10.0     # cyclegan: weight of the cycle-consistency L1 terms
  config.translation.lambda_identity = 0.5   # cyclegan: identity L1 weight, times lambda_cycle (0 = off)
  config.translation.pool_size = 50     # cyclegan: past fakes per domain shown to D (0 = no pool)
  config.translation.domain_a = 0       # cyclegan: class id of domain A (products: 0 shoe)
  config.translation.domain_b = 1       # cyclegan: class id of domain B (products: 1 handbag)
  return config
