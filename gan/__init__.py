"""productgan: GANs for product images in JAX."""
