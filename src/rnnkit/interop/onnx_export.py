"""Export an rnnkit model to ONNX, with dynamic batch and time axes.

Tracing the Python time loop would unroll it to the example's length, so
every recurrent layer becomes one of ONNX's own ``RNN``, ``GRU`` or ``LSTM``
operators, which loop over any length. The graph is written with
``onnx.helper`` rather than through ``torch.onnx.export``: the operators
express Keras's layers directly (both GRU variants through
``linear_before_reset``, ``go_backwards``, Keras's activations), and nothing
depends on how an exporter version maps ``torch.nn.GRU`` (one emitted the
wrong ``linear_before_reset``, PyTorch issue 189225).

ONNX's operators take time-major inputs and their own gate order; with
Keras's weights (rnnkit's layout) of one layer::

    W = kernel.T              (g*u, in)   gate blocks reordered
    R = recurrent_kernel.T    (g*u, u)
    B = [input bias, recurrent bias]  (2*g*u,)

    gates        Keras        ONNX
    LSTM         i, f, c, o   i, o, f, c
    GRU          z, r, h      z, r, h      linear_before_reset = reset_after
    SimpleRNN    -            -

Between layers the graph keeps rnnkit's batch-first tensors, transposing
around each recurrent operator (onnxruntime's operators are time-major only).
"""

from __future__ import annotations

import numpy as np
import torch

from ..cells import GRUCell, LSTMCell, SimpleRNNCell
from ..files import atomic_write
from ..layers import Bidirectional, Dense, Dropout, Embedding, Masking, TimeDistributed
from ..model import Sequential
from ..ops import activation_name, first_parameter
from ..rnn import RNN

OPSET = 17
_LSTM_ORDER = [0, 3, 1, 2]  # Keras blocks i, f, c, o -> ONNX i, o, f, c

# Activations the recurrent operators take by name.
_RNN_ACTIVATIONS = {
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "relu": "Relu",
    "hard_sigmoid": "HardSigmoid",
    "linear": "Affine",
    "elu": "Elu",
    "softsign": "Softsign",
    "softplus": "Softplus",
}
_HARD_SIGMOID = (1.0 / 6.0, 0.5)  # Keras 3's relu6(x + 3) / 6; onnx's default slope is 0.2
# (alpha, beta) each parametrised function needs (None: unused).
_PARAMS = {"HardSigmoid": _HARD_SIGMOID, "Affine": (1.0, 0.0), "Elu": (1.0, None)}


def _onnx():
    try:
        import onnx
    except ImportError as e:  # onnx is an optional extra
        raise ImportError("export_onnx needs the onnx package: pip install 'rnnkit[interop]'") from e
    return onnx


class _Graph:
    """Nodes and constants of the graph being written, with fresh names."""

    def __init__(self, onnx):
        self.onnx, self.nodes, self.constants, self._n = onnx, [], [], 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, array, hint: str) -> str:
        name = self.name(hint)
        self.constants.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs, outputs: int = 1, **attrs):
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names


# ------------------------------------------------------------- recurrent ops


def _activation_names(layer: RNN, fns, where: str) -> list[str]:
    names = []
    for fn in fns:
        key = activation_name(fn)
        if key not in _RNN_ACTIVATIONS:
            raise ValueError(
                f"{where}: layer {layer.name!r} uses activation {key or fn!r}; ONNX's recurrent operators take "
                f"{sorted(_RNN_ACTIVATIONS)}"
            )
        names.append(_RNN_ACTIVATIONS[key])
    return names


def _activation_attrs(names: list[str], layer: RNN, where: str) -> dict:
    """``activations`` and, where needed, ``activation_alpha``/``activation_beta``.

    The spec leaves open whether every function takes an entry of those lists
    or only the functions with a parameter (and runtimes' defaults differ:
    onnxruntime's Affine is not the identity without them). A list of one
    repeated value reads the same either way, so the parameters in use must
    agree: hard_sigmoid (alpha 1/6) cannot share an operator with linear or elu
    (alpha 1).
    """
    attrs = {"activations": names}
    for key, k in (("activation_alpha", 0), ("activation_beta", 1)):
        values = {_PARAMS[n][k] for n in names if n in _PARAMS and _PARAMS[n][k] is not None}
        if len(values) > 1:
            raise ValueError(
                f"{where}: layer {layer.name!r} mixes hard_sigmoid with linear or elu activations, whose ONNX "
                "parameters cannot be written unambiguously in one operator"
            )
        if values:
            attrs[key] = [values.pop()] * len(names)
    return attrs


def _weights(cell) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX W (1, g*u, in), R (1, g*u, u), B (1, 2*g*u) of one cell (one direction)."""
    u = cell.units
    kernel = cell.kernel.detach().cpu().numpy()
    recurrent = cell.recurrent_kernel.detach().cpu().numpy()
    g = cell.gates
    if cell.use_bias:
        bias = cell.bias.detach().cpu().numpy()
        if isinstance(cell, GRUCell) and cell.reset_after:
            b_in, b_rec = bias[0], bias[1]
        else:  # one Keras bias: all of it on the input side
            b_in, b_rec = bias, np.zeros_like(bias)
    else:
        b_in = b_rec = np.zeros(g * u, dtype=kernel.dtype)
    if isinstance(cell, LSTMCell):

        def reorder(a):
            return np.concatenate([a[..., k * u : (k + 1) * u] for k in _LSTM_ORDER], axis=-1)

        kernel, recurrent, b_in, b_rec = reorder(kernel), reorder(recurrent), reorder(b_in), reorder(b_rec)
    return kernel.T[None], recurrent.T[None], np.concatenate([b_in, b_rec])[None]


def _flip_time(g: _Graph, x: str) -> str:
    """Reverse axis 1 of a batch-first tensor (a Slice with step -1)."""
    big = np.iinfo(np.int64).max
    return g.op("Slice", [x, g.const(np.array([-1]), "start"), g.const(np.array([-big]), "end"),
                          g.const(np.array([1]), "axis"), g.const(np.array([-1]), "step")])


def _check_recurrent(layer, where: str):
    if type(layer.cell) not in (SimpleRNNCell, GRUCell, LSTMCell):
        raise ValueError(
            f"{where}: layer {layer.name!r} runs a {type(layer.cell).__name__}; only SimpleRNN, GRU and LSTM "
            "cells map to ONNX operators"
        )
    if layer.return_state:
        raise ValueError(f"{where}: layer {layer.name!r} has return_state=True; the exported graph has one output")
    if layer.stateful:
        raise ValueError(
            f"{where}: layer {layer.name!r} is stateful (it carries its state from call to call); an ONNX graph "
            "is stateless. Export a copy with stateful=False"
        )
    return layer.cell


def _recurrent(g: _Graph, layer: RNN, x: str, where: str, realign: bool = False) -> str:
    """One recurrent layer on batch-first ``x``: its output as rnnkit returns it.

    ``realign``: the sequence output goes back into time order (what
    ``Bidirectional`` does with its backward half).
    """
    cell = _check_recurrent(layer, where)
    if isinstance(cell, SimpleRNNCell):
        op, fns = "RNN", [cell.activation]
    elif isinstance(cell, GRUCell):
        op, fns = "GRU", [cell.recurrent_activation, cell.activation]
    else:
        op, fns = "LSTM", [cell.recurrent_activation, cell.activation, cell.activation]
    attrs = _activation_attrs(_activation_names(layer, fns, where), layer, where)
    if isinstance(cell, GRUCell):
        attrs["linear_before_reset"] = int(cell.reset_after)
    W, R, B = _weights(cell)
    outputs = 3 if op == "LSTM" else 2
    y, y_h = g.op(
        op,
        [g.op("Transpose", [x], perm=[1, 0, 2]), g.const(W, "W"), g.const(R, "R"), g.const(B, "B")],
        outputs=outputs,
        hidden_size=cell.units,
        direction="reverse" if layer.go_backwards else "forward",
        **attrs,
    )[:2]
    if not layer.return_sequences:  # the last step processed: h after the whole sequence
        return g.op("Squeeze", [y_h, g.const(np.array([0]), "axes")])
    # Y is (time, 1, batch, units) in time order; Keras returns go_backwards outputs in processing order.
    y = g.op("Transpose", [g.op("Squeeze", [y, g.const(np.array([1]), "axes")])], perm=[1, 0, 2])
    return _flip_time(g, y) if layer.go_backwards != realign else y


# ------------------------------------------------------------------ layers


def _dense_activation(g: _Graph, y: str, fn, where: str) -> str:
    name = activation_name(fn)
    simple = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "elu": "Elu", "selu": "Selu",
              "softsign": "Softsign", "softplus": "Softplus", "exponential": "Exp"}
    if name == "linear":
        return y
    if name in simple:
        return g.op(simple[name], [y])
    if name == "softmax":
        return g.op("Softmax", [y], axis=-1)
    if name == "hard_sigmoid":
        return g.op("HardSigmoid", [y], alpha=_HARD_SIGMOID[0], beta=_HARD_SIGMOID[1])
    if name in ("swish", "silu"):
        return g.op("Mul", [y, g.op("Sigmoid", [y])])
    if name == "relu6":
        return g.op("Clip", [y, g.const(np.float32(0.0), "zero"), g.const(np.float32(6.0), "six")])
    if name == "gelu":  # exact GELU (torch's default): x * (1 + erf(x / sqrt 2)) / 2
        erf = g.op("Erf", [g.op("Div", [y, g.const(np.float32(np.sqrt(2.0)), "sqrt2")])])
        half = g.op("Mul", [y, g.const(np.float32(0.5), "half")])
        return g.op("Mul", [half, g.op("Add", [erf, g.const(np.float32(1.0), "one")])])
    raise ValueError(f"{where}: activation {name or fn!r} has no ONNX form here")


def _layer(g: _Graph, layer, x: str, where: str) -> str:
    if isinstance(layer, RNN):
        return _recurrent(g, layer, x, where)
    if isinstance(layer, Bidirectional):
        if layer.merge_mode is None:
            raise ValueError(f"{where}: Bidirectional {layer.name!r} has merge_mode=None (two outputs); the graph has one")
        y_f = _recurrent(g, layer.forward_layer, x, where)
        y_b = _recurrent(g, layer.backward_layer, x, where, realign=layer.return_sequences)
        if layer.merge_mode == "concat":
            return g.op("Concat", [y_f, y_b], axis=-1)
        if layer.merge_mode == "sum":
            return g.op("Add", [y_f, y_b])
        if layer.merge_mode == "mul":
            return g.op("Mul", [y_f, y_b])
        return g.op("Div", [g.op("Add", [y_f, y_b]), g.const(np.float32(2.0), "two")])  # "ave"
    if isinstance(layer, Dense):
        y = g.op("MatMul", [x, g.const(layer.kernel.detach().cpu().numpy(), "kernel")])
        if layer.bias is not None:
            y = g.op("Add", [y, g.const(layer.bias.detach().cpu().numpy(), "bias")])
        return _dense_activation(g, y, layer.activation, where)
    if isinstance(layer, TimeDistributed):
        if not isinstance(layer.layer, (Dense, Dropout)):
            raise ValueError(
                f"{where}: TimeDistributed({type(layer.layer).__name__}) is not exported; only Dense and Dropout "
                "(which act on the last axis of every step anyway)"
            )
        return _layer(g, layer.layer, x, where)
    if isinstance(layer, Dropout):
        return x  # inference graph: dropout is the identity
    if isinstance(layer, Masking) or (isinstance(layer, Embedding) and layer.mask_zero):
        raise ValueError(
            f"{where}: {type(layer).__name__} {layer.name!r} masks time steps; masks are not exported (ONNX's "
            "operators only know right-padding lengths). Export the model without masking and feed unpadded "
            "sequences, or run it in rnnkit"
        )
    if isinstance(layer, Sequential):  # a nested stack: its layers in line
        for i, sub in enumerate(layer.layers):
            x = _layer(g, sub, x, f"{where}.layers[{i}]")
        return x
    if isinstance(layer, Embedding):
        return g.op("Gather", [g.const(layer.embeddings.detach().cpu().numpy(), "embeddings"), x], axis=0)
    raise ValueError(
        f"{where}: {type(layer).__name__} is not exported; export_onnx knows SimpleRNN, GRU, LSTM, Bidirectional, "
        "Dense, TimeDistributed(Dense), Dropout and Embedding"
    )


# ------------------------------------------------------------------- entry


def _example(model, example_input):
    """``(layers, example)`` with the example checked: onnxruntime aborts the process on some inputs
    (a batch of 0), so nothing reaches it that rnnkit has not checked first."""
    layers = list(model.layers) if isinstance(model, Sequential) else [model]
    try:
        x = example_input if isinstance(example_input, torch.Tensor) else torch.as_tensor(np.asarray(example_input))
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"example_input: expected a tensor or an array, got {type(example_input).__name__} ({e})") from None
    if layers and isinstance(layers[0], Embedding):
        if x.dim() != 2 or x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"example_input: expected integer token ids (batch, time), got {x.dtype} {tuple(x.shape)}")
        x = x.long()
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= layers[0].input_dim):
            raise ValueError(f"example_input: expected token ids in [0, {layers[0].input_dim}), got "
                             f"min {int(x.min())}, max {int(x.max())}")
    elif x.dim() != 3 or x.dtype != torch.float32:
        raise ValueError(
            f"example_input: expected a float32 tensor (batch, time, features), got {x.dtype} {tuple(x.shape)}"
        )
    elif not bool(torch.isfinite(x).all()):
        raise ValueError("example_input: expected finite values (the check compares outputs), got NaN or infinity")
    if 0 in x.shape:
        raise ValueError(f"example_input: expected at least one sample, one time step and one feature, got shape "
                         f"{tuple(x.shape)}")
    return layers, x


def _check_tolerance(tolerance, check) -> None:
    if not isinstance(check, bool):
        raise TypeError(f"check: expected True or False, got {type(check).__name__}")
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool):
        raise TypeError(f"tolerance: expected a number, got {type(tolerance).__name__}")
    if not 0 <= tolerance < float("inf"):
        raise ValueError(f"tolerance: expected a finite number >= 0, got {tolerance}")


def _run_rnnkit(model, x):
    """The model's output in eval mode (no dropout), on the model's device."""
    param = first_parameter(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x if param is None else x.to(param.device))
    finally:
        model.train(was_training)


def _other_input(x: torch.Tensor, vocabulary: int | None) -> torch.Tensor:
    """A random input of another batch size and length than ``x``, for the check."""
    gen = torch.Generator().manual_seed(0)
    shape = (x.shape[0] + 2, x.shape[1] + 3, *x.shape[2:])
    if vocabulary is not None:
        return torch.randint(0, vocabulary, shape, generator=gen)
    return torch.randn(shape, generator=gen) * x.std().clamp(min=1.0)


def export_onnx(model, path, example_input, *, check: bool = True, tolerance: float = 1e-5):
    """Write ``model`` as an ONNX graph (opset 17) with dynamic batch and time axes.

    Args:
        model: a ``Sequential`` of SimpleRNN/GRU/LSTM (any activations ONNX's
            operators take, both GRU variants, ``go_backwards``,
            ``return_sequences`` either way), ``Bidirectional`` (any merge
            mode but None), ``Dense``, ``TimeDistributed(Dense)``, ``Dropout``
            (the identity: the graph is for inference) and a first
            ``Embedding``; or one such layer.
        path: the ``.onnx`` file to write (replaced atomically).
        example_input: a (batch, time, features) float32 tensor, or (batch,
            time) token ids for an Embedding model. It builds a lazy model and
            gives the feature size; batch and time stay dynamic.
        check: run the graph with onnxruntime (when installed) on the example
            and on an input of another batch size and length, and refuse to
            write it if any output differs from rnnkit's by more than
            ``tolerance``.

    The graph's input is ``"input"`` (batch, time, features) and its output
    ``"output"``: (batch, time, units) or (batch, units), as ``model`` returns.
    Masking, stateful layers and ``return_state`` raise ``ValueError``.

    >>> import rnnkit as rk, tempfile
    >>> model = rk.Sequential([rk.LSTM(16, return_sequences=True, input_size=8), rk.Dense(1)])
    >>> proto = export_onnx(model, tempfile.mkdtemp() + "/model.onnx", torch.randn(2, 10, 8))
    >>> [n.op_type for n in proto.graph.node if n.op_type == "LSTM"]
    ['LSTM']
    """
    _check_tolerance(tolerance, check)
    layers, x = _example(model, example_input)
    onnx = _onnx()
    if not layers:
        raise ValueError("model: the Sequential has no layers")
    for p in model.parameters():
        if p.dtype != torch.float32:
            raise ValueError(f"model: has {p.dtype} weights; the graph runs float32: export model.float()")
    expected = _run_rnnkit(model, x)  # builds a lazy model, then gives the reference output

    g = _Graph(onnx)
    y = "input"
    for i, layer in enumerate(layers):
        y = _layer(g, layer, y, f"model.layers[{i}]" if isinstance(model, Sequential) else "model")
    g.nodes.append(onnx.helper.make_node("Identity", [y], ["output"]))

    TP = onnx.TensorProto
    in_dtype = TP.INT64 if x.dtype == torch.long else TP.FLOAT
    in_shape = ["batch", "time", *x.shape[2:]]
    out_shape = ["batch", "time", *expected.shape[2:]] if expected.dim() == 3 else ["batch", *expected.shape[1:]]
    graph = onnx.helper.make_graph(
        g.nodes, getattr(model, "name", "rnnkit"),
        [onnx.helper.make_tensor_value_info("input", in_dtype, in_shape)],
        [onnx.helper.make_tensor_value_info("output", TP.FLOAT, out_shape)],
        initializer=g.constants,
    )
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], producer_name="rnnkit")
    proto.ir_version = 8  # the IR of opset 17, so older runtimes read it
    onnx.checker.check_model(proto, full_check=True)

    if check:
        vocabulary = layers[0].input_dim if isinstance(layers[0], Embedding) else None
        _check_with_onnxruntime(proto, model, [(x, expected), (_other_input(x, vocabulary), None)], tolerance)
    atomic_write(path, proto.SerializeToString())
    return proto


def _check_with_onnxruntime(proto, model, cases, tolerance: float) -> None:
    try:
        import onnxruntime
    except ImportError:
        return  # nothing to check with; the graph passed onnx's checker
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for x, expected in cases:
        if expected is None:
            expected = _run_rnnkit(model, x)
        (got,) = session.run(["output"], {"input": x.cpu().numpy()})
        err = float(np.abs(got - expected.cpu().numpy()).max())
        if not err <= tolerance:
            raise RuntimeError(
                f"export_onnx: onnxruntime's output differs from rnnkit's by {err:.3g} > tolerance {tolerance} "
                f"on an input of shape {tuple(x.shape)}; the file was not written. Please report this model"
            )
