"""The seeds' "hello": one-hot characters h, e, l, o; learn to output "ello" from "hell".

x is (1, 4, 4): the one-hot rows of h, e, l, l. y is (1, 4): the ids of
e, l, l, o, the next character at every step (seq-to-seq, softmax over 4).
"""

from __future__ import annotations

import numpy as np

from .task import Task, TaskSpec

CHARS = "helo"  # seed 000's order: h=[1,0,0,0], e=[0,1,0,0], l=[0,0,1,0], o=[0,0,0,1]
PRESETS = {"cell": "simple", "units": 8, "epochs": 60, "batch_size": 1, "lr": 0.05}


def one_hot(text: str) -> np.ndarray:
    """(len(text), 4) float32 rows of the seed's one-hot code."""
    bad = sorted(set(text) - set(CHARS))
    if bad:
        raise ValueError(f"text: only the characters {CHARS!r} have a one-hot code, got {bad}")
    return np.eye(len(CHARS), dtype=np.float32)[[CHARS.index(c) for c in text]]


def decode(probs: np.ndarray) -> str:
    """Most likely character at each step of (time, 4) scores."""
    return "".join(CHARS[i] for i in np.asarray(probs).argmax(-1))


def load(data=None, seed: int = 0) -> Task:  # noqa: ARG001 - the data is fixed
    x = one_hot("hell")[None]
    y = np.array([[CHARS.index(c) for c in "ello"]], dtype=np.int64)
    return Task(
        name="hello", x_train=x, y_train=y, x_test=x, y_test=y,
        loss="sparse_categorical_crossentropy", metrics=["accuracy"],
        output_units=len(CHARS), output_activation="softmax", sequence_output=True,
        presets=dict(PRESETS),
        info={"chars": CHARS, "input": "hell", "target": "ello"},
    )


def report(task: Task, model, test: dict, run_dir, print_fn) -> dict:  # noqa: ARG001 - no plots of its own
    """What the model says after "hell", beside always predicting 'l' (the most frequent next character)."""
    said = decode(model.predict(task.x_test)[0])
    print_fn(f"hello: input 'hell' -> predicted {said!r} (target 'ello'), "
             f"accuracy {test['accuracy']:.2f} vs 0.50 for always predicting 'l'")
    return {"predicted": said, "baseline": {"always_l_accuracy": 0.5}}


def headline(metrics: dict) -> tuple[str, str]:
    return f"predicts {metrics['predicted']!r} (target 'ello')", "'llll' (always 'l'): accuracy 0.50"


SPEC = TaskSpec(name="hello", load=load, presets=PRESETS, quick={"units": 8, "epochs": 60}, report=report, headline=headline)
