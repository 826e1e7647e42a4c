"""The mask ops of a Keras 3 functional config, read as expressions and matched against rnnkit's own masks.

When a layer of a Keras functional model makes a mask, Keras traces its
``compute_mask`` and ``config.json`` records each ``keras.ops`` call as an
op beside the layers (module ``keras.src.ops.numpy``); a masked call then
names the op's output in ``kwargs.mask``. Keras 3.15 records, for a mask
``m_i`` of input ``x_i``:

====================================  ==============================================================
``Embedding(mask_zero=True)(ids)``    ``NotEqual(ids, 0)``
``Masking(v)(x)``                     ``Any(NotEqual(x, v), axis=-1)``
``Concatenate(axis=a)(xs)``           ``Any(Concatenate([LogicalOr(ExpandDims(m_i, -1), ZerosLike(x_i))``
                                      ``or OnesLike(x_i) where x_i has no mask, ...], axis=a), axis=-1)``
``Add`` / ``Multiply`` / ``Average``  ``LogicalOr(LogicalOr(m_1, m_2), m_3) ...`` (every input masked)
====================================  ==============================================================

rnnkit computes these masks by itself, so no op is ever run. Each op is
read as a plain expression (``read_op``), and the mask a call names must be
exactly what Keras would have recorded for the mask rnnkit passes that call
(``expected``); any other op, argument or form is refused, so a loaded model
never computes other masks than the file's. Expressions are interned as
small ints (``Expressions``): two are equal when their ids are, and a graph
that reuses a mask many times stays linear in size.
"""

from __future__ import annotations

from typing import Any

from ..layers import Embedding, Masking
from ..merging import Concatenate, Dot, _Merge

#: The Keras ops read as parts of a mask, with the config keys each may carry besides ``name``.
MASK_OPS = {
    "NotEqual": (), "Any": ("axis", "keepdims"), "ExpandDims": ("axis",), "ZerosLike": ("dtype",),
    "OnesLike": ("dtype",), "LogicalOr": (), "Concatenate": ("axis",),
}
OPS_MODULE = "keras.src.ops.numpy"


def is_op(spec: dict) -> bool:
    """Whether a layer entry of the config is a ``keras.ops`` call (or claims to be one of ``MASK_OPS``)."""
    module, class_name = spec.get("module"), spec.get("class_name")
    return (isinstance(module, str) and module.startswith("keras.src.ops")) or (
        isinstance(class_name, str) and class_name in MASK_OPS and class_name != "Concatenate")


class Expressions:
    """Hash-consed expressions: ``ids[("Any", child_id, -1)] = 7``; equal expressions get one id."""

    def __init__(self):
        self.ids: dict[tuple, int] = {}

    def __call__(self, *node) -> int:
        return self.ids.setdefault(node, len(self.ids))

    def tensor(self, key: tuple[str, int, int]) -> int:
        """A tensor of the graph: (layer name, call index, output index), as ``keras_history`` names it."""
        return self("tensor", *key)


def _int(value, where: str) -> int:
    if type(value) is not int:
        raise ValueError(f"{where}: expected an int, got {value!r}")
    return value


def read_op(spec: dict, where: str, history, ops: dict[str, int], listed, exprs: Expressions) -> int:
    """The expression id of one op entry of the config.

    ``history(ref, where)`` gives a ``__keras_tensor__``'s (layer, node,
    index); ``ops`` holds the ops read so far and ``listed`` the names of
    the layers listed so far: Keras lists an op after the tensors it reads.
    """
    class_name = spec.get("class_name")
    if not isinstance(class_name, str) or class_name not in MASK_OPS or spec.get("module") != OPS_MODULE or \
            spec.get("registered_name") not in (None, class_name):
        raise ValueError(
            f"{where}: op {class_name!r} (module={spec.get('module')!r}, registered_name="
            f"{spec.get('registered_name')!r}) is not read; a functional model's ops are read only as the masks "
            f"Keras records, made of {', '.join(MASK_OPS)} from module {OPS_MODULE!r}"
        )
    cfg, nodes = spec.get("config"), spec.get("inbound_nodes")
    if not isinstance(cfg, dict) or set(cfg) - {"name", *MASK_OPS[class_name]}:
        raise ValueError(f"{where}.config: op {class_name} takes only {['name', *MASK_OPS[class_name]]}, "
                         f"got {str(cfg)[:120]!r}")
    if not (isinstance(nodes, list) and len(nodes) == 1 and isinstance(nodes[0], dict)
            and isinstance(nodes[0].get("args"), list) and not nodes[0].get("kwargs")):
        raise ValueError(f"{where}.inbound_nodes: an op is called once, with args and no kwargs; got "
                         f"{str(nodes)[:120]!r}")
    args, at = nodes[0]["args"], f"{where}.inbound_nodes[0].args"

    def operand(obj, i):
        if not (isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"):
            raise ValueError(f"{at}[{i}]: expected a tensor, got {str(obj)[:80]!r}")
        layer, node, index = history(obj, f"{at}[{i}]")
        if layer in ops and node == index == 0:
            return ops[layer]
        if layer in ops or layer not in listed:
            raise ValueError(f"{at}[{i}]: reads {[layer, node, index]}, which is no tensor of a layer or op "
                             "listed before this op")
        return exprs.tensor((layer, node, index))

    arity = 2 if class_name in ("NotEqual", "LogicalOr") else 1
    if len(args) != arity:
        raise ValueError(f"{at}: op {class_name} takes {arity} arguments, got {len(args)}")
    if class_name == "NotEqual":
        if type(args[1]) not in (int, float):
            raise ValueError(f"{at}[1]: NotEqual compares with a number here, got {args[1]!r}")
        return exprs(class_name, operand(args[0], 0), float(args[1]))
    if class_name == "LogicalOr":
        return exprs(class_name, operand(args[0], 0), operand(args[1], 1))
    if class_name == "Concatenate":
        if not isinstance(args[0], list) or not args[0]:
            raise ValueError(f"{at}[0]: op Concatenate takes a list of tensors, got {str(args[0])[:80]!r}")
        parts = tuple(operand(t, f"0][{i}") for i, t in enumerate(args[0]))
        return exprs(class_name, parts, _int(cfg.get("axis"), f"{where}.config.axis"))
    if class_name in ("ZerosLike", "OnesLike"):
        if cfg.get("dtype") != "bool":
            raise ValueError(f"{where}.config.dtype: a mask's {class_name} is bool, got {cfg.get('dtype')!r}")
        return exprs(class_name, operand(args[0], 0))
    if cfg.get("keepdims", False) is not False:  # Any, ExpandDims
        raise ValueError(f"{where}.config.keepdims: a mask's Any drops the axis, got {cfg['keepdims']!r}")
    return exprs(class_name, operand(args[0], 0), _int(cfg.get("axis"), f"{where}.config.axis"))


def expected(mask, key_of, exprs: Expressions) -> int | None:
    """The expression Keras records for the mask rnnkit passes: ``mask`` is that symbolic tensor (or
    None), ``key_of(t)`` a symbolic tensor's (layer, node, index). None where rnnkit's mask comes from a
    layer whose mask Keras would not record so (the call is then refused)."""
    memo: dict[int, Any] = {}

    def walk(m):
        if id(m) not in memo:
            memo[id(m)] = _expected(m, walk, key_of, exprs)
        return memo[id(m)]

    return None if mask is None else walk(mask)


def _expected(mask, walk, key_of, exprs: Expressions) -> int | None:
    node = mask.node
    layer, x = node.layer, node.args[0] if node.args else None
    if isinstance(layer, Embedding):
        return exprs("NotEqual", exprs.tensor(key_of(x)), 0.0)
    if isinstance(layer, Masking):
        return exprs("Any", exprs("NotEqual", exprs.tensor(key_of(x)), float(layer.mask_value)), -1)
    if not isinstance(layer, _Merge) or isinstance(layer, Dot) or not isinstance(x, (list, tuple)):
        return None
    masks = node.mask_arg if isinstance(node.mask_arg, (list, tuple)) else [None] * len(x)
    inner = [None if m is None else walk(m) for m in masks]
    if any(m is not None and e is None for m, e in zip(masks, inner)):
        return None
    if isinstance(layer, Concatenate):
        parts = tuple(
            exprs("OnesLike", exprs.tensor(key_of(t))) if e is None
            else exprs("LogicalOr", exprs("ExpandDims", e, -1), exprs("ZerosLike", exprs.tensor(key_of(t))))
            for t, e in zip(x, inner)
        )
        return exprs("Any", exprs("Concatenate", parts, layer.axis), -1)
    out = inner[0]
    for e in inner[1:]:
        out = exprs("LogicalOr", out, e)
    return out
