"""``Session``: run the part of the graph that the fetches need, with the feeds.

    with tf.Session() as sess:
        init.run()                                              # the default session runs it
        acc, loss = sess.run([accuracy, xentropy], feed_dict={X: xb, y: yb})
        sess.run(training_op, feed_dict={X: xb, y: yb})

A run is planned once per (fetches, fed tensors, graph version): the ops
the fetches need, in an order where each comes after its inputs, stopping
at fed tensors. Later runs with the same fetches and feeds reuse the plan,
so a training loop evaluates a flat list of ops without walking the graph
again. Autograd is on only when the plan holds a ``minimize`` op.

Fetches nest as in TF1 (lists, tuples, dicts, named tuples); each tensor
comes back as a numpy array (a numpy scalar for shape ``()``), each op as
``None``.
"""

from __future__ import annotations

import numpy as np
import torch

from ...graph import topological_order
from .graph import InvalidArgumentError, Operation, Tensor, _sessions, get_default_graph, shape_str


class _Plan:
    """The ops to run for one set of fetches and feeds, in order, and whether autograd is needed."""

    def __init__(self, ops: list[Operation]):
        self.ops = ops
        self.trains = any(op.trains for op in ops)


def plan_ops(targets: list[Operation], fed: set[Tensor], within=None) -> list[Operation]:
    """The ops that ``targets`` need, each after its inputs and control inputs, not going past ``fed`` tensors.

    ``within`` (a loop op) keeps the walk inside that loop's body: tensors
    from outside it are treated as given (they are the loop's inputs).
    """

    def parents(op: Operation) -> list[Operation]:
        needed = [t.op for t in op.inputs if t not in fed and (within is None or t.op.loop is within)]
        return needed + list(op.control_inputs)

    return topological_order(targets, parents, describe=lambda op: f"op {op.name}")


def run_ops(ops: list[Operation], env: dict) -> None:
    """Compute ``ops`` in order; ``env`` maps tensors to values (the feeds in, every output added)."""
    for op in ops:
        out = op.fn(*[env[t] for t in op.inputs], **op.attrs)
        if len(op.outputs) == 1:
            env[op.outputs[0]] = out
        elif op.outputs:
            env.update(zip(op.outputs, out))


def _flatten(fetches, out: list):
    """The tensors and ops in ``fetches``, depth first, into ``out``."""
    if isinstance(fetches, (Tensor, Operation)):
        out.append(fetches)
    elif isinstance(fetches, (list, tuple)):
        for f in fetches:
            _flatten(f, out)
    elif isinstance(fetches, dict):
        for f in fetches.values():
            _flatten(f, out)
    else:
        raise TypeError(
            f"fetches: expected graph tensors or ops (nested in lists, tuples or dicts), got {type(fetches).__name__} {fetches!r}"
        )


def _rebuild(fetches, values):
    if isinstance(fetches, (Tensor, Operation)):
        return next(values)
    if isinstance(fetches, dict):
        return type(fetches)((k, _rebuild(f, values)) for k, f in fetches.items())
    parts = [_rebuild(f, values) for f in fetches]
    return type(fetches)(*parts) if hasattr(fetches, "_fields") else type(fetches)(parts)


def to_numpy(value):
    """A fetched value as TF1 returns it: a numpy array, or a numpy scalar for shape ()."""
    arr = value.detach().cpu().numpy().copy()
    return arr[()] if arr.ndim == 0 else arr


class GraphBuilt(Exception):  # noqa: N818 - a signal, not an error
    """Raised by ``Session.run`` while ``stop_at_first_run`` is set: ``rnnkit graph`` builds a script's graph without running it."""

    def __init__(self, graph):
        super().__init__("graph built")
        self.graph = graph


class Session:
    """TF1's ``Session`` over a graph (the default graph if none is given).

    ``run(fetches, feed_dict)`` computes the fetches; ``with Session() as
    sess:`` makes it the default session for ``Tensor.eval()`` and
    ``Operation.run()`` and closes it after. ``target`` and ``config`` are
    accepted for ported code and not used.
    """

    stop_at_first_run = False  # set by rnnkit graph (draw.graph_of_script)

    def __init__(self, target="", graph=None, config=None):  # noqa: ARG002 - TF1's signature
        self.graph = graph or get_default_graph()
        self._plans: dict[tuple, _Plan] = {}
        self._closed = False
        self._context = None

    def __enter__(self):
        _sessions.append(self)
        self._context = self.graph.as_default()
        self._context.__enter__()
        return self

    def __exit__(self, *exc):
        self._context.__exit__(*exc)
        _sessions.remove(self)
        self.close()
        return False

    def close(self):
        self._closed = True
        self._plans.clear()

    def as_default(self):
        return _DefaultSession(self)

    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):  # noqa: ARG002 - TF1's signature
        """The fetches' values, in the fetches' structure, with ``feed_dict`` {tensor: value} fed."""
        if Session.stop_at_first_run:
            raise GraphBuilt(self.graph)
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        flat: list = []
        _flatten(fetches, flat)
        feeds = self._feeds(feed_dict or {})
        key = (tuple(id(f) for f in flat), tuple(id(t) for t in feeds), self.graph.version)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(flat, feeds)
        env = dict(feeds)
        with torch.set_grad_enabled(plan.trains):
            run_ops(plan.ops, env)
        values = (None if isinstance(f, Operation) else to_numpy(env[f]) for f in flat)
        return _rebuild(fetches, values)

    def _feeds(self, feed_dict) -> dict[Tensor, torch.Tensor]:
        feeds = {}
        for t, value in feed_dict.items():
            if isinstance(t, str):
                t = self.graph.get_tensor_by_name(t)
            if not isinstance(t, Tensor):
                raise TypeError(f"feed_dict: keys must be graph tensors (placeholders), got {type(t).__name__} {t!r}")
            if t.graph is not self.graph:
                raise ValueError(f"feed_dict: Tensor {t.name} is not an element of this session's graph")
            v = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
            v = v.to(t.dtype)
            if t.shape is not None and (
                v.dim() != len(t.shape) or any(d is not None and d != s for d, s in zip(t.shape, v.shape))
            ):
                raise ValueError(
                    f"Cannot feed value of shape {tuple(v.shape)} for Tensor '{t.name}', which has shape {shape_str(t.shape)}"
                )
            feeds[t] = v
        return feeds

    def _plan(self, flat, feeds) -> _Plan:
        for f in flat:
            if f.graph is not self.graph:
                raise ValueError(f"fetches: {f.name} is not an element of this session's graph")
        targets = [f if isinstance(f, Operation) else f.op for f in flat if not (isinstance(f, Tensor) and f in feeds)]
        ops = plan_ops(targets, set(feeds))
        for op in ops:
            if op.type == "Placeholder":
                shape = op.attrs["shape"]
                raise InvalidArgumentError(
                    f"You must feed a value for placeholder tensor '{op.name}' with dtype "
                    f"{str(op.attrs['dtype']).removeprefix('torch.')}" + ("" if shape is None else f" and shape {shape_str(shape)}")
                )
        return _Plan(ops)


class _DefaultSession:
    def __init__(self, session):
        self.session = session

    def __enter__(self):
        _sessions.append(self.session)
        return self.session

    def __exit__(self, *exc):
        _sessions.remove(self.session)
        return False


class InteractiveSession(Session):
    """A session that makes itself the default at once (TF1's notebook session)."""

    def __init__(self, target="", graph=None, config=None):
        super().__init__(target, graph, config)
        _sessions.append(self)

    def close(self):
        if self in _sessions:
            _sessions.remove(self)
        super().close()
