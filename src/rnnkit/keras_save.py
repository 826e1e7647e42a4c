"""Write Keras 3 files from a ``Sequential`` or a functional ``Model``: ``.keras`` archives and ``.weights.h5``.

    model.save("model.keras")               # Keras 3 loads it: keras.saving.load_model("model.keras")
    model.save_weights("model.weights.h5")  # the arrays alone, in Keras's HDF5 layout
    model.load_weights("model.weights.h5")  # and back, into a model of the same layers

A ``.keras`` file is a zip archive of three members:

* ``metadata.json``: ``{"keras_version": ..., "date_saved": ...}``;
* ``config.json``: the model as Keras 3 serializes it: every object is
  ``{"module", "class_name", "config", "registered_name"}``, each layer with a
  ``build_config`` giving its input shape, the Sequential starting with an
  ``InputLayer`` (``batch_shape``), each layer's ``dtype`` its dtype policy
  (``"mixed_bfloat16"``; ``"float32"`` for a float32 layer without one).
  Only what rnnkit's layers hold is written; the rest (initializers,
  regularizers) takes Keras's defaults, which change nothing in a saved
  model since the weights come from the file;
* ``model.weights.h5``: one group per layer, named after its class
  (``layers/lstm``, ``layers/lstm_1``, ``layers/dense`` ...), its arrays as
  ``vars/0``, ``vars/1``, ... in Keras's order; a recurrent layer's under
  ``cell/vars``, ``Bidirectional``'s under ``forward_layer/`` and
  ``backward_layer/``, ``TimeDistributed``'s under ``layer/``. rnnkit keeps
  Keras's weight layout, so the arrays are written unchanged.

A functional ``Model`` is written as Keras 3's ``Functional``: its config
lists every layer (``InputLayer`` and merges included) with its
``inbound_nodes``, each call's arguments with every tensor as
``{"class_name": "__keras_tensor__", "config": {"shape", "dtype",
"keras_history": [layer, node index, tensor index]}}``, then
``input_layers`` and ``output_layers``; the weight groups are named in the
config's layer order, the ``InputLayer`` and merges holding empty ones.

Keras's own layers only: a custom activation, a custom cell or a plain
``torch.nn`` module has no Keras config, and is a ``ValueError`` naming it.
Reading ``.keras`` archives into new models is ``rnnkit.interop.load_keras``
(the config read as data only); ``load_weights_h5`` here reads weights into a
model that exists. Needs h5py (``pip install 'rnnkit[interop]'``).
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile

import numpy as np

from . import graph
from .activation import Activation
from .files import atomic_write
from .layers import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    InputLayer,
    Masking,
    RepeatVector,
    Rescaling,
    SimpleRNN,
    TimeDistributed,
)
from .merging import MERGES
from .mixed_precision import serialize
from .normalization import LayerNormalization
from .ops import activation_name
from .pooling import GlobalAveragePooling1D, GlobalMaxPooling1D
from .rnn import RNN
from .spatial_dropout import SpatialDropout1D

#: The version of the Keras file format written (the one Keras 3.15 writes and reads).
KERAS_VERSION = "3.15.1"

_RECURRENT = (SimpleRNN, GRU, LSTM)
_PLAIN = (Dense, Masking, Dropout, Embedding, RepeatVector, Flatten, GlobalAveragePooling1D, GlobalMaxPooling1D,
          LayerNormalization, Activation, SpatialDropout1D, Rescaling)
_DTYPE_POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}


def _h5py():
    try:
        import h5py
    except ImportError as e:  # h5py is an optional extra
        raise ImportError("Keras files need h5py: pip install 'rnnkit[interop]'") from e
    return h5py


def _snake(class_name: str) -> str:
    """Keras's ``to_snake_case``, which names the weight groups: ``SimpleRNN`` -> ``simple_rnn``."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# ------------------------------------------------------------------ config


def _activation(layer, fn, arg: str) -> str:
    name = activation_name(fn)
    if name is None:
        raise ValueError(f"model: layer {layer.name!r} has a custom {arg}, which a Keras file cannot name; "
                         "use one of rnnkit's named activations")
    return name


def _keras_object(layer, class_name: str, config: dict, input_shape=None) -> dict:
    # Keras writes every layer's dtype policy: the layer's own ("mixed_bfloat16"; "float64" for float64 weights).
    spec = {"module": "keras.layers", "class_name": class_name,
            "config": {"name": config.pop("name"), "trainable": True, "dtype": serialize(layer.dtype_policy), **config},
            "registered_name": None}
    if input_shape is not None:
        spec["build_config"] = {"input_shape": [None, *input_shape]}
    return spec


def _recurrent_config(layer) -> dict:
    cell = layer.cell
    cfg = {"name": layer.name}
    for flag in ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask"):
        cfg[flag] = bool(getattr(layer, flag))
    cfg.update(units=cell.units, activation=_activation(layer, cell.activation, "activation"), use_bias=cell.use_bias)
    if isinstance(layer, (GRU, LSTM)):
        cfg["recurrent_activation"] = _activation(layer, cell.recurrent_activation, "recurrent_activation")
    cfg.update(dropout=cell.dropout, recurrent_dropout=cell.recurrent_dropout, seed=cell.seed)
    if isinstance(layer, GRU):
        cfg["reset_after"] = cell.reset_after
    if isinstance(layer, LSTM):
        cfg["unit_forget_bias"] = cell.unit_forget_bias
    return cfg


def layer_config(layer, input_shape: tuple) -> dict:
    """One rnnkit layer as Keras 3 serializes it; ``input_shape`` is its input without the batch axis."""
    kind = type(layer)
    if kind in _RECURRENT:
        return _keras_object(layer, kind.__name__, _recurrent_config(layer), input_shape)
    if kind is Bidirectional:
        halves = {key: layer_config(sub, input_shape)
                  for key, sub in (("layer", layer.forward_layer), ("backward_layer", layer.backward_layer))}
        return _keras_object(layer, "Bidirectional", {"name": layer.name, "merge_mode": layer.merge_mode, **halves},
                             input_shape)
    if kind is TimeDistributed:
        inner = layer_config(layer.layer, input_shape[1:])
        return _keras_object(layer, "TimeDistributed", {"name": layer.name, "layer": inner}, input_shape)
    if kind is Dense:
        cfg = {"name": layer.name, "units": layer.units, "activation": _activation(layer, layer.activation, "activation"),
               "use_bias": layer.use_bias}
    elif kind is Masking:
        cfg = {"name": layer.name, "mask_value": layer.mask_value}
    elif kind is Dropout:
        cfg = {"name": layer.name, "rate": layer.rate, "seed": layer.seed, "noise_shape": None}
    elif kind is Embedding:
        cfg = {"name": layer.name, "input_dim": layer.input_dim, "output_dim": layer.output_dim, "mask_zero": layer.mask_zero}
    elif kind is RepeatVector:
        cfg = {"name": layer.name, "n": layer.n}
    elif kind is Flatten:
        cfg = {"name": layer.name, "data_format": "channels_last"}
    elif kind in (GlobalAveragePooling1D, GlobalMaxPooling1D):
        cfg = {"name": layer.name, "data_format": layer.data_format, "keepdims": layer.keepdims}
    elif kind is LayerNormalization:
        cfg = {"name": layer.name, "axis": layer.axis, "epsilon": layer.epsilon, "center": layer.center,
               "scale": layer.scale, "rms_scaling": False}
    elif kind is Activation:
        cfg = {"name": layer.name, "activation": _activation(layer, layer.activation, "activation")}
    elif kind is Rescaling:
        cfg = {"name": layer.name, "scale": layer.scale, "offset": layer.offset}
    elif kind is SpatialDropout1D:  # Keras's takes only these four: no "trainable"
        return {"module": "keras.layers", "class_name": "SpatialDropout1D",
                "config": {"rate": layer.rate, "seed": layer.seed, "name": layer.name,
                           "dtype": serialize(layer.dtype_policy)},
                "registered_name": None, "build_config": {"input_shape": [None, *input_shape]}}
    else:
        raise _no_counterpart(layer)
    return _keras_object(layer, kind.__name__, cfg, input_shape)


def _no_counterpart(layer) -> ValueError:
    known = ", ".join(c.__name__ for c in (*_RECURRENT, Bidirectional, TimeDistributed, *_PLAIN))
    return ValueError(f"model: {type(layer).__name__} ({getattr(layer, 'name', '')!r}) has no Keras counterpart; "
                      f"a Keras file holds only {known}")


def model_config(model) -> dict:
    """``config.json`` for a built ``Sequential`` (its input shape known)."""
    for layer in model.layers:
        if isinstance(layer, Bidirectional) and layer.merge_mode is None:
            raise ValueError(f"model: Bidirectional {layer.name!r} has merge_mode=None (two outputs), which a "
                             "Sequential cannot pass on; a functional rk.Model can")
    shapes = getattr(model, "_output_shapes", None)
    if model.input_shape is None or shapes is None:
        raise ValueError("model: its input shape is unknown, and a Keras file records it; give the first layer "
                         "input_shape=(time, features) (or Input(shape)) or call the model once on data")
    first = model.layers[0]
    inputs = {"module": "keras.layers", "class_name": "InputLayer",
              "config": {"batch_shape": [None, *model.input_shape],
                         "dtype": "int32" if isinstance(first, Embedding) else "float32",
                         "sparse": False, "ragged": False, "name": "input_layer", "optional": False},
              "registered_name": None}
    in_shapes = [tuple(model.input_shape)] + [tuple(s[1:]) for s in shapes[:-1]]
    layers = [inputs] + [layer_config(layer, shape) for layer, shape in zip(model.layers, in_shapes)]
    batch_shape = [None, *model.input_shape]
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": model.name, "trainable": True, "dtype": dict(_DTYPE_POLICY), "layers": layers,
                       "build_input_shape": batch_shape},
            "registered_name": None, "build_config": {"input_shape": batch_shape}}


def _is_merge(layer) -> bool:
    return MERGES.get(type(layer).__name__) is type(layer)


def _functional_layer(layer, node) -> dict:
    """One layer of a functional model as Keras 3 lists it, its build shape taken from its first call (``node``)."""
    if isinstance(layer, InputLayer):
        t = node.outputs[0]
        return {"module": "keras.layers", "class_name": "InputLayer",
                "config": {"batch_shape": list(t.shape), "dtype": graph.dtype_name(t.dtype), "sparse": False,
                           "ragged": False, "name": layer.name, "optional": layer.optional},
                "registered_name": None}
    shapes = [list(t.shape) for t in graph.leaves(node.args)]
    if _is_merge(layer):
        spec = _keras_object(layer, type(layer).__name__, dict(layer.get_config()))
        spec["build_config"] = {"input_shape": shapes}
        return spec
    if not shapes:
        raise ValueError(f"model: layer {layer.name!r} is called with no tensor argument, which a Keras file cannot record")
    return layer_config(layer, tuple(shapes[0][1:]))


def keras_layer_order(model) -> list:
    """``model.layers`` in the order Keras 3 gives a functional model's layers, which names the weight groups.

    Keras walks the graph back from each output (depth first, arguments in
    order), numbers each layer when first met, gives every node a depth (its
    longest distance to an output, a layer taking its deepest node's), and
    lists layers by decreasing depth, ties in walking order. Keras loads a
    file in this order whatever order its config lists, so the file is written in it.
    """
    walk, first_met, done = [], {}, set()

    def visit(t):
        node = t.node
        if id(node) in done:
            return
        first_met.setdefault(id(node.layer), len(first_met))
        for u in graph.leaves((node.args, node.kwargs)):
            visit(u)
        done.add(id(node))
        walk.append(node)

    for t in model.outputs:
        visit(t)
    node_depth, layer_depth = {}, {}
    for node in reversed(walk):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[id(node)] = depth
        for u in graph.leaves((node.args, node.kwargs)):
            node_depth[id(u.node)] = max(depth + 1, node_depth.get(id(u.node), 0))
    layers = [layer for layer in model.layers if id(layer) in layer_depth]
    unused = [layer for layer in model.layers if id(layer) not in layer_depth]  # an Input no output reads
    return sorted(layers, key=lambda m: (-layer_depth[id(m)], first_met[id(m)])) + unused


def functional_config(model) -> dict:
    """``config.json`` for a functional ``rnnkit.Model``: Keras 3's ``Functional``.

    The graph (``inbound_nodes``, ``input_layers``, ``output_layers``) is
    ``model.get_config()``'s, already in Keras 3's form; each layer's own
    config is Keras's (``layer_config``), not rnnkit's. Layers are listed in
    ``keras_layer_order``, the weights written in the same order.
    """
    own = model.get_config()
    by_layer = model._nodes_by_layer()
    specs = {id(layer): spec for layer, spec in zip(model.layers, own["layers"])}
    layers = []
    for layer in keras_layer_order(model):
        spec = specs[id(layer)]
        if not isinstance(layer, InputLayer) and not (_is_merge(layer) or type(layer) in (*_RECURRENT, Bidirectional,
                                                                                            TimeDistributed, *_PLAIN)):
            raise _no_counterpart(layer)
        entry = _functional_layer(layer, by_layer[id(layer)][0])
        entry["name"], entry["inbound_nodes"] = layer.name, spec["inbound_nodes"]
        layers.append(entry)

    def refs(value):  # Keras writes one tensor as its bare [layer, node, tensor]
        return value[0] if isinstance(value, list) and len(value) == 1 else value

    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": model.name, "trainable": True, "layers": layers,
                       "input_layers": refs(own["input_layers"]), "output_layers": refs(own["output_layers"])},
            "registered_name": "Functional", "build_config": {"input_shape": None}, "compile_config": None}


# ----------------------------------------------------------------- weights


def weight_groups(model, layers=None) -> list[tuple[object, str]]:
    """(layer owning weights, h5 group of its ``vars/i``) for every layer (``layers``: default
    ``model.layers``, in that order), named as Keras names them."""
    out, counters = [], {}
    for layer in model.layers if layers is None else layers:
        group = _snake(type(layer).__name__)
        counters[group] = counters.get(group, -1) + 1
        out += _vars_groups(layer, "layers/" + group + (f"_{counters[group]}" if counters[group] else ""))
    return out


def _vars_groups(layer, path: str) -> list[tuple[object, str]]:
    """The layer's own ``vars`` group, and its parts' (a recurrent layer's cell, a wrapper's layers)."""
    if type(layer) in _RECURRENT:
        return [(None, f"{path}/vars"), (layer, f"{path}/cell/vars")]
    if isinstance(layer, Bidirectional):
        return [(None, f"{path}/vars"), *_vars_groups(layer.forward_layer, f"{path}/forward_layer"),
                *_vars_groups(layer.backward_layer, f"{path}/backward_layer")]
    if isinstance(layer, TimeDistributed):
        return [(None, f"{path}/vars"), *_vars_groups(layer.layer, f"{path}/layer")]
    if isinstance(layer, InputLayer) or _is_merge(layer):
        return [(None, f"{path}/vars")]
    if type(layer) not in _PLAIN:
        raise _no_counterpart(layer)
    return [(layer, f"{path}/vars")]


def weights_bytes(model, layers=None) -> bytes:
    """``model.weights.h5`` in Keras's layout (empty ``vars`` groups included, as Keras writes them);
    ``layers`` as in ``weight_groups``."""
    buffer = io.BytesIO()
    with _h5py().File(buffer, "w") as h5:
        h5.create_group("vars").attrs["name"] = model.name
        h5.create_group("layers")
        for owner, path in weight_groups(model, layers):
            group = h5.create_group(path)
            if owner is None:
                continue
            group.attrs["name"] = owner.cell.name if isinstance(owner, RNN) else owner.name
            for i, w in enumerate(owner.get_weights()):
                group.create_dataset(str(i), data=np.asarray(w, dtype=np.float32))
    return buffer.getvalue()


def _read_array(h5py, group, key: str, where: str) -> np.ndarray:
    """One dataset, refusing links to other files and virtual or non-float data."""
    link = group.get(key, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise ValueError(f"{where}/{key}: is a {type(link).__name__}; only plain datasets inside the file are read")
    ds = group[key]
    if not isinstance(ds, h5py.Dataset) or ds.is_virtual or ds.external or ds.dtype.kind != "f":
        raise ValueError(f"{where}/{key}: expected floating-point weights stored in the file")
    return np.asarray(ds[()])


def load_weights_h5(model, source) -> None:
    """Copy the arrays of a Keras ``.weights.h5`` (a path or bytes) into ``model``, checking every group first.

    The model's layers must follow the saved model's classes and order (the
    groups are named after them); nothing changes unless every array fits.
    """
    h5py = _h5py()
    try:
        h5 = h5py.File(io.BytesIO(source) if isinstance(source, bytes) else source, "r")
    except OSError as e:
        raise ValueError(f"weights: not a readable HDF5 file ({e})") from e
    with h5:
        arrays = []
        for owner, path in weight_groups(model):
            if owner is None:
                continue
            expected = owner.weights
            group = h5.get(path)
            keys = sorted(group.keys()) if group is not None else []
            if sorted(keys) != sorted(str(i) for i in range(len(expected))):
                raise ValueError(f"weights: {path!r} holds {keys}, but layer {owner.name!r} ({type(owner).__name__}) "
                                 f"has {len(expected)} weights {[tuple(w.shape) for w in expected]}")
            got = [_read_array(h5py, group, str(i), path) for i in range(len(expected))]
            for i, (a, w) in enumerate(zip(got, expected)):
                if tuple(a.shape) != tuple(w.shape):
                    raise ValueError(f"weights: {path}/{i} has shape {a.shape}, layer {owner.name!r} expects {tuple(w.shape)}")
            arrays.append((owner, got))
    for owner, got in arrays:
        owner.set_weights(got)


# ----------------------------------------------------------------- archive


def keras_bytes(model, config: dict | None = None) -> bytes:
    """The ``.keras`` archive of ``model``: metadata.json, config.json and model.weights.h5.

    ``config``: the model's ``config.json`` when it is not a ``Sequential`` (``functional_config``).
    """
    layers = None if config is None else [model.get_layer(spec["name"]) for spec in config["config"]["layers"]]
    config = json.dumps(model_config(model) if config is None else config).encode()
    weights = weights_bytes(model, layers)
    meta = json.dumps({"keras_version": KERAS_VERSION, "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S")}).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in (("metadata.json", meta), ("config.json", config), ("model.weights.h5", weights)):
            archive.writestr(zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def save_keras(model, path, config: dict | None = None) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` archive at ``path``, atomically (``config`` as in ``keras_bytes``)."""
    atomic_write(path, keras_bytes(model, config))


def save_weights_h5(model, path) -> None:
    """Write the weights of ``model`` as a Keras ``.weights.h5`` file at ``path``, atomically."""
    atomic_write(path, weights_bytes(model))
