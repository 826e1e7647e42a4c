"""`Sequential`: layers applied in order, with Keras's summary and weights."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .base import Layer
from .layers import Embedding, InputLayer, deserialize, serialize
from .ops import as_tensor
from .rnn import RNN
from .training import TrainingMixin


def _passes_mask(layer) -> bool:
    return getattr(layer, "supports_masking", False)


def _takes_mask(layer) -> bool:
    # Layers whose forward reads a mask: the recurrent ones.
    return isinstance(layer, RNN) or hasattr(layer, "forward_layer")


class Sequential(TrainingMixin, Layer):
    """A stack of layers, each feeding the next (Keras's ``Sequential``).

    Masks travel as in Keras: ``Masking`` and ``Embedding(mask_zero=True)``
    make one, recurrent layers read it, layers that support masking pass it
    on, and a recurrent layer without ``return_sequences`` ends it. Plain
    ``torch.nn`` modules are accepted and drop the mask.

    >>> model = Sequential()
    >>> model.add(SimpleRNN(2, return_sequences=True, input_shape=(5, 4)))
    >>> model.add(SimpleRNN(2, return_sequences=True))
    >>> model.count_params()
    24
    """

    def __init__(self, layers=None, name: str | None = None, input_shape=None):
        super().__init__(name=name or None, input_shape=input_shape)
        self.layers = nn.ModuleList()
        self._output_shapes: list[tuple] | None = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layer: expected an rnnkit layer or a torch.nn.Module, got {type(layer).__name__}")
        if isinstance(layer, InputLayer):  # Keras 3's Input(shape): it sets the shape, it is not a layer
            if len(self.layers):
                raise ValueError("layer: Input(shape) must come first in a Sequential")
            self.input_shape = layer.input_shape
            return
        if getattr(layer, "return_state", False):
            raise ValueError(
                f"layer: {getattr(layer, 'name', type(layer).__name__)} has return_state=True and returns a list; "
                "a Sequential passes one tensor from layer to layer"
            )
        self.layers.append(layer)
        if len(self.layers) == 1 and self.input_shape is None:
            self.input_shape = getattr(layer, "input_shape", None)
        self._output_shapes = None
        if self.input_shape is not None:
            self.build(self.input_shape)

    # ------------------------------------------------------------------ build
    @property
    def built(self):
        return self._output_shapes is not None

    @built.setter
    def built(self, value):
        pass

    def build(self, input_shape) -> None:
        """Build every layer for inputs of ``input_shape`` (no batch axis) and record output shapes."""
        self.input_shape = tuple(input_shape)
        self._output_shapes = self._trace(self.input_shape)

    def _trace(self, input_shape):
        # Batch-1 passes in eval mode build lazy layers and yield each layer's
        # output shape. A None axis (e.g. time) is traced at two sizes: output
        # axes that change with it are reported as None, as Keras shows them.
        # Stateful layers get their carried state back afterwards.
        saved = [(m, m.states) for m in self.modules() if isinstance(m, RNN)]
        was_training = self.training
        self.eval()
        traces = []
        try:
            with torch.no_grad():
                for size in (2, 3) if None in input_shape else (1,):
                    shapes = []
                    self._forward(self._zeros([size if d is None else d for d in input_shape]), None, shapes)
                    traces.append(shapes)
        finally:
            self.train(was_training)
            for m, s in saved:
                m.states = s
        if len(traces) == 1:
            return traces[0]
        return [tuple(a if a == b else None for a, b in zip(s2, s3)) for s2, s3 in zip(*traces)]

    def _zeros(self, shape):
        first = self.layers[0]
        if isinstance(first, Embedding):
            return torch.zeros((1, *shape), dtype=torch.long)
        p = next(self.parameters(), None)
        return torch.zeros((1, *shape)) if p is None else torch.zeros((1, *shape), dtype=p.dtype, device=p.device)

    # ---------------------------------------------------------------- forward
    def _forward(self, x, mask, shapes=None):
        for layer in self.layers:
            new_mask = None
            if hasattr(layer, "compute_mask"):
                new_mask = layer.compute_mask(x, mask)
            elif _passes_mask(layer):
                new_mask = mask
            if mask is not None and _takes_mask(layer):
                x = layer(x, mask=mask)
            else:
                if not isinstance(layer, Layer) and not isinstance(x, torch.Tensor):
                    x = as_tensor(x)
                x = layer(x)
            mask = new_mask
            if shapes is not None:
                shapes.append((None, *x.shape[1:]))
        return x

    def forward(self, inputs, mask=None):
        if not len(self.layers):
            raise ValueError("Sequential: the model has no layers; add() some first")
        if self._output_shapes is None and isinstance(inputs, (torch.Tensor, np.ndarray)):
            self.build(tuple(inputs.shape[1:]))
        return self._forward(inputs, mask)

    # ---------------------------------------------------------------- weights
    @property
    def weights(self):
        return [w for layer in self.layers for w in (layer.weights if isinstance(layer, Layer) else layer.parameters())]

    def summary(self, print_fn=print) -> None:
        """Print Keras's table: layer (type), output shape, parameter count, totals."""
        if self._output_shapes is None:
            raise ValueError(
                "summary: the model is not built yet; give the first layer input_shape=(time, features) "
                "or call the model once on data"
            )
        # Keras's widths, widened to the longest name and shape so that columns never run together.
        names = [f"{getattr(la, 'name', type(la).__name__.lower())} ({type(la).__name__})" for la in self.layers]
        shapes = [str(shape).replace(",)", ")") for shape in self._output_shapes]
        widths = (max([29] + [len(n) + 2 for n in names]), max([26] + [len(s) + 2 for s in shapes]), 10)
        line = "_" * sum(widths)

        def row(*cols):
            return "".join(str(c).ljust(w) for c, w in zip(cols, widths)).rstrip()

        out = [f'Model: "{self.name}"', line, row("Layer (type)", "Output Shape", "Param #"), "=" * sum(widths)]
        for i, (layer, shape) in enumerate(zip(self.layers, self._output_shapes)):
            name = getattr(layer, "name", type(layer).__name__.lower())
            n = sum(p.numel() for p in layer.parameters())
            out.append(row(f"{name} ({type(layer).__name__})", str(shape).replace(",)", ")"), n))
            out.append(line if i < len(self.layers) - 1 else "=" * sum(widths))
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        out += [f"Total params: {total:,}", f"Trainable params: {trainable:,}", f"Non-trainable params: {total - trainable:,}", line]
        print_fn("\n".join(out))

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict:
        return {
            "name": self.name,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "layers": [serialize(layer) for layer in self.layers],
        }

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        """Rebuild from ``get_config()``: only rnnkit's own layer classes, no code from the file."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"config: expected {{'layers': [...]}} from Sequential.get_config(), got {str(config)[:80]!r}")
        model = cls([deserialize(spec) for spec in config["layers"]], name=config.get("name"))
        if config.get("input_shape") is not None:
            model.build(tuple(config["input_shape"]))
        return model

    def reset_state(self):
        for m in self.modules():
            if isinstance(m, RNN):
                m.reset_state()

