"""Keras's recurrent layers and the small companions the seeds' models use.

``SimpleRNN``, ``GRU`` and ``LSTM`` are ``RNN(XCell(...))``: layer options
(``return_sequences`` ...) go to ``RNN``, every other keyword to the cell.
``serialize``/``deserialize`` turn a layer into plain JSON and back, building
only classes from the closed registry ``LAYERS`` (which also holds the
layers of ``pooling``, ``normalization``, ``activation``, ``rescaling`` and
``spatial_dropout``). ``Input`` makes a functional model's symbolic input.

This module is also Keras's ``keras.layers`` namespace: it holds every layer
class (the merges and ``StackedRNNCells`` too, and Keras's ``concatenate``,
``add``, ... functions), so ``from rnnkit import layers`` serves a Keras
program's ``from keras import layers``.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import graph
from .activation import Activation
from .base import Layer, lazy_parameter, materialize
from .cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells  # noqa: F401 - StackedRNNCells: keras.layers'
from .constraints import get_constraint
from .merging import (  # noqa: F401 - keras.layers is one namespace: `from rnnkit import layers; layers.Concatenate()`
    Add,
    Average,
    Concatenate,
    Dot,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    multiply,
    subtract,
)
from .normalization import LayerNormalization
from .ops import (
    as_tensor,
    bernoulli_mask,
    check_positive_int,
    check_rate,
    config_spec,
    get_activation,
    get_initializer,
    object_config,
)
from .pooling import GlobalAveragePooling1D, GlobalMaxPooling1D
from .regularizers import get_regularizer
from .rescaling import Rescaling
from .rnn import RNN, tree_flatten
from .spatial_dropout import SpatialDropout1D


class _CellLayer(RNN):
    """An ``RNN`` that builds its own cell of ``cell_class`` from the other arguments.

    Positional arguments after ``units`` go to the cell, as Keras's order
    (``LSTM(8, "relu")`` is the activation); the layer's own are keywords.
    """

    cell_class: type

    def __init__(
        self,
        units: int,
        *cell_args,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        activity_regularizer=None,
        name: str | None = None,
        input_shape=None,
        dtype=None,
        **cell_kwargs,
    ):
        if cell_args and isinstance(cell_args[0], int) and not isinstance(cell_args[0], bool) and isinstance(units, int):
            # torch's nn.LSTM(input_size, hidden_size) habit
            name = type(self).__name__
            raise TypeError(
                f"activation: expected an activation name or a callable, got int {cell_args[0]}; "
                f"{name}'s arguments are Keras's (units, activation, ...). "
                f"For torch's ({units}, {cell_args[0]}) = (input_size, hidden_size) write {name}({cell_args[0]}, input_size={units})"
            )
        super().__init__(
            self.cell_class(units, *cell_args, dtype=dtype, **cell_kwargs),  # Keras gives the cell the layer's policy
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            activity_regularizer=activity_regularizer,
            name=name,
            input_shape=input_shape,
            dtype=dtype,
        )

    @property
    def units(self):
        return self.cell.units

    def get_config(self):
        own = {k: v for k, v in super().get_config().items() if k != "cell"}  # the cell is made from the arguments
        cell_cfg = {k: v for k, v in self.cell.get_config().items() if k != "name"}
        return {**own, **cell_cfg}


USE_CUDNN = (True, False, "auto")


class _CudnnLayer(_CellLayer):
    """GRU and LSTM: Keras's ``use_cudnn`` ("auto", True or False).

    rnnkit picks its kernel itself (``rnnkit.explain``) and the numbers do
    not depend on it; ``use_cudnn=True`` is a promise that cannot always be
    kept, so it raises ``ValueError`` at the call when the input is not on
    a CUDA device or the layer's arguments rule cuDNN out (as Keras does).
    """

    def __init__(self, units: int, *cell_args, use_cudnn="auto", **kwargs):
        if use_cudnn not in USE_CUDNN or isinstance(use_cudnn, int) and not isinstance(use_cudnn, bool):
            raise ValueError(f"use_cudnn: expected 'auto', True or False, got {use_cudnn!r}")
        self.use_cudnn = use_cudnn
        super().__init__(units, *cell_args, **kwargs)

    def cudnn_blockers(self) -> list[str]:
        """Why this layer's arguments rule cuDNN out (Keras's conditions); empty when they do not."""
        c = self.cell
        why = []
        if c.activation is not torch.tanh:
            why.append("activation is not 'tanh'")
        if c.recurrent_activation is not torch.sigmoid:
            why.append("recurrent_activation is not 'sigmoid'")
        if c.recurrent_dropout:
            why.append("recurrent_dropout > 0")
        if self.unroll:
            why.append("unroll=True")
        if not c.use_bias:
            why.append("use_bias=False")
        if isinstance(c, GRUCell) and not c.reset_after:
            why.append("reset_after=False")
        return why

    def forward(self, inputs, *args, **kwargs):
        if self.use_cudnn is True:
            device = inputs.device if isinstance(inputs, torch.Tensor) else torch.device("cpu")
            if device.type != "cuda":
                raise ValueError(
                    f"use_cudnn: layer {self.name!r} has use_cudnn=True, but cuDNN needs CUDA and the inputs are on "
                    f"{device}; use use_cudnn='auto' (or False)"
                )
            blockers = self.cudnn_blockers()
            if blockers:
                raise ValueError(
                    f"use_cudnn: layer {self.name!r} has use_cudnn=True, but its arguments rule cuDNN out "
                    f"({', '.join(blockers)}); use use_cudnn='auto' (or False)"
                )
        return super().forward(inputs, *args, **kwargs)

    def get_config(self):
        return {**super().get_config(), "use_cudnn": self.use_cudnn}


class SimpleRNN(_CellLayer):
    """Fully connected RNN: ``RNN(SimpleRNNCell(units, **cell_kwargs))``.

    >>> rnn = SimpleRNN(2, return_sequences=True, return_state=True)
    >>> outputs, states = rnn(np.zeros((3, 5, 4), np.float32))
    >>> tuple(outputs.shape), tuple(states.shape)
    ((3, 5, 2), (3, 2))
    """

    cell_class = SimpleRNNCell


class GRU(_CudnnLayer):
    """Gated recurrent unit layer: ``RNN(GRUCell(units, **cell_kwargs))``."""

    cell_class = GRUCell


class LSTM(_CudnnLayer):
    """LSTM layer: ``RNN(LSTMCell(units, **cell_kwargs))``; ``return_state`` gives ``[output, h, c]``."""

    cell_class = LSTMCell


# ------------------------------------------------------------ Bidirectional

_MERGE = {
    "concat": lambda a, b: torch.cat([a, b], dim=-1),
    "sum": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "ave": lambda a, b: (a + b) / 2,
}


def _fresh_copy(layer: RNN) -> RNN:
    """A copy of ``layer`` with newly initialised weights (Keras clones from config)."""
    twin = copy.deepcopy(layer)
    for m in twin.modules():
        if hasattr(m, "reset_parameters") and getattr(m, "built", True):
            m.reset_parameters()
    return twin


class Bidirectional(Layer):
    """Run an RNN layer forwards and a twin backwards, then merge (Keras semantics).

    The backward twin is a fresh copy of ``layer`` with ``go_backwards``
    flipped, unless ``backward_layer`` is given. Its sequence output is
    reversed back so step t of both halves lines up. With
    ``return_sequences`` both halves output zeros at masked steps.

    ``merge_mode``: "concat" (default), "sum", "mul", "ave", or None (a list
    ``[forward, backward]``). ``return_state`` appends the forward states
    then the backward states; ``initial_state`` takes them in that order.
    """

    supports_masking = False  # it reads the mask; what it passes on is compute_mask's
    takes_mask = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, name: str | None = None, input_shape=None,
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(layer, dict):  # configs from get_config
            layer = deserialize(layer)
        if isinstance(backward_layer, dict):
            backward_layer = deserialize(backward_layer)
        if not isinstance(layer, RNN):
            raise TypeError(f"layer: expected an rnnkit RNN layer, got {type(layer).__name__}")
        if merge_mode is not None and merge_mode not in _MERGE:
            raise ValueError(f"merge_mode: expected one of {sorted(_MERGE)} or None, got {merge_mode!r}")
        if backward_layer is None:
            backward_layer = _fresh_copy(layer)
            backward_layer.go_backwards = not layer.go_backwards
        else:
            if not isinstance(backward_layer, RNN):
                raise TypeError(f"backward_layer: expected an rnnkit RNN layer, got {type(backward_layer).__name__}")
            for opt in ("return_sequences", "return_state", "stateful"):
                if getattr(layer, opt) != getattr(backward_layer, opt):
                    raise ValueError(
                        f"backward_layer: {opt}={getattr(backward_layer, opt)} differs from the forward layer's "
                        f"{opt}={getattr(layer, opt)}; they must match"
                    )
            if backward_layer.go_backwards == layer.go_backwards:
                raise ValueError(
                    f"backward_layer: go_backwards={backward_layer.go_backwards} equals the forward layer's; "
                    "the backward layer must process time in the other direction"
                )
        backward_layer.name = f"backward_{layer.name}"
        self.forward_layer, self.backward_layer = layer, backward_layer
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        if self.return_sequences:  # Keras: aligned halves must agree on padding
            layer.zero_output_for_mask = backward_layer.zero_output_for_mask = True
        if input_shape is not None:
            self.maybe_build(input_shape)

    def _built_parts(self):
        return (self.forward_layer, self.backward_layer)

    def build(self, input_shape):
        self.forward_layer.maybe_build(input_shape)
        self.backward_layer.maybe_build(input_shape)

    @property
    def weights(self):
        return self.forward_layer.weights + self.backward_layer.weights

    def reset_state(self):
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    def forward(self, inputs, initial_state=None, mask=None, lengths=None, training=None):
        fs = bs = None
        if initial_state is not None:
            if not isinstance(initial_state, (torch.Tensor, list, tuple)):
                raise TypeError(f"initial_state: expected a list of tensors, got {type(initial_state).__name__}")
            flat = tree_flatten(initial_state) if not isinstance(initial_state, torch.Tensor) else [initial_state]
            if len(flat) % 2:
                raise ValueError(
                    f"initial_state: expected the forward states then the backward states (an even count), got {len(flat)}"
                )
            fs, bs = flat[: len(flat) // 2], flat[len(flat) // 2 :]
        kw = {"mask": mask, "lengths": lengths, "training": training}
        y_f = self.forward_layer(inputs, initial_state=fs, **kw)
        y_b = self.backward_layer(inputs, initial_state=bs, **kw)
        states = []
        if self.return_state:
            (y_f, *s_f), (y_b, *s_b) = y_f, y_b
            states = s_f + s_b
        if self.return_sequences:
            y_b = y_b.flip(1)
        y = [y_f, y_b] if self.merge_mode is None else _MERGE[self.merge_mode](y_f, y_b)
        if self.return_state:
            return (y if isinstance(y, list) else [y]) + states
        return y

    def compute_mask(self, inputs, mask=None):  # noqa: ARG002
        return mask if self.return_sequences else None

    @property
    def masked_outputs(self) -> int:
        """How many leading outputs carry the mask in a functional graph: both halves when unmerged (Keras 3)."""
        return 2 if self.merge_mode is None and self.return_sequences else 1

    def compute_output_shape(self, input_shape):
        """The merged output's shape (a list ``[forward, backward]`` without merge), then the states."""
        f = self.forward_layer.compute_output_shape(input_shape)
        b = self.backward_layer.compute_output_shape(input_shape)
        (f_out, *f_states), (b_out, *b_states) = (f, b) if self.return_state else ([f], [b])
        if self.merge_mode is None:
            out = [tuple(f_out), tuple(b_out)]
        elif self.merge_mode == "concat":
            out = [(*f_out[:-1], f_out[-1] + b_out[-1])]
        else:
            out = [tuple(f_out)]
        if not self.return_state:
            return out if self.merge_mode is None else out[0]
        return [*out, *f_states, *b_states]

    def get_config(self):
        return {
            "name": self.name,
            "merge_mode": self.merge_mode,
            "layer": serialize(self.forward_layer),
            "backward_layer": serialize(self.backward_layer),
        }


# --------------------------------------------------------------- companions


class InputLayer(Layer):
    """The input's shape without the batch axis; in a ``Sequential`` it only sets ``input_shape``.

    Keras 3 starts models with ``Input(shape=(time, features))``; rnnkit
    takes it the same way, so a summary can be printed before any data.
    ``rnnkit.Input`` (``rnnkit.functional``) makes one and returns its
    symbolic tensor.
    """

    def __init__(self, shape, name: str | None = None):
        if isinstance(shape, int):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or not all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in shape
        ):
            raise ValueError(f"shape: expected a tuple of positive ints or None (no batch axis), got {shape!r}")
        super().__init__(name=name, input_shape=tuple(shape))
        self.built = True

    def forward(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


_DTYPES = {
    name: getattr(torch, name)
    for name in ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
}


def _parse_dtype(dtype) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) and graph.dtype_name(dtype) in _DTYPES:
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"dtype: expected None (float32) or one of {sorted(_DTYPES)}, got {dtype!r}")


def Input(  # noqa: N802 - Keras's name
    shape, dtype=None, name: str | None = None, batch_size: int | None = None, optional: bool = False
) -> graph.SymbolicTensor:
    """A symbolic input of ``shape`` (no batch axis; ``None`` = any size), float32 unless ``dtype``.

    ``batch_size`` fixes the batch axis of the symbolic shapes (Keras's ``Input(batch_size=)``): layers
    called only on such inputs give outputs of that batch size. Calls of the model may use any batch.
    ``optional=True`` (Keras's): a call of the model may give ``None`` for this input, and the layers
    it feeds are then called with ``None`` in its place (``forward(self, x, y=None)``).

    Starts a functional model, or a ``Sequential`` (Keras 3 style), where it only sets the input shape.
    Token ids for an ``Embedding`` may be float32 or ``dtype="int32"``/``"int64"``.

    >>> x = Input((None, 8))
    >>> x.shape
    (None, None, 8)
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size: expected None or a positive int, got {batch_size!r}")
    if not isinstance(optional, bool):
        raise TypeError(f"optional: expected a bool, got {type(optional).__name__} {optional!r}")
    layer = InputLayer(shape, name=name)
    layer.optional = optional
    node = graph.Node(layer, (), {}, {}, None)
    tensor = graph.SymbolicTensor((batch_size, *layer.input_shape), _parse_dtype(dtype), node, 0)
    node.outputs, node.structure = [tensor], tensor
    vars(layer)["_inbound_nodes"] = [node]
    return tensor


class Dense(Layer):
    """``y = activation(x W + b)`` on the last axis; W is (in, units) as in Keras.

    Works on any leading shape, so it is also a per-step projection.
    """

    supports_masking = True

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        input_size: int | None = None,
        name: str | None = None,
        input_shape=None,
        dtype=None,
    ):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        self.units = check_positive_int(units, "units")
        self.kernel_regularizer = get_regularizer(kernel_regularizer, "kernel_regularizer")
        self.bias_regularizer = get_regularizer(bias_regularizer, "bias_regularizer")
        self.activity_regularizer = get_regularizer(activity_regularizer, "activity_regularizer")
        self.kernel_constraint = get_constraint(kernel_constraint, "kernel_constraint")
        self.bias_constraint = get_constraint(bias_constraint, "bias_constraint")
        self.activation = get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = get_initializer(kernel_initializer, "kernel_initializer")
        self.bias_initializer = get_initializer(bias_initializer, "bias_initializer")
        self._specs = {"activation": activation, "kernel_initializer": kernel_initializer, "bias_initializer": bias_initializer}
        self.input_size = None
        self.kernel = lazy_parameter()  # shapes come at build (see base.materialize)
        self.bias = lazy_parameter() if self.use_bias else None
        if input_size is not None:
            self.maybe_build((check_positive_int(input_size, "input_size"),))
        elif input_shape is not None:
            self.maybe_build(input_shape)

    def build(self, input_shape):
        self.input_size = int(input_shape[-1])
        with torch.no_grad():
            materialize(self, "kernel", (self.input_size, self.units)).copy_(
                self.kernel_initializer((self.input_size, self.units), dtype=torch.float32)
            )
            if self.use_bias:
                materialize(self, "bias", (self.units,)).copy_(self.bias_initializer((self.units,), dtype=torch.float32))
        self.built = True

    def reset_parameters(self):
        if self.built:
            with torch.no_grad():
                self.kernel.copy_(self.kernel_initializer(tuple(self.kernel.shape)))
                if self.bias is not None:
                    self.bias.copy_(self.bias_initializer(tuple(self.bias.shape)))

    def forward(self, inputs):
        x = as_tensor(inputs)
        if x.dim() == 0:
            raise ValueError(f"inputs: layer {self.name!r} expects (..., features), got a 0-D tensor")
        self.maybe_build(x.shape[1:], like=x)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"inputs: layer {self.name!r} expects {self.input_size} features, got shape {tuple(x.shape)}")
        if x.dtype != self.kernel.dtype:
            raise TypeError(f"inputs: dtype {x.dtype} does not match layer {self.name!r}'s weights ({self.kernel.dtype})")
        y = x @ self.kernel
        if self.bias is not None:
            y = y + self.bias
        y = self.activation(y)
        self.record_activity(y)
        return y

    def weight_penalties(self):
        if not self.built:
            return []
        triples = [(self.kernel, self.kernel_regularizer, self.kernel_constraint),
                   (self.bias, self.bias_regularizer, self.bias_constraint)]
        return [(w, r, c) for w, r, c in triples if w is not None and (r is not None or c is not None)]

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self):
        cfg = {"name": self.name, "units": self.units, "use_bias": self.use_bias, "input_size": self.input_size}
        cfg.update({k: config_spec(v, self.name, k) for k, v in self._specs.items()})
        cfg.update({
            "kernel_regularizer": object_config(self.kernel_regularizer),
            "bias_regularizer": object_config(self.bias_regularizer),
            "activity_regularizer": object_config(self.activity_regularizer),
            "kernel_constraint": object_config(self.kernel_constraint),
            "bias_constraint": object_config(self.bias_constraint),
        })
        return cfg


class TimeDistributed(Layer):
    """Apply ``layer`` to every time step: (batch, time, ...) -> (batch, time, ...).

    ``training`` goes to the inner layer when its forward takes it.
    ``mask`` (batch, time, ...), when given, is checked and handed to the inner
    layer, flattened like the steps, if that layer takes one
    (``takes_mask``, or a ``forward`` with a ``mask`` argument); it goes on
    unchanged to the next layer (``compute_mask``).
    """

    supports_masking = False  # it reads the mask; what it passes on is compute_mask's
    takes_mask = True

    def __init__(self, layer, name: str | None = None, input_shape=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(layer, dict):  # a config from get_config
            layer = deserialize(layer)
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layer: expected a torch.nn.Module, got {type(layer).__name__}")
        self.layer = layer
        if input_shape is not None:
            self.maybe_build(input_shape)

    def build(self, input_shape):
        if isinstance(self.layer, Layer):
            self.layer.maybe_build(tuple(input_shape)[1:])
        self.built = True

    @property
    def weights(self):
        return self.layer.weights if isinstance(self.layer, Layer) else list(self.layer.parameters())

    def forward(self, inputs, mask=None, training=None):
        x = as_tensor(inputs)
        if x.dim() < 3:
            raise ValueError(f"inputs: expected (batch, time, ...) with at least 3 axes, got shape {tuple(x.shape)}")
        b, t = x.shape[:2]
        steps = x.reshape(b * t, *x.shape[2:])
        kwargs = {}
        if training is not None and "training" in inspect.signature(self.layer.forward).parameters:
            kwargs["training"] = training
        if mask is not None:
            mask = torch.as_tensor(mask)
            if tuple(mask.shape[:2]) != (b, t):  # as Keras, only the leading (batch, time) axes must match
                raise ValueError(
                    f"mask: TimeDistributed {self.name!r} expects a mask of shape (batch, time, ...) = ({b}, {t}, ...), "
                    f"got {tuple(mask.shape)}"
                )
        if mask is not None and _takes_mask(self.layer):
            kwargs["mask"] = mask.reshape(b * t, *mask.shape[2:]).to(device=x.device, dtype=torch.bool)
        y = self.layer(steps, **kwargs)
        return y.reshape(b, t, *y.shape[1:])

    def compute_mask(self, inputs, mask=None):  # noqa: ARG002
        return mask

    def compute_output_shape(self, input_shape):
        batch, time, *rest = tuple(input_shape)
        inner = self.layer.compute_output_shape((batch, *rest))
        return (batch, time, *tuple(inner)[1:])

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        return {"name": self.name, "layer": serialize(self.layer)}


def _takes_mask(layer) -> bool:
    if getattr(layer, "takes_mask", False) or getattr(layer, "supports_masking", False):
        return "mask" in inspect.signature(layer.forward).parameters
    return False


class Masking(Layer):
    """Mask time steps whose features all equal ``mask_value``; such steps become zeros.

    The mask ``any(x != mask_value, axis=-1)`` goes on to the next layers
    in a ``Sequential`` (``compute_mask``).
    """

    supports_masking = True

    def __init__(self, mask_value: float = 0.0, name: str | None = None, input_shape=None, dtype=None):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float)):
            raise TypeError(f"mask_value: expected a number, got {type(mask_value).__name__} {mask_value!r}")
        self.mask_value = float(mask_value)
        self.built = True

    def compute_mask(self, inputs, mask=None):  # noqa: ARG002 - a new mask replaces the old
        x = as_tensor(inputs)
        if x.dim() != 3:
            raise ValueError(f"inputs: layer {self.name!r} expects (batch, time, features), got shape {tuple(x.shape)}")
        return (x != self.mask_value).any(dim=-1)

    def forward(self, inputs):
        x = as_tensor(inputs)
        return x * self.compute_mask(x).unsqueeze(-1).to(x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {"name": self.name, "mask_value": self.mask_value}


class Dropout(Layer):
    """Inverted dropout: zero a fraction ``rate`` of inputs in training, scale the rest by 1/(1-rate)."""

    supports_masking = True

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None, input_shape=None, dtype=None):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        self.rate = check_rate(rate, "rate")
        self.seed = seed
        self._generator = None if seed is None else torch.Generator().manual_seed(int(seed))
        self.built = True

    def forward(self, inputs, training=None):
        x = as_tensor(inputs)
        training = self.training if training is None else training
        if not training or self.rate == 0:
            return x
        keep = 1.0 - self.rate
        return x * bernoulli_mask(x.shape, keep, x, self._generator) / keep

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {"name": self.name, "rate": self.rate, "seed": self.seed}


class Embedding(Layer):
    """Integer ids (batch, time) -> vectors (batch, time, output_dim); ``mask_zero`` masks id 0."""

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer="random_uniform",
        mask_zero: bool = False,
        name: str | None = None,
        input_shape=None,
        dtype=None,
    ):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.output_dim = check_positive_int(output_dim, "output_dim")
        self.embeddings_initializer = get_initializer(embeddings_initializer, "embeddings_initializer")
        self._init_spec = embeddings_initializer
        self.mask_zero = bool(mask_zero)
        self.embeddings = nn.Parameter(self.embeddings_initializer((self.input_dim, self.output_dim),
                                                                   dtype=getattr(torch, self.variable_dtype)))
        self.built = True
        self.supports_masking = self.mask_zero

    def reset_parameters(self):
        with torch.no_grad():
            self.embeddings.copy_(self.embeddings_initializer(tuple(self.embeddings.shape)))

    def _ids(self, inputs) -> torch.Tensor:
        if isinstance(inputs, torch.Tensor):
            ids = inputs
        else:
            arr = np.asarray(inputs)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"inputs: expected integer token ids, got dtype {arr.dtype}")
            ids = torch.from_numpy(arr)
        if ids.is_floating_point():
            # Float ids are cast to integers as Keras casts them (toward zero: 2.7 -> 2); NaN and inf have no id.
            if not bool(ids.isfinite().all()):
                raise TypeError(f"inputs: expected integer token ids, got non-finite {ids.dtype} values")
            ids = ids.long()
        if ids.dtype == torch.bool or ids.is_complex():
            raise TypeError(f"inputs: expected integer token ids, got {ids.dtype}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.input_dim):
            raise ValueError(
                f"inputs: token ids must lie in [0, {self.input_dim}) (input_dim), got min {int(ids.min())}, max {int(ids.max())}"
            )
        return ids.long().to(self.embeddings.device)

    def compute_mask(self, inputs, mask=None):  # noqa: ARG002
        return self._ids(inputs) != 0 if self.mask_zero else None

    def forward(self, inputs):
        return F.embedding(self._ids(inputs), self.embeddings)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape), self.output_dim)

    def get_config(self):
        return {
            "name": self.name,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": config_spec(self._init_spec, self.name, "embeddings_initializer"),
            "mask_zero": self.mask_zero,
        }


# ------------------------------------------------------------- RepeatVector


class RepeatVector(Layer):
    """Repeat a vector ``n`` times: (batch, features) -> (batch, n, features), as Keras's ``RepeatVector``.

    The bridge of an encoder-decoder: the encoder's last output, repeated
    once per output step, is the decoder's input sequence.

    >>> RepeatVector(3)(torch.ones(2, 4)).shape
    torch.Size([2, 3, 4])
    """

    def __init__(self, n: int, name: str | None = None, input_shape=None, dtype=None):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        self.n = check_positive_int(n, "n")
        self.built = True

    def forward(self, inputs):
        x = as_tensor(inputs)
        if x.dim() != 2:
            raise ValueError(f"inputs: layer {self.name!r} expects (batch, features), got shape {tuple(x.shape)}")
        return x.unsqueeze(1).expand(-1, self.n, -1)

    def compute_output_shape(self, input_shape):
        batch, features = tuple(input_shape)
        return (batch, self.n, features)

    def get_config(self):
        return {"name": self.name, "n": self.n}


# ------------------------------------------------------------------ Flatten


class Flatten(Layer):
    """Keep the batch axis, join all others: (batch, d_1, ..., d_k) -> (batch, d_1 * ... * d_k).

    A (batch,) input becomes (batch, 1), as in Keras's ``Flatten``.

    >>> Flatten()(torch.ones(2, 3, 4)).shape
    torch.Size([2, 12])
    """

    def __init__(self, name: str | None = None, input_shape=None, dtype=None):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        self.built = True

    def forward(self, inputs):
        x = as_tensor(inputs)
        if x.dim() == 0:
            raise ValueError(f"inputs: layer {self.name!r} expects a batch axis, got a scalar")
        return x.reshape(x.shape[0], -1)

    def compute_output_shape(self, input_shape):
        batch, *rest = tuple(input_shape)
        size = 1
        for d in rest:
            if d is None:
                return (batch, None)
            size *= d
        return (batch, size)

    def get_config(self):
        return {"name": self.name}


# ------------------------------------------------------------------- Conv2D


def _pair(value, arg: str) -> tuple[int, int]:
    """Keras's int-or-pair arguments (kernel_size, strides, dilation_rate) as a pair of positive ints."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{arg}: expected an int or a pair of ints, got {value!r}")
    return check_positive_int(pair[0], arg), check_positive_int(pair[1], arg)


class Conv2D(Layer):
    """A 2-D convolution on channels-last images, as Keras's ``Conv2D`` (``data_format="channels_last"``)::

        y[b, i, j, f] = activation(sum_{di, dj, c} x[b, i*s + di*d, j*s + dj*d, c] kernel[di, dj, c, f] + bias[f])

    Shapes: inputs (batch, height, width, channels), kernel (kh, kw, channels,
    filters) as in Keras, outputs (batch, height', width', filters);
    ``padding="valid"`` keeps only whole windows, ``"same"`` pads as
    TensorFlow does (the odd pixel after). Its use here is per-frame
    features for a recurrent layer, through ``TimeDistributed``:

    >>> TimeDistributed(Conv2D(8, 3))(torch.zeros(2, 5, 10, 10, 3)).shape
    torch.Size([2, 5, 8, 8, 8])
    """

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid", dilation_rate=(1, 1),
                 activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", name: str | None = None, input_shape=None, dtype=None):
        super().__init__(name=name, input_shape=None, dtype=dtype)
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        if padding not in ("valid", "same"):
            raise ValueError(f"padding: expected 'valid' or 'same', got {padding!r}")
        self.padding = padding
        self.activation = get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = get_initializer(kernel_initializer, "kernel_initializer")
        self.bias_initializer = get_initializer(bias_initializer, "bias_initializer")
        self._specs = {"activation": activation, "kernel_initializer": kernel_initializer, "bias_initializer": bias_initializer}
        self.kernel = lazy_parameter()
        self.bias = lazy_parameter() if self.use_bias else None
        if input_shape is not None:
            self.maybe_build(tuple(input_shape))

    def build(self, input_shape):
        shape = (*self.kernel_size, int(input_shape[-1]), self.filters)
        with torch.no_grad():
            materialize(self, "kernel", shape).copy_(self.kernel_initializer(shape, dtype=torch.float32))
            if self.use_bias:
                materialize(self, "bias", (self.filters,)).copy_(self.bias_initializer((self.filters,), dtype=torch.float32))
        self.built = True

    def _pads(self, size: int, axis: int) -> tuple[int, int]:
        """TensorFlow's "same" padding of one axis: the output is ceil(size / stride), the odd pixel after."""
        if self.padding == "valid":
            return 0, 0
        k, s, d = self.kernel_size[axis], self.strides[axis], self.dilation_rate[axis]
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        return total // 2, total - total // 2

    def forward(self, inputs):
        x = as_tensor(inputs)
        if x.dim() != 4:
            raise ValueError(f"inputs: layer {self.name!r} expects (batch, height, width, channels), got shape {tuple(x.shape)}")
        self.maybe_build(x.shape[1:], like=x)
        if x.shape[-1] != self.kernel.shape[2]:
            raise ValueError(f"inputs: layer {self.name!r} expects {self.kernel.shape[2]} channels, got shape {tuple(x.shape)}")
        (top, bottom), (left, right) = self._pads(x.shape[1], 0), self._pads(x.shape[2], 1)
        x = F.pad(x.permute(0, 3, 1, 2), (left, right, top, bottom))  # torch convolves channels-first
        y = F.conv2d(x, self.kernel.permute(3, 2, 0, 1), self.bias, stride=self.strides, dilation=self.dilation_rate)
        return self.activation(y.permute(0, 2, 3, 1))

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = tuple(input_shape)

        def out(size, axis):
            if size is None:
                return None
            if self.padding == "same":
                return -(-size // self.strides[axis])
            span = (self.kernel_size[axis] - 1) * self.dilation_rate[axis] + 1
            return (size - span) // self.strides[axis] + 1

        return (batch, out(height, 0), out(width, 1), self.filters)

    def get_config(self):
        cfg = {"name": self.name, "filters": self.filters, "kernel_size": list(self.kernel_size),
               "strides": list(self.strides), "padding": self.padding, "dilation_rate": list(self.dilation_rate),
               "use_bias": self.use_bias}
        cfg.update({k: config_spec(v, self.name, k) for k, v in self._specs.items()})
        return cfg


# ------------------------------------------------------------ serialization


LAYERS: dict[str, type] = {
    cls.__name__: cls
    for cls in (SimpleRNN, GRU, LSTM, Bidirectional, Dense, TimeDistributed, Masking, Dropout, Embedding, RepeatVector,
                Rescaling, Flatten, Conv2D, GlobalAveragePooling1D, GlobalMaxPooling1D, LayerNormalization, Activation,
                SpatialDropout1D)
}


def serialize(layer) -> dict:
    """``{"class_name": ..., "config": {...}}`` in plain JSON types."""
    name = type(layer).__name__
    if LAYERS.get(name) is not type(layer):
        raise ValueError(
            f"layer: {name} is not one of rnnkit's serializable layers {sorted(LAYERS)}; "
            "save its weights with state_dict() and rebuild it in code"
        )
    return {"class_name": name, "config": layer.get_config()}


# Configs' true/false arguments: a file must spell them as JSON booleans.
_FLAGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask", "use_bias",
          "reset_after", "unit_forget_bias", "mask_zero")


def deserialize(spec: dict):
    """Build a layer from ``serialize``'s output; only classes in ``LAYERS`` are accepted."""
    if not isinstance(spec, dict) or "class_name" not in spec or not isinstance(spec.get("config"), dict):
        raise ValueError(f"layer config: expected {{'class_name': str, 'config': dict}}, got {str(spec)[:80]!r}")
    name = spec["class_name"]
    if name not in LAYERS:
        raise ValueError(f"layer config: unknown layer class {name!r}; known: {sorted(LAYERS)}")
    cfg = dict(spec["config"])
    cls = LAYERS[name]
    for key in _FLAGS:  # 1 for true would build a different model silently (return_sequences=1 is True)
        if key in cfg and not isinstance(cfg[key], bool):
            raise ValueError(f"layer config: {name}.{key}: expected true or false, got {cfg[key]!r}")
    try:
        if cls in (Bidirectional, TimeDistributed) and not isinstance(cfg.get("layer"), dict):
            raise KeyError("layer")
        if issubclass(cls, RNN) and cfg.get("input_size") is None:
            cfg.pop("input_size", None)
        return cls.from_config(cfg)
    except (TypeError, KeyError) as e:
        raise ValueError(f"layer config: cannot build {name} from {cfg}: {e}") from e
