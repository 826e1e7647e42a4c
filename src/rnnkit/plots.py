"""PNG figures of a run (matplotlib, Agg backend: no display needed).

    plot_history(history.history, "runs/digits/history.png")
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np

from .files import atomic_write  # the same write-then-rename as every run file


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write(path, buf.getvalue())
    return Path(path)


def _log_if_wide(ax, values) -> None:
    """A log y axis when positive values span more than 30x: a loss falls fast early and slowly later,
    and on a linear axis everything after the first epochs looks flat."""
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if values.size and values.min() > 0 and values.max() / values.min() > 30:
        ax.set_yscale("log")


def plot_history(history: dict[str, list[float]], path, title: str = "") -> Path:
    """Loss (left) and each metric (right), training and validation, per epoch."""
    plt = _pyplot()
    metrics = [k for k in history if not k.startswith("val_") and k not in ("loss", "lr")]
    fig, axes = plt.subplots(1, 1 + bool(metrics), figsize=(10 if metrics else 5.5, 4), squeeze=False,
                             layout="constrained")
    for ax, names in zip(axes[0], (["loss"], metrics)):
        for name in names:
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                if history.get(key):
                    ax.plot(np.arange(1, len(history[key]) + 1), history[key], style, label=key)
        if not any("acc" in name for name in names):  # accuracies stay on a linear [0, 1] axis
            _log_if_wide(ax, [v for name in names for key in (name, f"val_{name}") for v in history.get(key, [])])
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)  # no epoch 2.5
        ax.set_ylabel(", ".join(names))
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion(y_true, y_pred, path, title: str = "digits: test confusion matrix") -> Path:
    """Counts of (true class, predicted class) as a heat map with the numbers written in."""
    plt = _pyplot()
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = int(max(y_true.max(), y_pred.max())) + 1
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def plot_series(t_window, window, forecast, truth, path, t_gen=None, generated=None, truth_gen=None) -> Path:
    """Top: a test window, its one-step forecasts vs the truth. Bottom: the generated continuation.

    ``forecast``/``truth`` are the next values after each step of ``window`` (times ``t_window`` + one step).
    """
    t_window = np.asarray(t_window)
    t_next = t_window + (t_window[1] - t_window[0] if len(t_window) > 1 else 1.0)
    plt = _pyplot()
    rows = 2 if generated is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 3.5 * rows), squeeze=False, layout="constrained")
    ax = axes[0][0]
    ax.plot(t_window, window, "o-", color="0.6", label="input window")
    ax.plot(t_next, truth, "s", mfc="none", color="C0", label="truth (next value)")
    ax.plot(t_next, forecast, "x", color="C1", label="forecast")
    ax.set_title("series: one-step forecast on a test window")
    ax.set_xlabel("t")
    ax.set_ylabel("signal")
    ax.legend()
    ax.grid(alpha=0.3)
    if generated is not None:
        ax = axes[1][0]
        ax.plot(t_window, window, "-", color="0.6", label="start window")
        ax.plot(t_gen, truth_gen, "-", color="C0", label="true continuation")
        ax.plot(t_gen, generated, "--", color="C1", label="generated (predictions fed back)")
        ax.set_title("series: generated continuation")
        ax.set_xlabel("t")
        ax.set_ylabel("signal")
        ax.legend()
        ax.grid(alpha=0.3)
    return _save(fig, path)
