"""The GAN-inversion encoder of the product StyleGAN: photos -> W+ latents in one forward pass.

  python -m gan.main --config configs/inversion_encoder_products.py --workdir runs/stylegan_products/encoder
  python -m gan.edit --op invert --workdir runs/stylegan_products --image shoe.png --out inverted.png

Task "inversion_encoder" (gan/tasks/inversion_encoder.py; the Encoder and its loss in
gan/editing/inversion.py). It inverts the trained StyleGAN run encoder.generator_workdir (its
latest checkpoint, the EMA generator): each step draws latents, renders them and fits the encoder
on the (image, W+) pairs, plus reconstruction of the real training photos (data, the generator's).
Kept in <StyleGAN run>/encoder, gan.edit starts its W+ projections from the encoder's guess.
Sample grids: photo | reconstruction of held-out photos; evaluation: PSNR / SSIM of those
reconstructions (noise-free renders of the encoded W+).

The generator's num_ws / w_dim and checkpoint step are written into encoder.* at the run's first
start (its config.json); a restart against a generator that trained on since is refused.
Cost (experiments/benchmark_editing.py, which trains one with these settings): ~1 s per step at
batch 32 without the perceptual term on a shared 2-core CPU.
"""

import ml_collections

from configs import default
from configs import stylegan_products


def get_config():
  config = default.get_config()        # the loop's keys (train.*, eval.every, data.prefetch, ...)
  config.task = "inversion_encoder"
  config.seed = 0                      # initialisation, latents and noise of every step, photo order
  config.data = stylegan_products.get_config().data   # the generator's photos (64x64 RGB): real images

  config.encoder = ml_collections.ConfigDict()
  config.encoder.generator_workdir = "runs/stylegan_products"   # the StyleGAN run to invert
  config.encoder.width = 32            # channels of the first conv (doubling per stride-2 conv, to 8x)
  config.encoder.hidden = 512          # dense layer before the W+ output
  config.encoder.per_layer = True      # one w per synthesis layer (W+); False: one w (W)
  config.encoder.latent_weight = 1.0   # |E(G(ws)) - ws|^2 / var(w) (1 ~ predicting the mean)
  config.encoder.pixel_weight = 1.0    # reconstruction MSE of G(E(x)) vs x
  config.encoder.perceptual_weight = 1.0
  # "auto": LPIPS-VGG when its weights are fetched (as StyleGAN2's projector), else the domain
  # classifier's perceptual distance when classifier_dir holds one, else none; resolved at the first
  # start and kept on restarts. "lpips_vgg" / "classifier" (required) or "none".
  config.encoder.perceptual = "auto"
  config.encoder.classifier_dir = "runs/classifier_products"
  config.encoder.mixing_prob = 0.5     # style mixing of the drawn latents: targets cover W+, not only W
  config.encoder.real_weight = 1.0     # reconstruction of real training photos (0 = off)
  config.encoder.stats_samples = 10000 # sampled w for the mean / spread of w
  # Written at the first start from the generator run (0 = not yet): the shapes and the step inverted.
  config.encoder.num_ws = 0
  config.encoder.w_dim = 0
  config.encoder.generator_step = 0

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.lr = 1e-3           # Adam, cosine decay to 10% over train.steps

  config.train.batch_size = 32         # drawn latents per step, and real photos
  config.train.steps = 2000
  config.train.log_every = 100
  config.train.sample_every = 500
  config.train.checkpoint_every = 500
  config.eval.every = 500              # PSNR / SSIM of held-out reconstructions (0 = off)
  config.eval.num_images = 32
  config.sample.grid_rows = 8
  return config
