"""Image editing: GAN inversion and latent edits, inpainting, super-resolution, denoising, background replacement.

  inversion      real photo -> latent: optimization in Z / W / W+ (pixel + perceptual loss, noise
                 regularization, StyleGAN2 learning-rate ramp) and a trained encoder (+ refinement).
  directions     latent directions in W: PCA (GANSpace), linear / logistic probes of labels and
                 measured attributes (InterFaceGAN), conditional (orthogonalized) directions.
  edits          edits with a continuous strength (direction walks on layer ranges, style mixing,
                 interpolation, category interpolation) and reports of what each edit changed.
  inpaint, superres, denoise, background, enhance_train
                 image-to-image enhancement (see their docstrings).
"""
