"""productgan: GANs for product images in JAX."""

from gan import host_memory

# Before JAX starts XLA's threads: without it every CPU train step page-faults its buffers anew.
host_memory.retain_freed_memory()
