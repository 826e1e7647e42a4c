"""Property tests (hypothesis) over random shapes, masks, lengths and states.

For SimpleRNN, GRU (both ``reset_after`` variants) and LSTM:

* the layer's default path (a fused kernel where ``rnnkit.kernels`` has one)
  equals the readable loop (``unroll=True``) in outputs and in gradients,
  with random activations and dropout too,
  and equals ``rnnkit.reference_loop`` called on the cell directly;
* a right-padded row's final state equals the same row run alone, unpadded;
* ``go_backwards`` on time-reversed input equals the forward layer;
* ``lengths`` all equal to the time axis (or an all-True mask) equal no mask;
* with ``return_state`` the last output equals the state ``h``.

Tensors come from a seeded torch generator drawn by hypothesis, so every
example is reproducible from the seed hypothesis prints on failure.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkit as rk

KINDS = {
    "SimpleRNN": lambda u, **kw: rk.SimpleRNN(u, **kw),
    "GRU": lambda u, **kw: rk.GRU(u, **kw),
    "GRU_reset_before": lambda u, **kw: rk.GRU(u, reset_after=False, **kw),
    "LSTM": lambda u, **kw: rk.LSTM(u, **kw),
}
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = {"rtol": 1e-5, "atol": 1e-6}
# Gradients sum over steps in another order on a fused path: float32 rounding,
# ~1e-6 absolute; a real mistake is off by 1e-2 or more.
GRAD_TOL = {"rtol": 1e-4, "atol": 1e-5}


@dataclass
class Problem:
    kind: str
    x: torch.Tensor  # (batch, time, features)
    units: int
    mask: torch.Tensor | None  # bool (batch, time), or None
    lengths: torch.Tensor | None  # (batch,), or None; never both
    state: list[torch.Tensor] | None  # initial state, or None for zeros
    zero_output_for_mask: bool
    go_backwards: bool
    seed: int
    cell_kw: dict  # activation, and dropout rates with a seed (same seed, same masks)

    def make(self, **kw):
        """A layer for this problem; the same ``seed`` gives the same weights."""
        torch.manual_seed(self.seed)
        kw = {"return_sequences": True, "return_state": True, "zero_output_for_mask": self.zero_output_for_mask,
              "go_backwards": self.go_backwards, "input_shape": tuple(self.x.shape[1:]), **self.cell_kw, **kw}
        return KINDS[self.kind](self.units, **kw)


def _row_mask(draw, time, gen):
    """One row's mask: full, right padding, left padding, holes, or nothing at all."""
    pattern = draw(st.sampled_from(["full", "right", "left", "holes", "empty"]))
    steps = torch.arange(time)
    if pattern == "full":
        return torch.ones(time, dtype=torch.bool)
    if pattern == "empty":
        return torch.zeros(time, dtype=torch.bool)
    if pattern == "holes":
        return torch.rand(time, generator=gen) < 0.6
    k = draw(st.integers(0, time))
    return steps < k if pattern == "right" else steps >= time - k


@st.composite
def problems(draw, masks=True, dropout=False, kinds=tuple(KINDS)):
    batch, time = draw(st.integers(1, 4)), draw(st.integers(1, 7))
    features, units = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kind = draw(st.sampled_from(kinds))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, time, features, generator=gen)
    mode = draw(st.sampled_from(["none", "lengths", "mask"] if masks else ["none"]))
    mask = lengths = None
    if mode == "lengths":
        lengths = torch.tensor(draw(st.lists(st.integers(0, time), min_size=batch, max_size=batch)))
    elif mode == "mask":
        mask = torch.stack([_row_mask(draw, time, gen) for _ in range(batch)])
    n_states = 2 if kind == "LSTM" else 1
    state = None
    if draw(st.booleans()):
        state = [torch.randn(batch, units, generator=gen) for _ in range(n_states)]
    # Other activations may take another kernel, or the loop: the numbers must not change.
    cell_kw = {"activation": draw(st.sampled_from(["tanh", "tanh", "relu", "sigmoid"]))}
    if kind != "SimpleRNN":
        cell_kw["recurrent_activation"] = draw(st.sampled_from(["sigmoid", "sigmoid", "hard_sigmoid"]))
    if dropout:
        rates = st.sampled_from([0.0, 0.0, 0.3])
        cell_kw.update(dropout=draw(rates), recurrent_dropout=draw(rates), seed=seed % 1000)
    return Problem(kind, x, units, mask, lengths, state, draw(st.booleans()),
                   draw(st.booleans()) if masks else False, seed, cell_kw)


def run_with_grads(layer, p: Problem):
    """Outputs, final states, and the gradients of a fixed scalar loss wrt x, state and weights."""
    x = p.x.clone().requires_grad_(True)
    state = None if p.state is None else [s.clone().requires_grad_(True) for s in p.state]
    out, *states = layer(x, initial_state=state, mask=p.mask, lengths=p.lengths)
    # A loss that weighs every output and state differently, so no gradient can hide.
    gen = torch.Generator().manual_seed(p.seed + 1)
    loss = (out * torch.randn(out.shape, generator=gen)).sum()
    loss = loss + sum((s * torch.randn(s.shape, generator=gen)).sum() for s in states)
    leaves = [x, *(state or []), *layer.parameters()]
    grads = torch.autograd.grad(loss, leaves)
    return out.detach(), [s.detach() for s in states], grads


@SETTINGS
@given(problems(dropout=True))
def test_default_path_equals_readable_loop(p):
    # In training mode (a module's default), so dropout masks apply: one call
    # each from the same seed samples the same masks for both.
    fast, ref = p.make(), p.make(unroll=True)
    out_f, st_f, g_f = run_with_grads(fast, p)
    out_r, st_r, g_r = run_with_grads(ref, p)
    assert ref.kernel_used == "reference"
    torch.testing.assert_close(out_f, out_r, **TOL)
    for a, b in zip(st_f, st_r):
        torch.testing.assert_close(a, b, **TOL)
    for a, b in zip(g_f, g_r):
        torch.testing.assert_close(a, b, **GRAD_TOL)


@SETTINGS
@given(problems())
def test_layer_equals_reference_loop_on_the_cell(p):
    # The layer adds argument handling around the loop, and nothing else.
    layer = p.make()
    out, *states = layer(p.x, initial_state=p.state, mask=p.mask, lengths=p.lengths)
    mask = p.mask
    if p.lengths is not None:
        mask = torch.arange(p.x.shape[1])[None, :] < p.lengths[:, None]
    x = p.x
    if p.go_backwards:
        x, mask = x.flip(1), None if mask is None else mask.flip(1)
    init = layer.cell.get_initial_state(x.shape[0])
    if p.state is not None:
        init = rk.LSTMState(*p.state) if p.kind == "LSTM" else p.state[0]
    want, want_state = rk.reference_loop(layer.cell, x, init, mask, zero_output_for_mask=p.zero_output_for_mask)
    torch.testing.assert_close(out, want, **TOL)
    flat = list(want_state) if p.kind == "LSTM" else [want_state]
    for a, b in zip(states, flat):
        torch.testing.assert_close(a, b, **TOL)


@SETTINGS
@given(problems(), st.data())
def test_padded_row_equals_the_row_alone(p, data):
    # Right padding is invisible: row b's final state is the state after its
    # first lengths[b] steps alone (the initial state itself when lengths[b] = 0).
    batch, time = p.x.shape[:2]
    lengths = torch.tensor(data.draw(st.lists(st.integers(0, time), min_size=batch, max_size=batch)))
    layer = p.make(go_backwards=False)
    _, *states = layer(p.x, initial_state=p.state, lengths=lengths)
    for b in range(batch):
        n = int(lengths[b])
        init_b = None if p.state is None else [s[b : b + 1] for s in p.state]
        if n == 0:
            want = [torch.zeros(1, p.units)] * len(states) if init_b is None else init_b
        else:
            _, *want = layer(p.x[b : b + 1, :n], initial_state=init_b)
        for s, w in zip(states, want):
            torch.testing.assert_close(s[b : b + 1], w, **TOL)


@SETTINGS
@given(problems(masks=False))
def test_go_backwards_on_reversed_input_equals_forward(p):
    # go_backwards reads time in reverse and returns its sequence in processing
    # order (Keras), so on x.flip(1) it processes x itself: same outputs, same state.
    fwd = p.make(go_backwards=False)
    bwd = p.make(go_backwards=True)
    out_f, *st_f = fwd(p.x, initial_state=p.state)
    out_b, *st_b = bwd(p.x.flip(1), initial_state=p.state)
    torch.testing.assert_close(out_b, out_f, **TOL)
    for a, b in zip(st_b, st_f):
        torch.testing.assert_close(a, b, **TOL)


@SETTINGS
@given(problems(masks=False))
def test_full_lengths_equal_no_lengths(p):
    layer = p.make()
    batch, time = p.x.shape[:2]
    out, *states = layer(p.x, initial_state=p.state)
    full_lengths = layer(p.x, initial_state=p.state, lengths=torch.full((batch,), time))
    full_mask = layer(p.x, initial_state=p.state, mask=torch.ones(batch, time, dtype=torch.bool))
    for other in (full_lengths, full_mask):
        torch.testing.assert_close(other[0], out, **TOL)
        for a, b in zip(other[1:], states):
            torch.testing.assert_close(a, b, **TOL)


@SETTINGS
@given(problems(masks=False))
def test_last_output_is_the_state_h(p):
    layer = p.make(return_sequences=False)
    out, h, *_ = layer(p.x, initial_state=p.state)
    torch.testing.assert_close(out, h, rtol=0, atol=0)
    seq = p.make(return_sequences=True)(p.x, initial_state=p.state)[0]
    torch.testing.assert_close(seq[:, -1], h, **TOL)
