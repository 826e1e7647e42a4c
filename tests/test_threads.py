"""Small work runs on one thread, large work on torch's threads: same numbers either way.

The native kernels decide per call (``native.runs_serial``): below
``native.serial_work()`` multiply-adds per step (batch * units * gates *
units) a call runs on the calling thread alone, so a small model does not
wait at a barrier per step on a busy machine. Both sides of the threshold
must give the reference loop's numbers, and ``explain`` says which ran.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnkit as rk
from rnnkit.kernels import Stepper, native, native_available
from rnnkit.rnn import RNN, explain, tree_flatten
from test_kernels import CELLS, TOL, assert_same, hard_mask, run_both

BUILT, WHY_NOT = native_available()
pytestmark = pytest.mark.skipif(not BUILT, reason=f"{WHY_NOT} (the reference loop runs instead)")


@pytest.fixture
def two_threads():
    threads, work = torch.get_num_threads(), native.serial_work()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)
    native.set_serial_work(work)


@pytest.mark.parametrize("split", [True, False], ids=["threads", "one-thread"])
@pytest.mark.parametrize("name", ["simple_tanh", "gru_after", "gru_before", "lstm"])
def test_both_sides_of_the_threshold_match_the_reference(name, split, two_threads):
    native.set_serial_work(0 if split else 1 << 62)
    rng = np.random.default_rng(3)
    for batch, dtype in ((5, torch.float64), (70, torch.float32)):  # one block split per step; row blocks
        torch.manual_seed(batch)
        layer = RNN(CELLS[name](9), return_sequences=True, return_state=True, input_shape=(6, 4)).to(dtype)
        x = torch.randn(batch, 6, 4, dtype=dtype)
        for mask in (None, hard_mask(batch, 6, rng)):
            assert_same(run_both(layer, x, training=True, mask=mask), dtype)
        assert native.runs_serial(native.cell_support(layer.cell)[0], batch, 9) is not split


@pytest.mark.parametrize("split", [True, False], ids=["threads", "one-thread"])
def test_stepper_both_sides_of_the_threshold(split, two_threads):
    native.set_serial_work(0 if split else 1 << 62)
    torch.manual_seed(0)
    cell = rk.LSTMCell(200, bias_initializer="random_uniform")  # 4 register tiles to share out
    cell.build((4,))
    step = Stepper(rk.RNN(cell))
    state = ref = step.initial_state(2)
    for _ in range(3):
        x = torch.randn(2, 4)
        y, state = step(x, state)
        with torch.no_grad():
            y_ref, ref = cell(x, ref)
        torch.testing.assert_close(y, y_ref, **TOL[torch.float32])
        for a, b in zip(tree_flatten(state), tree_flatten(ref)):
            torch.testing.assert_close(a, b, **TOL[torch.float32])


def test_threshold_is_per_call_and_explained(two_threads):
    work = native.serial_work()
    assert work > 0
    batch, units = 32, 64  # the digits task's GRU: 32 * 64 * 3 * 64 = 393,216 multiply-adds per step
    assert native.runs_serial(native.GRU_AFTER, batch, units) == (batch * units * 3 * units < work)
    layer = rk.GRU(units, input_shape=(8, 8))
    native.set_serial_work(1 << 62)
    layer(torch.randn(batch, 8, 8))
    assert "one thread (small work: 393,216 multiply-adds per step" in explain(layer)
    native.set_serial_work(0)
    layer(torch.randn(batch, 8, 8))
    assert "2 threads (393,216 multiply-adds per step)" in explain(layer)
    torch.set_num_threads(1)
    layer(torch.randn(batch, 8, 8))
    assert "one thread (torch.get_num_threads() == 1)" in explain(layer)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_set_serial_work_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="work: expected an integer >= 0"):
        native.set_serial_work(bad)


def test_one_thread_if_small_scopes_the_thread_count(two_threads):
    from rnnkit.kernels.threads import model_work, one_thread_if_small, small_work

    model = rk.Sequential([rk.GRU(8), rk.Dense(2)], input_shape=(3, 4))
    work = model_work(model, 16)
    assert work == 16 * sum(p.numel() for p in model.parameters())
    with one_thread_if_small(work) as single:
        assert single and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with one_thread_if_small(small_work()) as single:
        assert not single and torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="batch_size: expected a positive integer"):
        model_work(model, 0)


def test_fit_of_a_small_model_runs_on_one_thread_and_gives_the_threads_back(monkeypatch):
    """fit/evaluate/predict of a small model run their loops on one torch thread, then restore the count."""
    seen = []
    model = rk.Sequential([rk.Input(shape=(4, 3)), rk.GRU(4), rk.Dense(2)])
    model.compile("adam", "sparse_categorical_crossentropy")
    real_forward = model.forward

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x, y = np.zeros((8, 4, 3), np.float32), np.zeros(8, np.int64)
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)
        model.evaluate(x, y)
        model.predict(x)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
