"""Subnormals flushed to zero inside the fused kernels (issue 14), and only there.

Long sequences drive the gradients of early steps below float32's smallest
normal number; a flushed kernel returns exact zeros there, an unflushed one
subnormals. Either way the numbers match the reference loop within the
tolerances of test_kernels, and the caller's FP mode is the same afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import rnnkit as rk
from rnnkit import kernels
from rnnkit.kernels import native, native_available

BUILT, WHY_NOT = native_available()
needs_native = pytest.mark.skipif(not BUILT, reason=f"{WHY_NOT} (the reference loop runs instead)")

TOL = dict(rtol=1e-4, atol=2e-5)  # test_kernels' float32 tolerance
TINY = torch.finfo(torch.float32).tiny  # the smallest normal float32
ROUTES = {"SimpleRNN": "native:SimpleRNNCell", "GRU": "native:GRUCell", "LSTM": "native:LSTMCell",
          "LSTM/onednn": "torch-onednn:LSTMCell"}


@pytest.fixture
def route(kind, request):
    """The layer kind to build; "LSTM/onednn" turns the AVX-512 step products off so that oneDNN's LSTM runs."""
    if kind == "LSTM/onednn":
        request.getfixturevalue("onednn_lstm_route")
    return kind.split("/")[0]


@pytest.fixture
def flush_setting():
    """Restore the switch whatever a test leaves it at."""
    previous = kernels.flush_denormals(True)
    yield
    kernels.flush_denormals(previous)


def subnormals(t: torch.Tensor) -> int:
    return int(((t != 0) & (t.abs() < TINY)).sum())


def long_run(kind: str, unroll: bool = False):
    """Output and input gradient of a 600-step layer: the early steps' gradients decay below TINY."""
    torch.manual_seed(0)
    layer = getattr(rk, kind)(32, unroll=unroll)
    x = torch.randn(4, 600, 4, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    return layer, out.detach(), x.grad


def caller_keeps_subnormals() -> bool:
    """A subnormal survives arithmetic on the calling thread and on torch's worker threads."""
    small = torch.tensor(1e-39) * 1.0
    big = torch.full((1 << 20,), 1e-39) * 1.0  # large enough to be split over the intra-op threads
    return bool(small != 0) and bool((big != 0).all())


@needs_native
@pytest.mark.parametrize("kind", sorted(ROUTES))
def test_flushing_on_and_off_matches_the_reference(kind, route, flush_setting):
    _, ref_out, ref_grad = long_run(route, unroll=True)
    for flush in (True, False):
        kernels.flush_denormals(flush)
        layer, out, grad = long_run(route)
        assert layer.kernel_used == ROUTES[kind]
        torch.testing.assert_close(out, ref_out, **TOL)
        torch.testing.assert_close(grad, ref_grad, **TOL)
        # The gradients of the first steps are below TINY: flushed to 0, or kept as subnormals.
        assert (subnormals(grad) == 0) == flush, (flush, subnormals(grad))


@needs_native
@pytest.mark.parametrize("kind", sorted(ROUTES))
def test_caller_mode_is_restored(kind, route, flush_setting):
    assert caller_keeps_subnormals()
    long_run(route)  # forward and backward both flush
    assert caller_keeps_subnormals()
    assert native._native.pool_flush_state() == [False] * len(native._native.pool_flush_state())
    # A caller that flushes itself keeps flushing (its own mode comes back, not a default).
    was = torch.set_flush_denormal(True)
    assert was  # the CPU has the mode (x86-64 SSE3, aarch64)
    try:
        long_run(route)
        assert torch.tensor(1e-39) * 1.0 == 0
    finally:
        torch.set_flush_denormal(False)
    assert caller_keeps_subnormals()


@needs_native
def test_generation_step_flushes_and_restores(flush_setting):
    layer = rk.LSTM(8, input_shape=(1, 3))
    stepper = kernels.Stepper(layer)
    state = stepper.initial_state(1)
    x = torch.full((1, 3), 1e-39)
    _, state = stepper(x, state)
    assert caller_keeps_subnormals()


def test_switch_validates_and_reports(flush_setting):
    with pytest.raises(TypeError, match="enabled must be a bool, got int"):
        kernels.flush_denormals(0)
    assert kernels.flush_denormals(False) is True
    assert not kernels.flushing()
    assert kernels.flush_denormals(True) is False
    assert kernels.flushing() == BUILT


def test_environment_turns_it_off():
    env = {**os.environ, "RNNKIT_FLUSH_DENORMALS": "0"}
    code = "import rnnkit.kernels as k; print(k.flushing())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
