"""productgan: GANs for product images in JAX.

Importing the package changes nothing in the process: process-wide settings (the host-memory
allocator, gan/host_memory.py) are applied by the commands and benchmarks that want them.
"""
