"""Keras's functional API: ``Input`` and ``Model(inputs, outputs)``.

Layers called on ``rk.Input`` tensors record a graph (``rnnkit.graph``);
``Model`` runs it. Several inputs and outputs, shared layers, states passed
from layer to layer and sub-models work as in Keras. Keras's ``lstm_seq2seq``::

    encoder_inputs = rk.Input((None, n_in))
    _, h, c = rk.LSTM(256, return_state=True)(encoder_inputs)
    decoder_inputs = rk.Input((None, n_out))
    decoder_lstm = rk.LSTM(256, return_sequences=True, return_state=True)
    seq, _, _ = decoder_lstm(decoder_inputs, initial_state=[h, c])
    decoder_dense = rk.Dense(n_out, activation="softmax")
    model = rk.Model([encoder_inputs, decoder_inputs], decoder_dense(seq))
    model.compile("rmsprop", "categorical_crossentropy", ["accuracy"])
    model.fit([x_enc, x_dec], y, batch_size=64, epochs=20)

    encoder = rk.Model(encoder_inputs, [h, c])       # inference models from the trained layers
    h_in, c_in = rk.Input((256,)), rk.Input((256,))
    seq, h2, c2 = decoder_lstm(decoder_inputs, initial_state=[h_in, c_in])
    decoder = rk.Model([decoder_inputs, h_in, c_in], [decoder_dense(seq), h2, c2])

As in Keras 3, inputs and outputs may be nested lists, tuples and dicts;
an input may be a tensor a layer computed (the model starts there:
``rk.Model(hidden, output)``), and ``rk.Input(..., optional=True)`` may be
given ``None``. A sub-model's output carries the mask its layers make
(``Model.compute_mask``); ``compute_output_spec`` gives output shapes
without recording anything. ``from_config`` also reads Keras 2's configs.

The graph is planned once, here: nodes in topological order, each a
``(layer, arguments, output slots)`` step over a flat list of values, so a
call costs the layers and a few list look-ups. The layers are submodules
(``model.layers``), so ``parameters()``, ``.to()``, ``state_dict()`` and
``rk.explain(model)`` see them, and the fused kernels run inside.

Training: ``compile``/``fit``/``evaluate``/``predict`` as for ``Sequential``,
with ``x`` (and ``y``) a list in input (output) order or a dict by name, and
per-output ``loss``/``metrics``/``loss_weights`` (``rnnkit.functional_training``).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from . import graph, keras_save
from .base import Layer, unique_name
from .functional_training import FunctionalTraining
from .layers import Input, InputLayer, deserialize, serialize
from .merging import MERGES
from .model import Sequential, _check_path

# -------------------------------------------------------------------- steps
# A step's arguments are the recorded call with each symbolic tensor replaced
# by its _Slot: an index into the list of values a call fills in.


class _Slot(int):
    pass


def _fill(template, values):
    kind = type(template)
    if kind is _Slot:
        return values[template]
    if kind is list:
        return [_fill(t, values) for t in template]
    if kind is dict:
        return {k: _fill(t, values) for k, t in template.items()}
    if isinstance(template, tuple):
        parts = [_fill(t, values) for t in template]
        return kind(*parts) if hasattr(template, "_fields") else kind(parts)
    return template


def _flatten_io(spec, arg: str, path: str = "") -> list:
    """The symbolic tensors in ``spec`` (a tensor, or lists, tuples and dicts of them, nested), depth first."""
    if isinstance(spec, graph.SymbolicTensor):
        if spec.node is None:
            raise ValueError(f"{arg}{path}: {spec!r} is a shape and dtype from compute_output_spec, with no layer call "
                             "behind it; call the model itself on the symbolic tensors instead")
        return [spec]
    if isinstance(spec, (list, tuple, dict)) and spec:
        parts = spec.items() if isinstance(spec, dict) else enumerate(spec)
        return [t for k, part in parts for t in _flatten_io(part, arg, f"{path}[{k!r}]")]
    got = f"an empty {type(spec).__name__}" if isinstance(spec, (list, tuple, dict)) else f"{type(spec).__name__} {spec!r:.60}"
    raise ValueError(
        f"{arg}{path}: All `{arg}` values must be KerasTensors: symbolic tensors from rk.Input or a layer called "
        f"on one, alone or in (nested) lists, tuples and dicts; got {got}"
    )


def _is_ref(obj) -> bool:
    """A config's tensor reference: ``[layer name, node index, tensor index]``."""
    return isinstance(obj, (list, tuple)) and len(obj) == 3 and isinstance(obj[0], str)


def _masks_needed(nodes, read: set) -> set:
    """``read`` and the masks the masks in it are computed from (``nodes`` in plan order)."""
    read = set(read)
    for node in reversed(nodes):
        if node.mask in read:
            read.update(graph.leaves(node.mask_arg))
    return read


def _unique(names):
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}_{k}")
    return out


def _shape_str(structure) -> str:
    shapes = [t.shape for t in graph.leaves(structure)]
    text = ", ".join(str(s).replace(",)", ")") for s in shapes)
    return text if len(shapes) == 1 else f"[{text}]"


def _is_integer_tensor(x) -> bool:
    return isinstance(x, torch.Tensor) and not (x.is_floating_point() or x.is_complex())


def _wrap(items: list[str], width: int) -> list[str]:
    """``items`` joined by ", " into lines of at most ``width`` characters (a longer item gets its own line)."""
    lines: list[str] = []
    for k, item in enumerate(items):
        piece = item + ("," if k < len(items) - 1 else "")
        if lines and len(lines[-1]) + 1 + len(piece) <= width:
            lines[-1] += " " + piece
        else:
            lines.append(piece)
    return lines


class Model(FunctionalTraining, Layer):
    """A graph of layers from ``Input`` tensors to outputs (Keras's functional ``Model``).

    ``inputs``/``outputs``: a symbolic tensor, or lists, tuples and dicts of
    them, nested; calls take and return the same structure (a dict of
    inputs may also be given for list inputs, keyed by the ``Input`` names).
    An input may be a tensor a layer computed: the model then starts there,
    from an ``rk.Input`` of that shape standing for it (Keras's slicing of a
    model, ``rk.Model(hidden, output)``), sharing the layers' weights.
    ``model.layers`` lists each layer once (``Input`` layers first);
    ``get_layer(name)``, ``get_weights()``/``set_weights()`` (that order),
    ``summary()``, ``get_config()``/``from_config()`` are Keras's. A model
    called on symbolic tensors is one layer of a larger graph, and its
    output carries the mask its layers make (``compute_mask``).
    """

    def __init__(self, inputs, outputs, name: str | None = None):
        super().__init__(name=name or unique_name("Functional"))
        ins, outs = _flatten_io(inputs, "inputs"), _flatten_io(outputs, "outputs")
        for i, t in enumerate(ins):
            if any(t is s for s in ins[:i]):
                raise ValueError(f"inputs[{i}]: {t!r} is given twice")
        # A computed tensor as an input: an rk.Input of its shape stands for it in this model (Keras clones it).
        sliced = [t for t in ins if not t.node.is_source]
        names = _unique([f"{t.node.layer.name}_clone" for t in sliced])
        self._clones = {t: Input(t.shape[1:], t.dtype, n, t.shape[0]) for t, n in zip(sliced, names)}
        # The structures as given (copies, safe from later edits), the clones in place of the computed inputs.
        self._inputs = graph.map_structure(lambda t: self._clones.get(t, t), inputs)
        self._outputs = graph.map_structure(lambda t: t, outputs)
        self._in_tensors = [self._clones.get(t, t) for t in ins]
        self._nested = graph.is_nested(inputs)
        self._optional = [t.node.layer.optional for t in self._in_tensors]
        flat_in, flat_out = (isinstance(v, dict) and not graph.is_nested(v) for v in (inputs, outputs))
        self.input_names = [str(k) for k in inputs] if flat_in else [t.node.layer.name for t in self._in_tensors]
        self.output_names = [str(k) for k in outputs] if flat_out else _unique([t.node.layer.name for t in outs])
        # The mask a computed input carried is not there when the model starts from it: it reads as None.
        lost_masks = [t.mask for t in sliced if t.mask is not None]
        self._nodes = graph.plan(ins, outs, self.output_names, known=lost_masks)

        layers = [t.node.layer for t in self._in_tensors]
        for node in self._nodes:
            if not any(node.layer is m for m in layers):
                layers.append(node.layer)
        names = [m.name for m in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layers: names must be unique within a model, got {sorted(n for n in names if names.count(n) > 1)}")
        self.layers = nn.ModuleList(layers)
        self.input_shape = ins[0].shape[1:] if len(ins) == 1 else None
        self._plan(ins, outs, lost_masks)

    def _plan(self, ins, outs, lost_masks):
        """Number every tensor the graph computes, and write each node as a step over those numbers.

        A layer's mask is computed when a later layer reads it (``forward``),
        or also for ``compute_mask`` when an output carries it; a lost mask
        gets a slot nothing fills.
        """
        slot_of = {t: _Slot(i) for i, t in enumerate([*ins, *lost_masks])}
        read = {t for node in self._nodes for t in node.inputs} | set(outs)
        forward = _masks_needed(self._nodes, read)
        for_spec = _masks_needed(self._nodes, read | {t.mask for t in outs if t.mask is not None})
        self._steps = []
        for node in self._nodes:
            args = graph.map_structure(slot_of.__getitem__, node.args)
            kwargs = graph.map_structure(slot_of.__getitem__, node.call_kwargs)
            for t in node.outputs:
                slot_of[t] = _Slot(len(slot_of))
            mask = None
            if node.mask is not None and node.mask in for_spec:
                slot_of[node.mask] = _Slot(len(slot_of))
                mask = (slot_of[node.mask], graph.map_structure(slot_of.__getitem__, node.mask_arg), node.mask in forward)
            out_slots = [slot_of[t] for t in node.outputs]
            self._steps.append((node.layer, args, kwargs, out_slots, mask))
        self._n_slots = len(slot_of)
        self._out_template = graph.map_structure(slot_of.__getitem__, self._outputs)
        self._out_masks = [slot_of.get(t.mask) for t in outs]

    # ------------------------------------------------------------------ call
    @property
    def built(self):
        return True

    @built.setter
    def built(self, value):
        pass

    @property
    def inputs(self) -> list:
        return list(self._in_tensors)

    @property
    def outputs(self) -> list:
        return graph.leaves(self._outputs)

    @property
    def input(self):
        return self._inputs

    @property
    def output(self):
        return self._outputs

    def forward(self, inputs, training: bool | None = None):
        """Run the graph; ``training=True/False`` (Keras) sets train/eval mode for this call only."""
        if training is None or bool(training) == self.training:
            return self._run(inputs)
        modes = [(m, m.training) for m in self.modules()]
        self.train(bool(training))
        try:
            return self._run(inputs)
        finally:
            for m, was in modes:
                m.training = was

    def _run(self, inputs, with_masks: bool = False):
        values = [None] * self._n_slots
        values[: len(self._in_tensors)] = self._feed(inputs)
        for layer, args, kwargs, out_slots, mask in self._steps:
            args = _fill(args, values)
            out = layer(*args, **_fill(kwargs, values)) if kwargs else layer(*args)
            if len(out_slots) == 1 and isinstance(out, torch.Tensor):
                values[out_slots[0]] = out
            else:
                for slot, t in zip(out_slots, graph.flat_tensors(out)):
                    values[slot] = t
            if mask is not None and (mask[2] or with_masks):
                values[mask[0]] = layer.compute_mask(args[0], _fill(mask[1], values))
        outputs = _fill(self._out_template, values)
        return (outputs, _fill(self._out_masks, values)) if with_masks else outputs

    def compute_mask(self, inputs, mask=None):  # noqa: ARG002 - Keras's signature
        """The mask the model's output carries for ``inputs`` (Keras's ``Model.compute_mask``).

        The graph runs once more, computing the masks its layers make
        (``Embedding(mask_zero=True)``, ``Masking``, a ``compute_mask`` of your
        own) as its tensors carry them. One output: its mask, or None; several:
        a list, one per output (``graph.record`` passes on a single mask only,
        so a multi-output sub-model's outputs carry none). A ``mask`` given to
        the model is not fed to its inputs: only masks made inside travel out.
        A model whose outputs carry no mask returns None without running
        (a ``Sequential`` asks every layer for its mask).
        """
        if all(slot is None for slot in self._out_masks):
            masks = self._out_masks
        else:
            _, masks = self._run(inputs, with_masks=True)
        return masks[0] if len(masks) == 1 else masks

    def compute_output_spec(self, inputs):
        """The outputs' shapes and dtypes for symbolic ``inputs`` (Keras's), recording no call of any layer.

        Returns the output structure with a ``SymbolicTensor`` (no layer
        behind it) per output::

            spec = model.compute_output_spec(rk.Input((3,)))   # spec.shape == (None, 4)
        """
        node = graph.symbolic_call(self, (inputs,), {})
        return graph.map_structure(lambda t: graph.SymbolicTensor(t.shape, t.dtype), node.structure)

    def _feed(self, inputs) -> list:
        """The call's inputs in model order, each checked against its ``Input`` shape."""
        n = len(self._in_tensors)
        if self._nested:
            items = graph.flatten_like(self._inputs, inputs, "inputs")
        elif isinstance(inputs, dict):
            missing = [k for k in self.input_names if k not in inputs]
            extra = [k for k in inputs if k not in self.input_names]
            if missing or extra:
                raise ValueError(f"inputs: expected the keys {self.input_names}, got {list(inputs)}")
            items = [inputs[k] for k in self.input_names]
        elif isinstance(inputs, (list, tuple)) and isinstance(self._inputs, dict) and n > 1:
            # As Keras 3: a model built on a dict is fed by name; by position only when its keys are in sorted
            # order (Keras's order for a dict), with a warning, and refused otherwise.
            mismatch = (f"inputs: The structure of `inputs` doesn't match the expected structure: model {self.name!r} "
                        f"takes a dict with the keys {self.input_names}, got a {type(inputs).__name__} of {len(inputs)}")
            if self.input_names != sorted(self.input_names) or len(inputs) != n:
                raise ValueError(mismatch)
            warnings.warn(f"{mismatch}, read in the keys' order", stacklevel=2)
            items = list(inputs)
        elif isinstance(inputs, (list, tuple)) and (n > 1 or len(inputs) == 1):
            if len(inputs) != n:
                raise ValueError(f"inputs: model {self.name!r} expects {n} inputs {self.input_names}, got {len(inputs)}")
            items = list(inputs)
        elif n == 1:
            items = [inputs]
        else:
            raise ValueError(f"inputs: model {self.name!r} expects a list or dict of {n} inputs {self.input_names}")
        for i, (name, t, x, optional) in enumerate(zip(self.input_names, self._in_tensors, items, self._optional)):
            if x is None:
                if not optional:
                    raise ValueError(f"inputs: The input {name!r} is not optional, but None was passed; give a tensor "
                                     f"of shape {t.shape}, or build the model on rk.Input(..., optional=True)")
                continue
            shape = x.shape if isinstance(x, (torch.Tensor, np.ndarray)) else np.shape(x)
            if len(shape) != len(t.shape) or any(d is not None and d != s for d, s in zip(t.shape[1:], shape[1:])):
                raise ValueError(f"inputs: {name!r} expects shape {t.shape} (None = any size), got {tuple(shape)}")
            # As Keras does: numpy data becomes a tensor of the Input's dtype, and so does an integer or
            # bool tensor given to a float Input. A float tensor is used as it comes.
            if isinstance(x, np.ndarray) or (t.dtype.is_floating_point and _is_integer_tensor(x)):
                items[i] = torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x).to(t.dtype)
        return items

    # --------------------------------------------------------------- layers
    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    def get_layer(self, name: str | None = None, index: int | None = None):
        """A layer by name, or by position in ``model.layers``."""
        if (name is None) == (index is None):
            raise ValueError("get_layer: give exactly one of name= or index=")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"index: model {self.name!r} has {len(self.layers)} layers, got index {index}")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"name: no layer {name!r} in model {self.name!r}; layers: {[m.name for m in self.layers]}")

    def _source(self, t):
        """The tensor ``t`` is in this model: itself, or the ``Input`` standing for it where the model starts from it."""
        return self._clones.get(t, t)

    def reset_state(self):
        for layer in self.layers:
            if hasattr(layer, "reset_state"):
                layer.reset_state()

    def _nodes_by_layer(self) -> dict:
        """Each layer's nodes inside this model, in plan order (Keras numbers them from 0 per model)."""
        nodes = {id(layer): [] for layer in self.layers}
        for t in self._in_tensors:
            nodes[id(t.node.layer)].append(t.node)
        for node in self._nodes:
            nodes[id(node.layer)].append(node)
        return nodes

    def summary(self, print_fn=print) -> None:
        """Keras's table with Keras 3's "Connected to" column.

        Each call's inputs are ``layer[node][tensor]``, joined by ", " and
        wrapped to the column's width; an ``Input`` is connected to ``-``.
        """
        by_layer = self._nodes_by_layer()
        index = {node: i for nodes in by_layer.values() for i, node in enumerate(nodes)}
        widths = (32, 28, 10, 30)
        line = "_" * sum(widths)

        def row(*cols):  # a long cell pushes the next one right, with one space at least
            return "".join(f"{c} ".ljust(w) for c, w in zip(cols, widths)).rstrip()

        out = [f'Model: "{self.name}"', line, row("Layer (type)", "Output Shape", "Param #", "Connected to"), "=" * sum(widths)]
        for i, layer in enumerate(self.layers):
            nodes = by_layer[id(layer)]
            links = [
                f"{t.node.layer.name}[{index[t.node]}][{t.index}]"
                for node in nodes
                for t in map(self._source, graph.leaves((node.args, node.kwargs)))
            ]
            n = sum(p.numel() for p in layer.parameters())
            cells = _wrap(links, widths[3] - 1) or ["-"]
            out.append(row(f"{layer.name} ({type(layer).__name__})", _shape_str(nodes[0].structure), n, cells[0]))
            out += [row("", "", "", cell) for cell in cells[1:]]
            out.append(line if i < len(self.layers) - 1 else "=" * sum(widths))
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        out += [f"Total params: {total:,}", f"Trainable params: {trainable:,}", f"Non-trainable params: {total - trainable:,}", line]
        print_fn("\n".join(out))

    # ------------------------------------------------------------ Keras files
    def save(self, path, overwrite: bool = True) -> None:
        """Write a Keras 3 ``.keras`` archive (a ``Functional``) that Keras itself loads (``rnnkit.keras_save``).

        ``rk.load_model("x.keras")`` reads it back; an rnnkit run directory is
        ``rk.save_model(model, folder)``.
        """
        path = _check_path(path, overwrite)
        if not path.endswith(".keras"):
            raise ValueError(f"path: model.save writes a Keras 3 file whose name ends in .keras, got {path!r}; for an "
                             "rnnkit run directory use rk.save_model(model, folder)")
        keras_save.save_keras(self, path, keras_save.functional_config(self))

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict:
        """Keras 3's functional config: ``layers`` (each with ``inbound_nodes``), ``input_layers``, ``output_layers``.

        A tensor is ``{"class_name": "__keras_tensor__", "config": {"shape", "dtype",
        "keras_history": [layer name, node index, tensor index]}}``, node indices
        counting that layer's calls inside this model.
        """
        by_layer = self._nodes_by_layer()
        index = {node: i for nodes in by_layer.values() for i, node in enumerate(nodes)}

        def history(t):
            t = self._source(t)
            if t.index < 0:
                raise ValueError(
                    f"config: a mask tensor of layer {t.node.layer.name!r} was passed explicitly; masks travel "
                    "with their tensors by themselves, so drop mask= to make the model storable"
                )
            return [t.node.layer.name, index[t.node], t.index]

        def tensor(t):
            shape = list(t.shape)
            return {"class_name": "__keras_tensor__", "config": {"shape": shape, "dtype": graph.dtype_name(t.dtype), "keras_history": history(t)}}

        layers = []
        for layer in self.layers:
            spec = _serialize(layer)
            calls = [n for n in by_layer[id(layer)] if not n.is_source]
            spec["name"] = layer.name
            spec["inbound_nodes"] = [
                {"args": _json(graph.map_structure(tensor, list(n.args))), "kwargs": _json(graph.map_structure(tensor, n.kwargs))}
                for n in calls
            ]
            layers.append(spec)

        def refs(spec):  # a tuple stays a tuple (until JSON makes it a list)
            if isinstance(spec, graph.SymbolicTensor):
                return history(spec)
            if isinstance(spec, dict):
                return {k: refs(t) for k, t in spec.items()}
            return type(spec)(refs(t) for t in spec)

        def top(spec):  # one tensor is written as a list of one, as Keras 3 does
            return [history(spec)] if isinstance(spec, graph.SymbolicTensor) else refs(spec)

        return {"name": self.name, "trainable": True, "layers": layers, "input_layers": top(self._inputs),
                "output_layers": top(self._outputs)}

    @staticmethod
    def layers_from_config(config: dict) -> list:
        """The layers of ``get_config()``, in ``model.layers`` order, built but not called (``from_config``
        without the graph): a loader checks their weights' shapes on the meta device with them."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"config: expected {{'layers': [...], ...}} from Model.get_config(), got {str(config)[:80]!r}")
        layers = []
        for spec in config["layers"]:
            if not isinstance(spec, dict) or "name" not in spec:
                raise ValueError(f"config: each layer needs a 'name', got {str(spec)[:80]!r}")
            layers.append(InputLayer(_batch_shape(spec)[1:], name=spec["name"])
                          if spec.get("class_name") == "InputLayer" else _deserialize(spec))
        return layers

    @classmethod
    def from_config(cls, config: dict) -> Model:
        """Rebuild from ``get_config()``: layers only from rnnkit's closed registry, no code from the config.

        Reads Keras 3's calls (``{"args": [...], "kwargs": {...}}``) and Keras
        2's (``[[layer, node, tensor, kwargs], ...]``). A call that reads a layer
        the config does not list is refused ("Missing node"), and so are calls
        that wait on each other ("loop").
        """
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"config: expected {{'layers': [...], ...}} from Model.get_config(), got {str(config)[:80]!r}")
        for spec in config["layers"]:
            if not isinstance(spec, dict) or "name" not in spec:
                raise ValueError(f"config: each layer needs a 'name', got {str(spec)[:80]!r}")
        listed = {spec["name"] for spec in config["layers"]}
        made: dict[tuple, list] = {}  # (layer name, node index) -> that call's flat outputs
        calls = []
        for spec in config["layers"]:
            if spec.get("class_name") == "InputLayer":
                c = spec.get("config", {})
                batch_shape = _batch_shape(spec)
                made[(spec["name"], 0)] = [Input(batch_shape[1:], c.get("dtype"), spec["name"], batch_shape[0],
                                                 c.get("optional", False))]
                continue
            layer = _deserialize(spec)
            nodes = spec.get("inbound_nodes", [])
            for i, node in enumerate(nodes if isinstance(nodes, list) else [nodes]):
                calls.append((layer, i, _keras3_node(node, f"layer {spec['name']!r} inbound_nodes[{i}]")))

        def resolve(obj, reader):
            if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
                name, node, idx = obj["config"]["keras_history"]
                if name not in listed:
                    raise ValueError(f"config: Missing node: {name}; layer {reader!r} reads a call of layer {name!r}, "
                                     f"which the config's layers {sorted(listed)} do not hold")
                if (name, node) not in made:
                    raise LookupError
                return made[(name, node)][idx]
            if isinstance(obj, list):
                return [resolve(o, reader) for o in obj]
            if isinstance(obj, dict):
                return {k: resolve(v, reader) for k, v in obj.items()}
            return obj

        # A shared layer's later call may read layers listed after it: call what is ready until all are.
        while calls:
            waiting = []
            for layer, i, node in calls:
                try:
                    args, kwargs = resolve(node["args"], layer.name), resolve(node["kwargs"], layer.name)
                except LookupError:
                    waiting.append((layer, i, node))
                    continue
                made[(layer.name, i)] = graph.leaves(layer(*args, **kwargs))
            if len(waiting) == len(calls):
                raise ValueError(f"config: the calls of {sorted({c[0].name for c in waiting})} wait on each other in a "
                                 "loop (or read a call of a layer that the config does not have); none can be made")
            calls = waiting

        def pick(refs):
            if _is_ref(refs):
                return made[(refs[0], refs[1])][refs[2]]
            if isinstance(refs, dict):
                return {k: pick(r) for k, r in refs.items()}
            return type(refs)(pick(r) for r in refs)

        try:
            inputs, outputs = pick(config.get("input_layers", [])), pick(config.get("output_layers", []))
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError("config: input_layers/output_layers name a tensor no layer makes: "
                             f"{config.get('input_layers')!r}, {config.get('output_layers')!r}") from e
        # As in Keras 3, a list of one tensor is that tensor.
        inputs, outputs = (v[0] if isinstance(v, list) and len(v) == 1 and isinstance(v[0], graph.SymbolicTensor) else v
                           for v in (inputs, outputs))
        return cls(inputs, outputs, name=config.get("name"))


def _batch_shape(spec: dict) -> tuple:
    """An ``InputLayer``'s batch shape: Keras 3's ``batch_shape``, Keras 2's ``batch_input_shape``."""
    c = spec.get("config", {})
    return tuple(c.get("batch_shape", c.get("batch_input_shape", [None])))


def _keras3_node(node, where: str) -> dict:
    """A layer call from a config as Keras 3 writes it: ``{"args": [...], "kwargs": {...}}``.

    Keras 2 wrote ``[[layer, node, tensor, kwargs], ...]``: one entry is a
    call on that tensor, several a call on the list of them; the first
    entry's ``kwargs`` are the call's.
    """
    if isinstance(node, dict):
        return {"args": node.get("args", []), "kwargs": node.get("kwargs", {})}
    if isinstance(node, list) and node and all(
        isinstance(e, list) and _is_ref(e[:3]) and (len(e) == 3 or (len(e) == 4 and isinstance(e[3], dict))) for e in node
    ):
        tensors = [{"class_name": "__keras_tensor__", "config": {"keras_history": e[:3]}} for e in node]
        return {"args": [tensors[0] if len(tensors) == 1 else tensors], "kwargs": node[0][3] if len(node[0]) == 4 else {}}
    raise ValueError(f"config: {where}: expected Keras 3's {{'args': [...], 'kwargs': {{...}}}} or Keras 2's "
                     f"[[layer, node, tensor, kwargs], ...], got {str(node)[:80]!r}")


# ------------------------------------------------------------ serialization


def _serialize(layer) -> dict:
    if isinstance(layer, InputLayer):
        t = layer.output
        cfg = {"batch_shape": list(t.shape), "dtype": graph.dtype_name(t.dtype), "sparse": False, "name": layer.name}
        if layer.optional:
            cfg["optional"] = True
        return {"class_name": "InputLayer", "config": cfg}
    if isinstance(layer, Model):
        return {"class_name": "Functional", "config": layer.get_config()}
    if isinstance(layer, Sequential):
        return {"class_name": "Sequential", "config": layer.get_config()}
    if MERGES.get(type(layer).__name__) is type(layer):
        return {"class_name": type(layer).__name__, "config": layer.get_config()}
    return serialize(layer)


def _deserialize(spec: dict):
    name, cfg = spec.get("class_name"), spec.get("config")
    if not isinstance(cfg, dict):
        raise ValueError(f"layer config: expected {{'class_name': str, 'config': dict}}, got {str(spec)[:80]!r}")
    if name == "Functional":
        return Model.from_config(cfg)
    if name == "Sequential":
        return Sequential.from_config(cfg)
    if name in MERGES:
        try:
            return MERGES[name](**cfg)
        except TypeError as e:
            raise ValueError(f"layer config: cannot build {name} from {cfg}: {e}") from e
    return deserialize(spec)


def _json(obj):
    """Check that a recorded call's constant arguments are plain JSON (tuples become lists)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [_json(o) for o in obj]
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return {k: _json(v) for k, v in obj.items()}
    raise ValueError(f"config: a layer was called with {type(obj).__name__} {obj!r}, which a JSON config cannot hold")
