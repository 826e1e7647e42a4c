"""``scan``: a function carried along the first axis, TF1's ``tf.scan`` on torch tensors.

    acc_0 = initializer
    acc_t = fn(acc_{t-1}, elems[t])            # t = 0 .. n-1 (n-1 .. 0 with reverse=True)
    returns stack([acc_1, ..., acc_n])         # (n, *acc.shape): every accumulator, in order

This is JAX's ``lax.scan(f, init, xs)`` with ``f`` returning ``(acc, acc)``,
keeping the stacked ys. Seed 004's from-scratch RNN is one call::

    def rnn_step(h, x):                        # h (batch, hidden), x (batch, features)
        return torch.tanh(h @ Wh + x @ Wx + b)
    hidden = scan(rnn_step, x.transpose(0, 1), initializer=torch.zeros(batch, hidden_size))   # (time, batch, hidden)

``elems`` may be a tuple of tensors (sliced together: ``fn`` gets a tuple)
and the accumulator a (nested) tuple of tensors; the result has the
accumulator's structure, each part stacked. Without ``initializer``,
``elems[0]`` starts the scan and is the first output (TF1's rule).
Gradients flow through every step by autograd.
"""

from __future__ import annotations

import torch

from .ops import as_tensor
from .rnn import tree_flatten, tree_unflatten


def scan(fn, elems, initializer=None, reverse: bool = False):
    """Stack ``fn``'s accumulators over ``elems``' first axis. See the module docstring."""
    if not callable(fn):
        raise TypeError(f"fn: expected a callable fn(acc, x), got {type(fn).__name__}")
    is_tuple = isinstance(elems, (tuple, list))
    xs = [as_tensor(e, f"elems[{i}]") for i, e in enumerate(elems)] if is_tuple else [as_tensor(elems, "elems")]
    if not xs:
        raise ValueError("elems: expected a tensor or a non-empty tuple of tensors, got an empty tuple")
    n = xs[0].shape[0] if xs[0].dim() else None
    for i, x in enumerate(xs):
        if x.dim() == 0 or x.shape[0] != n:
            raise ValueError(f"elems: every tensor needs the same first axis (the steps); elems[{i}] has shape {tuple(x.shape)}")
    order = range(n - 1, -1, -1) if reverse else range(n)
    steps = [tuple(x[t] for x in xs) if is_tuple else xs[0][t] for t in order]
    if initializer is None:
        if not steps:
            raise ValueError("elems: without an initializer, scan needs at least one step")
        acc, steps = steps[0], steps[1:]
        accs = [acc]
    else:
        acc, accs = initializer, []
    for x_t in steps:
        acc = fn(acc, x_t)
        accs.append(acc)
    if not accs:
        raise ValueError("elems: scan over zero steps has nothing to stack")
    leaves = [tree_flatten(a) for a in accs]
    if reverse:
        leaves = leaves[::-1]
    stacked = [torch.stack(parts) for parts in zip(*leaves)]
    return stacked[0] if isinstance(accs[0], torch.Tensor) else tree_unflatten(accs[0], stacked)
