"""Per-XLA-op profile of a jitted function: device time of each HLO instruction, joined with the
optimized HLO (shape, the JAX op it came from, a category). Used by experiments/profile_step.py.

XLA:CPU runs independent ops concurrently, so op times can sum to more than the wall time; the
summary reports both (their ratio is the average number of ops in flight).
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import gzip
import json
import os
import re
import tempfile
import time
from typing import Any, Callable, Iterable

import jax

# Trace events that are not one HLO instruction (runtime and Python frames).
_RUNTIME_PREFIXES = ("ThunkExecutor", "$", "SlinkyThreadPool", "PjitFunction", "CommonPjRtLoadedExecutable",
                     "end: ")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(\(.*?\)|\S+)\s+([\w\-]+)\(")
_COMPUTATION = re.compile(r"^\s*(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")


@dataclasses.dataclass(frozen=True)
class HloOp:
  shape: str        # e.g. "f32[64,8,8,128]{3,2,1,0}"
  opcode: str       # e.g. "fusion", "convolution", "copy"
  category: str     # "convolution" | "dot" | "reduction" | "elementwise / copy"
  source: str       # the JAX op it came from (metadata op_name), "" when XLA gives none


def _category(opcodes: Iterable[str]) -> str:
  opcodes = set(opcodes)
  if "convolution" in opcodes:
    return "convolution"
  if "dot" in opcodes:
    return "dot"
  if "reduce" in opcodes or "reduce-window" in opcodes:
    return "reduction"
  return "elementwise / copy"


def parse_hlo(hlo_text: str) -> dict[str, HloOp]:
  """Instruction name -> HloOp for every instruction of an optimized HLO module's text.

  A fusion's category is that of the opcodes of the computation it calls (a fusion holding a
  convolution is a convolution), so the categories account for all the time of the trace.
  """
  body_opcodes: dict[str, list[str]] = collections.defaultdict(list)
  parsed = []   # (name, shape, opcode, called computation or None, source)
  current = None
  for line in hlo_text.splitlines():
    m = _INSTRUCTION.match(line)
    if m:
      name, shape, opcode = m.groups()
      if current is not None:
        body_opcodes[current].append(opcode)
      called = re.search(r"calls=%?([\w.\-]+)", line)
      source = re.search(r'op_name="([^"]*)"', line)
      parsed.append((name, shape, opcode, called.group(1) if called else None, source.group(1) if source else ""))
    elif (c := _COMPUTATION.match(line)) and "->" in line:
      current = c.group(1)
    elif line.strip() == "}":
      current = None
  return {name: HloOp(shape, opcode, _category(body_opcodes.get(called, []) if called else [opcode]), source)
          for name, shape, opcode, called, source in parsed}


def op_times(trace_events: Iterable[dict], steps: int) -> dict[str, float]:
  """Mean seconds per step of each traced HLO instruction (complete "X" events, durations in us)."""
  total = collections.Counter()
  for event in trace_events:
    if event.get("ph") == "X" and not event["name"].startswith(_RUNTIME_PREFIXES):
      total[event["name"]] += event.get("dur", 0.0)
  return {name: us / 1e6 / steps for name, us in total.items()}


def summarize(times: dict[str, float], ops: dict[str, HloOp], wall_seconds: float, top: int) -> dict:
  """Top ops and per-category totals; only instructions of the compiled step count (others are
  host-side runtime events)."""
  known = {name: t for name, t in times.items() if name in ops}
  busy = sum(known.values())
  by_category = collections.Counter()
  for name, t in known.items():
    by_category[ops[name].category] += t
  rows = [{"name": name, "ms_per_step": 1e3 * t, "fraction_of_op_time": t / busy,
           **dataclasses.asdict(ops[name])}
          for name, t in sorted(known.items(), key=lambda kv: -kv[1])[:top]]
  return {
      "wall_ms_per_step": 1e3 * wall_seconds,
      "op_ms_per_step": 1e3 * busy,
      "ops_in_flight": busy / wall_seconds,
      "by_category_ms_per_step": {k: 1e3 * v for k, v in by_category.most_common()},
      "top_ops": rows,
  }


def profile_calls(fn: Callable[..., Any], args: tuple, steps: int, top: int = 30,
                  feed_back: bool = True) -> dict:
  """Traces `steps` calls of the jitted `fn` (after 5 warm-up calls) and summarizes them.

  With feed_back, each call's first output replaces the first argument (a train step's state), so
  donated buffers stay valid. Returns the `summarize` dict.
  """
  ops = parse_hlo(fn.lower(*args).compile().as_text())
  args = list(args)

  def call():
    out = fn(*args)
    if feed_back:
      args[0] = out[0]
    return out

  for _ in range(5):
    out = call()
  jax.block_until_ready(out)
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    start = time.perf_counter()
    for _ in range(steps):
      out = call()
    jax.block_until_ready(out)
    wall = (time.perf_counter() - start) / steps
    jax.profiler.stop_trace()
    traces = glob.glob(os.path.join(trace_dir, "**", "*.json.gz"), recursive=True)
    if not traces:
      raise RuntimeError(f"jax.profiler wrote no Perfetto trace under {trace_dir}.")
    with gzip.open(traces[0], "rt", encoding="utf-8") as f:
      trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  return summarize(op_times(events, steps), ops, wall, top)
