"""Truncated backpropagation through time, for sequences too long to backprop whole.

A sequence of ``time`` steps is cut into chunks of ``k`` steps. Each chunk
runs forward from the state the previous chunk ended in, and is trained on
by itself: ``loss -> backward -> optimizer.step()``. The state is carried
forward but *detached*, so gradients flow at most ``k`` steps back and the
memory held is that of ``k`` steps, whatever ``time`` is.

The carrying is done by the layers themselves: an ``RNN`` layer with
``stateful=True`` starts each call from the (detached) state the last call
ended in, and ``reset_state()`` starts over. ``truncated_bptt`` is exactly
this loop, with checks::

    model.reset_state()
    for x_k, y_k in tbptt_chunks(k, x, y):
        optimizer.zero_grad()
        loss = loss_fn(y_k, model(x_k))
        loss.backward()
        optimizer.step()

Example (one long sequence, a prediction at every step)::

    model = rk.Sequential([rk.LSTM(32, stateful=True, return_sequences=True, input_shape=(None, 1)),
                           rk.TimeDistributed(rk.Dense(1))])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    mse = lambda y_true, y_pred: ((y_pred - y_true) ** 2).mean()
    losses = rk.truncated_bptt(model, x, y, k=100, loss_fn=mse, optimizer=opt)  # one loss per chunk

Dropout masks are sampled per call, so per chunk, not per whole sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from .layers import Bidirectional
from .ops import check_positive_int
from .rnn import RNN


def tbptt_chunks(k: int, *sequences) -> Iterator[tuple[torch.Tensor, ...]]:
    """Cut tensors of shape (batch, time, ...) into consecutive chunks of ``k`` time steps.

    Yields one tuple ``(s[:, t:t+k] for s in sequences)`` per chunk; the last
    chunk is shorter when ``k`` does not divide ``time``. ``None`` entries
    (e.g. no mask) stay ``None``.

    >>> [tuple(c.shape) for (c,) in tbptt_chunks(4, torch.zeros(2, 10, 3))]
    [(2, 4, 3), (2, 4, 3), (2, 2, 3)]
    """
    k = check_positive_int(k, "k")
    tensors = [None if s is None else _as_sequence(s, f"sequences[{i}]") for i, s in enumerate(sequences)]
    shapes = {i: tuple(s.shape[:2]) for i, s in enumerate(tensors) if s is not None}
    if not shapes:
        raise ValueError("sequences: expected at least one tensor of shape (batch, time, ...), got none")
    if len(set(shapes.values())) > 1:
        raise ValueError(f"sequences: expected the same (batch, time) for every tensor, got {list(shapes.values())}")
    time = next(iter(shapes.values()))[1]
    for t in range(0, time, k):
        yield tuple(None if s is None else s[:, t : t + k] for s in tensors)


def truncated_bptt(
    model: nn.Module,
    x,
    y,
    k: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    mask=None,
    clipnorm: float | None = None,
    reset: bool = True,
) -> list[float]:
    """Train ``model`` on one batch of long sequences, ``k`` steps at a time.

    Args:
        model: a layer or a ``Sequential`` whose recurrent layers all have
            ``stateful=True`` (so state carries from chunk to chunk) and run
            forward in time (no ``go_backwards``, no ``Bidirectional``).
        x: inputs (batch, time, features).
        y: targets with the same (batch, time) leading axes, one per step.
        k: chunk length in time steps (the truncation).
        loss_fn: ``loss_fn(y_true, y_pred) -> scalar`` (Keras's order, as
            rnnkit's losses), called on each chunk.
        optimizer: a ``torch.optim`` optimizer over the model's parameters;
            it steps once per chunk.
        mask: optional bool (batch, time) mask, chunked like ``x`` and passed
            as ``model(x_k, mask=m_k)``.
        clipnorm: clip the gradients' global norm to this before each step.
        reset: call ``model``'s ``reset_state()`` first, so the sequence
            starts from zeros (False continues from the carried state).

    Returns the loss of every chunk, as floats.
    """
    k = check_positive_int(k, "k")
    _check_stateful(model)
    if clipnorm is not None and not (isinstance(clipnorm, (int, float)) and clipnorm > 0):
        raise ValueError(f"clipnorm: expected a positive number or None, got {clipnorm!r}")
    x = _as_sequence(x, "x")
    y = _as_targets(y)
    if tuple(y.shape[:2]) != tuple(x.shape[:2]):
        raise ValueError(
            f"y: expected the (batch, time) of x = {tuple(x.shape[:2])} (a target per step), got {tuple(y.shape[:2])}"
        )
    if mask is not None and tuple(_as_sequence(mask, "mask").shape) != tuple(x.shape[:2]):
        raise ValueError(f"mask: expected shape (batch, time) = {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
    if reset:
        for m in model.modules():
            if isinstance(m, RNN):
                m.reset_state()
    losses = []
    for x_k, y_k, m_k in tbptt_chunks(k, x, y, mask):
        optimizer.zero_grad()
        y_pred = model(x_k) if m_k is None else model(x_k, mask=m_k)
        loss = loss_fn(y_k, y_pred)
        loss.backward()
        if clipnorm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clipnorm)
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def _check_stateful(model: nn.Module) -> None:
    rnns = [m for m in model.modules() if isinstance(m, RNN)]
    if not rnns:
        raise ValueError(f"model: expected at least one recurrent layer (stateful=True), got {type(model).__name__} with none")
    for m in model.modules():
        if isinstance(m, Bidirectional):
            raise ValueError(
                f"model: {m.name!r} is Bidirectional; its backward half would need the future of the sequence, "
                "so it cannot be trained in chunks carried forward in time"
            )
    for m in rnns:
        if not m.stateful:
            raise ValueError(
                f"model: layer {m.name!r} has stateful=False; expected stateful=True so each chunk starts "
                "from the state the previous chunk ended in"
            )
        if m.go_backwards:
            raise ValueError(f"model: layer {m.name!r} has go_backwards=True; chunks are carried forward in time")


def _as_sequence(s, arg: str):
    """Shape check only: slices of numpy arrays go to the model as numpy, which converts them as usual."""
    if not isinstance(s, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{arg}: expected a tensor or a numpy array of shape (batch, time, ...), got {type(s).__name__}")
    if s.ndim < 2:
        raise ValueError(f"{arg}: expected shape (batch, time, ...), got {tuple(s.shape)}")
    return s


def _as_targets(y) -> torch.Tensor:
    """Targets as a tensor; numpy floats become float32 as in Keras, integer labels stay integers."""
    y = _as_sequence(y, "y")
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32) if y.dtype.kind == "f" else y)
    return y
