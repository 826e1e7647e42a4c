"""A model in a run directory: ``config.json`` (what to build) and ``model.safetensors`` (its weights).

A run directory (format ``rnnkit-run``, version ``FORMAT_VERSION``; see
docs/checkpoint-format.md) holds::

    config.json                 plain JSON: format, version, the model's layers, compile settings, task
    model.safetensors           the weights, named as in model.state_dict()

and, for a training checkpoint, the files ``rnnkit.checkpoint`` adds.
Nothing is unpickled: weights are safetensors, everything else JSON, and
the model is rebuilt only from rnnkit's ``LAYERS`` registry
(``Sequential.from_config``, or ``functional.Model.from_config`` when
``config.json`` says ``"model_class": "Functional"``). A config is checked against its weights
before anything is built, so a stranger's file cannot ask for terabytes.
The files change together (``rnnkit.files.write_files``).

    save_model(model, "runs/digits")
    model = load_model("runs/digits")     # compiled again if it was compiled with named settings
"""

from __future__ import annotations

import json
from pathlib import Path

import safetensors.torch
import torch

from .files import deferred_interrupt, json_bytes, read_bytes, read_json, write_files
from .functional import Model
from .losses import LOSSES
from .model import Sequential
from .optimizers import OPTIMIZERS
from .training import resolve_device

FORMAT = "rnnkit-run"
FORMAT_VERSION = 1


# ----------------------------------------------------------------- tensors


def tensor_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """A safetensors file of CPU copies of ``tensors``, with ``metadata`` in its header."""
    return safetensors.torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata)


def load_tensors(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file; a ValueError naming the file when it is missing or invalid."""
    path = Path(path)
    try:
        data = read_bytes(path)
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


def file_meta(epoch: int | None = None) -> dict[str, str]:
    """The metadata stamped into every safetensors file of a run directory (with the epoch in a checkpoint)."""
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
    if getattr(model, "optimizer_name", None) not in OPTIMIZERS or type(loss) not in LOSSES.values():
        return None
    if isinstance(model, Model) and len(model.output_names) > 1:  # per-output losses: not stored (functional)
        return None
    return {
        "optimizer": model.optimizer_name,
        "learning_rate": float(model.optimizer.param_groups[0]["lr"]),
        "loss": loss.get_config(),
        "metrics": list(model.metric_names),
        "clipnorm": model.clipnorm,
        "clipvalue": model.clipvalue,
    }


def run_config(model: Sequential | Model, task: dict | None = None) -> dict:
    """What ``config.json`` holds: format, version, the model's layers, its compile settings, ``task``."""
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.get_config(),
              "compile": _compile_config(model), "task": task}
    if isinstance(model, Model):  # functional (issue 17); a Sequential's config.json has no model_class
        config["model_class"] = "Functional"
    return config


def save_model(model: Sequential | Model, path, task: dict | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into the folder ``path`` (created if needed), as one change.

    A functional ``Model`` is saved with its graph (``Model.get_config``); its compile settings are
    kept when it has one output (per-output losses are not stored: compile it again after loading).
    """
    if not isinstance(model, (Sequential, Model)):
        raise TypeError(f"model: expected an rnnkit Sequential or Model, got {type(model).__name__}")
    with deferred_interrupt():
        return write_files(path, {"model.safetensors": tensor_bytes(model.state_dict(), file_meta()),
                                  "config.json": json_bytes(run_config(model, task))})


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


def load_model(path, compile: bool = True, device=None) -> Sequential | Model:
    """Rebuild the model of a run directory from its config and load its weights (validated).

    ``device`` (e.g. "cpu", "cuda", "auto") places the model before the
    optimizer is created, so restored optimizer state lands beside the weights.
    """
    folder = Path(path)
    config = read_config(folder)
    tensors, _ = load_tensors(folder / "model.safetensors")
    if not isinstance(config.get("model"), dict):
        raise ValueError(f"config.json: expected a model description (a JSON object) in {folder}")
    _check_sizes(config["model"], tensors)
    # ---- functional models (issue 17): which class builds the config
    kind = config.get("model_class", "Sequential")
    if kind not in ("Sequential", "Functional"):
        raise ValueError(f"config.json: model_class must be 'Sequential' or 'Functional', got {str(kind)[:40]!r}")
    build = Model.from_config if kind == "Functional" else Sequential.from_config
    # ---- end functional
    try:
        model = build(config["model"])
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
    _check_input_layers(model_config.get("layers"), largest)
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


def _check_input_layers(layers, largest: int) -> None:
    """A functional config's ``Input`` shapes: building runs each layer once on zeros of that shape, so
    refuse one with more than ``MAX_TIME_STEPS * largest`` values (issue 17)."""
    for spec in layers if isinstance(layers, list) else []:
        cfg = spec.get("config") if isinstance(spec, dict) else None
        if not isinstance(cfg, dict):
            continue
        if spec.get("class_name") == "Functional":
            _check_input_layers(cfg.get("layers"), largest)
        shape = cfg.get("batch_shape") if spec.get("class_name") == "InputLayer" else None
        if shape is None:
            continue
        dims = shape[1:] if isinstance(shape, list) else None
        if dims is None or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 1) for d in dims):
            raise ValueError(f"config.json: Input {str(spec.get('name'))[:40]!r} batch_shape must be a list of "
                             f"positive integers or null, got {str(shape)[:80]}")
        size = 1
        for d in dims:
            size *= d or 1
        if size > MAX_TIME_STEPS * max(largest, 1):
            raise ValueError(f"config.json: Input {str(spec.get('name'))[:40]!r} has shape {shape}, larger than a "
                             f"loaded model may trace ({MAX_TIME_STEPS} x the largest tensor dimension {largest})")


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
    if cc.get("optimizer") not in OPTIMIZERS:
        raise ValueError(f"config.json: compile settings: unknown optimizer {cc.get('optimizer')!r}")
    try:
        loss = LOSSES[loss_cfg["name"]](**options)
        model.compile(cc["optimizer"], loss, metrics, clipnorm=cc.get("clipnorm"), clipvalue=cc.get("clipvalue"),
                      learning_rate=cc.get("learning_rate"))
    except TypeError as e:
        raise ValueError(f"config.json: compile settings: {e}") from None
