"""A model in a run directory: ``config.json`` (what to build) and ``model.safetensors`` (its weights).

A run directory (format ``rnnkit-run``, version ``FORMAT_VERSION``; see
docs/checkpoint-format.md) holds::

    config.json                 plain JSON: format, version, the model's layers, compile settings, task
    model.safetensors           the weights, named as in model.state_dict()

and, for a training checkpoint, the files ``rnnkit.checkpoint`` adds.
Nothing is unpickled: weights are safetensors, everything else JSON, and
the model is rebuilt only from rnnkit's ``LAYERS`` registry
(``Sequential.from_config``, or ``functional.Model.from_config`` for a
functional model's config, which has ``input_layers``). Everything read stays within
``rnnkit.files.Limits``, and a config is checked against its weights before
anything real is built (sizes, then a build on the ``meta`` device), so a
stranger's file cannot ask for terabytes. The files change together and are
read together (``rnnkit.files.write_files``/``read_group``); the tensor
file's SHA-256 in the commit record is verified.

    save_model(model, "runs/digits")
    model = load_model("runs/digits")     # compiled again if it was compiled with named settings
    model = load_model("runs/big", limits=Limits(max_file_bytes=16 * 2**30))   # a trusted, bigger model
"""

from __future__ import annotations

import os
from pathlib import Path

import safetensors.torch
import torch

from .files import Limits, check_limits, deferred_interrupt, json_bytes, loads_json, read_group, write_files
from .functional import Model
from .interop.keras_file import load_keras
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


_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def _check_header(data: bytes, what: str, path, limits: Limits) -> dict[str, str]:
    """Check a safetensors header within ``limits`` before safetensors allocates anything; its metadata.

    The header is JSON: ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``,
    and each tensor's bytes must lie in the file and match its shape.
    """
    if len(data) < 8:
        raise ValueError(f"{what}: {path} is not a valid safetensors file (only {len(data)} bytes)")
    n = int.from_bytes(data[:8], "little")
    if n > limits.max_json_bytes:
        raise ValueError(f"{what}: {path} declares a header of {n} bytes, more than Limits.max_json_bytes="
                         f"{limits.max_json_bytes}; not a valid safetensors file")
    if 8 + n > len(data):
        raise ValueError(f"{what}: {path} is not a valid safetensors file (header of {n} bytes, file of {len(data)})")
    header = loads_json(data[8:8 + n], what, path, limits)
    if not isinstance(header, dict):
        raise ValueError(f"{what}: {path} is not a valid safetensors file (the header is not a JSON object)")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"{what}: {path} has metadata that is not a string map")
    if len(header) > limits.max_tensors:
        raise ValueError(f"{what}: {path} holds {len(header)} tensors, more than Limits.max_tensors={limits.max_tensors}")
    body = len(data) - 8 - n
    for name, entry in header.items():
        ok = isinstance(entry, dict) and entry.get("dtype") in _DTYPE_BYTES
        shape, offsets = (entry.get("shape"), entry.get("data_offsets")) if ok else (None, None)
        ok = ok and isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)
        ok = ok and isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
        if not ok:
            raise ValueError(f"{what}: {path}: tensor {name[:40]!r} should be {{'dtype', 'shape': [ints >= 0], "
                             f"'data_offsets': [begin, end]}}, got {str(entry)[:80]}")
        if len(shape) > limits.max_rank:
            raise ValueError(f"{what}: {path}: tensor {name[:40]!r} has {len(shape)} dimensions, more than "
                             f"Limits.max_rank={limits.max_rank}")
        size = _DTYPE_BYTES[entry["dtype"]]
        for d in shape:
            size *= d
        if not 0 <= offsets[0] <= offsets[1] <= body or offsets[1] - offsets[0] != size:
            raise ValueError(f"{what}: {path}: tensor {name[:40]!r} of shape {shape} needs {size} bytes, its "
                             f"data_offsets {offsets} give {offsets[1] - offsets[0]} within a body of {body}")
    return meta


def parse_tensors(data: bytes, what: str, path, limits: Limits) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of the safetensors bytes ``data``; a ValueError naming the file when invalid."""
    meta = _check_header(data, what, path, limits)
    try:
        tensors = safetensors.torch.load(data)
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise ValueError(f"{what}: {path} is not a valid safetensors file ({e})") from None
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
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.get_config(),
            "compile": _compile_config(model), "task": task}


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


def _run_dir(path) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"run directory: {folder} does not exist or is not a directory")
    return folder


def parse_config(data: bytes, folder: Path, limits: Limits) -> dict:
    """``config.json``'s bytes parsed within ``limits`` and checked for format and version."""
    config = loads_json(data, "config.json", folder / "config.json", limits)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"config.json: {folder} is not an rnnkit run directory (format {config.get('format')!r})"
                         if isinstance(config, dict) else f"config.json: expected a JSON object in {folder}")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ValueError(f"config.json: format_version {version!r} is not supported (this rnnkit reads 1..{FORMAT_VERSION})")
    if not isinstance(config.get("model"), dict):
        raise ValueError(f"config.json: expected a model description (a JSON object) in {folder}")
    return config


def read_config(path, limits: Limits | None = None) -> dict:
    """``config.json`` of a run directory (its last committed version), checked for format and version."""
    folder, limits = _run_dir(path), check_limits(limits)
    return parse_config(read_group(folder, ["config.json"], limits, json_names=["config.json"])["config.json"],
                        folder, limits)


def load_model(path, compile: bool = True, device=None, *, limits: Limits | None = None) -> Sequential | Model:
    """Rebuild the model of a run directory from its config and load its weights (validated).

    ``device`` (e.g. "cpu", "cuda", "auto") places the model before the
    optimizer is created, so restored optimizer state lands beside the weights.
    ``limits`` (``rnnkit.files.Limits``) bounds what is read and built; raise
    it for a trusted model bigger than the defaults allow.

    A file (not a folder), such as ``model.keras``, is a Keras 3 archive: read as data only by
    ``interop.load_keras`` (under the same limits), and not compiled.
    """
    if str(path).endswith(".keras") or os.path.isfile(path):
        model = load_keras(path, limits=limits)
        return model if device is None else model.to(resolve_device(device))
    folder, limits = _run_dir(path), check_limits(limits)
    group = read_group(folder, ["config.json", "model.safetensors"], limits, json_names=["config.json"])
    config = parse_config(group["config.json"], folder, limits)
    tensors, _ = parse_tensors(group["model.safetensors"], "model.safetensors", folder / "model.safetensors", limits)
    check_model(config["model"], tensors, folder, limits)
    group.check_digests()
    return model_from_files(folder, config, tensors, compile, device)


def model_from_files(folder: Path, config: dict, tensors: dict[str, torch.Tensor], compile: bool, device) -> Sequential:
    """Build the model ``config`` describes, load ``tensors`` into it, place and compile it (after ``check_model``)."""
    model = _build(config["model"], folder)
    model.load_state_dict(tensors)
    if device is not None:
        model.to(resolve_device(device))
    cc = config.get("compile")
    if compile and cc:
        _compile_from_config(model, cc)
    model.eval()
    return model


def _build(model_config: dict, folder: Path) -> Sequential | Model:
    # A functional model's config (issue 17) has input_layers; a Sequential's has not.
    build = Model.from_config if "input_layers" in model_config else Sequential.from_config
    try:
        return build(model_config)
    except (KeyError, TypeError, IndexError, OverflowError, RecursionError, RuntimeError) as e:
        raise ValueError(f"config.json: the model description in {folder} cannot be built ({e})") from None


def check_model(model_config: dict, tensors: dict[str, torch.Tensor], folder: Path, limits: Limits) -> None:
    """Refuse a config that the weights do not back, before anything real is built.

    Building allocates and initializes every weight and traces a fixed
    ``input_shape`` once, so a config from a stranger could otherwise ask
    for terabytes, or minutes of orthogonal initialization. First each size
    is checked against ``limits`` and against the non-empty tensors (a real
    config's sizes all appear as their dimensions); then the model is built
    on the ``meta`` device, which allocates nothing, and its tensors' names,
    shapes and dtypes must be the file's.
    """
    _check_sizes(model_config, tensors, limits)
    # Without input_shape: saved layers record their sizes, and no trace runs (it would take time, and
    # an Embedding's id check cannot run on meta tensors).
    shadow_config = {k: v for k, v in model_config.items() if k != "input_shape"}
    with torch.random.fork_rng(devices=[]), torch.device("meta"):  # initializers draw nothing from the real RNG
        if "input_layers" in model_config:  # functional (issue 17): its layers alone; no graph is traced
            try:
                layers = Model.layers_from_config(model_config)
            except (KeyError, TypeError, IndexError, OverflowError, RecursionError, RuntimeError) as e:
                raise ValueError(f"config.json: the model description in {folder} cannot be built ({e})") from None
            expected = {f"layers.{i}.{k}": v for i, layer in enumerate(layers) for k, v in layer.state_dict().items()}
        else:
            expected = _build(shadow_config, folder).state_dict()
    _check_tensors(tensors, expected, "model.safetensors")


# Config keys that size a weight: each must be a dimension of some tensor in model.safetensors.
_SIZE_KEYS = ("units", "input_size", "input_dim", "output_dim")


def _check_sizes(model_config: dict, tensors: dict[str, torch.Tensor], limits: Limits) -> None:
    """Every size in the config within ``limits`` and backed by a dimension of a non-empty tensor.

    An empty tensor costs nothing to store, so a ``(20000, 0)`` tensor backs no size.
    """
    largest = max((d for t in tensors.values() if t.numel() for d in t.shape), default=0)

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in _SIZE_KEYS and isinstance(v, int) and not isinstance(v, bool):
                    if v > limits.max_size:
                        raise ValueError(f"config.json: {where}{k}={v} is more than Limits.max_size={limits.max_size}")
                    if v > largest:
                        raise ValueError(f"config.json: {where}{k}={v} is larger than any tensor in model.safetensors "
                                         f"(largest dimension of a non-empty tensor {largest}); the config does not "
                                         "describe these weights")
                walk(v, f"{where}{k}.")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}{i}.")

    walk(model_config.get("layers"), "layers.")
    _check_input_layers(model_config.get("layers"), limits)
    shape = model_config.get("input_shape")
    if shape is None:
        return
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 2
            or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 1) for d in shape)):
        raise ValueError(f"config.json: input_shape must be [time] or [time, features] with positive integers "
                         f"(time may be null), got {shape!r}")
    if shape[0] is not None and shape[0] > limits.max_steps:
        raise ValueError(f"config.json: input_shape has {shape[0]} time steps, more than Limits.max_steps="
                         f"{limits.max_steps} a loaded model may trace; save the model with input_shape=(None, features)")
    if len(shape) == 2 and shape[1] is not None and (shape[1] > limits.max_size or tensors and shape[1] > largest):
        raise ValueError(f"config.json: input_shape has {shape[1]} features, larger than any tensor in "
                         f"model.safetensors (largest dimension {largest}) or Limits.max_size={limits.max_size}")


def _check_input_layers(layers, limits: Limits) -> None:
    """A functional config's ``Input`` shapes (issue 17): building runs each layer once on zeros of that
    shape, so each axis must be within ``limits.max_steps`` and the whole within ``limits.max_size``."""
    for spec in layers if isinstance(layers, list) else []:
        cfg = spec.get("config") if isinstance(spec, dict) else None
        if not isinstance(cfg, dict):
            continue
        if spec.get("class_name") == "Functional":
            _check_input_layers(cfg.get("layers"), limits)
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
        if max((d or 1 for d in dims), default=1) > limits.max_steps or size > limits.max_size:
            raise ValueError(f"config.json: Input {str(spec.get('name'))[:40]!r} has shape {shape}, larger than a "
                             f"loaded model may trace (Limits.max_steps={limits.max_steps}, max_size={limits.max_size})")


def _compile_from_config(model: Sequential, cc) -> None:
    """``model.compile`` with the stored settings, each checked (a ValueError names the bad one)."""
    if not isinstance(cc, dict) or not isinstance(cc.get("loss"), dict):
        raise ValueError(f"config.json: compile settings must be an object with a loss object, got {str(cc)[:80]}")
    loss_cfg = cc["loss"]
    if loss_cfg.get("name") not in LOSSES:
        raise ValueError(f"config.json: compile settings: unknown loss {loss_cfg.get('name')!r}; known: {sorted(LOSSES)}")
    options = {k: v for k, v in loss_cfg.items() if k != "name"}
    if not all(isinstance(v, bool) or (type(v) in (int, float) and abs(v) < float("inf")) for v in options.values()):
        raise ValueError(f"config.json: compile settings: loss options must be true/false or numbers, got {options}")
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
