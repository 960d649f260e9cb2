"""Class-conditional DCGAN on the colour product photos at 128x128 RGB: configs/dcgan_products.py
with one more up / downsampling stage (G: 4x4x1024 -> ... -> 128x128x3, D the mirror image; the
depth follows data.image_size).

  python -m gan.main --config configs/dcgan_products128.py --workdir runs/products128
  python -m gan.sample --workdir runs/products128 --label handbag --num 16 --out handbags128.png

Everything else as at 64x64: 1,600 training photos (shoes, handbags), DiffAugment, 6,000 steps at
batch 64. ADA instead of DiffAugment (gan/augment.py): --config.reg.diff_augment=
--config.reg.ada.enabled=True --config.reg.ada.kimg=100 (p can then cross [0, 1] in 1,600 steps of
batch 64; the paper's 500 suits its longer runs).
A 64x64 run cannot be fine-tuned into this one: train.init_from refuses another data.image_size.

Cost. CPU, measured (2026-12-08, 2-core AMD EPYC, AVX-512, shared with a training job and other
test runs, load average ~10: expect it faster on an idle machine):
  nice -n 10 python experiments/benchmark_throughput.py --config configs/dcgan_products128.py \
      --batch_sizes 8 --steps 5 --repeats 2 --out /tmp/x.json
gave 86.6 GFLOP per step at batch 8 (XLA cost analysis; 1024 channels at 4x4), 3.20 s per step
(2.5 images/s), compile 36 s (experiments/results/throughput_dcgan_products128_shared_epyc.json).
Scaled to batch 64 (~693 GFLOP, ~26 s per step), the 6,000 steps would take about 43 h on that
CPU: a GPU config.
GPU, an ESTIMATE (not measured): 6,000 x 693 GFLOP = 4.2 PFLOP; on one A100 at a realistic 30-40%
of its dense peak, ~9-12 min in float32 (19.5 TFLOP/s peak without TF32) and ~33-44 s with
--config.model.dtype=bfloat16 (312 TFLOP/s), plus compilation and sampling.
"""

from configs import dcgan_products


def get_config():
  config = dcgan_products.get_config()
  config.data.image_size = 128
  return config
