"""Fixtures shared by several test files."""

import pytest
import torch

from sandbox import Sandbox


@pytest.fixture(scope="session")
def box():
    """The hostile-case sandbox (tests/sandbox.py): one server process for the whole session."""
    with Sandbox() as b:
        yield b


@pytest.fixture
def one_thread():
    """One torch thread for the test: on a shared 2-core machine two threads oversubscribe (60x slower runs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def onednn_lstm_route():
    """The float32 AVX-512 step products off, so unmasked float32 LSTMs take torch's oneDNN LSTM again, as on a CPU
    without AVX-512 (kernels.assign_lstm_routes); the setting comes back afterwards."""
    from rnnkit.kernels import native

    if not native.onednn_lstm_available():
        pytest.skip("torch without oneDNN: every LSTM runs the native kernel")
    previous = native.set_ukernel_products((0, native.UKERNEL_MAX_ROWS[1]))
    yield
    native.set_ukernel_products(previous)
