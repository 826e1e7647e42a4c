"""``torch.nn.RNN``/``GRU``/``LSTM`` <-> rnnkit layers, number for number.

Both libraries compute the same recurrences; only the weight layout differs.
For layer ``k`` and direction ``d`` (``_reverse`` suffix for the backward one)
torch stores ``weight_ih_l{k}`` (g*u, in), ``weight_hh_l{k}`` (g*u, u) and two
biases ``bias_ih_l{k}``, ``bias_hh_l{k}`` (g*u,); rnnkit (Keras) stores
``kernel`` (in, g*u), ``recurrent_kernel`` (u, g*u) and one bias::

    kernel           = weight_ih.T
    recurrent_kernel = weight_hh.T
    bias             = bias_ih + bias_hh          (SimpleRNN, LSTM)
    bias             = [bias_ih; bias_hh]  (2, 3u)  (GRU, reset_after=True)

Gate blocks: the LSTM's are i, f, g(=c), o in both. The GRU's are r, z, n in
torch and z, r, h in Keras, so the first two blocks swap. torch's GRU is
Keras's ``reset_after=True`` variant: ``n = tanh(x W_n + b_in + r * (h U_n + b_hn))``.

The torch -> rnnkit direction adds the two biases of an RNN/LSTM (Keras has
one), so the outputs agree to float32 rounding (~1e-7), not bit for bit.
rnnkit -> torch puts the bias in ``bias_ih`` and zeros in ``bias_hh``, so
rnnkit -> torch -> rnnkit gives back the very same arrays.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..cells import Cell, GRUCell, LSTMCell, SimpleRNNCell, swap_gru_gates
from ..layers import GRU, LSTM, Bidirectional, Dropout, SimpleRNN
from ..model import Sequential
from ..ops import activation_name, first_parameter
from ..rnn import RNN

_LAYER_OF = {nn.RNN: SimpleRNN, nn.GRU: GRU, nn.LSTM: LSTM}  # torch module class -> rnnkit layer class


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


# ------------------------------------------------------------- torch -> rnnkit


def _keras_weights(module: nn.RNNBase, layer: int, suffix: str) -> list[np.ndarray]:
    """Keras-order arrays of one direction of one torch layer."""
    is_gru = isinstance(module, nn.GRU)

    def get(name):
        return _numpy(getattr(module, f"{name}_l{layer}{suffix}"))

    kernel, recurrent = get("weight_ih").T, get("weight_hh").T
    if is_gru:
        kernel, recurrent = swap_gru_gates(kernel), swap_gru_gates(recurrent)
    weights = [np.ascontiguousarray(kernel), np.ascontiguousarray(recurrent)]
    if module.bias:
        b_ih, b_hh = get("bias_ih"), get("bias_hh")
        if is_gru:
            weights.append(np.stack([swap_gru_gates(b_ih), swap_gru_gates(b_hh)]))
        else:
            weights.append(b_ih + b_hh)
    return weights


def from_torch(module: nn.Module) -> Sequential:
    """An rnnkit ``Sequential`` computing what ``module`` computes.

    ``module``: a ``torch.nn.RNN`` (tanh or relu), ``GRU`` or ``LSTM`` with any
    ``num_layers``, ``bidirectional``, ``batch_first``, ``bias`` and
    ``dropout``. Each torch layer becomes one rnnkit layer with
    ``return_sequences=True`` (wrapped in ``Bidirectional(merge_mode="concat")``
    when bidirectional); torch's dropout between layers becomes a
    ``Dropout(module.dropout)`` layer between them (the same per-element
    dropout of the layer outputs, active in training only).

    rnnkit is batch-first: ``model(x)`` takes (batch, time, features)
    whatever ``module.batch_first`` is, and returns torch's ``output`` in
    batch-first order. For a ``batch_first=False`` module pass
    ``x.transpose(0, 1)``. The final states torch returns as ``h_n`` (and
    ``c_n``) are the recurrent layers' states (``return_state=True``).

    The weights are copied: the two models do not share parameters. The
    rnnkit model takes the module's dtype, device and train/eval mode.

    >>> lstm = torch.nn.LSTM(4, 8, num_layers=2, batch_first=True)
    >>> model = from_torch(lstm)
    >>> x = torch.randn(3, 5, 4)
    >>> bool(torch.allclose(model(x), lstm(x)[0], atol=1e-6))
    True
    """
    layer_class = _LAYER_OF.get(type(module))
    if layer_class is None:
        raise TypeError(
            f"module: expected a torch.nn.RNN, torch.nn.GRU or torch.nn.LSTM, got {type(module).__name__}"
        )
    if getattr(module, "proj_size", 0) > 0:
        raise ValueError(
            f"module: LSTM with proj_size={module.proj_size} projects h_t to a smaller size after every step; "
            "rnnkit's LSTM has no projection (Keras has none either), so it cannot be converted"
        )
    param = first_parameter(module)
    cell_kwargs = {"use_bias": module.bias}
    if isinstance(module, nn.RNN):
        cell_kwargs["activation"] = module.nonlinearity  # "tanh" or "relu", the same names in rnnkit
    elif isinstance(module, nn.LSTM):
        cell_kwargs["unit_forget_bias"] = False  # the bias is copied from torch, not initialised

    model = Sequential()
    input_size = module.input_size
    for k in range(module.num_layers):
        if k > 0 and module.dropout > 0:
            model.add(Dropout(module.dropout))
        forward = layer_class(module.hidden_size, return_sequences=True, input_size=input_size, **cell_kwargs)
        forward.set_weights(_keras_weights(module, k, ""))
        if module.bidirectional:
            backward = layer_class(
                module.hidden_size, return_sequences=True, go_backwards=True, input_size=input_size, **cell_kwargs
            )
            backward.set_weights(_keras_weights(module, k, "_reverse"))
            model.add(Bidirectional(forward, merge_mode="concat", backward_layer=backward))
        else:
            model.add(forward)
        input_size = module.hidden_size * (2 if module.bidirectional else 1)
    return model.to(device=param.device, dtype=param.dtype).train(module.training)


# ------------------------------------------------------------- rnnkit -> torch


def _check_cell(layer: RNN, where: str) -> Cell:
    """The layer's built-in cell, if torch.nn can run it; otherwise a ValueError saying why."""
    cell = layer.cell
    if type(cell) not in (SimpleRNNCell, GRUCell, LSTMCell):
        raise ValueError(
            f"{where}: layer {layer.name!r} runs a {type(cell).__name__}; only SimpleRNN, GRU and LSTM cells "
            "have a torch.nn counterpart"
        )
    if not cell.built:
        raise ValueError(f"{where}: layer {layer.name!r} is not built yet; call it once on data or give input_size")
    act = activation_name(cell.activation)
    if isinstance(cell, SimpleRNNCell):
        if act not in ("tanh", "relu"):
            raise ValueError(
                f"{where}: layer {layer.name!r} has activation={act or cell.activation!r}; torch.nn.RNN has only "
                "nonlinearity='tanh' or 'relu'"
            )
    else:
        rec = activation_name(cell.recurrent_activation)
        if act != "tanh" or rec != "sigmoid":
            raise ValueError(
                f"{where}: layer {layer.name!r} has activation={act or cell.activation!r}, "
                f"recurrent_activation={rec or cell.recurrent_activation!r}; torch.nn.{type(cell).__name__[:-4]} "
                "is fixed to activation='tanh', recurrent_activation='sigmoid'"
            )
    if isinstance(cell, GRUCell) and not cell.reset_after:
        raise ValueError(
            f"{where}: layer {layer.name!r} has reset_after=False (reset gate applied before the recurrent "
            "matmul); torch.nn.GRU computes only the reset_after=True variant"
        )
    if cell.dropout or cell.recurrent_dropout:
        raise ValueError(
            f"{where}: layer {layer.name!r} has dropout={cell.dropout}, recurrent_dropout={cell.recurrent_dropout}; "
            "torch.nn has no per-sequence input/recurrent dropout. For inference, set layer.cell.dropout and "
            "layer.cell.recurrent_dropout to 0.0 (they only act in training) and convert again"
        )
    if layer.return_state:
        raise ValueError(
            f"{where}: layer {layer.name!r} has return_state=True; torch.nn modules always return "
            "(output, h_n): convert a layer with return_state=False and read h_n"
        )
    return cell


def _torch_weights(cell: Cell) -> dict[str, np.ndarray]:
    """weight_ih, weight_hh, bias_ih, bias_hh (torch layout) of one direction."""
    kernel, recurrent = _numpy(cell.kernel), _numpy(cell.recurrent_kernel)
    if isinstance(cell, GRUCell):
        kernel, recurrent = swap_gru_gates(kernel), swap_gru_gates(recurrent)
    out = {"weight_ih": kernel.T, "weight_hh": recurrent.T}
    if cell.use_bias:
        bias = _numpy(cell.bias)
        if isinstance(cell, GRUCell):
            out["bias_ih"] = swap_gru_gates(bias[0])
            out["bias_hh"] = swap_gru_gates(bias[1])
        else:
            out["bias_ih"], out["bias_hh"] = bias, np.zeros_like(bias)
    return out


def _directions(layer, where: str) -> list[Cell]:
    """[forward cell] or [forward cell, backward cell] of one stack entry."""
    if isinstance(layer, Bidirectional):
        if layer.merge_mode != "concat":
            raise ValueError(
                f"{where}: Bidirectional {layer.name!r} has merge_mode={layer.merge_mode!r}; a bidirectional "
                "torch module concatenates the two directions (merge_mode='concat')"
            )
        fwd, bwd = layer.forward_layer, layer.backward_layer
        if fwd.go_backwards or not bwd.go_backwards:
            raise ValueError(
                f"{where}: Bidirectional {layer.name!r} has a forward layer with go_backwards=True; torch runs "
                "the first direction forwards in time"
            )
        # to_torch checks that both directions agree on kind, size and activation.
        return [_check_cell(fwd, where), _check_cell(bwd, where)]
    if isinstance(layer, RNN):
        if layer.go_backwards:
            raise ValueError(
                f"{where}: layer {layer.name!r} has go_backwards=True; a torch module runs forwards only "
                "(torch's bidirectional modules have the backward direction only alongside a forward one)"
            )
        return [_check_cell(layer, where)]
    raise ValueError(
        f"{where}: {type(layer).__name__} {getattr(layer, 'name', '')!r} has no place in a torch.nn RNN module; "
        "expected SimpleRNN, GRU, LSTM or Bidirectional layers, with Dropout layers between them"
    )


def _stack(layer) -> tuple[list[tuple[str, object]], set[float]]:
    """(where, layer) of each recurrent layer of ``layer``, and the dropout rates between them."""
    if not isinstance(layer, Sequential):
        return [("layer", layer)], set()
    entries, rates, pending = [], set(), None
    for i, sub in enumerate(layer.layers):
        if isinstance(sub, Dropout):
            if not entries:
                raise ValueError(
                    f"layer.layers[{i}]: Dropout before the first recurrent layer; torch.nn applies dropout "
                    "only between layers"
                )
            pending = sub.rate
            continue
        if entries:
            rates.add(pending or 0.0)
        pending = None
        entries.append((f"layer.layers[{i}]", sub))
    if pending is not None:
        raise ValueError("layer: the Sequential ends with Dropout; torch.nn applies dropout only between layers")
    if not entries:
        raise ValueError("layer: the Sequential has no recurrent layers")
    return entries, rates


def to_torch(layer) -> nn.RNNBase:
    """A ``torch.nn.RNN``/``GRU``/``LSTM`` (``batch_first=True``) with ``layer``'s weights.

    ``layer``: a built ``SimpleRNN``/``GRU``/``LSTM``, a
    ``Bidirectional(merge_mode="concat")`` of one, or a ``Sequential`` of such
    layers of one kind and size (a stack, ``num_layers`` of them) with
    optional ``Dropout`` layers of one rate between them (torch's
    ``dropout``). Configurations torch.nn cannot compute raise a
    ``ValueError`` that says why: other activations, GRU with
    ``reset_after=False``, ``go_backwards`` outside ``Bidirectional``, cell
    dropout, other layers in the stack.

    torch returns ``(output, h_n)`` (``(output, (h_n, c_n))`` for an LSTM);
    ``output`` is rnnkit's ``return_sequences=True`` output. A last layer
    with ``return_sequences=False`` outputs ``output[:, -1]`` (unidirectional)
    or ``torch.cat([h_n[-2], h_n[-1]], -1)`` (bidirectional).

    >>> gru = GRU(8, return_sequences=True, input_size=4)
    >>> module = to_torch(gru)
    >>> x = torch.randn(3, 5, 4)
    >>> bool(torch.allclose(module(x)[0], gru(x), atol=1e-6))
    True
    """
    entries, rates = _stack(layer)
    directions = [_directions(e, where) for where, e in entries]
    if len(rates) > 1:
        raise ValueError(f"layer: the dropout between layers differs ({sorted(rates)}); a torch module has one rate")
    for where, e in entries[:-1]:
        if not e.return_sequences:
            raise ValueError(
                f"{where}: {e.name!r} has return_sequences=False but feeds another recurrent layer; "
                "in a torch stack every layer passes its whole sequence on"
            )
    first = directions[0][0]
    n_dirs = len(directions[0])
    for k, ((where, _), cells) in enumerate(zip(entries, directions)):
        if len(cells) != n_dirs:
            raise ValueError(f"{where}: mixes bidirectional and unidirectional layers; a torch module is one or the other")
        for c in cells:
            if type(c) is not type(first) or c.units != first.units or c.use_bias != first.use_bias:
                raise ValueError(
                    f"{where}: {type(c).__name__}(units={c.units}, use_bias={c.use_bias}) differs from the "
                    f"first layer's {type(first).__name__}(units={first.units}, use_bias={first.use_bias}); a torch "
                    "module has one kind, one hidden_size and one bias setting for all layers"
                )
            if isinstance(c, SimpleRNNCell) and c.activation is not first.activation:
                raise ValueError(f"{where}: activations differ across the stack; torch.nn.RNN has one nonlinearity")
            if k > 0 and c.input_size != n_dirs * first.units:
                raise ValueError(
                    f"{where}: built for {c.input_size} input features, but the layer below outputs "
                    f"{n_dirs * first.units}"
                )

    torch_class = {SimpleRNNCell: nn.RNN, GRUCell: nn.GRU, LSTMCell: nn.LSTM}[type(first)]
    kwargs = {
        "input_size": first.input_size,
        "hidden_size": first.units,
        "num_layers": len(entries),
        "bias": first.use_bias,
        "batch_first": True,
        "dropout": rates.pop() if rates else 0.0,
        "bidirectional": len(directions[0]) == 2,
    }
    if torch_class is nn.RNN:
        kwargs["nonlinearity"] = activation_name(first.activation)
    param = first.kernel
    module = torch_class(**kwargs).to(device=param.device, dtype=param.dtype)
    with torch.no_grad():
        for k, cells in enumerate(directions):
            for cell, suffix in zip(cells, ("", "_reverse")):
                for name, value in _torch_weights(cell).items():
                    getattr(module, f"{name}_l{k}{suffix}").copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return module.train(layer.training)
