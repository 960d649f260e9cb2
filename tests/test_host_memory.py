"""gan.host_memory: freed XLA buffers stay in the process, so a repeated step does not page-fault anew."""

import os
from pathlib import Path
import platform
import subprocess
import sys

import pytest

from gan import host_memory

REPO = Path(__file__).resolve().parents[1]

# A jitted function with a 36 MiB temporary (above glibc's 32 MiB mmap limit, below its 64 MiB
# thread-heap size: see gan/host_memory.py). Prints the median minor page faults of 11 calls after
# warm-up (the median: a call that first runs on another XLA thread fills that thread's arena once)
# and the buffer's page count.
_FAULTS_PER_CALL = """
import resource, sys
from gan import host_memory
host_memory.retain_freed_memory()  # (with PRODUCTGAN_MALLOC=default: skipped)
import jax, jax.numpy as jnp
n = int(sys.argv[1])
f = jax.jit(lambda x: jnp.sum(jnp.sin(x @ x.T) * 2.0))  # (n, n) float32 product: 36 MiB
x = jnp.ones((n, 64), jnp.float32)
for _ in range(5):
  f(x).block_until_ready()
faults = []
for _ in range(11):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  f(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sorted(faults)[5], n * n * 4 // 4096)
"""


def _faults_per_call(mode: str, n: int = 3072) -> tuple[int, int]:
  """(median minor faults per call, pages of the (n, n) float32 temporary) under PRODUCTGAN_MALLOC=mode."""
  env = {**os.environ, host_memory.ENV_VAR: mode, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  out = subprocess.run([sys.executable, "-c", _FAULTS_PER_CALL, str(n)], env=env, cwd=REPO, capture_output=True,
                       text=True, timeout=300, check=True).stdout.split()
  return int(out[0]), int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc malloc's")
def test_retained_memory_is_reused_without_page_faults():
  retained, pages = _faults_per_call("retain")
  default, _ = _faults_per_call("default")
  # glibc's defaults: the 9,216-page buffer is unmapped on free and faulted in again every call.
  assert default > 0.5 * pages, (default, pages)
  assert retained < 0.05 * pages, (retained, pages)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc malloc's")
def test_one_arena_also_retains_blocks_larger_than_a_thread_heap():
  # A 72 MiB temporary (n = 4352): above the 64 MiB cap of glibc's thread heaps, so "retain" still
  # maps and unmaps it every call (the large-batch slowdown of issue #30); one arena keeps it.
  retained, pages = _faults_per_call("retain", 4352)
  one_arena, _ = _faults_per_call("one_arena", 4352)
  assert retained > 0.5 * pages, (retained, pages)
  assert one_arena < 0.05 * pages, (one_arena, pages)


def test_settings_switch_and_bad_value(monkeypatch):
  monkeypatch.setenv(host_memory.ENV_VAR, "default")
  assert host_memory.retain_freed_memory() is False
  monkeypatch.setenv(host_memory.ENV_VAR, "retain")
  assert host_memory.retain_freed_memory() is (platform.libc_ver()[0] == "glibc")
  monkeypatch.setenv(host_memory.ENV_VAR, "tcmalloc")
  with pytest.raises(ValueError, match="PRODUCTGAN_MALLOC='tcmalloc' is not a known setting"):
    host_memory.retain_freed_memory()


def _python_prints(code: str) -> str:
  """The last word `code` prints, run by a fresh Python in the repository (CPU JAX)."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                        timeout=300, check=True).stdout.split()[-1]


def test_importing_gan_changes_no_process_setting():
  """A library must not retune the allocator on import: only commands and benchmarks call it."""
  code = ("from gan import host_memory\n"
          "calls = []\n"
          "host_memory.retain_freed_memory = lambda: calls.append(1)\n"
          "import gan.train, gan.evaluate, gan.sample, gan.tasks, gan.edit, gan.stylize\n"
          "print(len(calls))")
  assert _python_prints(code) == "0"


def test_importing_gan_does_not_start_the_xla_backend():
  """jax.distributed.initialize must run before the backend starts (multi-host gan.main): no module
  may create arrays at import (e.g. a jnp constant)."""
  code = ("import importlib, pkgutil, gan\n"
          "import jax._src.xla_bridge as xb\n"
          "for m in pkgutil.walk_packages(gan.__path__, 'gan.'):\n"
          "  if not m.name.endswith('__main__'):\n"
          "    importlib.import_module(m.name)\n"
          "print(xb.backends_are_initialized())")
  assert _python_prints(code) == "False"
