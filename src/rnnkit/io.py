"""Run directories: the model, its training state and results, in files other tools can read.

A run directory (format ``rnnkit-run``, version ``FORMAT_VERSION``; see
docs/checkpoint-format.md) holds::

    config.json                 plain JSON: format, version, the model's layers, compile settings, task
    model.safetensors           the weights, named as in model.state_dict()
    optimizer.safetensors/.json the optimizer's tensors / its hyperparameters and the rest
    trainer_state.safetensors/.json  RNG states and the shuffle generator / epoch counter
    history.json                per-epoch logs, metrics.json: final results

Nothing is unpickled: weights are safetensors, everything else JSON, and
the model is rebuilt only from rnnkit's ``LAYERS`` registry
(``Sequential.from_config``). Every file is written to a temporary file in
the same folder, flushed to disk and renamed over the old one, so a killed
writer leaves either the old or the new file; its temporary leftovers are
removed the next time the folder is written.

    save_model(model, "runs/digits")
    model = load_model("runs/digits")     # compiled again if it was compiled with named settings
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import uuid
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch

from .model import Sequential
from .training import LOSSES, resolve_device

FORMAT = "rnnkit-run"
FORMAT_VERSION = 1
_TMP_MARK = ".tmp-"  # temporary files are ".<name>.tmp-<random>"


# ------------------------------------------------------------ atomic writes


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of it."""
    path = Path(path)
    tmp = path.parent / f".{path.name}{_TMP_MARK}{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    with contextlib.suppress(OSError):  # the rename itself must reach the disk too (not on every OS)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json(path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode("utf-8"))


def read_json(path, what: str | None = None):
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{what or path.name}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{what or path.name}: {path} is not readable JSON ({e})") from None


def clean_leftovers(folder) -> list[Path]:
    """Delete temporary files a killed writer left in ``folder``; returns what was removed."""
    removed = []
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".") and _TMP_MARK in p.name and p.is_file():
                p.unlink()
                removed.append(p)
    return removed


@contextlib.contextmanager
def deferred_interrupt():
    """Hold Ctrl-C (SIGINT) until the block ends, so a group of files is written completely."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    old = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if caught:
            raise KeyboardInterrupt


def _prepare_dir(folder) -> Path:
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"run directory: {folder} exists and is not a directory")
    folder.mkdir(parents=True, exist_ok=True)
    clean_leftovers(folder)
    return folder


# ----------------------------------------------------------------- tensors


def _save_tensors(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, safetensors.torch.save(tensors, metadata=metadata))


def _load_tensors(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path.name}: {path} does not exist")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise ValueError(f"{path.name}: {path} is not a valid safetensors file ({e})") from None


def _meta(epoch: int | None = None) -> dict[str, str]:
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION)}
    if epoch is not None:
        meta["epoch"] = str(epoch)
    return meta


def _check_tensors(found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str) -> None:
    """Same names, shapes and dtypes as ``expected``, or a ValueError listing the differences."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise ValueError(f"{what}: tensor names do not match the model: missing {missing}, unexpected {extra}")
    for k, want in expected.items():
        got = found[k]
        if tuple(got.shape) != tuple(want.shape):
            raise ValueError(f"{what}: tensor {k!r} has shape {tuple(got.shape)}, the model expects {tuple(want.shape)}")
        if got.dtype != want.dtype:
            raise ValueError(f"{what}: tensor {k!r} has dtype {got.dtype}, the model expects {want.dtype}")


# ------------------------------------------------------------------- model


def _compile_config(model) -> dict | None:
    """Compile settings as JSON, or None when they are not all names (a user's optimizer or loss function)."""
    loss = getattr(model, "loss", None)
    if getattr(model, "optimizer_name", None) not in ("adam", "rmsprop", "sgd") or type(loss) not in LOSSES.values():
        return None
    return {
        "optimizer": model.optimizer_name,
        "learning_rate": float(model.optimizer.param_groups[0]["lr"]),
        "loss": loss.get_config(),
        "metrics": list(model.metric_names),
        "clipnorm": model.clipnorm,
        "clipvalue": model.clipvalue,
    }


def save_model(model: Sequential, path, task: dict | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into the folder ``path`` (created if needed)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected an rnnkit Sequential, got {type(model).__name__}")
    folder = _prepare_dir(path)
    with deferred_interrupt():
        _save_tensors(folder / "model.safetensors", model.state_dict(), _meta())
        write_json(folder / "config.json", {"format": FORMAT, "format_version": FORMAT_VERSION,
                                            "model": model.get_config(), "compile": _compile_config(model),
                                            "task": task})
    return folder


def read_config(path) -> dict:
    """``config.json`` of a run directory, checked for format and version."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"run directory: {folder} does not exist or is not a directory")
    config = read_json(folder / "config.json", "config.json")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"config.json: {folder} is not an rnnkit run directory (format {config.get('format')!r})"
                         if isinstance(config, dict) else f"config.json: expected a JSON object in {folder}")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ValueError(f"config.json: format_version {version!r} is not supported (this rnnkit reads 1..{FORMAT_VERSION})")
    return config


def load_model(path, compile: bool = True, device=None) -> Sequential:
    """Rebuild the model of a run directory from its config and load its weights (validated).

    ``device`` (e.g. "cpu", "cuda", "auto") places the model before the
    optimizer is created, so restored optimizer state lands beside the weights.
    """
    folder = Path(path)
    config = read_config(folder)
    try:
        model = Sequential.from_config(config["model"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"config.json: the model description in {folder} is incomplete ({e})") from None
    tensors, _ = _load_tensors(folder / "model.safetensors")
    _check_tensors(tensors, model.state_dict(), "model.safetensors")
    model.load_state_dict(tensors)
    if device is not None:
        model.to(resolve_device(device))
    cc = config.get("compile")
    if compile and cc:
        loss_cfg = cc["loss"]
        if loss_cfg.get("name") not in LOSSES:
            raise ValueError(f"config.json: unknown loss {loss_cfg.get('name')!r}; known: {sorted(LOSSES)}")
        loss = LOSSES[loss_cfg["name"]](**{k: v for k, v in loss_cfg.items() if k != "name"})
        model.compile(cc["optimizer"], loss, cc.get("metrics"), clipnorm=cc.get("clipnorm"),
                      clipvalue=cc.get("clipvalue"), learning_rate=cc.get("learning_rate"))
    model.eval()
    return model


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


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], doc: dict) -> None:
    if doc.get("optimizer") != type(opt).__name__:
        raise ValueError(f"optimizer.json: saved for {doc.get('optimizer')!r}, the model is compiled with {type(opt).__name__!r}")
    params = [p for g in opt.param_groups for p in g["params"]]
    state: dict[int, dict] = {}
    for name, t in tensors.items():
        parts = name.split(".")
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit() or int(parts[1]) >= len(params):
            raise ValueError(f"optimizer.safetensors: unexpected tensor name {name!r} (expected state.<param index>.<key>)")
        idx, key = int(parts[1]), parts[2]
        if t.dim() > 0 and tuple(t.shape) != tuple(params[idx].shape):
            raise ValueError(f"optimizer.safetensors: {name!r} has shape {tuple(t.shape)}, parameter {idx} has "
                             f"{tuple(params[idx].shape)}")
        state.setdefault(idx, {})[key] = t
    for idx, kv in doc.get("state_values", {}).items():
        state.setdefault(int(idx), {}).update(kv)
    groups = [{k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
              for g in doc["param_groups"]]
    try:
        opt.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"optimizer.json: the saved optimizer state does not fit this model ({e})") from None


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


def _restore_rng(model, tensors: dict[str, torch.Tensor], doc: dict) -> None:
    for key in ("torch_cpu", "numpy_keys", "python_state", "shuffle_generator"):
        if key not in tensors:
            raise ValueError(f"trainer_state.safetensors: tensor {key!r} is missing")
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = sorted(k for k in tensors if k.startswith("torch_cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda][: torch.cuda.device_count()])
    n = doc["numpy"]
    np.random.set_state((n["algorithm"], tensors["numpy_keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = doc["python"]
    random.setstate((p["version"], tuple(int(v) for v in tensors["python_state"].tolist()), p["gauss_next"]))
    gen = torch.Generator()
    gen.set_state(tensors["shuffle_generator"])
    model.shuffle_generator = gen


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
        self.config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.get_config(),
                       "compile": _compile_config(model), "task": task}
        self.weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        opt_tensors, self.optimizer_doc = _optimizer_files(model.optimizer)
        self.optimizer_tensors = {k: v.detach().cpu().clone() for k, v in opt_tensors.items()}
        self.optimizer_doc = json.loads(json.dumps(self.optimizer_doc))  # a deep copy of plain values
        self.rng_tensors, self.rng_doc = _rng_files(model)
        self.history = {k: list(v) for k, v in (history or {}).items()}

    def write(self, path) -> Path:
        """Write the run directory files; ``trainer_state.json`` last, every file stamped with the epoch."""
        folder = _prepare_dir(path)
        meta = _meta(self.epoch)
        with deferred_interrupt():
            write_json(folder / "config.json", self.config)
            _save_tensors(folder / "model.safetensors", self.weights, meta)
            _save_tensors(folder / "optimizer.safetensors", self.optimizer_tensors, meta)
            write_json(folder / "optimizer.json", {**self.optimizer_doc, "epoch": self.epoch})
            _save_tensors(folder / "trainer_state.safetensors", self.rng_tensors, meta)
            write_json(folder / "history.json", self.history)
            write_json(folder / "trainer_state.json", {"format": FORMAT, "format_version": FORMAT_VERSION,
                                                       "epoch": self.epoch, **self.rng_doc})
        return folder


def save_checkpoint(path, model: Sequential, epoch: int, history: dict | None = None, task: dict | None = None) -> Path:
    """Everything needed to continue training exactly: weights, optimizer, RNGs, epoch, history.

    ``epoch`` is the number of finished epochs. Resume with ``load_checkpoint``.
    """
    return Checkpoint(model, epoch, history, task).write(path)


def load_checkpoint(path, device=None) -> tuple[Sequential, int, dict, dict]:
    """Rebuild a compiled model and restore optimizer and RNG state: ``(model, epoch, history, config)``.

    Call ``model.fit(..., epochs=N, initial_epoch=epoch)`` to continue.
    """
    folder = Path(path)
    config = read_config(folder)
    if not config.get("compile"):
        raise ValueError(f"config.json: {folder} has no compile settings, so training cannot be resumed from it")
    model = load_model(folder, compile=True, device=device)
    state = read_json(folder / "trainer_state.json", "trainer_state.json")
    epoch = state.get("epoch")
    if not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"trainer_state.json: expected a non-negative integer epoch, got {epoch!r}")
    opt_tensors, opt_meta = _load_tensors(folder / "optimizer.safetensors")
    rng_tensors, rng_meta = _load_tensors(folder / "trainer_state.safetensors")
    _, model_meta = _load_tensors(folder / "model.safetensors")
    opt_doc = read_json(folder / "optimizer.json", "optimizer.json")
    found = {"model.safetensors": model_meta.get("epoch"), "optimizer.safetensors": opt_meta.get("epoch"),
             "trainer_state.safetensors": rng_meta.get("epoch"), "optimizer.json": str(opt_doc.get("epoch"))}
    stale = {k: v for k, v in found.items() if v != str(epoch)}
    if stale:
        raise ValueError(f"run directory: files from different epochs ({stale}, trainer_state.json says {epoch}); "
                         "the checkpoint is inconsistent")
    _restore_optimizer(model.optimizer, opt_tensors, opt_doc)
    _restore_rng(model, rng_tensors, state)
    history = read_json(folder / "history.json", "history.json") if (folder / "history.json").exists() else {}
    return model, epoch, history, config
