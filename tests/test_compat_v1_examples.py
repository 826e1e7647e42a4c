"""The TF1 graph-style examples run and learn (short settings; their full runs are in docs/tf1.md)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


pytestmark = pytest.mark.usefixtures("one_thread")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_digits_static_dynamic_learns(kind, capsys):
    acc = _load("tf1_digits_static_dynamic").main(kind, n_epochs=4)
    assert acc > 0.8  # chance is 0.1; 30 epochs reach ~0.97
    assert f"{kind}_rnn:" in capsys.readouterr().out


def test_series_forecasts_and_generates():
    last_mse, test_mse, sequence = _load("tf1_series").main(n_iterations=300, n_generate=20)
    assert test_mse < 1.0  # the series' variance is ~12; the untrained model's MSE ~9
    assert sequence.shape == (40,) and np.all(np.isfinite(sequence))


def test_scratch_scan_learns():
    acc = _load("tf1_scratch_scan").main(steps=250)
    assert acc > 70  # percent; chance is 10


@pytest.mark.parametrize(("kind", "cells"), [("static", 5), ("dynamic", 1)])
def test_graph_examples_draw_as_the_docs_show(kind, cells, tmp_path, capsys):
    from rnnkit import cli

    out = tmp_path / f"{kind}.svg"
    assert cli.main(["graph", str(EXAMPLES / f"tf1_graph_{kind}.py"), "-o", str(out)]) == 0
    assert out.read_text().count(">BasicRNNCell<") == cells
    module = _load(f"tf1_graph_{kind}")  # and the script runs as a script
    assert "(4, 5, 5)" in capsys.readouterr().out
    assert module.outputs.shape.as_list() == [None, 5, 5]
