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
