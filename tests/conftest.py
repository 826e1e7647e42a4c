"""Fixtures shared by several test files."""

import pytest

from sandbox import Sandbox


@pytest.fixture(scope="session")
def box():
    """The hostile-case sandbox (tests/sandbox.py): one server process for the whole session."""
    with Sandbox() as b:
        yield b
