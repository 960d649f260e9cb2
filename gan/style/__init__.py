"""Style transfer: feature extractors for perceptual / style losses (vgg: pretrained VGG-16 /
VGG-19; random_features: a fixed random multi-scale conv net, the offline fallback)."""
