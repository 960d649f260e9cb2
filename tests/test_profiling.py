"""gan.profiling: HLO parsing, trace aggregation and a real trace of a jitted convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan import profiling
from gan.models import layers

HLO = """HloModule jit_step, entry_computation_layout={(f32[2,8,8,3]{3,2,1,0})->f32[2,4,4,5]{3,2,1,0}}

%fused_computation.1 (param_0: f32[2,8,8,3], param_1: f32[4,4,3,5]) -> f32[2,4,4,5] {
  %param_0 = f32[2,8,8,3]{3,2,1,0} parameter(0)
  %param_1 = f32[4,4,3,5]{3,2,1,0} parameter(1)
  ROOT %convolution.1 = f32[2,4,4,5]{3,2,1,0} convolution(%param_0, %param_1), window={size=4x4 stride=2x2 pad=1_1x1_1}, dim_labels=b01f_01io->b01f
}

%fused_computation.2 (param_0.1: f32[2,4,4,5]) -> f32[2,4,4,5] {
  %param_0.1 = f32[2,4,4,5]{3,2,1,0} parameter(0)
  %constant.1 = f32[] constant(0)
  %broadcast.1 = f32[2,4,4,5]{3,2,1,0} broadcast(%constant.1), dimensions={}
  ROOT %maximum.1 = f32[2,4,4,5]{3,2,1,0} maximum(%param_0.1, %broadcast.1)
}

ENTRY %main (x: f32[2,8,8,3], k: f32[4,4,3,5]) -> f32[2,4,4,5] {
  %x = f32[2,8,8,3]{3,2,1,0} parameter(0)
  %k = f32[4,4,3,5]{3,2,1,0} parameter(1)
  %ynn_fusion = f32[2,4,4,5]{3,2,1,0} fusion(%x, %k), kind=kCustom, calls=%fused_computation.1, metadata={op_name="jit(step)/D/Conv_0/conv_general_dilated" stack_frame_id=3}
  %copy.7 = f32[4,4,3,5]{3,2,1,0} copy(%k)
  %dot.2 = f32[2,5]{1,0} dot(%x, %k), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  ROOT %broadcast_maximum_fusion = f32[2,4,4,5]{3,2,1,0} fusion(%ynn_fusion), kind=kLoop, calls=%fused_computation.2, metadata={op_name="jit(step)/D/relu/max"}
}
"""


def test_parse_hlo_categorizes_fusions_by_their_body_and_keeps_the_source_op():
  ops = profiling.parse_hlo(HLO)
  assert ops["ynn_fusion"] == profiling.HloOp("f32[2,4,4,5]{3,2,1,0}", "fusion", "convolution",
                                              "jit(step)/D/Conv_0/conv_general_dilated")
  assert ops["broadcast_maximum_fusion"].category == "elementwise / copy"
  assert ops["broadcast_maximum_fusion"].source == "jit(step)/D/relu/max"
  assert ops["copy.7"] == profiling.HloOp("f32[4,4,3,5]{3,2,1,0}", "copy", "elementwise / copy", "")
  assert ops["dot.2"].category == "dot"
  # Instructions inside fused computations are listed too (they are not traced, so never counted).
  assert ops["convolution.1"].category == "convolution"


def test_op_times_sum_complete_events_per_step_and_skip_runtime_events():
  events = [
      {"ph": "X", "name": "ynn_fusion", "dur": 3000.0},
      {"ph": "X", "name": "ynn_fusion", "dur": 1000.0},
      {"ph": "X", "name": "copy.7", "dur": 500.0},
      {"ph": "X", "name": "ThunkExecutor::Execute", "dur": 9000.0},
      {"ph": "X", "name": "$api.py:2479 block_until_ready", "dur": 9000.0},
      {"ph": "i", "name": "copy.7", "dur": 7000.0},   # not a complete event
  ]
  times = profiling.op_times(events, steps=2)
  assert times == pytest.approx({"ynn_fusion": 2e-3, "copy.7": 0.25e-3})


def test_summarize_totals_categories_and_ops_in_flight():
  ops = profiling.parse_hlo(HLO)
  times = {"ynn_fusion": 3e-3, "copy.7": 1.5e-3, "broadcast_maximum_fusion": 0.5e-3, "unknown_host_event": 5e-3}
  summary = profiling.summarize(times, ops, wall_seconds=4e-3, top=2)
  assert summary["op_ms_per_step"] == pytest.approx(5.0)          # the host event is not an HLO op
  assert summary["ops_in_flight"] == pytest.approx(5.0 / 4.0)
  assert summary["by_category_ms_per_step"] == pytest.approx({"convolution": 3.0, "elementwise / copy": 2.0})
  assert [r["name"] for r in summary["top_ops"]] == ["ynn_fusion", "copy.7"]
  assert summary["top_ops"][0]["fraction_of_op_time"] == pytest.approx(0.6)


def test_profile_calls_traces_a_real_jitted_convolution():
  rng = np.random.default_rng(0)
  # Big enough (1.1 GFLOP, ~10 ms) that a descheduled thread on a busy machine (two test workers on
  # two cores) cannot make the tanh look longer: the 0.1 GFLOP version flipped once in a full run.
  x = jnp.asarray(rng.standard_normal((32, 32, 32, 64)), jnp.float32)
  kernel = jnp.asarray(rng.standard_normal((4, 4, 64, 64)), jnp.float32)
  conv = jax.jit(lambda x, k: jnp.tanh(layers.strided_conv(x, k, 2)))
  summary = profiling.profile_calls(conv, (x, kernel), steps=3, top=5, feed_back=False)
  categories = summary["by_category_ms_per_step"]
  assert summary["wall_ms_per_step"] > 0
  assert sum(categories.values()) == pytest.approx(summary["op_ms_per_step"])
  # The convolution dominates the tanh of its 0.5M outputs.
  assert summary["top_ops"][0]["category"] == "convolution"
  assert categories["convolution"] > 0.5 * summary["op_ms_per_step"]
