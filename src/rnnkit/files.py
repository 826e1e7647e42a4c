"""Files that change whole: write to a temporary file, flush it to disk, rename it over the old one.

A killed writer leaves either the old file or the new one, never half of
one (``atomic_write``). A group of files changes as one (``write_files``):
a reader, or the next writer after a crash, sees all the old files or all
the new ones. The temporary leftovers of a killed writer are removed the
next time the folder is written (``clean_leftovers``).

    atomic_write("runs/digits/loss.png", png_bytes)
    write_files("runs/digits", {"model.safetensors": weights, "config.json": config})
    read_json("runs/digits/config.json")   # the new version while a committed group is being renamed

This module is the bottom floor of rnnkit's persistence: it knows bytes,
paths and JSON, nothing of models.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import threading
import uuid
from pathlib import Path

_TMP_MARK = ".tmp-"  # temporary files are ".<name>.tmp-<random>"

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


def read_bytes(path) -> bytes:
    """The bytes a reader should see at ``path``: the new version while a committed group is being renamed."""
    path = Path(path)
    source = _pending(path.parent).get(path.name, path)
    try:
        return source.read_bytes()
    except FileNotFoundError:
        if source == path:
            raise
        return path.read_bytes()  # the writer renamed it in the meantime


def json_bytes(obj) -> bytes:
    """``obj`` as indented UTF-8 JSON with a final newline (NaN and infinities allowed, as Python writes them)."""
    return (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode("utf-8")


def write_json(path, obj) -> None:
    """``obj`` as JSON in ``path``, written atomically."""
    atomic_write(path, json_bytes(obj))


def read_json(path, what: str | None = None):
    """The JSON document at ``path`` as a reader should see it (``read_bytes``).

    A missing or unreadable file raises a ValueError naming ``what`` (default: the file name).
    """
    path = Path(path)
    try:
        return json.loads(read_bytes(path).decode("utf-8"))
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
    """``folder``, created if needed, with a killed writer's leftovers dealt with (``clean_leftovers``)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"run directory: {folder} exists and is not a directory")
    folder.mkdir(parents=True, exist_ok=True)
    clean_leftovers(folder)
    return folder
