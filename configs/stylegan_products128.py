"""Unconditional StyleGAN2 on the colour product photos at 128x128 RGB: configs/stylegan_products.py
(the 32x32 generator that gan/editing inverts into) with two more synthesis / discriminator stages
(the number of blocks and of styles follows data.image_size: num_ws = 12) and width 32: 32 channels
at 128x128, 64 at 64x64, 128 from 32x32 down to 4x4 (capped at 4 x width).

  python -m gan.main --config configs/stylegan_products128.py --workdir runs/stylegan_products128
  python -m gan.sample --workdir runs/stylegan_products128 --num 64 --out stylegan_products128.png

Same recipe as at 32x32 (lazy R1 gamma 1 every 16 steps, style mixing 0.9, DiffAugment, batch 32,
5,000 steps). ADA instead of DiffAugment (gan/augment.py): --config.reg.diff_augment=
--config.reg.ada.enabled=True --config.reg.ada.kimg=100 (p can then cross [0, 1] in 3,100 steps of
batch 32; the paper's 500 suits its longer runs); the 1,600 training photos are the limited-data
regime ADA was made for.

Cost. CPU, measured (2026-12-08, 2-core AMD EPYC, AVX-512, shared with a training job and other
test runs, load average ~10: expect it faster on an idle machine):
  nice -n 10 python experiments/benchmark_throughput.py --config configs/stylegan_products128.py \
      --batch_sizes 8 --steps 5 --repeats 2 --out /tmp/x.json
gave 220.3 GFLOP per step at batch 8 (XLA cost analysis), 4.30 s per step (1.9 images/s), compile
88 s (experiments/results/throughput_stylegan_products128_shared_epyc.json). Scaled to batch 32
(~881 GFLOP, ~17 s per step), the 5,000 steps would take about 24 h on that CPU: a GPU config.
GPU, an ESTIMATE (not measured): 5,000 x 881 GFLOP = 4.4 PFLOP; on one A100 at a realistic 30-40%
of its dense peak, ~9.5-12.5 min in float32 (19.5 TFLOP/s peak without TF32) and ~35-47 s with
--config.model.dtype=bfloat16 (312 TFLOP/s), plus compilation and sampling.
"""

from configs import stylegan_products


def get_config():
  config = stylegan_products.get_config()
  config.data.image_size = 128
  config.model.g_width = 32
  config.model.d_width = 32
  return config
