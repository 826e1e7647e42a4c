"""`Layer`: what every rnnkit layer and cell shares with Keras's Layer.

A layer is a plain ``torch.nn.Module`` plus the Keras conventions users port
code with: a ``name``, lazy ``build(input_shape)`` when the input size is not
given, ``get_weights()``/``set_weights()`` as numpy arrays in Keras's order
and shapes, and a plain-JSON ``get_config()``.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict

import numpy as np
import torch
from torch import nn

from . import graph

_name_counters: dict[str, itertools.count] = defaultdict(itertools.count)


def _snake(name: str) -> str:
    # "SimpleRNN" -> "simple_rnn", "GRUCell" -> "gru_cell", as Keras names them.
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", s).lower()


def unique_name(cls_name: str) -> str:
    base = _snake(cls_name)
    n = next(_name_counters[base])
    return base if n == 0 else f"{base}_{n}"


class Layer(nn.Module):
    """Base of rnnkit layers: Keras naming, lazy build, weights and config.

    Subclasses create their parameters in ``build(input_shape)`` (the shape
    without the batch axis) and list them in Keras's order in ``weights``.
    A layer made of other layers (an ``RNN`` around its cell, a stack, a
    wrapper) names them in ``_built_parts()`` and is built when they are.

    Class attributes a ``Sequential`` reads: ``supports_masking`` (the layer
    passes the incoming mask on) and ``takes_mask`` (its forward reads one,
    as ``layer(x, mask=mask)``).
    """

    supports_masking = False
    takes_mask = False

    # ---- functional API (rnnkit.graph): a call on symbolic tensors records a node instead of running
    def __call__(self, *args, **kwargs):
        if graph.is_symbolic_call(args, kwargs):
            return graph.record(self, args, kwargs)
        return super().__call__(*args, **kwargs)

    input = property(graph.layer_input, doc="The first argument of the layer's first symbolic call.")
    output = property(graph.layer_output, doc="The outputs of the layer's first symbolic call.")
    # ---- end of the functional API hook

    def __init__(self, name: str | None = None, input_shape=None):
        super().__init__()
        self.name = name or unique_name(type(self).__name__)
        self.built = False
        self.input_shape = None if input_shape is None else tuple(input_shape)

    @property
    def built(self) -> bool:
        """Whether the weights exist: recorded by ``build``, or all of ``_built_parts()`` built."""
        parts = self._built_parts()
        if parts is None:
            return self._built
        return all(getattr(p, "built", True) for p in parts)  # a plain torch module is built when made

    @built.setter
    def built(self, value: bool) -> None:
        # Assigned by __init__ and build; ignored by a layer whose parts decide.
        self._built = bool(value)

    def _built_parts(self):
        """The sub-layers whose build is this layer's; None when the layer records its own."""
        return None

    def build(self, input_shape) -> None:  # noqa: ARG002 - layers without weights
        self.built = True

    def maybe_build(self, input_shape, like: torch.Tensor | None = None) -> None:
        """Build once; a layer built from its first input takes that input's dtype and device."""
        if not self.built:
            self.build(tuple(input_shape))
            self.input_shape = tuple(input_shape)
            if like is not None and like.is_floating_point():
                self.to(device=like.device, dtype=like.dtype)

    @property
    def weights(self) -> list[nn.Parameter]:
        """Parameters in Keras's order (registration order unless overridden)."""
        return list(self.parameters())

    def get_weights(self) -> list[np.ndarray]:
        return [w.detach().cpu().numpy().copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        """Copy numpy arrays (Keras order and shapes) into the parameters."""
        if not self.built:
            raise ValueError(
                f"weights: layer {self.name!r} is not built yet; give it input_shape=... or call it on data first"
            )
        own = self.weights
        if not isinstance(weights, (list, tuple)):
            raise TypeError(f"weights: layer {self.name!r} expects a list of arrays, got {type(weights).__name__}")
        if len(weights) != len(own):
            raise ValueError(
                f"weights: layer {self.name!r} expects {len(own)} arrays "
                f"{[tuple(w.shape) for w in own]}, got {len(weights)}"
            )
        # Check every array before copying any, so a bad list leaves the layer as it was.
        new = []
        for i, (p, w) in enumerate(zip(own, weights)):
            if isinstance(w, torch.Tensor):
                w, real = w.detach(), not w.is_complex()
            else:
                w = np.asarray(w)
                real = w.dtype.kind in "biuf"
            if not real:
                raise TypeError(f"weights[{i}]: layer {self.name!r} expects a real numeric array, got dtype {w.dtype}")
            w = torch.as_tensor(w)
            if tuple(w.shape) != tuple(p.shape):
                raise ValueError(
                    f"weights[{i}]: layer {self.name!r} expects shape {tuple(p.shape)}, got {tuple(w.shape)}"
                )
            new.append(w)
        with torch.no_grad():
            for p, w in zip(own, new):
                p.copy_(w.to(dtype=p.dtype, device=p.device))

    def count_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def get_config(self) -> dict:
        return {"name": self.name}

    def extra_repr(self) -> str:
        return f"name={self.name!r}"
