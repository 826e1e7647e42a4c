"""Keras's merge layers: ``Concatenate``, ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Dot``.

Also their functional forms (``concatenate``, ``add``, ... : make the layer and call it).

Each takes a list of tensors (batch first) and returns one tensor. They are
plain layers, so they work eagerly as well as in a functional model::

    merged = rk.Concatenate()([h_forward, h_backward])       # (batch, 2u)
    scores = rk.Dot(axes=2)([decoder_seq, encoder_seq])     # (batch, t_dec, t_enc)

Masks (Keras 3.15): the elementwise merges keep the steps valid in any input
(a logical or), and keep no mask unless every input has one; ``Concatenate``
keeps the steps valid in any input (a logical or: the joined features hold
something real there; an input without a mask counts as valid everywhere), and
joins the masks end to end when it joins on the time axis; ``Dot`` drops them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import graph
from .base import Layer
from .ops import as_tensor
from .rescaling import Rescaling


class _Merge(Layer):
    """A layer over a list of at least ``min_inputs`` tensors."""

    supports_masking = True
    min_inputs = 2

    def __init__(self, name: str | None = None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.built = True

    def _tensors(self, inputs) -> list[torch.Tensor]:
        if not isinstance(inputs, (list, tuple)) or len(inputs) < self.min_inputs:
            got = f"{len(inputs)} tensors" if isinstance(inputs, (list, tuple)) else type(inputs).__name__
            raise ValueError(f"inputs: layer {self.name!r} expects a list of at least {self.min_inputs} tensors, got {got}")
        return [as_tensor(x, f"inputs[{i}]") for i, x in enumerate(inputs)]

    def compute_mask(self, inputs, mask=None):  # noqa: ARG002
        """Keras 3: a step is valid where any input's is; an input without a mask drops the mask."""
        if not mask or any(m is None for m in mask):
            return None
        out = mask[0]
        for m in mask[1:]:
            out = out | m
        return out

    def get_config(self):
        return {"name": self.name}


class _Elementwise(_Merge):
    """Inputs of one shape, combined element by element."""

    def forward(self, inputs):
        xs = self._tensors(inputs)
        for i, x in enumerate(xs[1:], 1):
            if x.shape != xs[0].shape:
                raise ValueError(
                    f"inputs[{i}]: layer {self.name!r} needs inputs of one shape, got {tuple(xs[0].shape)} "
                    f"and {tuple(x.shape)}"
                )
        return self.combine(xs)


class Add(_Elementwise):
    """``x_1 + x_2 + ...``."""

    def combine(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Subtract(_Elementwise):
    """``x_1 - x_2``: exactly two inputs, as Keras's ``Subtract``."""

    def combine(self, xs):
        if len(xs) != 2:
            raise ValueError(f"inputs: layer {self.name!r} expects exactly 2 tensors, got {len(xs)}")
        return xs[0] - xs[1]


class Multiply(_Elementwise):
    """``x_1 * x_2 * ...``."""

    def combine(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Average(_Elementwise):
    """``(x_1 + ... + x_n) / n``."""

    def combine(self, xs):
        return torch.stack(xs).mean(0)


class Concatenate(_Merge):
    """Join the inputs along ``axis`` (default the last); every other axis must agree."""

    def __init__(self, axis: int = -1, name: str | None = None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise ValueError(f"axis: expected a non-zero int (axis 0 is the batch), got {axis!r}")
        self.axis = axis

    def forward(self, inputs):
        xs = self._tensors(inputs)
        ndim = xs[0].dim()
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"axis: {self.axis} is out of range for inputs of shape {tuple(xs[0].shape)}")
        axis = self.axis % ndim
        for i, x in enumerate(xs[1:], 1):
            if x.dim() != ndim or x.shape[:axis] != xs[0].shape[:axis] or x.shape[axis + 1:] != xs[0].shape[axis + 1:]:
                raise ValueError(
                    f"inputs[{i}]: layer {self.name!r} concatenates on axis {self.axis}, so every other axis must "
                    f"agree; got shapes {tuple(xs[0].shape)} and {tuple(x.shape)}"
                )
        return torch.cat(xs, dim=axis)

    def compute_mask(self, inputs, mask=None):
        """Keras 3: joined on the time axis, the masks are joined too; on a feature axis, a step is valid
        where any input's is. An input without a mask counts as valid everywhere."""
        given = [m for m in mask or [] if m is not None]
        if not given:
            return None
        masks = [torch.ones(tuple(x.shape[:2]), dtype=torch.bool, device=given[0].device) if m is None else m
                 for x, m in zip(inputs, mask)]
        if self.axis % len(inputs[0].shape) == 1:
            return torch.cat(masks, dim=1)
        out = masks[0]
        for m in masks[1:]:
            out = out | m
        return out

    def get_config(self):
        return {"name": self.name, "axis": self.axis}


class Dot(_Merge):
    """Batch dot product of two inputs over ``axes`` (Keras's ``Dot``).

    For ``x`` (batch, *a) and ``y`` (batch, *b) with ``axes=(i, j)``
    (an int means the same axis on both), ``x``'s axis i and ``y``'s axis j
    are summed over; the result has x's other axes, then y's. A result with
    no axis besides the batch is (batch, 1). ``normalize=True`` divides both
    inputs by their L2 norm along the axes first (cosine similarity).

    >>> Dot(axes=1)([torch.ones(4, 3), torch.ones(4, 3)]).shape      # (batch, 1)
    >>> Dot(axes=2)([torch.ones(4, 5, 8), torch.ones(4, 7, 8)]).shape  # (batch, 5, 7): attention scores
    """

    supports_masking = False
    min_inputs = 2

    def __init__(self, axes, normalize: bool = False, name: str | None = None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        pair = (axes, axes) if isinstance(axes, int) and not isinstance(axes, bool) else axes
        if (
            not isinstance(pair, (tuple, list))
            or len(pair) != 2
            or not all(isinstance(a, int) and not isinstance(a, bool) and a != 0 for a in pair)
        ):
            raise ValueError(f"axes: expected a non-zero int or a pair of them (axis 0 is the batch), got {axes!r}")
        self.axes = tuple(pair)
        self.normalize = bool(normalize)

    def compute_mask(self, inputs, mask=None):  # noqa: ARG002
        return None

    def forward(self, inputs):
        xs = self._tensors(inputs)
        if len(xs) != 2:
            raise ValueError(f"inputs: layer {self.name!r} expects exactly 2 tensors, got {len(xs)}")
        x, y = xs
        ax = []
        for i, (t, a) in enumerate(zip(xs, self.axes)):
            if not -t.dim() <= a < t.dim() or a % t.dim() == 0:
                raise ValueError(f"axes: axis {a} is out of range (or the batch axis) for inputs[{i}] of shape {tuple(t.shape)}")
            ax.append(a % t.dim())
        if x.shape[ax[0]] != y.shape[ax[1]]:
            raise ValueError(
                f"inputs: layer {self.name!r} sums over axis {ax[0]} of {tuple(x.shape)} and axis {ax[1]} of "
                f"{tuple(y.shape)}, which differ in size"
            )
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"inputs: batch sizes differ: {x.shape[0]} and {y.shape[0]}")
        if self.normalize:
            x, y = F.normalize(x, dim=ax[0]), F.normalize(y, dim=ax[1])
        # (batch, X..., k) @ (batch, k, Y...) as one batched matmul over flattened X and Y.
        xm, ym = x.movedim(ax[0], -1), y.movedim(ax[1], 1)
        b, k = x.shape[0], x.shape[ax[0]]
        out = torch.bmm(xm.reshape(b, -1, k), ym.reshape(b, k, -1))
        out = out.reshape(b, *xm.shape[1:-1], *ym.shape[2:])
        return out.unsqueeze(1) if out.dim() == 1 else out

    def get_config(self):
        return {"name": self.name, "axes": list(self.axes), "normalize": self.normalize}


MERGES: dict[str, type] = {cls.__name__: cls for cls in (Concatenate, Add, Subtract, Multiply, Average, Dot)}


# Keras's functional forms: ``layers.concatenate([a, b])`` is ``layers.Concatenate()([a, b])``.


def concatenate(inputs, axis: int = -1, **kwargs):
    """``Concatenate(axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def dot(inputs, axes, normalize: bool = False, **kwargs):
    """``Dot(axes, normalize, **kwargs)(inputs)``."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)


def _operator_call(op: str, x, y):
    """``x + y``, ``x - y``, ``x * y`` with a symbolic tensor on at least one side, as a layer call.

    Two tensors: ``Add``/``Subtract``/``Multiply``. A tensor and a number c:
    ``Rescaling`` (``x + c`` = x*1 + c, ``c - x`` = x*(-1) + c, ``x * c`` = x*c + 0).
    """
    if isinstance(x, graph.SymbolicTensor) and isinstance(y, graph.SymbolicTensor):
        return {"add": Add, "subtract": Subtract, "multiply": Multiply}[op]()([x, y])
    tensor_first = isinstance(x, graph.SymbolicTensor)
    tensor, c = (x, y) if tensor_first else (y, x)
    if isinstance(c, bool) or not isinstance(c, (int, float)):
        raise TypeError(f"operand: an operator on a symbolic tensor takes another symbolic tensor or a number, "
                        f"got {type(c).__name__}")
    if op == "add":
        return Rescaling(1.0, c)(tensor)
    if op == "multiply":
        return Rescaling(c)(tensor)
    return Rescaling(1.0, -c)(tensor) if tensor_first else Rescaling(-1.0, c)(tensor)


graph.OPERATORS["apply"] = _operator_call

