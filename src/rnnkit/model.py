"""`Sequential`: layers applied in order, with Keras's summary and weights."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import safetensors.torch
import torch
from torch import nn

from . import keras_save
from .base import Layer
from .files import atomic_write
from .graph import SymbolicTensor
from .layers import Embedding, InputLayer, deserialize, serialize
from .ops import as_tensor, like_weights
from .rnn import RNN
from .training import TrainingMixin

# First layers that read integer ids: traced on ids, and fit leaves integer inputs as they are.
_ID_LAYERS = (Embedding, nn.Embedding, nn.EmbeddingBag)


class Sequential(TrainingMixin, Layer):
    """A stack of layers, each feeding the next (Keras's ``Sequential``).

    Masks travel as in Keras: ``Masking`` and ``Embedding(mask_zero=True)``
    make one (``compute_mask``), layers with ``takes_mask`` (the recurrent
    ones) read it, layers with ``supports_masking`` pass it on, and a
    recurrent layer without ``return_sequences`` ends it. Plain ``torch.nn``
    modules are accepted and drop the mask.

    Output shapes (for ``summary()``) are known once the input shape is:
    ``build`` traces every layer on zeros, and each later ``add`` traces
    only the new layer, from the last output shape.

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
        if isinstance(layer, SymbolicTensor) and layer.node.is_source:  # rk.Input(shape): its InputLayer
            layer = layer.node.layer
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
        if self.input_shape is None:
            self._set_output_shapes(None)
        elif self._output_shapes is None:
            self.build(self.input_shape)
        else:  # the layers before are traced: trace the new one from their last output shape
            known = self._output_shapes
            self._set_output_shapes(None)  # until the trace succeeds
            self._set_output_shapes(known + self._trace([layer], known[-1][1:]))

    # ------------------------------------------------------------------ build
    def build(self, input_shape) -> None:
        """Build every layer for inputs of ``input_shape`` (no batch axis) and record output shapes."""
        self.input_shape = tuple(input_shape)
        self._set_output_shapes(None)
        self._set_output_shapes(self._trace(list(self.layers), self.input_shape))

    def _set_output_shapes(self, shapes: list[tuple] | None) -> None:
        # Built when every layer's output shape is known (or, _built_parts, when every layer has its weights).
        self._output_shapes = shapes
        self.built = shapes is not None

    def _built_parts(self):
        # A model whose layers were all made with their sizes (interop.from_torch) has its weights without
        # a traced input shape: it counts as built too. Empty until the first add.
        if self._built:
            return None
        layers = list(getattr(self, "layers", []))
        return layers or None

    def _takes_ids(self) -> bool:
        # Integer inputs stay integers for an embedding (rnnkit's or torch's); otherwise fit casts them to floats.
        return len(self.layers) > 0 and isinstance(self.layers[0], _ID_LAYERS)

    def _trace(self, layers, input_shape) -> list[tuple]:
        """The output shape of each of ``layers``, run in turn on zeros of ``input_shape`` (no batch axis).

        Batch-1 passes in eval mode build lazy layers. A None axis (e.g.
        time) is traced at two sizes: output axes that change with it are
        reported as None, as Keras shows them. The traced layers take the
        model's train/eval mode afterwards, and stateful ones get their
        carried state back.
        """
        if not layers:
            return []
        saved = [(m, m.states) for layer in layers for m in layer.modules() if isinstance(m, RNN)]
        traces = []
        try:
            for layer in layers:
                layer.eval()
            with torch.no_grad():
                for size in (2, 3) if None in input_shape else (1,):
                    shapes = []
                    x = self._zeros([size if d is None else d for d in input_shape], layers[0])
                    self._forward(x, None, layers, shapes)
                    traces.append(shapes)
        finally:
            for layer in layers:
                layer.train(self.training)
            for m, s in saved:
                m.states = s
        if len(traces) == 1:
            return traces[0]
        return [tuple(a if a == b else None for a, b in zip(s2, s3)) for s2, s3 in zip(*traces)]

    def _zeros(self, shape, layer):
        """A batch of one zero input for ``layer``: token ids for an Embedding, else the weights' dtype and device."""
        if isinstance(layer, _ID_LAYERS):
            return torch.zeros((1, *shape), dtype=torch.long)
        like = like_weights(self)
        return torch.zeros((1, *shape), dtype=like.dtype, device=like.device)

    # ---------------------------------------------------------------- forward
    def _forward(self, x, mask, layers, shapes=None):
        for layer in layers:
            new_mask = None
            if hasattr(layer, "compute_mask"):
                new_mask = layer.compute_mask(x, mask)
            elif getattr(layer, "supports_masking", False):
                new_mask = mask
            if mask is not None and getattr(layer, "takes_mask", False):
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
        if not self.built and isinstance(inputs, (torch.Tensor, np.ndarray)):
            self.build(tuple(inputs.shape[1:]))
        return self._forward(inputs, mask, self.layers)

    # ---------------------------------------------------------------- weights
    @property
    def weights(self):
        return [w for layer in self.layers for w in (layer.weights if isinstance(layer, Layer) else layer.parameters())]

    def summary(self, print_fn=print) -> None:
        """Print Keras's table: layer (type), output shape, parameter count, totals."""
        if not self.built:
            raise ValueError(
                "summary: the model is not built yet; give the first layer input_shape=(time, features) "
                "or call the model once on data"
            )
        # Keras's widths, widened to the longest name and shape so that columns never run together.
        names = [f"{getattr(la, 'name', type(la).__name__.lower())} ({type(la).__name__})" for la in self.layers]
        # Built from sizes alone (interop.from_torch): the shapes are unknown, shown as "?".
        shapes = [str(shape).replace(",)", ")") for shape in self._output_shapes or ()] or ["?"] * len(self.layers)
        widths = (max([29] + [len(n) + 2 for n in names]), max([26] + [len(s) + 2 for s in shapes]), 10)
        line = "_" * sum(widths)

        def row(*cols):
            return "".join(str(c).ljust(w) for c, w in zip(cols, widths)).rstrip()

        out = [f'Model: "{self.name}"', line, row("Layer (type)", "Output Shape", "Param #"), "=" * sum(widths)]
        for i, (layer, name, shape) in enumerate(zip(self.layers, names, shapes)):
            out.append(row(name, shape, sum(p.numel() for p in layer.parameters())))
            out.append(line if i < len(self.layers) - 1 else "=" * sum(widths))
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        out += [f"Total params: {total:,}", f"Trainable params: {trainable:,}", f"Non-trainable params: {total - trainable:,}", line]
        print_fn("\n".join(out))

    # ------------------------------------------------------------ Keras files
    def save(self, path, overwrite: bool = True) -> None:
        """Write a Keras 3 ``.keras`` archive that Keras itself loads (``rnnkit.keras_save``).

        Like Keras 3, only the ``.keras`` suffix is taken here; an rnnkit run
        directory (safetensors + JSON, resumable) is ``rk.save_model(model, folder)``.
        ``rk.load_model("x.keras")`` reads the file back.
        """
        path = _check_path(path, overwrite)
        if not path.endswith(".keras"):
            raise ValueError(f"path: model.save writes a Keras 3 file whose name ends in .keras, got {path!r}; for an "
                             "rnnkit run directory use rk.save_model(model, folder)")
        keras_save.save_keras(self, path)

    def save_weights(self, path, overwrite: bool = True) -> None:
        """Write the weights: ``*.weights.h5`` in Keras 3's HDF5 layout, any other name as rnnkit's safetensors.

        The safetensors file holds ``state_dict()`` (names such as
        ``layers.0.cell.kernel``); the ``.weights.h5`` file Keras's groups
        (``layers/lstm/cell/vars/0`` ...), which Keras's ``load_weights`` reads.
        """
        path = _check_path(path, overwrite)
        if path.endswith(".h5"):
            if not path.endswith(".weights.h5"):
                raise ValueError(f"path: Keras 3 weights files end in .weights.h5, got {path!r}")
            keras_save.save_weights_h5(self, path)
            return
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_write(path, safetensors.torch.save(state, metadata={"format": "rnnkit-weights"}))

    def load_weights(self, path) -> None:
        """Read weights written by ``save_weights`` (or by Keras: ``.weights.h5``, or the weights in a ``.keras``).

        The model must have the saved model's layers (classes, order, sizes);
        every array is checked before any is copied.
        """
        path = _check_path(path, True)
        if not os.path.isfile(path):
            raise ValueError(f"path: {path!r} does not exist or is not a file")
        if path.endswith(".keras"):
            try:
                with zipfile.ZipFile(path) as archive:
                    source = archive.read("model.weights.h5")
            except (zipfile.BadZipFile, KeyError) as e:
                raise ValueError(f"path: {path!r} is not a Keras 3 archive with model.weights.h5 ({e})") from None
            keras_save.load_weights_h5(self, source)
        elif path.endswith(".h5"):
            keras_save.load_weights_h5(self, path)
        else:
            try:
                tensors = safetensors.torch.load_file(path)
            except Exception as e:  # safetensors has its own error types for foreign or truncated files
                raise ValueError(f"path: {path!r} is not a safetensors weights file ({e})") from None
            own = self.state_dict()
            bad = sorted(set(own) ^ set(tensors)) + [k for k in own if k in tensors and own[k].shape != tensors[k].shape]
            if bad:
                raise ValueError(f"path: {path!r} does not fit this model: names or shapes differ at {bad[:5]}")
            self.load_state_dict(tensors)

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


def _check_path(path, overwrite: bool) -> str:
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"path: expected a file path, got {type(path).__name__}") from None
    if not isinstance(path, str):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    if not overwrite and os.path.exists(path):
        raise ValueError(f"path: {path!r} exists and overwrite=False")
    return path
