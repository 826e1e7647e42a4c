"""A run directory written by ``rnnkit train``, in Python: its model, its task, what it generates and predicts.

    run = load_run("runs/t")
    text = run.sample(prime="The ", length=300, temperature=0.7, seed=1)   # text: the characters after the prime
    values = load_run("runs/s").sample(length=30)      # series: {"t", "generated", "true"} arrays
    y = run.predict(x)                                  # the model's outputs for (samples, *input_shape)
    task = run.task()                                   # the data it was trained on (rebuilt)

The command line's ``evaluate``, ``sample`` and ``predict`` go through these.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model import Sequential
from ..serialization import load_model, read_config
from .registry import TASKS, load_task
from .task import SETTINGS, SampleOptions, Task


def task_config(run_dir, what: str = "run directory") -> dict:
    """The task section of ``run_dir``'s config.json (name, data, seed, settings, info), checked to come from
    ``rnnkit train``; ``what`` starts the error message."""
    task_cfg = read_config(run_dir).get("task")
    if (not isinstance(task_cfg, dict) or task_cfg.get("name") not in TASKS
            or not isinstance(task_cfg.get("settings"), dict) or not isinstance(task_cfg.get("info"), dict)):
        raise ValueError(f"{what}: {run_dir} was not written by `rnnkit train` (no task in config.json)")
    # A hand-edited task section must fail here, naming what is wrong, not as a KeyError deep in a run.
    s = task_cfg["settings"]
    missing = [k for k in SETTINGS if k not in s] + [k for k in ("seed",) if k not in task_cfg]
    if missing:
        raise ValueError(f"{what}: config.json's task section lacks {missing}; expected the settings {list(SETTINGS)} "
                         "and the seed that `rnnkit train` writes")
    for key in ("epochs", "batch_size", "units", "layers"):
        if type(s[key]) is not int or s[key] < 1:
            raise ValueError(f"{what}: config.json: task.settings.{key} should be a positive integer, got {s[key]!r}")
    if type(task_cfg["seed"]) is not int:
        raise ValueError(f"{what}: config.json: task.seed should be an integer, got {task_cfg['seed']!r}")
    if not isinstance(s["lr"], (int, float)) or isinstance(s["lr"], bool) or not 0 < s["lr"] < math.inf:
        raise ValueError(f"{what}: config.json: task.settings.lr should be a positive number, got {s['lr']!r}")
    return task_cfg


def epochs_done(run_dir) -> int | None:
    """The finished epochs recorded in ``run_dir``'s trainer_state.json; None when it cannot be read."""
    try:
        epoch = json.loads((Path(run_dir) / "trainer_state.json").read_text(encoding="utf-8")).get("epoch")
    except (OSError, ValueError, AttributeError):
        return None
    return epoch if isinstance(epoch, int) else None


def data_path(task_cfg: dict, data=None) -> str | None:
    """The data file a run reads: ``data`` when given (resolved), else the one it was trained on, which must
    still exist (a moved file is named with the way out)."""
    if data is not None:
        return str(Path(data).resolve())
    stored = task_cfg.get("data")
    if stored is not None and not Path(stored).exists():
        raise ValueError(f"data: this run was trained on {stored}, which no longer exists; give its new place with "
                         "--data")
    return stored


@dataclass
class Run:
    """A loaded run directory: ``model`` (compiled, in eval mode) and the task section of its config.json."""

    path: Path
    model: Sequential
    config: dict  # name, data, seed, settings, info

    @property
    def task_name(self) -> str:
        return self.config["name"]

    def task(self, data=None) -> Task:
        """The task the run was trained on, rebuilt (``data``: a new place for its data file)."""
        return load_task(self.task_name, data=data_path(self.config, data), seed=self.config["seed"])

    def sample(self, options: SampleOptions | None = None, **flags):
        """What the model generates: text, the characters after ``prime``; series, ``{"t", "generated",
        "true"}``. Keywords are ``SampleOptions`` fields (length, temperature, prime, start, seed)."""
        spec = TASKS[self.task_name]
        if spec.sample is None:
            can = " and ".join(name for name, other in TASKS.items() if other.sample is not None)
            raise ValueError(f"sample: the {spec.name} task does not generate; sample works for {can}")
        return spec.sample(self.model, self.config["info"], SampleOptions(**flags) if options is None else options)

    def inputs(self, x) -> np.ndarray:
        """``x`` shaped and typed for the model: (samples, *input_shape), or one sample, or rows of a table
        with each sample flattened (time * features values; the time length may differ from training)."""
        shape = tuple(self.model.input_shape)
        features = shape[1:]
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"input: expected numbers, got dtype {x.dtype}")
        if x.shape == shape:
            x = x[None]
        elif x.ndim == 2 and features:
            width = math.prod(features)
            if x.shape[1] % width:
                raise ValueError(f"input: each row should hold whole time steps of {width} values "
                                 f"(features {features}), got rows of {x.shape[1]}")
            x = x.reshape(len(x), -1, *features)
        if x.ndim != len(shape) + 1 or tuple(x.shape[2:]) != features:
            dims = "".join(f", {f}" for f in features)
            raise ValueError(f"input: expected (samples, time{dims}) like the training data's {shape}, "
                             f"got an array of shape {x.shape}")
        vocab = self.config["info"].get("vocab")
        if vocab is None:
            return x.astype(np.float32)
        if x.dtype.kind == "f" and not np.array_equal(x, np.round(x)):
            raise ValueError("input: this model reads character ids (integers), got fractions")
        if x.size and (x.min() < 0 or x.max() >= len(vocab)):
            raise ValueError(f"input: character ids must lie in [0, {len(vocab) - 1}], got min {x.min()}, max {x.max()}")
        return x.astype(np.int64)

    def predict(self, x, batch_size: int = 256) -> np.ndarray:
        """The model's outputs for ``x`` (see ``inputs`` for the shapes it takes)."""
        return self.model.predict(self.inputs(x), batch_size=batch_size)


def load_run(run_dir, device: str = "auto") -> Run:
    """Load the run directory ``run_dir``: its model (weights as trained, compiled) and its task."""
    config = task_config(run_dir)
    return Run(Path(run_dir), load_model(run_dir, device=device), config)


def read_array(path) -> np.ndarray:
    """An input file for ``predict``: ``.npy`` (plain arrays, never pickles) or ``.csv`` (one sample a row,
    comma-separated numbers; lines starting with ``#`` are comments)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"input: {path} does not exist or is not a file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".csv":
            return np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"input: cannot read {path} as {suffix[1:]} ({str(e).splitlines()[0]})") from None
    raise ValueError(f"input: expected a .npy or .csv file, got {path.name!r}")
