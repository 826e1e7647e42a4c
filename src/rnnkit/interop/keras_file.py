"""Read Keras 3 model files as data: nothing in them is imported or run.

A ``.keras`` file is a zip archive with ``config.json`` (the architecture),
``model.weights.h5`` (the arrays) and ``metadata.json``. Keras rebuilds a
model by importing whatever ``module``/``class_name`` the config names, and
it once ran the bytecode of ``Lambda`` layers; both led to code execution
from a file (CVE-2024-3660, CVE-2025-1550). Here the config is only JSON:
each layer's ``class_name`` must be one of the few Keras layers rnnkit has
(``KERAS_LAYERS``) and is mapped by hand to the rnnkit class; anything else,
a ``Lambda``, a custom or registered object, a model nested in a model, is a
``ValueError`` that names it. Each layer's dtype policy is kept (``_policy``:
``"mixed_bfloat16"`` becomes its ``dtype=``; a policy rnnkit lacks is refused).

A ``Functional`` model becomes an ``rnnkit.Model``: its graph is rebuilt by
calling the layers on ``rk.Input`` tensors as its ``inbound_nodes`` say
(``_functional``), each node's tensors checked to name a layer and call the
config has, and a graph that never completes (a cycle) refused. The ops
Keras records for masks are read as expressions, never run, and each call's
``mask`` must be the one rnnkit passes it by itself (``keras_masks``).

The weights file holds one group per layer, named by Keras after the
layer's *class*, not its name: ``layers/<snake_case(class)>[_<k>]`` with a
counter per class, in layer order, so ``[LSTM, LSTM, Dense]`` gives
``layers/lstm``, ``layers/lstm_1``, ``layers/dense``. Inside, ``vars/0``,
``vars/1``, ... are the layer's weights in Keras order; recurrent layers keep
them under ``cell/vars``, ``Bidirectional`` under ``forward_layer/`` and
``backward_layer/``, ``TimeDistributed`` under ``layer/``. The arrays are
already in rnnkit's layout (rnnkit uses Keras's), so they load unchanged.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
import zlib
from typing import Any

import numpy as np
import torch

from ..activation import Activation
from ..files import Limits, check_limits, loads_json, open_regular, over_limit, read_fd
from ..functional import Model
from ..graph import leaves
from ..keras_save import keras_layer_order
from ..layers import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Input,
    Masking,
    RepeatVector,
    Rescaling,
    SimpleRNN,
    TimeDistributed,
    _parse_dtype,
)
from ..merging import MERGES
from ..mixed_precision import POLICIES
from ..model import Sequential
from ..normalization import LayerNormalization
from ..ops import ACTIVATIONS
from ..pooling import DATA_FORMATS, GlobalAveragePooling1D, GlobalMaxPooling1D
from ..rnn import RNN
from ..spatial_dropout import SpatialDropout1D
from .keras_masks import Expressions, expected, is_op, read_op

#: The Keras class names ``load_keras`` understands. Every other one is refused.
KERAS_LAYERS = (
    "Sequential", "InputLayer", "SimpleRNN", "GRU", "LSTM", "Bidirectional",
    "Dense", "TimeDistributed", "Masking", "Dropout", "Embedding", "RepeatVector", "Flatten",
    "Concatenate", "Add", "Subtract", "Multiply", "Average", "Dot",
    "GlobalAveragePooling1D", "GlobalMaxPooling1D", "LayerNormalization", "Activation", "SpatialDropout1D", "Rescaling",
)

_POOLINGS = {"GlobalAveragePooling1D": GlobalAveragePooling1D, "GlobalMaxPooling1D": GlobalMaxPooling1D}

def _h5py():
    try:
        import h5py
    except ImportError as e:  # h5py is an optional extra
        raise ImportError("load_keras needs h5py to read Keras weights: pip install 'rnnkit[interop]'") from e
    return h5py


def _snake(class_name: str) -> str:
    """Keras's ``naming.to_snake_case``, which names the weight groups."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# ------------------------------------------------------------ config -> layers


def _check_objects(obj: Any, where: str) -> None:
    """Refuse any serialized object that is not one of Keras's own.

    Keras writes built-in objects (initializers, regularizers, the dtype
    policy) as ``{"module": "keras.<x>", "class_name": ..., "registered_name":
    null}``; custom ones carry their own module or a registered name.
    rnnkit ignores initializers, regularizers and constraints (the weights
    come from the file, and they only act in training), but a custom one
    means the model is not what rnnkit would compute, so it is refused.
    """
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            _check_objects(item, f"{where}[{i}]")
    elif isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":  # a reference to a tensor of the graph, not an object
            _history(obj, where)
            return
        if "class_name" in obj:
            class_name, module, registered = obj["class_name"], obj.get("module"), obj.get("registered_name")
            builtin = isinstance(module, str) and (module == "keras" or module.startswith("keras."))
            if not builtin or registered not in (None, class_name):
                raise ValueError(
                    f"{where}: {class_name!r} (module={module!r}, registered_name={registered!r}) is not a "
                    "built-in Keras object; load_keras reads only Keras's own layers and never imports code from a file"
                )
            if module == "keras.layers" and class_name not in KERAS_LAYERS:
                raise _unsupported(class_name, where)
        for key, value in obj.items():
            _check_objects(value, f"{where}.{key}")


def _unsupported(class_name, where: str) -> ValueError:
    return ValueError(
        f"{where}: layer class {class_name!r} is not supported; load_keras reads only {', '.join(KERAS_LAYERS)} "
        "(nothing from the file is imported or executed)"
    )


def _layer_spec(spec: Any, where: str) -> tuple[str, dict]:
    """(class_name, config) of one serialized layer, after the allow-list checks."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) or not isinstance(spec.get("config"), dict):
        raise ValueError(f"{where}: expected a layer {{'class_name': str, 'config': dict}}, got {str(spec)[:80]!r}")
    name = spec["class_name"]
    if name not in KERAS_LAYERS:
        raise _unsupported(name, where)
    module, registered = spec.get("module"), spec.get("registered_name")
    if module not in ("keras", "keras.layers") or registered not in (None, name):
        raise ValueError(
            f"{where}: layer {name!r} comes from module={module!r}, registered_name={registered!r}; only Keras's "
            "own layers (module 'keras.layers') are read"
        )
    _check_objects(spec["config"], f"{where}.config")
    if not isinstance(spec["config"].get("name", ""), (str, type(None))):  # it becomes the rnnkit layer's name
        raise ValueError(f"{where}.config.name: expected a string, got {str(spec['config']['name'])[:80]!r}")
    return name, spec["config"]


_REQUIRED = object()


def _get(cfg: dict, key: str, kind: type, where: str, default=_REQUIRED):
    """``cfg[key]`` checked to be exactly ``kind`` (JSON gives bool, int, float, str); null means ``default``."""
    if cfg.get(key) is None:
        if default is _REQUIRED:
            raise ValueError(f"{where}.{key}: missing; expected {kind.__name__}")
        return default
    value = cfg[key]
    if kind is float and type(value) is int:
        value = float(value)
    if type(value) is not kind:
        raise ValueError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _activation(cfg: dict, key: str, where: str) -> str:
    value = cfg.get(key, "linear")
    if value is None:
        return "linear"
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise ValueError(
            f"{where}.{key}: activation {value!r} is not supported; rnnkit has {sorted(ACTIVATIONS)}"
        )
    return value


def _policy_name(value, cfg: dict, where: str) -> str | None:
    """The name of the dtype policy a layer config's ``dtype`` holds, checked to be one rnnkit has; None if absent."""
    if value is None:
        return None
    if isinstance(value, dict):
        inner = value.get("config")
        if value.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy") or not isinstance(inner, dict):
            raise ValueError(f"{where}.dtype: layer {str(cfg.get('name'))[:40]!r} has the dtype policy "
                             f"{str(value.get('class_name'))[:40]!r}; rnnkit reads only DTypePolicy "
                             f"(names {', '.join(POLICIES)})")
        value = inner.get("name")
    if not isinstance(value, str) or value not in POLICIES:
        raise ValueError(f"{where}.dtype: layer {str(cfg.get('name'))[:40]!r} has the dtype policy "
                         f"{str(value)[:40]!r}, which rnnkit does not have; it has {', '.join(POLICIES)}")
    return value


def _is_mixed(config) -> bool:
    """Whether some layer of a Keras config has a dtype policy other than float32 (say "mixed_bfloat16").

    Tensors' dtypes (an ``InputLayer``'s, a call's ``__keras_tensor__``) are not policies and are skipped.
    """
    if isinstance(config, list):
        return any(_is_mixed(item) for item in config)
    if not isinstance(config, dict) or config.get("class_name") in ("InputLayer", "__keras_tensor__"):
        return False
    policy = config.get("dtype")
    if isinstance(policy, dict) and isinstance(policy.get("config"), dict):
        policy = policy["config"].get("name")
    if isinstance(policy, str) and policy in POLICIES and policy != "float32":
        return True
    return any(_is_mixed(v) for k, v in config.items() if k not in ("dtype", "inbound_nodes"))


def _policy(cfg: dict, where: str, mixed: bool = False) -> str | None:
    """The ``dtype=`` a layer's Keras dtype policy asks for, which must be one rnnkit has
    (``mixed_precision.POLICIES``): its name, or None for float32 in a model without other policies
    (the layer stays as rnnkit makes it). In a ``mixed`` model a float32 layer keeps "float32", so
    that it takes the bfloat16 outputs of the layer before as Keras does (cast to float32).

    Keras 3 writes ``{"module": "keras", "class_name": "DTypePolicy", "config": {"name": ...}}``
    (``FloatDTypePolicy`` in Keras 3.4 and 3.5, a bare name before); a quantized policy, or a dtype
    rnnkit does not compute in (``"bfloat16"`` weights), is refused.
    """
    name = _policy_name(cfg.get("dtype"), cfg, where)
    return None if name is None or (name == "float32" and not mixed) else name


def _recurrent(class_name: str, cfg: dict, input_size: int, where: str, mixed: bool = False) -> RNN:
    kwargs = {
        "units": _get(cfg, "units", int, where),
        "activation": _activation(cfg, "activation", where),
        "use_bias": _get(cfg, "use_bias", bool, where, True),
        "dropout": _get(cfg, "dropout", float, where, 0.0),
        "recurrent_dropout": _get(cfg, "recurrent_dropout", float, where, 0.0),
        "seed": _get(cfg, "seed", int, where, None),
        "input_size": input_size,
        "dtype": _policy(cfg, where, mixed),
    }
    for flag in ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask"):
        kwargs[flag] = _get(cfg, flag, bool, where, False)
    if class_name in ("GRU", "LSTM"):
        kwargs["recurrent_activation"] = _activation(cfg, "recurrent_activation", where)
    if class_name == "GRU":
        kwargs["reset_after"] = _get(cfg, "reset_after", bool, where, True)
    if class_name == "LSTM":
        kwargs["unit_forget_bias"] = _get(cfg, "unit_forget_bias", bool, where, True)
    return {"SimpleRNN": SimpleRNN, "GRU": GRU, "LSTM": LSTM}[class_name](name=cfg.get("name"), **kwargs)


def _output_size(layer, input_size: int | None) -> int | None:
    """The features a layer gives the next one; None for a Flatten (it multiplies axes this walk does not track)."""
    if isinstance(layer, Flatten):
        return None
    if isinstance(layer, RNN):
        return layer.units
    if isinstance(layer, Bidirectional):
        units = layer.forward_layer.units
        return 2 * units if layer.merge_mode == "concat" else units
    if isinstance(layer, Dense):
        return layer.units
    if isinstance(layer, TimeDistributed):
        return _output_size(layer.layer, input_size)
    if isinstance(layer, Embedding):
        return layer.output_dim
    if isinstance(layer, (GlobalAveragePooling1D, GlobalMaxPooling1D)) and layer.data_format == "channels_first":
        return None  # the features were axis 1, which this walk does not track
    return input_size  # Masking, Dropout, a pooling over channels_last steps, LayerNormalization, Activation ...


def _number(cfg: dict, key: str, where: str, default=_REQUIRED) -> float:
    """``cfg[key]``, a finite JSON number (an int is taken as a float)."""
    value = _get(cfg, key, float, where, default)
    if value is not None and not abs(value) < float("inf"):
        raise ValueError(f"{where}.{key}: expected a finite number, got {value!r}")
    return value


def _layer_normalization(cfg: dict, shape: tuple | None, where: str, dtype, limits: Limits) -> LayerNormalization:
    """A ``LayerNormalization`` built for ``shape`` (the input without the batch axis, as far as known);
    its weights (the normalized axes' sizes multiplied) at most ``limits.max_size``."""
    axis = cfg.get("axis", -1)
    if not (type(axis) is int or (isinstance(axis, list) and axis and all(type(a) is int for a in axis))):
        raise ValueError(f"{where}.axis: expected an int or a list of ints, got {str(axis)[:80]!r}")
    if cfg.get("rms_scaling", False) is not False:
        raise ValueError(f"{where}.rms_scaling: {cfg['rms_scaling']!r} is not supported (Keras deprecated it); "
                         "expected false")
    axes = [axis] if type(axis) is int else axis
    rank = len(shape) + 1 if shape else 0
    if not shape or not all(-rank <= a < rank and a % rank and shape[a % rank - 1] is not None for a in axes):
        raise ValueError(f"{where}: the file gives no size for LayerNormalization's axis {axis} (input shape "
                         f"{None if shape is None else [None, *shape]}); save the Keras model after building it")
    size = 1
    for a in axes:
        size *= shape[a % rank - 1]
    if size > limits.max_size:
        raise ValueError(f"{where}: LayerNormalization {str(cfg.get('name'))[:40]!r} over axis {axis} of input shape {[None, *shape]} has weights of "
                         f"{size} values, more than Limits.max_size={limits.max_size}")
    epsilon = _number(cfg, "epsilon", where, 1e-3)
    if epsilon < 0:
        raise ValueError(f"{where}.epsilon: expected a number >= 0, got {epsilon!r}")
    return LayerNormalization(axis, epsilon=epsilon, center=_get(cfg, "center", bool, where, True),
                              scale=_get(cfg, "scale", bool, where, True), input_shape=shape, name=cfg.get("name"),
                              dtype=dtype)


def _build_layer(class_name: str, cfg: dict, input_size: int | None, where: str, pair: bool = False,
                 shape: tuple | None = None, mixed: bool = False, limits: Limits | None = None):
    """The rnnkit layer for one Keras layer config, built for ``input_size`` features.

    ``pair``: a functional model, where a Bidirectional may return its two
    halves (``merge_mode=None``); a Sequential cannot pass two tensors on.
    ``shape``: the whole input shape without the batch axis, when the file
    gives it (a ``LayerNormalization`` over other axes than the last needs it,
    its weights bounded by ``limits``).
    Each layer takes the config's dtype policy (``_policy``; ``mixed``: the model has layers under
    other policies than float32).
    """
    name, dtype = cfg.get("name"), _policy(cfg, where, mixed)
    if class_name == "Embedding":
        return Embedding(
            _get(cfg, "input_dim", int, where), _get(cfg, "output_dim", int, where),
            mask_zero=_get(cfg, "mask_zero", bool, where, False), name=name, dtype=dtype,
        )
    if class_name == "RepeatVector":
        return RepeatVector(_get(cfg, "n", int, where), name=name, dtype=dtype)
    if class_name == "Flatten":
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise ValueError(f"{where}.data_format: {cfg['data_format']!r} is not supported (rnnkit's Flatten keeps "
                             "the axes in order: 'channels_last')")
        return Flatten(name=name, dtype=dtype)
    if class_name in _POOLINGS:
        data_format = cfg.get("data_format")
        if data_format is not None and data_format not in DATA_FORMATS:
            raise ValueError(f"{where}.data_format: expected one of {DATA_FORMATS}, got {str(data_format)[:40]!r}")
        return _POOLINGS[class_name](data_format, _get(cfg, "keepdims", bool, where, False), name=name, dtype=dtype)
    if class_name == "Activation":
        return Activation(_activation(cfg, "activation", where), name=name, dtype=dtype)
    if class_name == "SpatialDropout1D":
        return SpatialDropout1D(_number(cfg, "rate", where), seed=_get(cfg, "seed", int, where, None), name=name,
                                dtype=dtype)
    if class_name == "Rescaling":  # Keras also takes a list per channel; rnnkit's Rescaling has one number
        return Rescaling(_number(cfg, "scale", where), _number(cfg, "offset", where, 0.0), name=name, dtype=dtype)
    if class_name == "LayerNormalization":
        if input_size is not None and (shape is None or shape[-1] is None):
            shape = (*(shape or (None,))[:-1], input_size)
        return _layer_normalization(cfg, shape, where, dtype, check_limits(limits))
    if input_size is None:
        raise ValueError(
            f"{where}: the file gives no input shape for {class_name} (no InputLayer and no build_config); "
            "save the Keras model after building it"
        )
    if class_name in ("SimpleRNN", "GRU", "LSTM"):
        return _recurrent(class_name, cfg, input_size, where)
    if class_name == "Bidirectional":
        merge_mode = cfg.get("merge_mode", "concat")
        if merge_mode not in ("concat", "sum", "mul", "ave") and not (pair and merge_mode is None):
            raise ValueError(
                f"{where}.merge_mode: expected 'concat', 'sum', 'mul', 'ave'"
                + (" or null" if pair else f", got {merge_mode!r}; null returns two tensors, which a Sequential "
                   "cannot pass on")
            )
        halves = []
        for key in ("layer", "backward_layer"):
            sub_name, sub_cfg = _layer_spec(cfg.get(key), f"{where}.{key}")
            if sub_name not in ("SimpleRNN", "GRU", "LSTM"):
                raise ValueError(f"{where}.{key}: Bidirectional wraps SimpleRNN, GRU or LSTM here, got {sub_name!r}")
            halves.append(_recurrent(sub_name, sub_cfg, input_size, f"{where}.{key}", mixed))
        return Bidirectional(halves[0], merge_mode=merge_mode, backward_layer=halves[1], name=name, dtype=dtype)
    if class_name == "Dense":
        return Dense(
            _get(cfg, "units", int, where), activation=_activation(cfg, "activation", where),
            use_bias=_get(cfg, "use_bias", bool, where, True), input_size=input_size, name=name, dtype=dtype,
        )
    if class_name == "TimeDistributed":
        sub_name, sub_cfg = _layer_spec(cfg.get("layer"), f"{where}.layer")
        if sub_name not in ("Dense", "Dropout"):
            raise ValueError(f"{where}.layer: TimeDistributed wraps Dense or Dropout here, got {sub_name!r}")
        return TimeDistributed(_build_layer(sub_name, sub_cfg, input_size, f"{where}.layer", mixed=mixed), name=name,
                               dtype=dtype)
    if class_name == "Masking":
        return Masking(_get(cfg, "mask_value", float, where, 0.0), name=name, dtype=dtype)
    if class_name == "Dropout":
        if cfg.get("noise_shape") is not None:
            raise ValueError(f"{where}.noise_shape: {cfg['noise_shape']!r} is not supported (rnnkit's Dropout is per element)")
        return Dropout(_get(cfg, "rate", float, where), seed=_get(cfg, "seed", int, where, None), name=name,
                       dtype=dtype)
    raise ValueError(f"{where}: {class_name} cannot appear here")  # InputLayer / Sequential inside a layer


def _flat_layers(cfg: dict, prefix: str, where: str, entries: list) -> None:
    """Append (class_name, config, weights path, where, spec) for each layer of a Sequential config.

    A Sequential inside a Sequential computes what its layers computed in
    line, so it is flattened; its weights sit under its own group.
    """
    layers = cfg.get("layers")
    if not isinstance(layers, list):
        raise ValueError(f"{where}.layers: expected a list of layers, got {type(layers).__name__}")
    counters: dict[str, int] = {}
    for i, spec in enumerate(layers):
        class_name, layer_cfg = _layer_spec(spec, f"{where}.layers[{i}]")
        if class_name == "InputLayer":
            entries.append((class_name, layer_cfg, None, f"{where}.layers[{i}]", spec))
            continue
        group = _snake(class_name)
        counters[group] = counters.get(group, -1) + 1
        path = f"{prefix}layers/{group}" + (f"_{counters[group]}" if counters[group] else "")
        if class_name == "Sequential":
            _flat_layers(layer_cfg, f"{path}/", f"{where}.layers[{i}]", entries)
        else:
            entries.append((class_name, layer_cfg, path, f"{where}.layers[{i}]", spec))


def _input_shape(class_name: str, cfg: dict, spec: dict, where: str):
    """The per-sample input shape an InputLayer or a layer's build_config records, or None."""
    if class_name == "InputLayer":
        shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    else:
        build = spec.get("build_config")
        shape = build.get("input_shape") if isinstance(build, dict) else None
    if shape is None:
        return None
    if not isinstance(shape, list) or len(shape) < 2 or not all(d is None or isinstance(d, int) for d in shape):
        raise ValueError(f"{where}: expected an input shape [batch, ...] of ints or null, got {shape!r}")
    return tuple(shape[1:])


def model_from_config(config: dict, trace: bool = True, limits: Limits | None = None,
                      ) -> tuple[Sequential | Model, list[tuple[Any, str]]]:
    """An rnnkit Sequential (or Model, for a ``Functional``) from a Keras ``config.json``, and the
    weights path of each layer.

    ``trace``: build the model once over the recorded input shape (for its
    summary); off for the shape check on the meta device. ``limits``
    (``rnnkit.files.Limits``) bounds a functional graph's layers and calls
    by ``max_tensors``.
    """
    if isinstance(config, dict) and config.get("class_name") == "Functional":
        if config.get("module") not in ("keras.src.models.functional", "keras.models", "keras") or \
                config.get("registered_name") not in (None, "Functional"):
            raise ValueError(f"config.json: 'Functional' from module={config.get('module')!r}, registered_name="
                             f"{config.get('registered_name')!r}; only Keras's own Functional is read")
        if not isinstance(config.get("config"), dict):
            raise ValueError("config.json.config: expected the Functional's config, a dict")
        return _functional(config["config"], "config.json.config", check_limits(limits))
    class_name, cfg = _layer_spec(config, "config.json")
    if class_name != "Sequential":
        raise ValueError(f"config.json: the model is a {class_name!r}; load_keras reads Sequential and Functional models")
    entries: list = []
    _flat_layers(cfg, "", "config.json", entries)
    mixed = _is_mixed(cfg.get("layers"))
    model = Sequential(name=cfg.get("name"))
    paths = []
    shape = None
    features = None
    for class_name, layer_cfg, path, where, spec in entries:
        if features is None:  # the first layer, or one after a Flatten: the input shape Keras built it for
            own = _input_shape(class_name, layer_cfg, spec, where)
            features = own[-1] if own else None
            shape = shape or own
        if class_name == "InputLayer":
            continue
        layer = _build_layer(class_name, layer_cfg, features, where,
                             shape=_input_shape(class_name, layer_cfg, spec, where), mixed=mixed, limits=limits)
        model.add(layer)
        paths.append((layer, path))
        features = _output_size(layer, features)
    if not paths:
        raise ValueError("config.json: the Sequential has no layers")
    if trace and shape is not None and all(d is not None for d in shape):
        model.build(shape)  # the summary's output shapes
    return model, paths


# ------------------------------------------------------------ functional


def _history(obj: dict, where: str) -> tuple[str, int, int]:
    """``(layer name, node index, tensor index)`` of a ``__keras_tensor__`` reference, checked to be plain data."""
    cfg = obj.get("config")
    history = cfg.get("keras_history") if isinstance(cfg, dict) else None
    if not (isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)
            and all(type(k) is int and k >= 0 for k in history[1:])):
        raise ValueError(f"{where}: a __keras_tensor__ needs config.keras_history = [layer name, node index, "
                         f"tensor index], got {str(cfg)[:120]!r}")
    return history[0], history[1], history[2]


def _is_ref(obj) -> bool:
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _refs(obj) -> list:
    """Every ``__keras_tensor__`` in a node's arguments."""
    if _is_ref(obj):
        return [obj]
    if isinstance(obj, list):
        return [r for o in obj for r in _refs(o)]
    if isinstance(obj, dict):
        return [r for o in obj.values() for r in _refs(o)]
    return []


def _merge(class_name: str, cfg: dict, where: str, mixed: bool):
    """A Keras merge layer: its axis arguments checked, nothing else taken from the config."""
    kwargs: dict = {"name": cfg.get("name")}
    if class_name == "Concatenate":
        kwargs["axis"] = _get(cfg, "axis", int, where, -1)
    if class_name == "Dot":
        axes = cfg.get("axes")
        if not (type(axes) is int or (isinstance(axes, list) and len(axes) == 2 and all(type(a) is int for a in axes))):
            raise ValueError(f"{where}.axes: expected an int or a list of two ints, got {axes!r}")
        kwargs.update(axes=axes, normalize=_get(cfg, "normalize", bool, where, False))
    return MERGES[class_name](dtype=_policy(cfg, where, mixed), **kwargs)


def _functional(cfg: dict, where: str, limits: Limits) -> tuple[Model, list[tuple[Any, str]]]:
    """An rnnkit ``Model`` from a Keras 3 Functional config, and the weights path of each layer.

    Layers come in the config's order, which is the order Keras writes their
    weight groups in. A call's ``training`` argument is dropped, and so is its
    ``mask``, once checked to be the mask rnnkit passes that call by itself
    (``keras_masks``: the ops Keras records for masks are read, never run).
    """
    specs = cfg.get("layers")
    if not isinstance(specs, list) or not specs:
        raise ValueError(f"{where}.layers: expected a non-empty list of layers, got {str(specs)[:80]!r}")
    count = sum(1 + len(s["inbound_nodes"]) if isinstance(s, dict) and isinstance(s.get("inbound_nodes"), list) else 1
                for s in specs)
    if count > limits.max_tensors:
        raise ValueError(f"{where}: {count} layers and calls, more than Limits.max_tensors={limits.max_tensors}")
    mixed = _is_mixed(specs)
    built: dict[str, Any] = {}     # name -> rnnkit layer, or an Input tensor
    calls: dict[str, list] = {}    # name -> its inbound nodes
    ops: dict[str, int] = {}       # mask op name -> its expression (keras_masks)
    exprs = Expressions()
    inputs: dict[str, Any] = {}    # InputLayer name -> its tensor
    paths, counters = [], {}
    for i, spec in enumerate(specs):
        at = f"{where}.layers[{i}]"
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or name in built or name in ops:
            raise ValueError(f"{at}.name: expected a layer name used once in the model, got {name!r}")
        if is_op(spec):
            ops[name] = read_op(spec, at, _history, ops, built, exprs)
            continue
        class_name, layer_cfg = _layer_spec(spec, at)
        nodes = spec.get("inbound_nodes", [])
        if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
            raise ValueError(f"{at}.inbound_nodes: expected a list of {{'args': [...], 'kwargs': {{...}}}}")
        _check_objects(nodes, f"{at}.inbound_nodes")
        if class_name in ("Sequential", "Functional"):
            raise ValueError(f"{at}: a model inside a functional model is not read; load_keras reads its layers "
                             "only when they are the model's own")
        if class_name == "InputLayer":
            shape = _input_shape(class_name, layer_cfg, spec, at)
            batch = layer_cfg.get("batch_shape", [None])
            if shape is None:
                raise ValueError(f"{at}.config.batch_shape: missing")
            if nodes:
                raise ValueError(f"{at}.inbound_nodes: an InputLayer is called by nothing, got {str(nodes)[:80]!r}")
            inputs[name] = Input(shape, _parse_dtype(layer_cfg.get("dtype")), name, batch[0])
            built[name] = inputs[name].node.layer
        elif class_name in MERGES:
            built[name] = _merge(class_name, layer_cfg, at, mixed)
        else:
            first = _refs(nodes[0].get("args")) if nodes else []
            shape = first[0]["config"].get("shape") if first else None
            known = isinstance(shape, list) and len(shape) > 1 and all(d is None or type(d) is int for d in shape)
            features = shape[-1] if known and type(shape[-1]) is int else None
            built[name] = _build_layer(class_name, layer_cfg, features, at, pair=True,
                                       shape=tuple(shape[1:]) if known else None, mixed=mixed, limits=limits)
        calls[name] = nodes
        group = _snake(class_name)
        counters[group] = counters.get(group, -1) + 1
        paths.append((built[name], "layers/" + group + (f"_{counters[group]}" if counters[group] else "")))

    def check(ref, at):  # every reference names a layer's existing call before anything is built
        layer, node, _ = _history(ref, at)
        if layer in ops:
            return
        if layer not in built:
            raise ValueError(f"{at}: names layer {layer!r}, which the model's config does not have")
        if node >= (len(calls[layer]) if layer not in inputs else 1):
            raise ValueError(f"{at}: names call {node} of layer {layer!r}, which has {len(calls[layer])} calls")

    for name, nodes in calls.items():
        for k, node in enumerate(nodes):
            for key in node.get("kwargs") or {}:
                if key not in ("initial_state", "mask", "training"):
                    raise ValueError(f"{where}: layer {name!r} inbound_nodes[{k}].kwargs.{key}: not read (only "
                                     "initial_state, mask and training)")
            for ref in _refs([node.get("args"), node.get("kwargs")]):
                check(ref, f"{where}: layer {name!r} inbound_nodes[{k}]")
    made: dict[tuple[str, int], list] = {(n, 0): [t] for n, t in inputs.items()}
    keys = {id(t): (n, 0, 0) for n, t in inputs.items()}  # symbolic tensor -> its (layer, node, index)

    def tensor(ref):
        layer, node, index = _history(ref, where)
        if layer in ops:
            raise ValueError(f"{where}: reads the output of op {layer!r}, which is read only as a mask")
        outputs = made[(layer, node)]
        if index >= len(outputs):
            raise ValueError(f"{where}: names tensor {index} of layer {layer!r} call {node}, which makes {len(outputs)}")
        return outputs[index]

    def resolve(obj, at):
        if _is_ref(obj):
            return tensor(obj)
        if isinstance(obj, list) and obj:
            return [resolve(o, at) for o in obj]
        raise ValueError(f"{at}: expected tensors or lists of tensors, got {str(obj)[:80]!r}")

    def check_mask(ref, args, at):
        """The mask a call names must be the one rnnkit passes it: its first input's."""
        if not _is_ref(ref):
            raise ValueError(f"{at}.kwargs.mask: expected a tensor or null, got {str(ref)[:80]!r}")
        layer, node, index = _history(ref, at)
        recorded = ops[layer] if layer in ops and node == index == 0 else exprs.tensor((layer, node, index))
        first = leaves(args[0]) if args else []
        mask = first[0].mask if first else None
        if recorded != expected(mask, lambda t: keys[id(t)], exprs):
            passed = "none" if mask is None else f"the mask of layer {mask.node.layer.name!r}"
            raise ValueError(
                f"{at}.kwargs.mask: names {layer!r}, which is not the mask rnnkit passes this call ({passed}); the "
                "masks read are those Keras records for Embedding(mask_zero=True), Masking and merges of masked inputs"
            )

    # Calls in an order where each reads only tensors made before it (Kahn's): what is left is a cycle.
    waits_on = {(n, k): {(h[0], h[1]) for h in (_history(r, where) for r in _refs([node.get("args"), node.get("kwargs")]))
                         if h[0] not in ops and h[0] not in inputs}
                for n, nodes in calls.items() for k, node in enumerate(nodes)}
    readers: dict[tuple, list] = {}
    for key, deps in waits_on.items():
        for dep in deps:
            readers.setdefault(dep, []).append(key)
    ready = [key for key, deps in waits_on.items() if not deps]
    while ready:
        name, k = key = ready.pop()
        node, at = calls[name][k], f"{where}: layer {name!r} inbound_nodes[{k}]"
        kwargs = dict(node.get("kwargs") or {})
        if not isinstance(kwargs.pop("training", None), (bool, type(None))):
            raise ValueError(f"{at}.kwargs.training: expected a bool or null")
        mask = kwargs.pop("mask", None)
        args = resolve(node.get("args"), f"{at}.args")
        if mask is not None:
            check_mask(mask, args, at)
        kwargs = {key: resolve(v, f"{at}.kwargs.{key}") for key, v in kwargs.items()}
        made[(name, k)] = leaves(built[name](*args, **kwargs))
        keys.update((id(t), (name, k, i)) for i, t in enumerate(made[(name, k)]))
        for reader in readers.get((name, k), []):
            waits_on[reader].discard((name, k))
            if not waits_on[reader]:
                ready.append(reader)
    stuck = sorted({n for (n, k), deps in waits_on.items() if deps})
    if stuck:
        raise ValueError(f"{where}: the calls of {stuck} wait on each other's outputs (a cycle in inbound_nodes); "
                         "a functional model is acyclic")

    def is_ref(r):
        return isinstance(r, list) and len(r) == 3 and isinstance(r[0], str) and all(type(v) is int for v in r[1:])

    def pick(refs, key):
        """The tensors ``refs`` names, in its structure: a [layer, node, tensor] reference, or lists and
        dicts of them, nested (Keras 3's nested inputs and outputs)."""
        if is_ref(refs):
            if (refs[0], refs[1]) not in made or refs[2] >= len(made[(refs[0], refs[1])]):
                raise ValueError(f"{where}.{key}: {refs!r} names no tensor the model makes")
            return made[(refs[0], refs[1])][refs[2]]
        if isinstance(refs, dict) and refs:
            return {k: pick(r, f"{key}.{k}") for k, r in refs.items()}
        if isinstance(refs, list) and refs:
            return [pick(r, f"{key}[{i}]") for i, r in enumerate(refs)]
        raise ValueError(f"{where}.{key}: expected [layer, node, tensor] references (in lists or dicts), "
                         f"got {str(refs)[:80]!r}")

    def top(refs, key):  # as Keras 3, a list of one tensor is that tensor
        out = pick(refs, key)
        return out[0] if isinstance(out, list) and len(out) == 1 and not isinstance(out[0], (list, dict)) else out

    inputs, outputs = top(cfg.get("input_layers"), "input_layers"), top(cfg.get("output_layers"), "output_layers")
    name = cfg.get("name")
    return Model(inputs, outputs, name=name if isinstance(name, str) else None), paths


# ------------------------------------------------------------------- weights


def _keras_paths(model) -> list[tuple[Any, str]]:
    """(layer, weights path) for an rnnkit model, as Keras would name the groups (a functional
    model's in Keras's layer order, ``keras_save.keras_layer_order``)."""
    if not isinstance(model, (Sequential, Model)):
        raise TypeError(f"model: expected an rnnkit Sequential or Model, got {type(model).__name__}")
    out, counters = [], {}
    for layer in model.layers if isinstance(model, Sequential) else keras_layer_order(model):
        class_name = type(layer).__name__
        if class_name not in KERAS_LAYERS or isinstance(layer, Model):
            raise ValueError(f"model: {class_name} has no Keras counterpart whose weights load_keras could read")
        group = _snake(class_name)
        counters[group] = counters.get(group, -1) + 1
        path = "layers/" + group + (f"_{counters[group]}" if counters[group] else "")
        if isinstance(layer, Sequential):
            out += [(sub, f"{path}/{sub_path}") for sub, sub_path in _keras_paths(layer)]
        else:
            out.append((layer, path))
    return out


def _vars_groups(layer, path: str) -> list[tuple[Any, str]]:
    """(layer owning weights, h5 group holding its vars/0, vars/1, ...)."""
    if isinstance(layer, RNN):
        return [(layer, f"{path}/cell/vars")]
    if isinstance(layer, Bidirectional):
        return [(layer.forward_layer, f"{path}/forward_layer/cell/vars"), (layer.backward_layer, f"{path}/backward_layer/cell/vars")]
    if isinstance(layer, TimeDistributed):
        return _vars_groups(layer.layer, f"{path}/layer")
    return [(layer, f"{path}/vars")]


def _read_array(group, key: str, where: str) -> np.ndarray:
    """One dataset, after its shape was checked (``_load_weights``) and its storage (``_check_layout``)."""
    ds = group[key]
    if ds.dtype.kind != "f":
        raise ValueError(f"weights: {where}/{key}: expected floating-point weights, got dtype {ds.dtype}")
    return np.asarray(ds[()])


def _load_weights(h5, paths: list[tuple[Any, str]], read: bool = True) -> None:
    """Copy every layer's vars from the open h5 file; every weighted group must be used.

    With ``read=False`` only the groups, names and shapes are checked (for a
    model built on the meta device, before the real one is built).
    """
    h5py = _h5py()
    used = set()
    for layer, path in paths:
        for owner, vars_path in _vars_groups(layer, path):
            expected = owner.weights
            group = h5.get(vars_path)
            if group is None:
                if not expected:
                    continue
                layers = h5.get("layers")
                raise ValueError(
                    f"weights: no group {vars_path!r} for layer {owner.name!r} ({type(owner).__name__}); the file "
                    f"has layers {sorted(layers.keys()) if isinstance(layers, h5py.Group) else []}"
                )
            if not isinstance(group, h5py.Group):
                raise ValueError(f"weights: {vars_path!r} is a {type(group).__name__}; expected a group of vars")
            keys = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else -1)
            if keys != [str(i) for i in range(len(expected))]:
                raise ValueError(
                    f"weights: {vars_path!r} holds {keys[:20]} but layer {owner.name!r} ({type(owner).__name__}) has "
                    f"{len(expected)} weights {[tuple(w.shape) for w in expected]}"
                )
            for k, w in zip(keys, expected):
                if not isinstance(group[k], h5py.Dataset) or tuple(group[k].shape) != tuple(w.shape):
                    raise ValueError(f"weights: {vars_path}/{k}: layer {owner.name!r} ({type(owner).__name__}) "
                                     f"expects shape {tuple(w.shape)}, the file has {getattr(group[k], 'shape', None)}")
            if read:
                arrays = [_read_array(group, k, vars_path) for k in keys]
                try:
                    owner.set_weights(arrays)
                except ValueError as e:
                    raise ValueError(f"weights: {vars_path!r}: {e}") from e
            used.add(vars_path)
    # Weights the model did not take mean the file describes another model.
    unused = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and name.startswith("layers/") and name.endswith("/vars") and name not in used:
            if len(obj):
                unused.append(name)

    h5.visititems(visit)
    if unused:
        raise ValueError(f"weights: the file has weights under {unused[:20]}, which the model has no layer for")


def _check_layout(h5, where: str, limits: Limits) -> int:
    """Walk the whole HDF5 file before reading any data; the largest dimension of a non-empty dataset.

    Every link must be a hard link inside the file (a soft or external link,
    on a group or a dataset, is refused before it is followed); every object
    a group or a numeric dataset stored in the file (not virtual, no
    external storage) within ``limits``: object count, rank, bytes, and
    chunks no bigger than the dataset (a reader allocates a whole chunk).
    """
    h5py = _h5py()
    largest, count = 0, 0
    todo = [(h5, "", 0)]
    while todo:
        group, name, depth = todo.pop()
        if depth > 32:
            raise ValueError(f"{where}: the HDF5 group {name or '/'} nests more than 32 levels deep")
        for key in group:
            path = f"{name}/{key}"
            count += 1
            if count > limits.max_tensors:
                raise ValueError(f"{where}: the HDF5 file holds more than Limits.max_tensors={limits.max_tensors} "
                                 "groups and datasets")
            link = group.get(key, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise ValueError(f"{where}: {path}: is a {type(link).__name__}; only groups and datasets stored in "
                                 "the file are read")
            obj = group[key]
            if isinstance(obj, h5py.Group):
                todo.append((obj, path, depth + 1))
                continue
            if not isinstance(obj, h5py.Dataset):
                raise ValueError(f"{where}: {path} is a {type(obj).__name__}; expected a group or a dataset")
            if obj.is_virtual or obj.external:
                raise ValueError(f"{where}: {path} keeps its data outside the file (virtual or external); refused")
            if obj.dtype.kind not in "fiub" or obj.dtype.itemsize > 8:
                raise ValueError(f"{where}: {path} has dtype {obj.dtype}; expected numbers")
            shape = tuple(obj.shape or ())
            if len(shape) > limits.max_rank:
                raise ValueError(f"{where}: {path} has {len(shape)} dimensions, more than Limits.max_rank={limits.max_rank}")
            nbytes = obj.dtype.itemsize * int(np.prod(shape, dtype=object))
            if nbytes > limits.max_file_bytes:
                raise ValueError(f"{where}: {path} declares shape {shape} ({nbytes} bytes), more than "
                                 f"Limits.max_file_bytes={limits.max_file_bytes}")
            if obj.chunks is not None and any(c > max(d, 1) for c, d in zip(obj.chunks, shape)):
                raise ValueError(f"{where}: {path} has chunks {obj.chunks} larger than its shape {shape}")
            if nbytes:
                largest = max(largest, *shape)
    return largest


_SIZE_KEYS = ("units", "input_dim", "output_dim")


def _check_sizes(config, largest: int, limits: Limits) -> None:
    """Every size in a Keras config within ``limits`` and backed by a dimension of a non-empty dataset.

    As in ``load_model``: a 2 kB file must not make the loader build a
    20000-unit layer, or trace a billion time steps.
    """
    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in _SIZE_KEYS and type(v) is int and (v > limits.max_size or v > largest):
                    raise ValueError(f"{where}.{k}: {v} is more than Limits.max_size={limits.max_size} or than any "
                                     f"non-empty weight in the file (largest dimension {largest})")
                if k in ("batch_shape", "batch_input_shape", "input_shape") and isinstance(v, list):
                    if len(v) > 1 and type(v[1]) is int and v[1] > limits.max_steps:
                        raise ValueError(f"{where}.{k}: {v[1]} time steps is more than Limits.max_steps="
                                         f"{limits.max_steps} a loaded model may trace")
                    if len(v) > 2 and type(v[-1]) is int and (v[-1] > limits.max_size or v[-1] > largest):
                        raise ValueError(f"{where}.{k}: {v[-1]} features is more than Limits.max_size="
                                         f"{limits.max_size} or than any non-empty weight in the file ({largest})")
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    walk(config, "config.json")


# ----------------------------------------------------------------- the entry


def _open_h5(source, where: str):
    h5py = _h5py()
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as e:
        raise ValueError(f"{where}: not a readable HDF5 file ({e})") from None


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, limits: Limits, limit_name: str) -> bytes:
    """One member's bytes, refusing one whose declared or inflated size is over ``limits.<limit_name>``."""
    limit = getattr(limits, limit_name)
    if info.file_size > limit:
        raise over_limit(f"path: {path!r}: {info.filename}", "the archive", info.file_size, limits, limit_name)
    chunks, total = [], 0
    with archive.open(info) as f:
        while total <= limit:  # streamed: a member that inflates past its declared size stops here
            chunk = f.read(min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    if total > limit:
        raise over_limit(f"path: {path!r}: {info.filename}", "the archive", total, limits, limit_name)
    return b"".join(chunks)


def _read_archive(path: str, limits: Limits) -> tuple[dict, bytes]:
    """``(config, weights bytes)`` of a ``.keras`` archive, each member within ``limits`` before it is read."""
    fd = open_regular(path, "path", inside=False)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(fd).st_size
        if size > limits.max_file_bytes:
            raise over_limit("path", path, size, limits, "max_file_bytes")
        try:
            archive = zipfile.ZipFile(f)
        except zipfile.BadZipFile as e:
            raise ValueError(f"path: {path!r} is not a .keras (zip) archive: {e}") from None
        with archive:
            infos = archive.infolist()
            if len(infos) > limits.max_tensors:
                raise ValueError(f"path: {path!r} holds {len(infos)} members, more than Limits.max_tensors="
                                 f"{limits.max_tensors}")
            members = {}
            for info in infos:
                if info.filename in members:
                    raise ValueError(f"path: {path!r} holds {info.filename!r} twice; a Keras file holds each member once")
                members[info.filename] = info
            for required in ("config.json", "model.weights.h5"):
                if required not in members:
                    raise ValueError(f"path: {path!r} has no {required} (it holds {sorted(members)[:20]}); expected a "
                                     "Keras 3 .keras file")
            if "metadata.json" in members:
                meta = _json(archive, members["metadata.json"], path, limits)
                version = meta.get("keras_version") if isinstance(meta, dict) else None
                if isinstance(version, str) and not version.startswith("3."):
                    raise ValueError(f"path: {path!r} was written by Keras {version}; load_keras reads the Keras 3 format")
            config = _json(archive, members["config.json"], path, limits)
            weights = _member(archive, members["model.weights.h5"], path, limits, "max_file_bytes")
    return config, weights


def _json(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, limits: Limits):
    data = _member(archive, info, path, limits, "max_json_bytes")
    try:
        return loads_json(data, info.filename, "in the archive", limits)
    except ValueError as e:
        raise ValueError(f"path: {path!r}: {info.filename} is not valid JSON: {e}") from None


# What a damaged archive or HDF5 file raises from zipfile, zlib and h5py; each becomes a ValueError naming the file.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, RuntimeError, KeyError,
                IndexError, AttributeError, OverflowError, RecursionError)


def load_keras(path, model: Sequential | Model | None = None, *, limits: Limits | None = None) -> Sequential | Model:
    """An rnnkit ``Sequential`` (or ``Model``, for a Keras ``Functional``) from a Keras 3 file, reading it as data only.

    Args:
        path: a ``.keras`` archive, or a ``.weights.h5`` file (then ``model``
            is required).
        model: optional rnnkit ``Sequential`` or functional ``Model`` to load
            the weights into. Its layers must follow the Keras model's classes
            and order (the file's weight groups are named after them; a
            functional model's in Keras's order by depth); shapes are checked.
        limits: ``rnnkit.files.Limits``, the bounds on what is read and built
            (archive members, datasets, units, time steps); raise them for a
            trusted file bigger than the defaults allow.

    Returns the model (built from ``config.json`` when ``model`` is None) in
    eval mode, like Keras's ``predict``; call ``.train()`` to fine-tune.
    Keras layer names are kept. Initializers, regularizers and constraints in
    the config are ignored: they do not change what a trained model computes.

    >>> import torch
    >>> model = load_keras("tests/data/keras/simple_rnn.keras")
    >>> model(torch.zeros(2, 6, 3)).shape
    torch.Size([2, 2])
    """
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    if model is not None and not isinstance(model, (Sequential, Model)):
        raise TypeError(f"model: expected an rnnkit Sequential, Model or None, got {type(model).__name__}")
    if model is not None and not all(getattr(layer, "built", True) for layer in model.layers):
        raise ValueError(
            "model: not built yet, so its weights have no shapes; give it input_shape=(time, features) "
            "or call it once on data"
        )
    limits = check_limits(limits)
    if not path.endswith((".keras", ".h5")):
        raise ValueError(f"path: expected a .keras archive or a .weights.h5 file, got {path!r}")
    if path.endswith(".h5") and model is None:
        raise ValueError(
            f"model: {path!r} holds only weights; pass the rnnkit model to load them into, "
            "e.g. load_keras(path, model=...)"
        )
    try:
        return _load(path, model, limits)
    except _READ_ERRORS as e:
        raise ValueError(f"path: {path!r} cannot be read as a Keras file ({type(e).__name__}: {e})") from None


def _load(path: str, model: Sequential | Model | None, limits: Limits) -> Sequential | Model:
    if path.endswith(".keras"):
        config, weights = _read_archive(path, limits)
        h5 = _open_h5(io.BytesIO(weights), path)
    else:
        config = None
        fd = open_regular(path, "path", inside=False)
        try:
            weights = read_fd(fd, "path", path, limits.max_file_bytes, limits, "max_file_bytes")
        finally:
            os.close(fd)
        h5 = _open_h5(io.BytesIO(weights), path)
    with h5:
        largest = _check_layout(h5, path, limits)
        if model is None:
            _check_sizes(config, largest, limits)
            # A Sequential is built first on the meta device (nothing allocated), so the file's shapes are
            # checked before the real model spends time and memory on initial weights. A functional graph
            # is traced on real zeros (an Embedding looks up ids), so it is built once, its sizes bounded
            # by _check_sizes above.
            if not (isinstance(config, dict) and config.get("class_name") == "Functional"):
                with torch.random.fork_rng(devices=[]), torch.device("meta"):
                    shadow, shadow_paths = model_from_config(config, trace=False)
                _load_weights(h5, shadow_paths, read=False)
            model, paths = model_from_config(config, limits=limits)
        else:
            paths = _keras_paths(model)
        _load_weights(h5, paths)
    return model.eval()
