"""Every task, by name (``TASKS``), the recurrent cells by flag name (``CELLS``), and the model each task trains.

    task = load_task("digits")
    model = build_model(task, cell="gru", units=128)
"""

from __future__ import annotations

from ..layers import GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, SimpleRNN
from ..mixed_precision import get as get_policy
from ..model import Sequential
from . import digits, hello, series, text
from .task import Task, TaskSpec

CELLS = {"simple": SimpleRNN, "gru": GRU, "lstm": LSTM}

# Every task, once, in the order the command line lists them.
TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (hello.SPEC, digits.SPEC, series.SPEC, text.SPEC)}


def load_task(name: str, data=None, seed: int = 0) -> Task:
    """Build the task ``name`` (a key of ``TASKS``); ``data`` is a path for digits (MNIST) and text."""
    if name not in TASKS:
        raise ValueError(f"task: unknown task {name!r}; expected one of {list(TASKS)}")
    spec = TASKS[name]
    if data is not None and spec.data_help is None:
        raise ValueError(f"data: the {name} task generates its own data and takes no --data file")
    return spec.load(data=data, seed=seed)


def build_model(task: Task, cell: str = "gru", units: int = 64, layers: int = 1, bidirectional: bool = False,
                dropout: float = 0.0, dtype=None) -> Sequential:
    """``[Embedding] -> recurrent layers -> [Dropout] -> Dense head``, shaped for ``task``.

    Stacked layers return sequences to the next; the last one returns
    sequences only for a seq-to-seq task. The head is a ``Dense`` on the
    last axis, so for sequences it projects every step (seed 003's output
    projection). ``dtype``: the layers' dtype policy (``rnnkit.mixed_precision``);
    under a mixed one the head stays float32, as Keras advises for the softmax.
    """
    if cell not in CELLS:
        raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {cell!r}")
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise ValueError(f"layers: expected an integer >= 1, got {layers!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout: expected a rate in [0, 1), got {dropout!r}")
    policy = get_policy(dtype)
    head = "float32" if policy is not None and policy.is_mixed else policy
    model = Sequential(name=f"{task.name}_model", input_shape=task.input_shape)
    if task.vocab_size is not None:
        model.add(Embedding(task.vocab_size, min(64, 4 * task.vocab_size), dtype=policy))
    for i in range(layers):
        rnn = CELLS[cell](units, return_sequences=task.sequence_output or i < layers - 1, dtype=policy)
        model.add(Bidirectional(rnn, dtype=policy) if bidirectional else rnn)
    if dropout:
        model.add(Dropout(dropout, dtype=policy))
    model.add(Dense(task.output_units, activation=task.output_activation, dtype=head))
    return model
