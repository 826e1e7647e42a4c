"""Truncated BPTT: ``truncated_bptt`` equals chunking by hand.

The reference is written without ``stateful`` at all: a plain layer with
``return_state=True`` whose final state is detached by hand and passed as the
next chunk's ``initial_state``. After the same updates both models must hold
the same weights.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import rnnkit as rk
from rnnkit.tbptt import tbptt_chunks, truncated_bptt

B, T, F, U, OUT = 2, 10, 3, 4, 2


def mse(y_true, y_pred):
    return ((y_pred - y_true) ** 2).mean()


def make_pair(cls, seed=0):
    """(stateful Sequential for truncated_bptt, plain recurrent layer + Dense for the hand loop), same weights."""
    torch.manual_seed(seed)
    model = rk.Sequential([cls(U, stateful=True, return_sequences=True, input_shape=(T, F)), rk.Dense(OUT)])
    rnn = cls(U, return_sequences=True, return_state=True, input_shape=(T, F))
    dense = rk.Dense(OUT, input_size=U)
    rnn.set_weights(model.layers[0].get_weights())
    dense.set_weights(model.layers[1].get_weights())
    return model, rnn, dense


def by_hand(rnn, dense, x, y, k, opt, mask=None, clipnorm=None):
    """The definition of truncated BPTT, spelled out."""
    state, losses = None, []
    for t in range(0, x.shape[1], k):
        x_k, y_k = x[:, t : t + k], y[:, t : t + k]
        m_k = None if mask is None else mask[:, t : t + k]
        opt.zero_grad()
        out, *new_state = rnn(x_k, initial_state=state, mask=m_k)
        loss = mse(y_k, dense(out))
        loss.backward()
        if clipnorm is not None:
            torch.nn.utils.clip_grad_norm_([*rnn.parameters(), *dense.parameters()], clipnorm)
        opt.step()
        state = [s.detach() for s in new_state]  # carried forward, cut from the graph
        losses.append(loss.item())
    return losses


def data(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, F, generator=g), torch.randn(B, T, OUT, generator=g)


@pytest.mark.parametrize("cls", [rk.SimpleRNN, rk.GRU, rk.LSTM], ids=lambda c: c.__name__)
@pytest.mark.parametrize("k", [1, 3, 5, T, T + 4])
def test_equals_chunking_by_hand(cls, k):
    model, rnn, dense = make_pair(cls)
    x, y = data()
    opt_a = torch.optim.Adam(model.parameters(), lr=0.01)
    opt_b = torch.optim.Adam([*rnn.parameters(), *dense.parameters()], lr=0.01)
    for epoch in range(2):  # reset=True: every pass over the sequence starts from zeros
        got = truncated_bptt(model, x, y, k, mse, opt_a)
        want = by_hand(rnn, dense, x, y, k, opt_b)
        assert len(got) == -(-T // k), f"epoch {epoch}: one loss per chunk"
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    for a, b in zip(model.get_weights(), rnn.get_weights() + dense.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_mask_and_clipnorm_equal_chunking_by_hand():
    model, rnn, dense = make_pair(rk.LSTM)
    x, y = data()
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, 7:] = False  # right padding that spans two chunks
    mask[1, 2] = False  # a hole
    opt_a = torch.optim.SGD(model.parameters(), lr=0.5)
    opt_b = torch.optim.SGD([*rnn.parameters(), *dense.parameters()], lr=0.5)
    got = truncated_bptt(model, x, y, 4, mse, opt_a, mask=mask, clipnorm=0.1)
    want = by_hand(rnn, dense, x, y, 4, opt_b, mask=mask, clipnorm=0.1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    for a, b in zip(model.get_weights(), rnn.get_weights() + dense.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_whole_sequence_chunk_is_full_bptt():
    # k >= time: one chunk, so one ordinary step on the whole sequence.
    model, rnn, dense = make_pair(rk.GRU)
    x, y = data()
    opt_a = torch.optim.SGD(model.parameters(), lr=0.1)
    opt_b = torch.optim.SGD([*rnn.parameters(), *dense.parameters()], lr=0.1)
    truncated_bptt(model, x, y, T, mse, opt_a)
    opt_b.zero_grad()
    mse(y, dense(rnn(x)[0])).backward()
    opt_b.step()
    for a, b in zip(model.get_weights(), rnn.get_weights() + dense.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_reset_false_continues_from_the_carried_state():
    model, rnn, dense = make_pair(rk.SimpleRNN)
    x, y = data()
    opt_a = torch.optim.SGD(model.parameters(), lr=0.1)
    opt_b = torch.optim.SGD([*rnn.parameters(), *dense.parameters()], lr=0.1)
    # Two halves with reset=False on the second equal one pass over the whole sequence.
    truncated_bptt(model, x[:, :6], y[:, :6], 3, mse, opt_a)
    truncated_bptt(model, x[:, 6:], y[:, 6:], 3, mse, opt_a, reset=False)
    by_hand(rnn, dense, x, y, 3, opt_b)
    for a, b in zip(model.get_weights(), rnn.get_weights() + dense.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_numpy_inputs_equal_tensors():
    x, y = data()
    results = []
    for xs, ys in ((x, y), (x.numpy().astype(np.float64), y.numpy().astype(np.float64))):
        model, _, _ = make_pair(rk.LSTM)
        truncated_bptt(model, xs, ys, 4, mse, torch.optim.SGD(model.parameters(), lr=0.1))
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_a_single_stateful_layer_works_too():
    torch.manual_seed(0)
    layer = rk.GRU(OUT, stateful=True, return_sequences=True, input_shape=(T, F))
    x, y = data()
    losses = truncated_bptt(layer, x, y, 4, mse, torch.optim.SGD(layer.parameters(), lr=0.1))
    assert len(losses) == 3 and all(np.isfinite(losses))


def test_tbptt_chunks_cut_along_time():
    x, y = data()
    chunks = list(tbptt_chunks(4, x, None, y))
    assert [c[0].shape[1] for c in chunks] == [4, 4, 2]
    assert all(c[1] is None for c in chunks)
    torch.testing.assert_close(torch.cat([c[0] for c in chunks], dim=1), x, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([c[2] for c in chunks], dim=1), y, rtol=0, atol=0)


def _expect(exc, pattern, fn):
    with pytest.raises(exc) as info:
        fn()
    assert type(info.value) is exc and re.search(pattern, str(info.value)), str(info.value)


def test_bad_arguments():
    x, y = data()
    model, _, _ = make_pair(rk.LSTM)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lambda m=model, **kw: truncated_bptt(m, kw.pop("x", x), kw.pop("y", y), kw.pop("k", 3), mse, opt, **kw)  # noqa: E731
    _expect(ValueError, r"k: expected a positive int, got 0", lambda: run(k=0))
    _expect(TypeError, r"k: expected a positive int, got float 2\.5", lambda: run(k=2.5))
    _expect(ValueError, r"y: expected the \(batch, time\) of x = \(2, 10\) \(a target per step\), got \(2, 9\)",
            lambda: run(y=y[:, :9]))
    _expect(ValueError, r"mask: expected shape \(batch, time\) = \(2, 10\), got \(2, 9\)",
            lambda: run(mask=torch.ones(B, T - 1, dtype=torch.bool)))
    _expect(TypeError, r"x: expected a tensor or a numpy array of shape \(batch, time, \.\.\.\), got list",
            lambda: run(x=x.tolist()))
    _expect(ValueError, r"x: expected shape \(batch, time, \.\.\.\), got \(10,\)", lambda: run(x=x[0, :, 0]))
    _expect(ValueError, r"clipnorm: expected a positive number or None, got -1", lambda: run(clipnorm=-1))
    _expect(ValueError, r"model: layer '[a-z_0-9]+' has stateful=False; expected stateful=True",
            lambda: run(rk.Sequential([rk.LSTM(U, return_sequences=True, input_shape=(T, F)), rk.Dense(OUT)])))
    _expect(ValueError, r"model: layer '[a-z_0-9]+' has go_backwards=True",
            lambda: run(rk.LSTM(OUT, stateful=True, go_backwards=True, return_sequences=True)))
    _expect(ValueError, r"model: '[a-z_0-9]+' is Bidirectional",
            lambda: run(rk.Bidirectional(rk.LSTM(1, stateful=True, return_sequences=True))))
    _expect(ValueError, r"model: expected at least one recurrent layer \(stateful=True\), got Dense with none",
            lambda: run(rk.Dense(OUT)))
    _expect(ValueError, r"sequences: expected the same \(batch, time\) for every tensor, got \[\(2, 10\), \(2, 9\)\]",
            lambda: list(tbptt_chunks(3, x, y[:, :9])))
