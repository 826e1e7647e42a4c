"""Training checkpoints: everything needed to continue a run exactly, in its run directory.

Beside ``config.json`` and ``model.safetensors`` (``rnnkit.serialization``)
a checkpoint holds (see docs/checkpoint-format.md)::

    optimizer.safetensors/.json       the optimizer's tensors / its hyperparameters and the rest
    trainer_state.safetensors/.json   RNG states and the shuffle generator / epoch counter
    history.json                      per-epoch logs

Every file is stamped with the epoch and the group is written as one change
(``rnnkit.files.write_files``): a reader, or the next run after a crash,
sees the whole old checkpoint or the whole new one. Loading checks each
file and restores global state only once everything has been checked.

    save_checkpoint("runs/digits", model, epoch=3, history=history.history)
    model, epoch, history, config = load_checkpoint("runs/digits")
    model.fit(x, y, epochs=10, initial_epoch=epoch)

``ModelCheckpoint`` is the callback that saves the model after each epoch.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import numpy as np
import torch

from .callbacks import Callback, Monitor, finite_state
from .files import Limits, check_limits, deferred_interrupt, json_bytes, loads_json, read_group, write_files
from .model import Sequential
from .serialization import (
    FORMAT,
    FORMAT_VERSION,
    check_model,
    file_meta,
    model_from_files,
    parse_config,
    parse_tensors,
    run_config,
    save_model,
    tensor_bytes,
)

# -------------------------------------------------------------- optimizer


def _optimizer_files(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``opt.state_dict()`` into tensors ("state.<param>.<key>") and a JSON document."""
    sd = opt.state_dict()
    tensors, values = {}, {}
    for idx, st in sd["state"].items():
        for key, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = v
            else:
                values.setdefault(str(idx), {})[key] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "optimizer": type(opt).__name__,
           "param_groups": groups, "state_values": values}
    return tensors, doc


def _check_param_groups(opt: torch.optim.Optimizer, groups) -> None:
    """The saved hyperparameters have the live optimizer's keys and kinds of values (finite numbers)."""
    live = opt.param_groups
    if not isinstance(groups, list) or len(groups) != len(live):
        raise ValueError(f"optimizer.json: expected param_groups as a list of {len(live)}, got {str(groups)[:80]}")
    start = 0
    for i, (saved, now) in enumerate(zip(groups, live)):
        if not isinstance(saved, dict) or set(saved) != set(now):
            raise ValueError(f"optimizer.json: param_groups[{i}] should have the keys {sorted(now)}, "
                             f"got {sorted(saved) if isinstance(saved, dict) else saved!r}")
        for key, want in now.items():
            got = saved[key]
            if key == "params":
                ok = got == list(range(start, start + len(want)))
                start += len(want)
            elif key == "maximize":  # rnnkit minimizes its loss; a file must not turn training around
                ok = got is False
            elif isinstance(want, bool) or want is None:
                ok = got is None or isinstance(got, bool)
            elif isinstance(want, (int, float)):  # lr, eps, momentum, weight decay, alpha: none is negative
                ok = _finite_number(got) and got >= 0 and (key != "alpha" or got <= 1)
            elif isinstance(want, (tuple, list)):  # betas: decay rates in [0, 1)
                ok = (isinstance(got, list) and len(got) == len(want)
                      and all(_finite_number(v) and 0 <= v < 1 for v in got))
            else:
                ok = isinstance(got, type(want))
            if not ok:
                raise ValueError(f"optimizer.json: param_groups[{i}][{key!r}] is {got!r}; expected a value like {want!r}"
                                 " (numbers finite and not negative, betas in [0, 1), maximize false)")


# State that is a count or a mean of squares: a negative value makes sqrt() NaN in the next step.
_NON_NEGATIVE = ("step", "exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum")


def _finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _checked_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], doc: dict) -> dict:
    """The saved state as ``opt.load_state_dict`` takes it, once it has been checked and tried on copies."""
    if doc.get("optimizer") != type(opt).__name__:
        raise ValueError(f"optimizer.json: saved for {doc.get('optimizer')!r}, the model is compiled with {type(opt).__name__!r}")
    _check_param_groups(opt, doc.get("param_groups"))
    values = doc.get("state_values", {})
    if not isinstance(values, dict) or not all(isinstance(v, dict) and k.isdecimal() for k, v in values.items()):
        raise ValueError("optimizer.json: state_values must map parameter indices to objects")
    params = [p for g in opt.param_groups for p in g["params"]]
    state: dict[int, dict] = {}
    for name, t in tensors.items():
        parts = name.split(".")
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdecimal() or int(parts[1]) >= len(params):
            raise ValueError(f"optimizer.safetensors: unexpected tensor name {name!r} (expected state.<param index>.<key>)")
        idx, key = int(parts[1]), parts[2]
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"optimizer.safetensors: {name!r} holds NaN or infinite values; expected finite ones")
        if key in _NON_NEGATIVE and bool((t < 0).any()):
            raise ValueError(f"optimizer.safetensors: {name!r} holds negative values; {key} is a count or a running "
                             "mean of squares, never negative")
        if t.dim() > 0 and tuple(t.shape) != tuple(params[idx].shape):
            raise ValueError(f"optimizer.safetensors: {name!r} has shape {tuple(t.shape)}, parameter {idx} has "
                             f"{tuple(params[idx].shape)}")
        state.setdefault(idx, {})[key] = t
    for idx, kv in values.items():
        if int(idx) >= len(params):
            raise ValueError(f"optimizer.json: state_values names parameter {idx}; the model has {len(params)}")
        state.setdefault(int(idx), {}).update(kv)
    groups = [{k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
              for g in doc["param_groups"]]
    # One step on copies, with zero gradients: a state that would break training fails here, by name.
    copies = [p.detach().clone().requires_grad_(p.requires_grad) for p in params]
    trial = type(opt)(copies)
    try:
        trial.load_state_dict({"state": {i: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in st.items()}
                                         for i, st in state.items()}, "param_groups": groups})
        for c in copies:
            c.grad = torch.zeros_like(c)
        trial.step()
    except Exception as e:  # whatever torch's optimizer raises on a malformed state
        raise ValueError(f"optimizer.safetensors/optimizer.json: the saved {type(opt).__name__} state does not "
                         f"fit this model ({type(e).__name__}: {e})") from None
    return {"state": state, "param_groups": groups}


# -------------------------------------------------------------- RNG state


def _rng_files(model) -> tuple[dict[str, torch.Tensor], dict]:
    """Every random source training reads: torch (CPU and CUDA), numpy, Python, fit's shuffle generator."""
    shuffle = model._get_shuffle_generator()  # first: creating it draws from torch's global generator
    np_state = np.random.get_state()
    py_state = random.getstate()
    tensors = {
        "torch_cpu": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "python_state": torch.tensor(py_state[1], dtype=torch.int64),
        "shuffle_generator": shuffle.get_state(),
    }
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda.{i}"] = s
    doc = {
        "numpy": {"algorithm": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "gauss_next": py_state[2]},
    }
    return tensors, doc


def _checked_rng(tensors: dict[str, torch.Tensor], doc: dict) -> tuple:
    """``(torch CPU state, CUDA states, numpy state, python state, shuffle generator)``, each tried first on a
    throwaway generator."""
    for key in ("torch_cpu", "numpy_keys", "python_state", "shuffle_generator"):
        if key not in tensors:
            raise ValueError(f"trainer_state.safetensors: tensor {key!r} is missing")
    # Mersenne Twister states: 624 words and a position (Python appends it as a 625th value). Every
    # range is checked: numpy does not check ``pos`` and reads out of bounds (a crash) when it is too big.
    for key, length in (("numpy_keys", 624), ("python_state", 625)):
        t = tensors[key]
        if t.dtype != torch.int64 or t.shape != (length,) or int(t.min()) < 0 or int(t.max()) >= 2**32:
            raise ValueError(f"trainer_state.safetensors: {key!r} must be {length} 32-bit values as int64")
    n, p = doc.get("numpy"), doc.get("python")
    if not (isinstance(n, dict) and n.get("algorithm") == "MT19937" and _int(n.get("pos")) and 0 <= n["pos"] <= 624
            and n.get("has_gauss") in (0, 1) and _finite_number(n.get("cached_gaussian"))):
        raise ValueError("trainer_state.json: numpy must hold algorithm 'MT19937', pos in [0, 624], has_gauss 0 or 1 "
                         f"and a finite cached_gaussian; got {n!r}")
    if not (isinstance(p, dict) and _int(p.get("version")) and "gauss_next" in p
            and (p["gauss_next"] is None or _finite_number(p["gauss_next"]))):
        raise ValueError(f"trainer_state.json: python must hold version and gauss_next; got {p!r}")
    np_state = (n["algorithm"], tensors["numpy_keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                n["cached_gaussian"])
    py_state = (p["version"], tuple(int(v) for v in tensors["python_state"].tolist()), p["gauss_next"])
    gen = torch.Generator()
    try:  # on throwaway generators first, so a bad file changes no global state
        torch.Generator().set_state(tensors["torch_cpu"])
        gen.set_state(tensors["shuffle_generator"])
        np.random.RandomState().set_state(np_state)
        random.Random().setstate(py_state)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"trainer_state: a saved random generator state is not valid ({e})") from None
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("torch_cuda."))]
    return tensors["torch_cpu"], cuda, np_state, py_state, gen


def _set_rng(model, torch_cpu, cuda, np_state, py_state, gen) -> None:
    """Set every global random generator, and the model's shuffle generator, from ``_checked_rng``."""
    torch.set_rng_state(torch_cpu)
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    np.random.set_state(np_state)
    random.setstate(py_state)
    model.shuffle_generator = gen


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------- checkpoint


class Checkpoint:
    """A snapshot in memory of everything ``save_checkpoint`` writes, taken in one go.

    Taking one is cheap (tensor copies), so a trainer can snapshot after
    every epoch and write to disk less often, or when interrupted.
    """

    def __init__(self, model: Sequential, epoch: int, history: dict | None = None, task: dict | None = None):
        if getattr(model, "optimizer", None) is None:
            raise ValueError("model: compile() the model before saving a training checkpoint")
        self.epoch = int(epoch)
        self.model = model
        self.config = run_config(model, task)
        self.weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        opt_tensors, self.optimizer_doc = _optimizer_files(model.optimizer)
        self.optimizer_tensors = {k: v.detach().cpu().clone() for k, v in opt_tensors.items()}
        self.optimizer_doc = json.loads(json.dumps(self.optimizer_doc))  # a deep copy of plain values
        self.rng_tensors, self.rng_doc = _rng_files(model)
        self.history = {k: list(v) for k, v in (history or {}).items()}

    def write(self, path) -> Path:
        """Write the run directory's files as one change (``write_files``), each stamped with the epoch."""
        meta = file_meta(self.epoch)
        files = {
            "config.json": json_bytes(self.config),
            "model.safetensors": tensor_bytes(self.weights, meta),
            "optimizer.safetensors": tensor_bytes(self.optimizer_tensors, meta),
            "optimizer.json": json_bytes({**self.optimizer_doc, "epoch": self.epoch}),
            "trainer_state.safetensors": tensor_bytes(self.rng_tensors, meta),
            "history.json": json_bytes(self.history),
            "trainer_state.json": json_bytes({"format": FORMAT, "format_version": FORMAT_VERSION,
                                               "epoch": self.epoch, **self.rng_doc}),
        }
        with deferred_interrupt():
            return write_files(path, files)


def save_checkpoint(path, model: Sequential, epoch: int, history: dict | None = None, task: dict | None = None) -> Path:
    """Everything needed to continue training exactly: weights, optimizer, RNGs, epoch, history.

    ``epoch`` is the number of finished epochs. Resume with ``load_checkpoint``.
    """
    return Checkpoint(model, epoch, history, task).write(path)


CHECKPOINT_FILES = ("config.json", "model.safetensors", "optimizer.safetensors", "optimizer.json",
                    "trainer_state.safetensors", "trainer_state.json", "history.json")


def load_checkpoint(path, device=None, *, limits: Limits | None = None) -> tuple[Sequential, int, dict, dict]:
    """Rebuild a compiled model and restore optimizer and RNG state: ``(model, epoch, history, config)``.

    Call ``model.fit(..., epochs=N, initial_epoch=epoch)`` to continue. The
    files are read as one committed group (the last epoch a writer finished,
    even while it writes the next), within ``limits`` (``rnnkit.files.Limits``).
    """
    folder, limits = Path(path), check_limits(limits)
    if not folder.is_dir():
        raise ValueError(f"run directory: {folder} does not exist or is not a directory")
    jsons = [n for n in CHECKPOINT_FILES if n.endswith(".json")]
    group = read_group(folder, CHECKPOINT_FILES, limits, optional=["history.json"], json_names=jsons)
    docs = {n: loads_json(group[n], n, folder / n, limits) for n in jsons if n != "config.json" and group[n] is not None}
    tensors = {n: parse_tensors(group[n], n, folder / n, limits) for n in CHECKPOINT_FILES if n.endswith(".safetensors")}
    config = parse_config(group["config.json"], folder, limits)
    if not config.get("compile"):
        raise ValueError(f"config.json: {folder} has no compile settings, so training cannot be resumed from it")
    state = docs["trainer_state.json"]
    if not isinstance(state, dict):
        raise ValueError("trainer_state.json: expected a JSON object")
    epoch = state.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"trainer_state.json: expected a non-negative integer epoch, got {epoch!r}")
    opt_doc = docs["optimizer.json"]
    if not isinstance(opt_doc, dict):
        raise ValueError("optimizer.json: expected a JSON object")
    found = {n: meta.get("epoch") for n, (_, meta) in tensors.items()}
    found["optimizer.json"] = str(opt_doc.get("epoch"))
    stale = {k: v for k, v in found.items() if v != str(epoch)}
    if stale:
        raise ValueError(f"run directory: files from different epochs ({stale}, trainer_state.json says {epoch}); "
                         "the checkpoint is inconsistent")
    history = docs.get("history.json", {})
    if not (isinstance(history, dict)
            and all(isinstance(v, list) and all(_number(x) for x in v) for v in history.values())):
        raise ValueError("history.json: expected {name: [one number per epoch]}")
    check_model(config["model"], tensors["model.safetensors"][0], folder, limits)
    model = model_from_files(folder, config, tensors["model.safetensors"][0], True, device)
    opt_state = _checked_optimizer_state(model.optimizer, tensors["optimizer.safetensors"][0], opt_doc)
    rng = _checked_rng(tensors["trainer_state.safetensors"][0], state)
    group.check_digests()  # after the checks that name a problem more precisely, before any state is set
    model.optimizer.load_state_dict(opt_state)
    _set_rng(model, *rng)  # last: it sets the global random generators
    return model, epoch, history, config


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ---------------------------------------------------------------- callback


class ModelCheckpoint(Callback):
    """Save the model (a run directory: config.json + model.safetensors) at the end of each epoch.

    A ``path`` ending in ``.keras`` writes a Keras 3 archive instead (``model.save``).
    ``path`` may contain ``{epoch}`` (1-based) and any logged value, e.g.
    ``"runs/ckpt-{epoch:02d}-{val_loss:.3f}"``. With ``save_best_only`` it
    saves only when ``monitor`` improves.
    """

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto"):
        self.path = os.fspath(path)
        self.save_best_only = bool(save_best_only)
        self._watch = Monitor(monitor, mode, 0.0, owner="ModelCheckpoint")
        self.monitor = monitor
        self.last_saved: str | None = None

    def on_train_begin(self, logs=None):  # noqa: ARG002
        self._watch.best = math.inf if self._watch.mode == "min" else -math.inf
        self._watch.warned = False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self._watch.current(logs)
            if value is None or not self._watch.improved(value):
                return
            self._watch.best = value
        if not finite_state(self.model, logs):  # keep the last good file rather than NaN weights
            print(f"Epoch {epoch + 1}: ModelCheckpoint skipped, the loss or the weights are not finite")
            return
        try:
            path = self.path.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError) as e:
            raise ValueError(f"path: {self.path!r} names {e} which is not in the logs {sorted(logs)}") from e
        if path.endswith(".keras"):
            self.model.save(path)
        else:
            save_model(self.model, path)
        self.last_saved = path
