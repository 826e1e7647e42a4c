"""What the ported TF1 tests share: TF1's toy cells and TF1's initializers as weight setters.

TF1 picked initial values through ``initializer=`` arguments and variable
scopes. rnnkit's v1 cells have no such arguments, so a test builds the cell
and writes the same values with ``set_weights``: every kernel, peephole and
projection from the initializer, every bias as TF1 creates it (zeros; 1.0
for a GRU's gate block), exactly what TF1's scope initializer left alone.
"""

import numpy as np
import torch
from torch import nn

from rnnkit import v1


def tf1_weights(cell, fill, input_size=None, like=None, bias=None):
    """Build ``cell`` (unless built) and set its weights TF1's way.

    ``fill(shape)`` gives each kernel, peephole and projection array;
    ``bias`` (an array) replaces TF1's default bias. ``like`` (a tensor)
    sets the dtype the cell is built in.
    """
    if not cell.built:
        like = torch.empty(0) if like is None else torch.as_tensor(like)
        cell.maybe_build((input_size,), like=like)
    values = []
    for w in cell.weights:
        shape = tuple(w.shape)
        if w is getattr(cell, "bias", None):
            values.append(_tf1_bias(cell) if bias is None else np.asarray(bias))
        else:
            values.append(fill(shape))
    cell.set_weights(values)
    return cell


def _tf1_bias(cell):
    n = cell.bias.shape[0]
    if isinstance(cell, v1.GRUCell):  # TF1: gates start at 1.0, the candidate at 0
        return np.concatenate([np.ones(2 * cell.units), np.zeros(n - 2 * cell.units)])
    return np.zeros(n)


def constant(value):
    """TF1's ``constant_initializer(value)``."""
    return lambda shape: np.full(shape, value)


def uniform(low, high, seed):
    """TF1's ``random_uniform_initializer(low, high, seed)``: the same range, numpy's draws."""
    rng = np.random.RandomState(seed)
    return lambda shape: rng.uniform(low, high, size=shape)


class Plus1RNNCell(nn.Module):
    """TF1's test cell: ``(output, new_state) = (input + 1, state + 1)``, five units."""

    state_size = 5
    output_size = 5

    def forward(self, x_t, state):
        return x_t + 1, state + 1
