"""The examples run and learn (seed 004's scratch RNN on the bundled digits)."""

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_scratch_rnn_digits_learns(capsys):
    spec = importlib.util.spec_from_file_location("scratch_rnn_digits", EXAMPLES / "scratch_rnn_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    acc = module.main(steps=300)
    assert acc > 0.7  # chance is 0.1; 600 steps reach ~0.89
    out = capsys.readouterr().out
    assert "Minibatch Loss" in out and "kernel: reference" in out
