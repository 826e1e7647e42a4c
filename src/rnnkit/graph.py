"""The symbolic side of the functional API: ``SymbolicTensor``, ``Node`` and ``record``.

``rk.Input(shape)`` returns a ``SymbolicTensor``: a shape ``(None, *shape)``
and a dtype, no values. Calling a layer on symbolic tensors does not compute;
``Layer.__call__`` hands the call to ``record``, which stores a ``Node`` (this
layer, these arguments) and returns symbolic outputs::

    x = rk.Input((None, 8))                  # SymbolicTensor (None, None, 8)
    y, h = rk.GRU(16, return_state=True)(x)  # Node(gru, args=(x,)); y: (None, 16)

Output shapes come from running the layer once on a batch of one row of
zeros (twice, with sizes 2 and 3, when the inputs have ``None`` axes: an axis
that differs between the two runs is ``None``). That is the layer's own code,
so shapes are exact and a bad input fails here, naming the layer. The zeros
run also builds lazy layers, as Keras builds a layer at its first symbolic call.

Masks travel as in Keras 3: an output may carry ``.mask``, a symbolic
``(batch, time)`` bool tensor; a layer with ``takes_mask`` (the recurrent
ones) is given its first input's mask unless the call gives one. What a layer does
with a mask (``output_mask``): ``compute_mask`` if it has one, a recurrent
layer keeps it with ``return_sequences`` only, a layer with
``supports_masking`` passes it on, any other layer drops it.

``symbolic_call`` makes a call's ``Node`` without recording it (what
``Model.compute_output_spec`` needs). ``plan`` orders the nodes between
inputs and outputs with ``topological_order``, the planner TF1 graph mode
(``compat.v1.session``) shares; ``rnnkit.functional.Model`` turns them into a flat list
of steps once. ``flatten_like``/``pack_like`` match data to a model's
(nested) input structure. This module sits under ``base.py`` and imports
only torch and numpy.
"""

from __future__ import annotations

import numpy as np
import torch

_USE_A_LAYER = (
    "a symbolic tensor (from rk.Input or a layer called on one) has no values, so {what} cannot run on it. "
    "In a functional model every operation is a layer (+, - and * record one): rk.Dense, rk.Concatenate, rk.Add, rk.Multiply, "
    "rk.Average, rk.Dot, the recurrent layers... rnnkit has no Lambda layer; for anything else write a small "
    "rk.Layer subclass whose forward() does the computation and call it on the symbolic tensors"
)


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"`` (Keras's spelling)."""
    return str(dtype).removeprefix("torch.")


class SymbolicTensor:
    """A placeholder for a tensor in a functional model: shape (``None`` = any size), dtype, origin.

    ``node`` is the call that produced it and ``index`` its position in that
    node's flat outputs. ``mask`` is the Keras 3 mask that travels with it
    (a bool SymbolicTensor of shape ``(batch, time)``), or None.
    """

    def __init__(self, shape, dtype: torch.dtype, node: Node | None = None, index: int = 0):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.node = node
        self.index = index
        self.mask: SymbolicTensor | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self):
        origin = "" if self.node is None else f", from {self.node.layer.name!r}[{self.index}]"
        return f"<SymbolicTensor shape={self.shape}, dtype={dtype_name(self.dtype)}{origin}>"

    # Anything that would need values fails here, saying what to use instead.
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ARG003
        raise TypeError(_USE_A_LAYER.format(what=f"torch function {getattr(func, '__name__', func)!s}"))

    def __array__(self, *args, **kwargs):  # noqa: ARG002
        raise TypeError(_USE_A_LAYER.format(what="numpy"))

    def __bool__(self):
        raise TypeError(_USE_A_LAYER.format(what="bool()"))

    def __getitem__(self, key):
        raise TypeError(_USE_A_LAYER.format(what=f"indexing [{key!r}]"))

    def __iter__(self):
        raise TypeError(_USE_A_LAYER.format(what="unpacking or iteration"))

    # ``a + b``, ``a - b``, ``a * b`` (with a tensor or a number on either side) and ``-a`` record a
    # layer call, as Keras's operators record an op; OPERATORS holds the function that does it.
    def __add__(self, other):
        return _apply_operator("add", self, other)

    def __radd__(self, other):
        return _apply_operator("add", other, self)

    def __sub__(self, other):
        return _apply_operator("subtract", self, other)

    def __rsub__(self, other):
        return _apply_operator("subtract", other, self)

    def __mul__(self, other):
        return _apply_operator("multiply", self, other)

    def __rmul__(self, other):
        return _apply_operator("multiply", other, self)

    def __neg__(self):
        return _apply_operator("multiply", -1.0, self)

    def _operator(self, *_):
        raise TypeError(_USE_A_LAYER.format(what="this arithmetic operator"))

    __truediv__ = __rtruediv__ = __matmul__ = __rmatmul__ = __pow__ = _operator


# The layers live above this module (they import it), so the module that defines the merge layers
# registers here the function that turns ``op(x, y)`` into a layer call: OPERATORS["apply"](op, x, y).
OPERATORS: dict = {}


def _apply_operator(op: str, x, y):
    if "apply" not in OPERATORS:
        raise TypeError(_USE_A_LAYER.format(what="an arithmetic operator"))
    return OPERATORS["apply"](op, x, y)


class Node:
    """One call of a layer on symbolic tensors.

    ``args``/``kwargs`` are the call as written (for configs and summaries);
    ``call_kwargs`` adds the mask passed automatically. ``inputs`` are the
    symbolic tensors in ``args`` and ``call_kwargs``, in order; ``outputs``
    the layer's output tensors, flat, and ``structure`` the output as the
    layer returned it (tensors replaced by their SymbolicTensors). ``mask``
    is a mask the layer computes (``compute_mask(args[0], mask_arg)``), when
    it makes a new one.
    """

    def __init__(self, layer, args, kwargs, call_kwargs, mask_arg):
        self.layer = layer
        self.args, self.kwargs, self.call_kwargs = tuple(args), dict(kwargs), call_kwargs
        self.inputs: list[SymbolicTensor] = leaves((self.args, call_kwargs))
        self.mask_arg = mask_arg
        self.outputs: list[SymbolicTensor] = []
        self.structure = None
        self.mask: SymbolicTensor | None = None

    @property
    def is_source(self) -> bool:
        """An ``rk.Input``'s node: nothing flows in."""
        return not self.inputs and not self.args


# -------------------------------------------------------------- structures
# Call arguments and outputs are tensors nested in lists, tuples, named tuples
# (LSTMState) and dicts; these walk them.


def leaves(obj) -> list[SymbolicTensor]:
    """The symbolic tensors in ``obj``, depth first."""
    if isinstance(obj, SymbolicTensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [leaf for o in obj for leaf in leaves(o)]
    if isinstance(obj, dict):
        return [leaf for o in obj.values() for leaf in leaves(o)]
    return []


def _rebuild(like, parts):
    if isinstance(like, dict):
        return dict(zip(like, parts))
    return type(like)(*parts) if hasattr(like, "_fields") else type(like)(parts)


def map_structure(fn, obj, leaf_type=SymbolicTensor):
    """``obj`` with every ``leaf_type`` leaf replaced by ``fn(leaf)``."""
    if isinstance(obj, leaf_type):
        return fn(obj)
    if isinstance(obj, (list, tuple)):
        return _rebuild(obj, [map_structure(fn, o, leaf_type) for o in obj])
    if isinstance(obj, dict):
        return _rebuild(obj, [map_structure(fn, o, leaf_type) for o in obj.values()])
    return obj


def is_nested(obj) -> bool:
    """True for a list, tuple or dict that holds another one."""
    parts = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    return any(isinstance(p, (list, tuple, dict)) for p in parts)


def flatten_like(template, given, path: str) -> list:
    """``given``'s values in the order of ``template``'s SymbolicTensors, once both have the same structure.

    Lists and tuples match each other, dicts match by keys; ``path`` (the
    argument's name) names the place of a mismatch in the ValueError.
    """
    if isinstance(template, SymbolicTensor):
        return [given]
    if isinstance(template, dict) and isinstance(given, dict) and set(template) == set(given):
        return [x for k in template for x in flatten_like(template[k], given[k], f"{path}[{k!r}]")]
    if isinstance(template, (list, tuple)) and isinstance(given, (list, tuple)) and len(given) == len(template):
        return [x for i, (t, g) in enumerate(zip(template, given)) for x in flatten_like(t, g, f"{path}[{i}]")]
    expected = map_structure(lambda t: t.node.layer.name, template)
    got = map_structure(lambda x: f"shape {tuple(x.shape)}", given, (torch.Tensor, np.ndarray))
    arg = path.split("[")[0]
    raise ValueError(f"{path}: The structure of `{arg}` doesn't match the expected structure {expected}; got {got}")


def pack_like(template, flat: list):
    """``template`` with its SymbolicTensors replaced by ``flat``'s values, in order (``flatten_like`` undone)."""
    values = iter(flat)
    return map_structure(lambda _: next(values), template)


def flat_tensors(obj) -> list[torch.Tensor]:
    """The tensors in a layer's output, in the order ``record`` numbered them."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in flat_tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in flat_tensors(o)]
    return []


# ---------------------------------------------------------------- recording


def is_symbolic_call(args, kwargs) -> bool:
    """True when any argument holds a SymbolicTensor (checked on every layer call, so kept cheap)."""
    for a in args:
        if isinstance(a, SymbolicTensor) or (isinstance(a, (list, tuple, dict)) and leaves(a)):
            return True
    return any(isinstance(v, SymbolicTensor) or (isinstance(v, (list, tuple, dict)) and leaves(v)) for v in kwargs.values())


def output_mask(layer, inputs, mask):
    """The mask a layer's output carries, given its first argument and the incoming mask (Keras 3)."""
    if hasattr(layer, "compute_mask"):
        return layer.compute_mask(inputs, mask)
    if hasattr(layer, "return_sequences"):  # a recurrent layer: only a sequence keeps its time mask
        return mask if layer.return_sequences else None
    return mask if getattr(layer, "supports_masking", False) else None


def _check_arguments(layer, args, kwargs):
    def check(x):
        if isinstance(x, (torch.Tensor, np.ndarray)):
            raise TypeError(
                f"inputs: layer {layer.name!r} was called on symbolic tensors mixed with a concrete "
                f"{type(x).__name__} of shape {tuple(x.shape)}; in a functional model every tensor comes from "
                "rk.Input or a layer: make it an rk.Input and feed it to the model"
            )
        if isinstance(x, (list, tuple)):
            for y in x:
                check(y)
        elif isinstance(x, dict):
            for y in x.values():
                check(y)

    check((args, kwargs))


def record(layer, args, kwargs):
    """Record ``layer(*args, **kwargs)`` on symbolic tensors; return its symbolic outputs."""
    node = symbolic_call(layer, args, kwargs)
    vars(layer).setdefault("_inbound_nodes", []).append(node)
    return node.structure


def symbolic_call(layer, args, kwargs) -> Node:
    """The ``Node`` of ``layer(*args, **kwargs)`` on symbolic tensors, with its outputs, not yet recorded."""
    _check_arguments(layer, args, kwargs)
    first = leaves(args[0]) if args else []
    call_kwargs = dict(kwargs)
    if (
        getattr(layer, "takes_mask", False)
        and call_kwargs.get("mask") is None
        and call_kwargs.get("lengths") is None
        and first
        and first[0].mask is not None
    ):
        call_kwargs["mask"] = first[0].mask
    # The mask compute_mask sees: the call's mask, else the first argument's (one per tensor for a list).
    if call_kwargs.get("mask") is not None:
        mask_arg = call_kwargs["mask"]
    elif args and isinstance(args[0], SymbolicTensor):
        mask_arg = args[0].mask
    elif args and isinstance(args[0], (list, tuple)) and any(getattr(t, "mask", None) is not None for t in args[0]):
        mask_arg = [getattr(t, "mask", None) for t in args[0]]
    else:
        mask_arg = None

    node = Node(layer, args, kwargs, call_kwargs, mask_arg)
    sizes = (2, 3) if any(d is None for t in node.inputs for d in t.shape[1:]) else (1,)
    runs = [_run_on_zeros(layer, node, size) for size in sizes]
    out_a, new_mask, given_masks = runs[0]

    # A fixed batch size (rk.Input(batch_size=...)) carries over when every input has the same one.
    batches = {t.shape[0] for t in node.inputs}
    batch = batches.pop() if len(batches) == 1 else None

    def symbolize(*leaves_):
        t = SymbolicTensor(_common_shape(leaves_, batch), leaves_[0].dtype, node, len(node.outputs))
        node.outputs.append(t)
        return t

    node.structure = _zip_map(symbolize, [r[0] for r in runs])
    if not node.outputs:
        raise TypeError(f"layer {layer.name!r} returned {type(out_a).__name__}, not tensors; it cannot be part of a functional model")
    if isinstance(new_mask, torch.Tensor):
        passed = [s for s, probe in given_masks if probe is new_mask]
        if passed:  # on the first output; Bidirectional(merge_mode=None) gives its two halves the mask
            for t in node.outputs[:getattr(layer, "masked_outputs", 1)]:
                t.mask = passed[0]
        else:  # a mask the layer makes (Embedding, Masking, a merge of masks)
            node.mask = SymbolicTensor(_common_shape([r[1] for r in runs], batch), new_mask.dtype, node, -1)
            node.outputs[0].mask = node.mask
    return node


def _common_shape(tensors, batch: int | None = None) -> tuple:
    """``(batch, ...)``: the runs' shapes, with ``None`` where they differ."""
    return (batch, *(a if all(a == o for o in rest) else None for a, *rest in zip(*[t.shape[1:] for t in tensors])))


def _zip_map(fn, outs):
    """Map ``fn`` over the tensors of several runs' outputs of the same structure, at once."""
    first = outs[0]
    if isinstance(first, torch.Tensor):
        return fn(*outs)
    if isinstance(first, (list, tuple)):
        return _rebuild(first, [_zip_map(fn, list(parts)) for parts in zip(*outs)])
    if isinstance(first, dict):
        return _rebuild(first, [_zip_map(fn, [o[k] for o in outs]) for k in first])
    return first


def _run_on_zeros(layer, node, size):
    """Run the layer once on a one-row batch of zeros (masks all True); ``None`` axes get ``size``.

    Eval mode without gradients, and a stateful layer's carried state is put
    back, so recording changes nothing but building lazy layers. Returns the
    output, the output mask and the (symbolic mask, zeros mask) pairs given.
    """
    param = next(layer.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    probes = {}

    def zeros(t):
        if t not in probes:
            shape = (1, *(size if d is None else d for d in t.shape[1:]))
            make = torch.ones if t.dtype == torch.bool else torch.zeros
            probes[t] = make(shape, dtype=t.dtype, device=device)
        return probes[t]

    args = map_structure(zeros, node.args)
    kwargs = map_structure(zeros, node.call_kwargs)
    mask = map_structure(zeros, node.mask_arg)
    modes = [(m, m.training) for m in layer.modules()]
    carried = [(m, m.states) for m in layer.modules() if getattr(m, "stateful", False)]
    layer.eval()
    try:
        with torch.no_grad():
            out = layer(*args, **kwargs)
            new_mask = output_mask(layer, args[0], mask) if args else None
    except (ValueError, TypeError, RuntimeError, IndexError) as e:
        shapes = map_structure(lambda t: t.shape, (list(node.args), node.kwargs))
        raise (TypeError if isinstance(e, TypeError) else ValueError)(
            f"layer {layer.name!r} ({type(layer).__name__}) cannot be called on symbolic inputs "
            f"{shapes[0]}{f' with {shapes[1]}' if shapes[1] else ''}: {e}"
        ) from e
    finally:
        for m, was in modes:
            m.training = was
        for m, states in carried:
            m.states = states
    given = [(s, probes[s]) for s in leaves(node.mask_arg)]
    return out, new_mask, given


# ----------------------------------------------------------------- planning


def topological_order(roots, parents, describe=repr) -> list:
    """Every node ``roots`` need, each after its ``parents(node)``, depth first: the one planner of both graphs.

    The functional ``Model`` (``plan`` below: nodes are layer calls) and TF1
    graph mode (``compat.v1.session.plan_ops``: nodes are ops) record a graph
    first and replay it later; each says what a node needs through
    ``parents``, which may raise to refuse an edge. A node reached again while
    its own parents are being walked is a cycle: ValueError naming it with
    ``describe``.
    """
    order: list = []
    state: dict[int, int] = {}  # id(node) -> 1 while its parents are walked, 2 once placed

    def visit(node):
        mark = state.get(id(node))
        if mark == 2:
            return
        if mark == 1:
            raise ValueError(f"graph: {describe(node)} depends on itself (a cycle)")
        state[id(node)] = 1
        for p in parents(node):
            visit(p)
        state[id(node)] = 2
        order.append(node)

    for node in roots:
        visit(node)
    return order


def plan(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor], output_names: list[str], known=()) -> list[Node]:
    """The nodes that compute ``outputs`` from ``inputs`` (and the ``known`` tensors), each after the nodes it reads from.

    Raises ValueError naming the output and the ``rk.Input`` it needs when an
    output depends on an input that is not among ``inputs``.
    """
    known = set(inputs) | set(known)
    what = ""  # the output being planned, named in the errors

    def needed(t: SymbolicTensor) -> list[Node]:
        if t in known:
            return []
        if t.node is None:
            raise ValueError(
                f"outputs: output {what!r} depends on {t!r}, a shape and dtype from compute_output_spec with no "
                "layer call behind it; call the model itself on the symbolic tensors instead"
            )
        if t.node.is_source:
            raise ValueError(
                f"outputs: Output with path `{what}` is not connected to the model's inputs; output {what!r} "
                f"is not reachable from them: it depends on Input "
                f"{t.node.layer.name!r} {t.shape}, which is not among inputs "
                f"{[s.node.layer.name for s in inputs]}; add it to inputs"
            )
        return [t.node]

    def roots():  # lazily, so that ``what`` names the output whose walk is under way
        nonlocal what
        for t, what in zip(outputs, output_names):  # noqa: B007 - read by needed()
            yield from needed(t)

    return topological_order(roots(), lambda node: [n for s in node.inputs for n in needed(s)])


def layer_input(layer):
    """``layer.input``: the first argument of the layer's first call on symbolic tensors."""
    node = _first_node(layer, "input")
    return node.outputs[0] if node.is_source else node.args[0]


def layer_output(layer):
    """``layer.output``: what the layer's first call on symbolic tensors returned."""
    return _first_node(layer, "output").structure


def _first_node(layer, what):
    nodes = vars(layer).get("_inbound_nodes")
    if not nodes:
        raise ValueError(  # not AttributeError: nn.Module.__getattr__ would hide the message
            f"{what}: layer {layer.name!r} has not been called on symbolic tensors (rk.Input) yet, so it has no {what}"
        )
    return nodes[0]
