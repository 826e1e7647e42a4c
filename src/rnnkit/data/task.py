"""What a task is: its data (``Task``) and what the command line does with it (``TaskSpec``).

Each task module (hello, digits, series, text) builds its ``Task`` in
``load`` and declares one ``SPEC``; ``rnnkit.data.TASKS`` lists the specs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# The settings a run is trained with: every task's presets give them, and config.json's task section keeps them.
SETTINGS = ("cell", "units", "layers", "bidirectional", "dropout", "epochs", "batch_size", "lr", "optimizer",
            "clipnorm")


@dataclass
class Task:
    """One job: data, how it is scored, and the model head it needs.

    x_*: (samples, time, features) floats, or (samples, time) token ids when
    ``vocab_size`` is set (the model then starts with an Embedding).
    sequence_output: the model predicts at every step (seq-to-seq) rather
    than once from the last step.
    presets: the training settings that train it well (cell, units, epochs,
    batch_size, lr, ...).
    info: plain-JSON facts needed to use a trained model again (vocabulary,
    time grid), stored in the run's config.json.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    loss: str
    metrics: list[str]
    output_units: int
    output_activation: str | None
    sequence_output: bool
    presets: dict
    vocab_size: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


@dataclass(frozen=True)
class SampleOptions:
    """The ``rnnkit sample`` flags; each task reads the ones it uses (length None: the task's default)."""

    length: int | None = None
    temperature: float = 1.0
    prime: str = "The "
    start: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class TaskSpec:
    """A task as the command line sees it.

    load(data=None, seed=0) -> Task.
    presets: the settings ``load`` gives without ``data`` (shown by ``--help``).
    quick: settings that train in seconds, for tests and a first look.
    report(task, model, test, run_dir, print_fn) -> dict: after training or
    ``evaluate``, print the test scores ``test`` next to a baseline and
    return the results to store (baseline, predictions); draw plots into
    ``run_dir`` unless it is None.
    data_help: what ``--data`` reads; None when the task makes its own data.
    sample(model, info, options) -> result: what the model generates for a
    run of this task (``info`` is ``Task.info`` from its config.json); None
    when the task does not generate. show_sample(result, options) -> str:
    that result as ``rnnkit sample`` prints it.
    sample_help: flag name -> help, for the ``SampleOptions`` it reads.
    headline(metrics) -> (result, baseline): the task's row in the demo's
    table; None keeps the task out of the demo.
    """

    name: str
    load: Callable
    presets: dict
    quick: dict
    report: Callable
    data_help: str | None = None
    sample: Callable | None = None
    show_sample: Callable | None = None
    sample_help: dict = field(default_factory=dict)
    headline: Callable | None = None
