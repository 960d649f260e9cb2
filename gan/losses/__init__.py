"""Losses as pure functions: adversarial (the six GAN losses, selected by name from LOSSES),
regularizers (R1, gradient penalty) and style (Gram-matrix style and feature content losses)."""
