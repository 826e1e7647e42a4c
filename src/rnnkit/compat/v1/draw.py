"""See a recorded graph: an SVG or PNG picture, or TensorBoard's graph tab.

    tf.draw.to_svg(tf.get_default_graph(), "rnn.svg")     # no graphviz: the SVG is written here
    tf.draw.to_png(tf.get_default_graph(), "rnn.png")     # the same picture, drawn by matplotlib
    tf.draw.write_tensorboard(tf.get_default_graph(), "logs")   # then: tensorboard --logdir logs

    rnnkit graph seed_script.py -o rnn.svg               # the graph a TF1 script builds
    rnnkit graph runs/digits -o model.png                # a saved rnnkit model, layer by layer

The picture reads left to right: each op is a box (its name, then its
type), placed one column after the ops it reads. A loop op (``While``,
``Scan``) is a green box holding its body, drawn once: this is where
``dynamic_rnn``'s cell is, while ``static_rnn`` shows one cell box per step.
The machinery of variable initialization (``Assign``, initial values,
``init``) is left out of the pictures; TensorBoard gets every op.
"""

from __future__ import annotations

import html
import os
import runpy
import sys
from pathlib import Path

from . import graph as graph_module
from .graph import Graph, Operation, placeholder
from .session import GraphBuilt, Session

_HIDDEN = {"Assign", "Initializer", "NoOp"}
_FILL = {"Placeholder": "#fff3bf", "VariableV2": "#d0ebff", "While": "#ebfbee", "Scan": "#ebfbee", "Minimize": "#ffe3e3"}
_CELL_FILL = "#ffd8a8"
_W_CHAR, _H, _GAP_X, _GAP_Y, _PAD = 7.2, 38, 46, 14, 16


def _is_cell(op: Operation) -> bool:
    return op.type.endswith(("Cell", "Wrapper"))


def _drawn(ops: list[Operation]) -> list[Operation]:
    """The ops worth a box: not the initialization machinery (Assign ops, their initial values, ``init``)."""
    feeds_only_assign = {}
    for op in ops:
        for t in op.inputs:
            feeds_only_assign.setdefault(t.op, True)
            if op.type != "Assign":
                feeds_only_assign[t.op] = False
    return [op for op in ops if op.type not in _HIDDEN and not feeds_only_assign.get(op, False)]


class _Box:
    def __init__(self, op: Operation, inner=None):
        self.op = op
        name = op.name.rsplit("/", 1)[-1]
        self.lines = [name, op.type + (f" @ {op.device}" if op.device else "")]
        self.inner = inner  # a loop's body layout
        text_w = max(len(s) for s in self.lines) * _W_CHAR + 2 * _PAD
        self.w = max(text_w, inner.w + 2 * _PAD) if inner else text_w
        self.h = inner.h + _H + _PAD if inner else _H
        self.x = self.y = 0.0


class _Layout:
    """Boxes in columns: each op one column right of the furthest op it reads."""

    def __init__(self, ops: list[Operation]):
        self.boxes: dict[Operation, _Box] = {}
        for op in ops:
            body = getattr(op, "body", None)
            inner = _Layout([t.op for t in body.loop_vars] + [o for o in _drawn(body.ops) if o.type != "LoopVar"]) if body else None
            self.boxes[op] = _Box(op, inner)
        column: dict[Operation, int] = {}
        for op in ops:  # ops are in recording order, so inputs come first
            column[op] = 1 + max((column[t.op] for t in op.inputs if t.op in column), default=-1)
        columns: dict[int, list[_Box]] = {}
        for op in ops:
            columns.setdefault(column[op], []).append(self.boxes[op])
        x = 0.0
        self.h = 0.0
        for c in sorted(columns):
            boxes = columns[c]
            # Order a column by where its inputs sit, so edges cross less.
            def centre(b, c=c):
                ys = [self.boxes[t.op].y for t in b.op.inputs if t.op in self.boxes and column[t.op] < c]
                return sum(ys) / len(ys) if ys else 0.0

            boxes.sort(key=centre)
            y = 0.0
            for b in boxes:
                b.x, b.y = x, y
                y += b.h + _GAP_Y
            self.h = max(self.h, y - _GAP_Y)
            x += max(b.w for b in boxes) + _GAP_X
        self.w = max(x - _GAP_X, 0.0)

    def place(self, dx: float, dy: float):
        for b in self.boxes.values():
            b.x += dx
            b.y += dy
            if b.inner:
                b.inner.place(b.x + _PAD, b.y + _H)

    def all_boxes(self):
        for b in self.boxes.values():
            yield b
            if b.inner:
                yield from b.inner.all_boxes()

    def edges(self):
        """(from box, to box) for every input drawn; a loop's captured inputs go to the body op that reads them."""
        for b in self.all_boxes():
            captured = set(b.op.body.captures) if b.inner else set()
            for t in b.op.inputs:
                src = self._find(t.op)
                if src is not None and t not in captured:
                    yield src, b

    def _find(self, op):
        for b in self.all_boxes():
            if b.op is op:
                return b
        return None


def layout(graph: Graph) -> _Layout:
    """The picture's geometry: the graph's top-level ops (loop bodies inside their loops)."""
    lay = _Layout(_drawn(graph.top_level_ops()))
    lay.place(_PAD, _PAD)
    return lay


def _fill(op: Operation) -> str:
    return _CELL_FILL if _is_cell(op) else _FILL.get(op.type, "#f8f9fa")


def to_svg(graph: Graph, path=None, title: str | None = None) -> str:
    """The graph as SVG text (written to ``path`` when given)."""
    lay = layout(graph)
    top = 30 if title else 0
    width, height = lay.w + 2 * _PAD, lay.h + 2 * _PAD + top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#868e96"/></marker></defs>',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
        f'<g transform="translate(0,{top})">',
    ]
    if title:
        out.insert(3, f'<text x="{_PAD}" y="20" font-size="15" font-weight="bold">{html.escape(title)}</text>')
    for b in lay.all_boxes():
        loop = b.inner is not None
        stroke = "#2b8a3e" if loop else "#495057"
        out.append(f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" rx="6" fill="{_fill(b.op)}" '
                   f'stroke="{stroke}" stroke-width="{2 if loop else 1}"/>')
        out.append(f'<text x="{b.x + _PAD / 2:.1f}" y="{b.y + 16:.1f}" font-weight="bold">{html.escape(b.lines[0])}</text>')
        out.append(f'<text x="{b.x + _PAD / 2:.1f}" y="{b.y + 31:.1f}" fill="#495057">{html.escape(b.lines[1])}</text>')
    for src, dst in lay.edges():
        x0, y0 = src.x + src.w, src.y + min(src.h, _H) / 2
        x1, y1 = dst.x, dst.y + min(dst.h, _H) / 2
        mid = (x0 + x1) / 2
        out.append(f'<path d="M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}" fill="none" '
                   'stroke="#868e96" marker-end="url(#a)"/>')
    out.append("</g></svg>")
    svg = "\n".join(out) + "\n"
    if path is not None:
        Path(path).write_text(svg)
    return svg


def to_png(graph: Graph, path, title: str | None = None, dpi: int = 100) -> None:
    """The same picture as ``to_svg``, drawn with matplotlib (an optional dependency) into a PNG."""
    import matplotlib  # noqa: PLC0415 - optional dependency

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: PLC0415

    lay = layout(graph)
    top = 30 if title else 0
    width, height = lay.w + 2 * _PAD, lay.h + 2 * _PAD + top
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    if title:
        ax.text(_PAD, 20, title, fontsize=11, fontweight="bold")
    for b in lay.all_boxes():
        loop = b.inner is not None
        ax.add_patch(FancyBboxPatch((b.x, b.y + top), b.w, b.h, boxstyle="round,pad=0,rounding_size=6",
                                    facecolor=_fill(b.op), edgecolor="#2b8a3e" if loop else "#495057", linewidth=2 if loop else 1))
        ax.text(b.x + _PAD / 2, b.y + top + 16, b.lines[0], fontsize=8.5, fontweight="bold", va="baseline")
        ax.text(b.x + _PAD / 2, b.y + top + 31, b.lines[1], fontsize=8.5, color="#495057", va="baseline")
    for src, dst in lay.edges():
        start = (src.x + src.w, src.y + top + min(src.h, _H) / 2)
        end = (dst.x, dst.y + top + min(dst.h, _H) / 2)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=8, color="#868e96", linewidth=0.8,
                                     connectionstyle="arc3,rad=0.0"))
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


# -------------------------------------------------------------- TensorBoard


def _shape_proto(shape):
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto  # noqa: PLC0415 - optional dependency

    if shape is None:
        return TensorShapeProto(unknown_rank=True)
    return TensorShapeProto(dim=[TensorShapeProto.Dim(size=-1 if d is None else int(d)) for d in shape])


def to_graph_def(graph: Graph):
    """The graph as TensorBoard's ``GraphDef``: every op, its inputs (``^`` for control inputs), device and output shapes."""
    from tensorboard.compat.proto.attr_value_pb2 import AttrValue  # noqa: PLC0415 - optional dependency
    from tensorboard.compat.proto.graph_pb2 import GraphDef  # noqa: PLC0415

    gd = GraphDef()
    for op in graph.get_operations():
        node = gd.node.add(name=op.name, op=op.type, device=op.device)
        for t in op.inputs:
            node.input.append(t.op.name if t.value_index == 0 else f"{t.op.name}:{t.value_index}")
        node.input.extend(f"^{c.name}" for c in op.control_inputs)
        if op.outputs:
            shapes = AttrValue.ListValue(shape=[_shape_proto(t.shape) for t in op.outputs])
            node.attr["_output_shapes"].CopyFrom(AttrValue(list=shapes))
    return gd


def write_tensorboard(graph: Graph, logdir) -> str:
    """Write the graph as an event file under ``logdir`` (TensorBoard's graph tab); returns the file's path."""
    from tensorboard.compat.proto.event_pb2 import Event  # noqa: PLC0415 - optional dependency
    from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: PLC0415

    os.makedirs(logdir, exist_ok=True)
    writer = EventFileWriter(str(logdir))
    writer.add_event(Event(graph_def=to_graph_def(graph).SerializeToString()))
    writer.close()
    return max((str(p) for p in Path(logdir).glob("events.out.tfevents.*")), key=os.path.getmtime)


# ----------------------------------------------------------- the command


def graph_of_script(path, run: bool = False) -> Graph:
    """The graph a TF1 script builds: stopped at its first ``Session.run`` (or, with ``run``, the default graph at its end)."""
    script = Path(path)
    if not script.is_file():
        raise FileNotFoundError(f"SCRIPT_OR_MODEL: no file {str(script)!r}")
    graph_module.reset_default_graph()
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv, sys.path[:0] = [str(script)], [str(script.parent)]
    Session.stop_at_first_run = not run
    try:
        runpy.run_path(str(script), run_name="__main__")
    except GraphBuilt as built:
        return built.graph
    finally:
        Session.stop_at_first_run = False
        sys.argv, sys.path[:] = saved_argv, saved_path
    return graph_module.get_default_graph()


def graph_of_model(model) -> Graph:
    """An rnnkit model (``Sequential``) as a graph: its input, then one op per layer, in order."""
    g = Graph()
    with g.as_default():
        x = placeholder("float", None, name="input")
        for layer in model.layers:
            x = g.record_op(type(layer).__name__, None, [x], name=layer.name, shapes=[None]).outputs[0]
    return g


def graph_command(target: str, out: str | None, logdir: str | None, run: bool = False) -> list[str]:
    """``rnnkit graph SCRIPT_OR_MODEL``: draw a TF1 script's graph or a saved model's layers; returns the files written."""
    if target.endswith(".py"):
        graph = graph_of_script(target, run=run)
    else:
        from ...serialization import load_model  # noqa: PLC0415 - only this branch needs a saved model

        graph = graph_of_model(load_model(target, compile=False))
    out = out or (Path(target).stem + "_graph.svg")
    written = []
    title = f"{Path(target).name}: {len(_drawn(graph.top_level_ops()))} ops"
    if str(out).endswith(".png"):
        to_png(graph, out, title=title)
    else:
        to_svg(graph, out, title=title)
    written.append(str(out))
    if logdir:
        written.append(write_tensorboard(graph, logdir))
    return written
