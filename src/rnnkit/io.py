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
(``Sequential.from_config``). Every file is written to a temporary file in the
same folder, flushed to disk and renamed over the old one, so a killed
writer leaves either the old or the new file. The files of a checkpoint
change together (``write_files``): a reader, or the next run after a crash,
sees the whole old checkpoint or the whole new one. The temporary leftovers
of a killed writer are removed the next time the folder is written.

    save_model(model, "runs/digits")
    model = load_model("runs/digits")     # compiled again if it was compiled with named settings
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
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


_COMMIT = ".commit.json"  # the record of a group of files being renamed into place


def _fsync_dir(folder) -> None:
    with contextlib.suppress(OSError):  # renames must reach the disk too (a folder cannot be opened on every OS)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_temp(path: Path, data: bytes) -> Path:
    """``data`` in a new temporary file beside ``path``, flushed to disk; returns the temporary path."""
    tmp = path.parent / f".{path.name}{_TMP_MARK}{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of it.

    Temporary files that an earlier, killed writer of the same path left behind are deleted first.
    """
    path = Path(path)
    for stale in path.parent.glob(f".{glob.escape(path.name)}{_TMP_MARK}*"):
        stale.unlink(missing_ok=True)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def write_files(folder, files: dict[str, bytes]) -> Path:
    """Write several files into ``folder`` as one change: readers see all the old ones or all the new ones.

    1. each file goes to a temporary file, flushed to disk;
    2. ``.commit.json``, naming the temporary files, is written atomically: the commit point;
    3. the temporary files are renamed into place, then ``.commit.json`` is removed.

    A writer killed before step 2 leaves only temporary files: the old
    files stand, and the next writer deletes the leftovers. One killed after
    it leaves ``.commit.json``: readers take the new files from it, and the
    next writer (``clean_leftovers``) finishes the renames.
    """
    folder = _prepare_dir(folder)
    temps: dict[str, str] = {}
    committed = False
    try:
        for name, data in files.items():
            temps[name] = _write_temp(folder / name, data).name
        _fsync_dir(folder)
        atomic_write(folder / _COMMIT, json.dumps({"files": temps}).encode("utf-8"))
        committed = True
        for name, tmp in temps.items():
            os.replace(folder / tmp, folder / name)
        _fsync_dir(folder)
        (folder / _COMMIT).unlink()
        _fsync_dir(folder)
    except BaseException:
        if not committed:
            for tmp in temps.values():
                (folder / tmp).unlink(missing_ok=True)
        raise
    return folder


def _pending(folder: Path) -> dict[str, Path]:
    """The files of a committed group not yet renamed into place: ``{name: temporary path}``."""
    try:
        record = json.loads((folder / _COMMIT).read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):  # written atomically, so this is not ours: ignore it
        return {}
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict):
        return {}
    out = {}
    for name, tmp in files.items():
        # Only our own temporary names, for plain names in this folder.
        if (isinstance(name, str) and isinstance(tmp, str) and name == Path(name).name and not name.startswith(".")
                and tmp == Path(tmp).name and tmp.startswith(f".{name}{_TMP_MARK}") and (folder / tmp).is_file()):
            out[name] = folder / tmp
    return out


def _read_bytes(path: Path) -> bytes:
    """The bytes a reader should see at ``path``: the new version while a committed group is being renamed."""
    source = _pending(path.parent).get(path.name, path)
    try:
        return source.read_bytes()
    except FileNotFoundError:
        if source == path:
            raise
        return path.read_bytes()  # the writer renamed it in the meantime


def write_json(path, obj) -> None:
    atomic_write(path, _json_bytes(obj))


def read_json(path, what: str | None = None):
    path = Path(path)
    try:
        return json.loads(_read_bytes(path).decode("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{what or path.name}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{what or path.name}: {path} is not readable JSON ({e})") from None


def clean_leftovers(folder) -> list[Path]:
    """Finish the renames of a group a killed writer had committed, then delete its temporary files.

    Returns the temporary files that were deleted (the group's own were moved into place, not deleted).
    """
    removed = []
    folder = Path(folder)
    if folder.is_dir():
        pending = _pending(folder)
        for name, tmp in pending.items():
            os.replace(tmp, folder / name)
        if pending:
            _fsync_dir(folder)
        (folder / _COMMIT).unlink(missing_ok=True)
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


def _tensor_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    return safetensors.torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata)


def _load_tensors(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    try:
        data = _read_bytes(path)
    except FileNotFoundError:
        raise ValueError(f"{path.name}: {path} does not exist") from None
    except OSError as e:
        raise ValueError(f"{path.name}: {path} cannot be read ({e})") from None
    try:
        tensors = safetensors.torch.load(data)
        # safetensors checked the header; its metadata must be a string -> string map.
        meta = json.loads(data[8:8 + int.from_bytes(data[:8], "little")]).get("__metadata__") or {}
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise ValueError(f"{path.name}: {path} is not a valid safetensors file ({e})") from None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"{path.name}: {path} has metadata that is not a string map")
    return tensors, meta


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


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode("utf-8")


def save_model(model: Sequential, path, task: dict | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into the folder ``path`` (created if needed), as one change."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected an rnnkit Sequential, got {type(model).__name__}")
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.get_config(),
              "compile": _compile_config(model), "task": task}
    with deferred_interrupt():
        return write_files(path, {"model.safetensors": _tensor_bytes(model.state_dict(), _meta()),
                                  "config.json": _json_bytes(config)})


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
    tensors, _ = _load_tensors(folder / "model.safetensors")
    if not isinstance(config.get("model"), dict):
        raise ValueError(f"config.json: expected a model description (a JSON object) in {folder}")
    _check_sizes(config["model"], tensors)
    try:
        model = Sequential.from_config(config["model"])
    except (KeyError, TypeError, IndexError, OverflowError, RecursionError) as e:
        raise ValueError(f"config.json: the model description in {folder} cannot be built ({e})") from None
    _check_tensors(tensors, model.state_dict(), "model.safetensors")
    model.load_state_dict(tensors)
    if device is not None:
        model.to(resolve_device(device))
    cc = config.get("compile")
    if compile and cc:
        _compile_from_config(model, cc)
    model.eval()
    return model


# Config keys that size a weight: each must be a dimension of some tensor in model.safetensors.
_SIZE_KEYS = ("units", "input_size", "input_dim", "output_dim")
MAX_TIME_STEPS = 100_000  # a fixed time axis in a config is traced once when the model is built


def _check_sizes(model_config: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse a config whose sizes the weights file does not back, before building anything.

    Building allocates and initializes every weight and traces ``input_shape``
    once, so a config from a stranger could otherwise ask for terabytes or a
    billion time steps. A real config's sizes all appear as tensor dimensions.
    """
    largest = max((d for t in tensors.values() for d in t.shape), default=0)

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in _SIZE_KEYS and isinstance(v, int) and not isinstance(v, bool) and v > largest:
                    raise ValueError(f"config.json: {where}{k}={v} is larger than any tensor in model.safetensors "
                                     f"(largest dimension {largest}); the config does not describe these weights")
                walk(v, f"{where}{k}.")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}{i}.")

    walk(model_config.get("layers"), "layers.")
    shape = model_config.get("input_shape")
    if shape is None:
        return
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 2
            or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 1) for d in shape)):
        raise ValueError(f"config.json: input_shape must be [time] or [time, features] with positive integers "
                         f"(time may be null), got {shape!r}")
    if shape[0] is not None and shape[0] > MAX_TIME_STEPS:
        raise ValueError(f"config.json: input_shape has {shape[0]} time steps, more than the {MAX_TIME_STEPS} a "
                         "loaded model may trace; save the model with input_shape=(None, features)")
    if len(shape) == 2 and shape[1] is not None and tensors and shape[1] > largest:
        raise ValueError(f"config.json: input_shape has {shape[1]} features, larger than any tensor in "
                         f"model.safetensors (largest dimension {largest})")


def _compile_from_config(model: Sequential, cc) -> None:
    """``model.compile`` with the stored settings, each checked (a ValueError names the bad one)."""
    if not isinstance(cc, dict) or not isinstance(cc.get("loss"), dict):
        raise ValueError(f"config.json: compile settings must be an object with a loss object, got {str(cc)[:80]}")
    loss_cfg = cc["loss"]
    if loss_cfg.get("name") not in LOSSES:
        raise ValueError(f"config.json: compile settings: unknown loss {loss_cfg.get('name')!r}; known: {sorted(LOSSES)}")
    options = {k: v for k, v in loss_cfg.items() if k != "name"}
    if not all(isinstance(v, bool) for v in options.values()):
        raise ValueError(f"config.json: compile settings: loss options must be true/false, got {options}")
    metrics = cc.get("metrics")
    if metrics is not None and not (isinstance(metrics, list) and all(isinstance(m, str) for m in metrics)):
        raise ValueError(f"config.json: compile settings: metrics must be a list of names, got {metrics!r}")
    if cc.get("optimizer") not in ("adam", "rmsprop", "sgd"):
        raise ValueError(f"config.json: compile settings: unknown optimizer {cc.get('optimizer')!r}")
    try:
        loss = LOSSES[loss_cfg["name"]](**options)
        model.compile(cc["optimizer"], loss, metrics, clipnorm=cc.get("clipnorm"), clipvalue=cc.get("clipvalue"),
                      learning_rate=cc.get("learning_rate"))
    except TypeError as e:
        raise ValueError(f"config.json: compile settings: {e}") from None


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
            elif isinstance(want, bool) or want is None:
                ok = got is None or isinstance(got, bool)
            elif isinstance(want, (int, float)):
                ok = _finite_number(got)
            elif isinstance(want, (tuple, list)):
                ok = isinstance(got, list) and len(got) == len(want) and all(_finite_number(v) for v in got)
            else:
                ok = isinstance(got, type(want))
            if not ok:
                raise ValueError(f"optimizer.json: param_groups[{i}][{key!r}] is {got!r}; expected a value like {want!r}")


def _finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], doc: dict) -> None:
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
    opt.load_state_dict({"state": state, "param_groups": groups})


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
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = sorted(k for k in tensors if k.startswith("torch_cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda][: torch.cuda.device_count()])
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
        self.config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.get_config(),
                       "compile": _compile_config(model), "task": task}
        self.weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        opt_tensors, self.optimizer_doc = _optimizer_files(model.optimizer)
        self.optimizer_tensors = {k: v.detach().cpu().clone() for k, v in opt_tensors.items()}
        self.optimizer_doc = json.loads(json.dumps(self.optimizer_doc))  # a deep copy of plain values
        self.rng_tensors, self.rng_doc = _rng_files(model)
        self.history = {k: list(v) for k, v in (history or {}).items()}

    def write(self, path) -> Path:
        """Write the run directory's files as one change (``write_files``), each stamped with the epoch."""
        meta = _meta(self.epoch)
        files = {
            "config.json": _json_bytes(self.config),
            "model.safetensors": _tensor_bytes(self.weights, meta),
            "optimizer.safetensors": _tensor_bytes(self.optimizer_tensors, meta),
            "optimizer.json": _json_bytes({**self.optimizer_doc, "epoch": self.epoch}),
            "trainer_state.safetensors": _tensor_bytes(self.rng_tensors, meta),
            "history.json": _json_bytes(self.history),
            "trainer_state.json": _json_bytes({"format": FORMAT, "format_version": FORMAT_VERSION,
                                               "epoch": self.epoch, **self.rng_doc}),
        }
        with deferred_interrupt():
            return write_files(path, files)


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
    if not isinstance(state, dict):
        raise ValueError("trainer_state.json: expected a JSON object")
    epoch = state.get("epoch")
    if not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"trainer_state.json: expected a non-negative integer epoch, got {epoch!r}")
    opt_tensors, opt_meta = _load_tensors(folder / "optimizer.safetensors")
    rng_tensors, rng_meta = _load_tensors(folder / "trainer_state.safetensors")
    _, model_meta = _load_tensors(folder / "model.safetensors")
    opt_doc = read_json(folder / "optimizer.json", "optimizer.json")
    if not isinstance(opt_doc, dict):
        raise ValueError("optimizer.json: expected a JSON object")
    found = {"model.safetensors": model_meta.get("epoch"), "optimizer.safetensors": opt_meta.get("epoch"),
             "trainer_state.safetensors": rng_meta.get("epoch"), "optimizer.json": str(opt_doc.get("epoch"))}
    stale = {k: v for k, v in found.items() if v != str(epoch)}
    if stale:
        raise ValueError(f"run directory: files from different epochs ({stale}, trainer_state.json says {epoch}); "
                         "the checkpoint is inconsistent")
    history = read_json(folder / "history.json", "history.json") if (folder / "history.json").exists() else {}
    if not (isinstance(history, dict)
            and all(isinstance(v, list) and all(_number(x) for x in v) for v in history.values())):
        raise ValueError("history.json: expected {name: [one number per epoch]}")
    _restore_optimizer(model.optimizer, opt_tensors, opt_doc)
    _restore_rng(model, rng_tensors, state)  # last: it sets the global random generators
    return model, epoch, history, config


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
