"""Loops in the graph: a body recorded once, run once per step (``dynamic_rnn``'s cell, ``scan``'s function).

A loop op (``While``, ``Scan``) is made first; the body is traced inside
``graph.loop_body(op)`` on loop variables (``LoopVar`` ops: this step's
input, the carried state), so its ops carry ``op.loop`` and do not grow with
the number of steps. The body's ops in order, its outputs and the outer
tensors it reads (``captures``: variables, constants) are kept on the loop
op; the captures become the loop op's inputs, so a session computes them
before the loop and the loop feeds them to every step::

    loop = new_loop_op("Scan", "scan")
    body = trace(loop, [(shape, dtype, "acc"), (shape, dtype, "x")], lambda acc, x: [fn(acc, x)])
    finish(loop, [elems, init], run, ...)      # run(elems, init, *captures) steps body.run(...)
"""

from __future__ import annotations

from ...ops import rebuild_tuple
from ...scanning import scan as eager_scan
from .graph import Operation, Tensor, convert_to_tensor, get_default_graph
from .session import plan_ops, run_ops


def flatten(struct) -> list:
    """The leaves of nested tuples/lists (named tuples too), depth first."""
    if isinstance(struct, (tuple, list)):
        return [leaf for s in struct for leaf in flatten(s)]
    return [struct]


def pack_as(template, leaves):
    """``template``'s structure filled from the iterator ``leaves``."""
    if isinstance(template, (tuple, list)):
        parts = [pack_as(t, leaves) for t in template]
        return rebuild_tuple(template, parts) if isinstance(template, tuple) else parts
    return next(leaves)


def _unfed_loop_var():
    raise RuntimeError("a loop variable is set by its loop at each step; it cannot be run on its own")


class Body:
    """A traced loop body: loop variables in, outputs out, the ops between, and the outer tensors it reads."""

    def __init__(self, loop_vars: list[Tensor], outputs: list[Tensor], ops: list[Operation], captures: list[Tensor]):
        self.loop_vars, self.outputs, self.ops, self.captures = loop_vars, outputs, ops, captures

    def run(self, captured: list, values: list) -> list:
        """One step: the outputs' values given the captures' and the loop variables' values."""
        env = dict(zip(self.captures, captured))
        env.update(zip(self.loop_vars, values))
        run_ops(self.ops, env)
        return [env[t] for t in self.outputs]


def new_loop_op(type_: str, name: str) -> Operation:
    """The loop op, named and scoped now, added to the graph by ``finish`` once its body is known."""
    graph = get_default_graph()
    return Operation(graph, type_, graph.unique_name(name), None, [], {})


def trace(loop: Operation, specs, fn) -> Body:
    """Record ``fn(*loop_vars)`` (a list of tensors back) as ``loop``'s body; ``specs``: (shape, dtype, name) per loop variable."""
    graph = loop.graph
    with graph.loop_body(loop), graph.name_scope(loop.name + "/"):
        loop_vars = [
            graph.record_op("LoopVar", _unfed_loop_var, [], {}, name=name, shapes=[shape], dtypes=[dtype]).outputs[0]
            for shape, dtype, name in specs
        ]
        outputs = [convert_to_tensor(t) for t in fn(*loop_vars)]
    given = set(loop_vars)
    inside = [t.op for t in outputs if t.op.loop is loop and t not in given]
    ops = plan_ops(inside, given, within=loop)
    captures: list[Tensor] = []
    for t in [t for op in ops for t in op.inputs] + outputs:
        if t.op.loop is not loop and t not in captures:
            captures.append(t)
    return Body(loop_vars, outputs, ops, captures)


def finish(loop: Operation, inputs: list[Tensor], fn, attrs, shapes, dtypes, body: Body) -> list[Tensor]:
    """Give ``loop`` its inputs (``inputs`` then the body's captures), function and outputs; add it to the graph."""
    loop.inputs = [*inputs, *body.captures]
    loop.fn = fn
    loop.attrs = dict(attrs)
    loop.body = body
    loop.outputs = [Tensor(loop, k, s, d) for k, (s, d) in enumerate(zip(shapes, dtypes))]
    loop.graph._add(loop)
    return loop.outputs


def scan(fn, elems, initializer=None, parallel_iterations=10, back_prop=True, swap_memory=False,  # noqa: ARG001 - TF1's signature
         infer_shape=True, reverse=False, name=None):  # noqa: ARG001
    """TF1's ``tf.scan`` in the graph: ``fn(acc, x)`` recorded once, run by ``rnnkit.scan`` at each step.

    ``elems`` is a tensor (or a tuple of tensors) scanned along axis 0;
    ``initializer`` the first accumulator (a tensor or a tuple), else
    ``elems[0]``. Returns the accumulators stacked: ``(steps, *acc.shape)``.

    >>> states = tf.scan(rnn_step, tf.transpose(X, [1, 0, 2]), initializer=tf.zeros([batch, 128]))
    """
    elems_is_tuple = isinstance(elems, (tuple, list))
    xs = [convert_to_tensor(e) for e in (elems if elems_is_tuple else [elems])]
    for x in xs:
        if x.shape is None or not x.shape:
            raise ValueError(f"elems: expected tensors with a first axis to scan, got {x.name} of shape {x.shape}")
    acc_template = elems if initializer is None else initializer
    inits = [] if initializer is None else [convert_to_tensor(t) for t in flatten(initializer)]
    acc_specs = [(x.shape[1:], x.dtype, "elem") for x in xs] if initializer is None else [(t.shape, t.dtype, "acc") for t in inits]
    loop = new_loop_op("Scan", name or "scan")

    def body(*loop_vars):
        acc = pack_as(acc_template, iter(loop_vars[: len(acc_specs)]))
        x_vars = loop_vars[len(acc_specs) :]
        out = fn(acc, tuple(x_vars) if elems_is_tuple else x_vars[0])
        leaves = flatten(out)
        if len(leaves) != len(acc_specs):
            raise ValueError(f"fn: returned {len(leaves)} tensors where the accumulator has {len(acc_specs)}")
        return leaves

    traced = trace(loop, acc_specs + [(x.shape[1:], x.dtype, "x") for x in xs], body)
    n_x, n_acc = len(xs), len(acc_specs)

    def run(*values, reverse):
        elem_values, init_values, captured = values[:n_x], values[n_x : n_x + len(inits)], values[n_x + len(inits) :]

        def step(acc, x):
            return tuple(traced.run(captured, [*acc, *x]))

        init = tuple(init_values) if inits else None
        elems_value = tuple(elem_values)
        stacked = eager_scan(step, elems_value, init, reverse=reverse)  # no init: elems[0] starts, as a tuple
        return stacked if n_acc > 1 else stacked[0]

    steps = xs[0].shape[0]
    shapes = [None if s is None else (steps, *s) for s, _, _ in acc_specs]
    outs = finish(loop, [*xs, *inits], run, {"reverse": bool(reverse)}, shapes, [d for _, d, _ in acc_specs], traced)
    return pack_as(acc_template, iter(outs))
