"""The seeds' tour (``rnnkit tour``): each recurrent layer on the seeds' "hello" inputs, its outputs and states.

    from rnnkit.tour import tour
    tour()            # prints shapes and values, then a stacked model's summary
"""

from __future__ import annotations

import numpy as np
import torch

from .cells import SimpleRNNCell
from .layers import GRU, LSTM, SimpleRNN
from .model import Sequential
from .rnn import RNN


def tour(print_fn=print) -> None:
    """The seeds' tour: layers, shapes, returns and the stacked summary."""
    torch.manual_seed(0)
    h, e, l, o = [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]  # noqa: E741

    def rounded(t):
        # Round in float64: float32's 4-decimal values print as -0.007499999832361937.
        return t.detach().double().numpy().round(4).tolist()

    def show(title, x, outputs, *states):
        print_fn(f"\n## {title}\nx_data shape: {tuple(x.shape)}")
        print_fn(f"outputs: {rounded(outputs)}, shape: {tuple(outputs.shape)}")
        for name, s in zip(("states", "cell_states"), states):
            print_fn(f"{name}: {rounded(s)}, shape: {tuple(s.shape)}")

    x = np.array([[h]], dtype=np.float32)
    show("SimpleRNNCell + RNN, one step", x, *RNN(SimpleRNNCell(2), return_sequences=True, return_state=True)(x))
    x = np.array([[h, e, l, l, o]], dtype=np.float32)
    show("SimpleRNN, five steps (the last output is the state)", x,
         *SimpleRNN(2, return_sequences=True, return_state=True)(x))
    x = np.array([[h, e, l, l, o], [e, o, l, l, l], [l, l, e, e, l]], dtype=np.float32)
    show("Batching input: hello, eolll, lleel", x, *SimpleRNN(2, return_sequences=True, return_state=True)(x))
    show("No return sequences", x, *SimpleRNN(2, return_sequences=False, return_state=True)(x))
    show("No return state", x, SimpleRNN(2)(x))
    show("GRU", x, *GRU(2, return_state=True)(x))
    outputs, h_states, c_states = LSTM(2, return_state=True)(x)
    show("LSTM (output, h, c)", x, outputs, h_states, c_states)
    print_fn("\n## Stacked RNN")
    model = Sequential()
    model.add(SimpleRNN(2, return_sequences=True, input_shape=(5, 4)))
    model.add(SimpleRNN(2, return_sequences=True))
    model.add(SimpleRNN(2, return_sequences=True))
    model.summary(print_fn=print_fn)
