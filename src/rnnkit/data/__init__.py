"""The seeds' jobs as ready datasets, the model each one trains, and trained runs in Python.

Every task returns a ``Task``: train/test arrays, the loss and metrics it
is trained with, the output layer it needs and the presets that train it
well. ``TASKS`` holds each task's ``TaskSpec`` (how it loads, reports and
samples), which the task's own module declares. Nothing is downloaded:
hello and series are generated, digits ships with scikit-learn, text reads
the docstrings of the installed Python standard library; ``data=PATH``
reads a user's own file instead.

    task = load_task("digits")
    model = build_model(task, cell="gru", units=128)
    model.compile(learning_rate=task.presets["lr"], loss=task.loss, metrics=task.metrics)
    model.fit(task.x_train, task.y_train, epochs=task.presets["epochs"])

A run directory written by ``rnnkit train`` loads back with its task:

    run = load_run("runs/t")
    print(run.sample(prime="The ", length=300, temperature=0.7, seed=1))   # text: a string
    run.predict(x)                                                          # the model's outputs
"""

from .registry import CELLS, TASKS, build_model, load_task
from .run import Run, load_run, read_array, task_config
from .task import SampleOptions, Task, TaskSpec

__all__ = ["CELLS", "TASKS", "Run", "SampleOptions", "Task", "TaskSpec", "build_model", "load_run", "load_task",
           "read_array", "task_config"]
