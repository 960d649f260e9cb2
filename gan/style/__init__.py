"""Style transfer and personalization (`python -m gan.stylize` is the command).

  features         the feature-extractor protocol (name, layers, pure function) shared by all methods
  vgg              ImageNet VGG16 / VGG19 (weights via gan.weights); random_features: a fixed random
                   multi-scale conv net, the logged offline fallback
  gatys            optimisation-based transfer (Gatys et al. 2016): Gram-matrix style + content losses
  adain            feed-forward arbitrary style transfer (Huang & Belongie 2017): encoder + decoder
  controls         strength, multi-style blends, colour preservation, product / background masks,
                   saved user profiles
The losses themselves are gan/losses/style.py; pix2pix / CycleGAN translation is gan/tasks/translation.py.
"""
