"""The examples run and learn: seed 004's scratch RNN on the bundled digits, the functional-API examples."""

import importlib.util
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_scratch_rnn_digits_learns(capsys):
    spec = importlib.util.spec_from_file_location("scratch_rnn_digits", EXAMPLES / "scratch_rnn_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    acc = module.main(steps=300)
    assert acc > 0.7  # chance is 0.1; 600 steps reach ~0.89
    out = capsys.readouterr().out
    assert "Minibatch Loss" in out and "kernel: reference" in out


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    # As the examples' __main__ does: on a busy 2-core machine a second thread slows small matrices down.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_seq2seq_chars_reverses_unseen_strings(capsys, one_thread):
    accuracy = _load("seq2seq_chars").main()
    assert accuracy > 0.9  # exact match on 500 unseen strings; measured 0.972
    assert "exact-match accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_bilstm_classifier_counts_sentiment_words(capsys, one_thread):
    accuracy = _load("bilstm_classifier").main()
    assert accuracy > 0.9  # majority class 0.535; measured 0.988
    assert "backward_lstm" in capsys.readouterr().out
