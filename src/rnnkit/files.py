"""Files that change whole, read within limits.

Writing: a file goes to a temporary file, is flushed to disk and renamed
over the old one, so a killed writer leaves the old file or the new one,
never half of one (``atomic_write``). A group of files changes as one
(``write_files``): a reader, or the next writer after a crash, sees all the
old files or all the new ones. The group's commit record ``.commit.json``
stays beside the files and holds the SHA-256 of each tensor file, so a
loader can tell a changed or damaged file. One writer at a time may write a
folder (``writer_lock``); a second one is refused with the holder's name.

Reading: only regular files, never more bytes than a limit, never a link
that leads out of the folder (``read_file``); JSON with bounded depth and
number length (``loads_json``). ``read_group`` reads several files of one
committed group, as a reader must: the last committed version of each.
``Limits`` names every bound a loader applies; a caller raises one with
``Limits(max_file_bytes=...)``.

    atomic_write("runs/digits/loss.png", png_bytes)
    write_files("runs/digits", {"model.safetensors": weights, "config.json": config})
    read_group("runs/digits", ["config.json", "model.safetensors"], Limits())

This module is the bottom floor of rnnkit's persistence: it knows bytes,
paths and JSON, nothing of models.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import glob
import hashlib
import json
import os
import re
import signal
import socket
import stat
import threading
import uuid
import warnings
from pathlib import Path

import numpy as np

try:
    import fcntl  # POSIX advisory locks; they are released by the kernel when their process dies
except ImportError:  # Windows: no writer lock (documented in docs/guarantees.md)
    fcntl = None

_TMP_MARK = ".tmp-"  # temporary files are ".<name>.tmp-<random>"

COMMIT = ".commit.json"  # the record of the last group of files written together
LOCK = ".lock"  # names the process writing the folder; exists only while one does
_RECORD_FORMAT = "rnnkit-commit"
_SHA_SUFFIXES = (".safetensors",)  # tensor files carry a SHA-256 in the commit record


# ------------------------------------------------------------------ limits


@dataclasses.dataclass(frozen=True)
class Limits:
    """Every bound a loader applies to what it reads, checked before anything is allocated or built.

    A file from a stranger cannot make rnnkit read, allocate or compute much
    more than these allow; an error names the limit it broke, and a caller
    with a bigger (trusted) model raises it::

        load_model("runs/big", limits=Limits(max_file_bytes=16 * 2**30))

    Attributes:
        max_file_bytes: size of one tensor file (safetensors, ``.keras``, ``.weights.h5``), as its
            file system and its own headers declare it and as read.
        max_json_bytes: size of one JSON document (a config, history, commit record, safetensors header).
        max_json_depth: nesting of lists and objects in a JSON document.
        max_number_chars: characters of one number in a JSON document (a 5000-digit integer is refused).
        max_tensors: tensors in one file (safetensors entries, HDF5 groups and datasets, zip members).
        max_rank: dimensions of one tensor.
        max_size: any one size a config names (``units``, ``input_size``, ``input_dim``,
            ``output_dim``, the features of an input shape).
        max_steps: a fixed time axis in a config (the model is traced once over it when built).
    """

    max_file_bytes: int = 4 * 2**30
    max_json_bytes: int = 64 * 2**20
    max_json_depth: int = 100
    max_number_chars: int = 64
    max_tensors: int = 10_000
    max_rank: int = 8
    max_size: int = 2**20
    max_steps: int = 100_000

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"Limits.{f.name}: expected a positive int, got {type(v).__name__} {v!r}")
            if v < 1:
                raise ValueError(f"Limits.{f.name}: expected a positive int, got {v}")


def check_limits(limits) -> Limits:
    """``limits``, or the default ``Limits()`` for None; a TypeError for anything else."""
    if limits is None:
        return Limits()
    if not isinstance(limits, Limits):
        raise TypeError(f"limits: expected rnnkit Limits or None, got {type(limits).__name__}")
    return limits


def over_limit(what: str, path, size: int, limits: Limits, name: str, unit: str = "bytes") -> ValueError:
    """The error for ``size`` over ``limits.<name>``, naming the file, the limit and how to raise it."""
    return ValueError(f"{what}: {path} has {size} {unit}, more than Limits.{name}={getattr(limits, name)}; "
                      f"pass limits=Limits({name}=...) to a loader if the file is trusted")


# ---------------------------------------------------------------- reading


def _open_flags(follow: bool) -> int:
    # O_NONBLOCK: opening a FIFO must not wait for a writer (the file type is refused right after).
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    return flags if follow else flags | getattr(os, "O_NOFOLLOW", 0)


def open_regular(path, what: str, *, inside: bool = True) -> int:
    """A file descriptor for the regular file ``path``, or a ValueError naming ``what``.

    ``inside``: ``path`` is a file of a folder being read (a run directory):
    a symbolic link is followed only to a file in the same folder. Otherwise
    (a path the caller named) links are followed. Devices, FIFOs, sockets
    and folders are refused without reading a byte. FileNotFoundError passes.
    """
    path = Path(path)
    try:
        fd = os.open(path, _open_flags(follow=not inside))
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.EMLINK):  # the error O_NOFOLLOW gives for a link
            if isinstance(e, FileNotFoundError):
                raise
            raise ValueError(f"{what}: {path} cannot be opened ({e.strerror})") from None
        target = Path(os.path.realpath(path))
        if target.parent != Path(os.path.realpath(path.parent)):
            raise ValueError(f"{what}: {path} is a symbolic link to {target}, outside its folder; only files "
                             "inside the folder are read") from None
        fd = open_regular(target, what, inside=True)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a directory" if stat.S_ISDIR(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
            raise ValueError(f"{what}: {path} is {kind}; expected a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_fd(fd: int, what: str, path, limit: int, limits: Limits, name: str) -> bytes:
    """All bytes of the open regular file ``fd``, refusing one over ``limit`` (declared or read) by name."""
    size = os.fstat(fd).st_size
    if size > limit:
        raise over_limit(what, path, size, limits, name)
    chunks, total = [], 0
    while total <= limit:  # the file may grow after fstat: read at most limit + 1 bytes
        chunk = os.read(fd, min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise over_limit(what, path, total, limits, name)
    return b"".join(chunks)


def read_file(path, what: str, limits: Limits, name: str = "max_file_bytes", *, inside: bool = True) -> bytes:
    """The bytes of the regular file ``path``, at most ``limits.<name>`` (see ``open_regular``)."""
    fd = open_regular(path, what, inside=inside)
    try:
        return read_fd(fd, what, path, getattr(limits, name), limits, name)
    except OSError as e:
        raise ValueError(f"{what}: {path} cannot be read ({e.strerror})") from None
    finally:
        os.close(fd)


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(data: bytes) -> int:
    """How deeply lists and objects nest in the JSON text ``data`` (brackets inside strings do not count)."""
    codes = np.frombuffer(_STRING.sub(b'""', data), dtype=np.uint8)
    steps = (np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
             - np.isin(codes, (ord("]"), ord("}"))).astype(np.int64))
    return int(np.cumsum(steps).max(initial=0))


def loads_json(data: bytes, what: str, path, limits: Limits):
    """The JSON document ``data``, within ``limits``; a ValueError naming ``what`` and ``path`` otherwise.

    Depth is measured before parsing (Python's parser recurses, and a
    ``[`` * 100000 document would raise RecursionError), and each number
    is measured before it is converted (a 5000-digit integer costs
    quadratic time, and Python refuses some without naming the file).
    """
    if len(data) > limits.max_json_bytes:
        raise over_limit(what, path, len(data), limits, "max_json_bytes")
    depth = json_depth(data)
    if depth > limits.max_json_depth:
        raise ValueError(f"{what}: {path} nests {depth} levels deep, more than Limits.max_json_depth="
                         f"{limits.max_json_depth}")

    def number(convert):
        def parse(text: str):
            if len(text) > limits.max_number_chars:
                raise ValueError(f"{what}: {path} has a number of {len(text)} characters, more than "
                                 f"Limits.max_number_chars={limits.max_number_chars} ({text[:20]}...)")
            return convert(text)
        return parse

    try:
        return json.loads(data.decode("utf-8"), parse_int=number(int), parse_float=number(float))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{what}: {path} is not readable JSON ({e})") from None


# ------------------------------------------------------------------ commit record


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record(folder: Path, limits: Limits) -> tuple[bytes | None, dict[str, dict]]:
    """``(raw bytes, {name: entry})`` of the commit record; ``(None, {})`` when there is none.

    An entry may have ``temp`` (the file's temporary name while the group is
    being renamed into place) and ``sha256``/``bytes`` (a tensor file). A
    record that is not exactly this shape is a ValueError naming it.
    """
    path = folder / COMMIT
    try:
        raw = read_file(path, COMMIT, limits, "max_json_bytes")
    except FileNotFoundError:
        return None, {}
    doc = loads_json(raw, COMMIT, path, limits)
    files = doc.get("files") if isinstance(doc, dict) and doc.get("format") == _RECORD_FORMAT else None
    if not isinstance(files, dict) or len(files) > limits.max_tensors:
        raise ValueError(f"{COMMIT}: {path} is not an rnnkit commit record (expected {{'format': "
                         f"'{_RECORD_FORMAT}', 'files': {{name: {{...}}}}}}, got {str(doc)[:80]}); the next save "
                         "into the folder moves it aside")
    for name, entry in files.items():
        ok = (isinstance(name, str) and name == Path(name).name and not name.startswith(".")
              and isinstance(entry, dict) and set(entry) <= {"temp", "sha256", "bytes"})
        if ok and "temp" in entry:
            temp = entry["temp"]
            ok = isinstance(temp, str) and re.fullmatch(re.escape(f".{name}{_TMP_MARK}") + "[0-9a-f]{8}", temp)
        if ok and "sha256" in entry:
            ok = isinstance(entry["sha256"], str) and re.fullmatch("[0-9a-f]{64}", entry["sha256"])
        if ok and "bytes" in entry:
            ok = isinstance(entry["bytes"], int) and not isinstance(entry["bytes"], bool) and entry["bytes"] >= 0
        if not ok:
            raise ValueError(f"{COMMIT}: {path}: entry {str(name)[:40]!r} should be {{'temp': '.<name>.tmp-<8 hex>', "
                             f"'sha256': <64 hex>, 'bytes': <int>}} (each optional), got {str(entry)[:80]}")
    return raw, files


def _read_member(folder: Path, name: str, entry: dict, limits: Limits, limit_name: str) -> bytes:
    """``name`` as the committed group has it: its temporary file while the renames are pending."""
    if "temp" in entry:
        try:
            return read_file(folder / entry["temp"], name, limits, limit_name)
        except FileNotFoundError:
            pass  # renamed into place already (or by the writer in the meantime)
    try:
        return read_file(folder / name, name, limits, limit_name)
    except FileNotFoundError:
        raise ValueError(f"{name}: {folder / name} does not exist") from None


class Group:
    """Files read together from one committed group (``read_group``): ``group[name]`` is their bytes."""

    def __init__(self, folder: Path, data: dict[str, bytes | None], record: dict[str, dict]):
        self.folder, self.data, self.record = folder, data, record

    def __getitem__(self, name: str) -> bytes:
        return self.data[name]

    def check_digests(self) -> None:
        """Refuse a tensor file whose SHA-256 is not the one its commit record holds, naming it."""
        for name, data in self.data.items():
            want = self.record.get(name, {}).get("sha256")
            if want is not None and data is not None and _sha256(data) != want:
                raise ValueError(
                    f"{name}: {self.folder / name} has SHA-256 {_sha256(data)[:16]}..., but {COMMIT} recorded "
                    f"{want[:16]}... when it was written; the file is damaged or was changed since")


_READ_TRIES = 50


def read_group(folder, names, limits: Limits, *, optional=(), json_names=()) -> Group:
    """The bytes of ``names`` in ``folder`` as one committed group wrote them.

    A writer may commit a new group while this reads. The commit record is
    read before and after the files; if it changed, the files are read
    again, so the result never mixes two groups. ``optional`` names may be
    missing (their value is None). ``json_names`` are read within
    ``max_json_bytes``, the rest within ``max_file_bytes``.
    """
    folder = Path(folder)
    for _ in range(_READ_TRIES):
        raw, record = _record(folder, limits)
        data = {}
        for name in names:
            limit_name = "max_json_bytes" if name in json_names else "max_file_bytes"
            if name in optional and name not in record and not os.path.lexists(folder / name):
                data[name] = None
                continue
            data[name] = _read_member(folder, name, record.get(name, {}), limits, limit_name)
        try:
            again = read_file(folder / COMMIT, COMMIT, limits, "max_json_bytes")
        except FileNotFoundError:
            again = None
        if again == raw:
            return Group(folder, data, record)
    raise ValueError(f"{COMMIT}: {folder} got a new commit on each of {_READ_TRIES} reads; a writer is saving "
                     "faster than the files can be read")


# ---------------------------------------------------------------- writing


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
        with open(tmp, "xb") as f:
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

    Under the folder's writer lock (``writer_lock``):

    1. each file goes to a temporary file, flushed to disk;
    2. ``.commit.json`` is written atomically, the commit point. It names
       each file's temporary file and holds the SHA-256 of each tensor file
       (and carries over the entries of files this group does not rewrite);
    3. the temporary files are renamed into place. The record stays.

    A writer killed before step 2 leaves only temporary files: the old
    files stand, and the next writer deletes the leftovers. One killed after
    it leaves temporary files that the record names: readers take the new
    files from them, and the next writer (``clean_leftovers``) finishes the
    renames.
    """
    folder = Path(folder)
    with writer_lock(folder):
        kept = clean_leftovers(folder, _locked=True)
        temps: dict[str, str] = {}
        committed = False
        try:
            entries = {name: {k: v for k, v in e.items() if k != "temp"} for name, e in kept.items() if name not in files}
            for name, data in files.items():
                temps[name] = _write_temp(folder / name, data).name
                entries[name] = {"temp": temps[name]}
                if name.endswith(_SHA_SUFFIXES):
                    entries[name].update(sha256=_sha256(data), bytes=len(data))
            _fsync_dir(folder)
            atomic_write(folder / COMMIT, json_bytes({"format": _RECORD_FORMAT, "files": entries}))
            committed = True
            for name, tmp in temps.items():
                os.replace(folder / tmp, folder / name)
            _fsync_dir(folder)
        except BaseException:
            if not committed:
                for tmp in temps.values():
                    (folder / tmp).unlink(missing_ok=True)
            raise
    return folder


def json_bytes(obj) -> bytes:
    """``obj`` as indented UTF-8 JSON with a final newline (NaN and infinities allowed, as Python writes them)."""
    return (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode("utf-8")


def write_json(path, obj) -> None:
    """``obj`` as JSON in ``path``, written atomically."""
    atomic_write(path, json_bytes(obj))


def clean_leftovers(folder, *, _locked: bool = False) -> dict[str, dict]:
    """Finish the renames of a group a killed writer had committed, then delete temporary files.

    Returns the commit record's entries (``{}`` when there is none). A
    record that cannot be read is not rnnkit's (it is written atomically):
    it is moved aside to ``.commit.json.bad`` with a warning, so that it
    blocks neither this writer nor later readers, and the temporary files it
    might have named are deleted. Takes the writer lock unless the caller holds it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    with contextlib.nullcontext() if _locked else writer_lock(folder):
        try:
            _, record = _record(folder, Limits())
        except ValueError as e:
            os.replace(folder / COMMIT, folder / f"{COMMIT}.bad")
            warnings.warn(f"{COMMIT}: moved aside to {folder / (COMMIT + '.bad')} and starting a new record: {e}",
                          RuntimeWarning, stacklevel=2)
            record = {}
        moved = False
        for name, entry in record.items():
            if "temp" in entry and os.path.lexists(folder / entry["temp"]):
                os.replace(folder / entry["temp"], folder / name)
                moved = True
        if moved:
            _fsync_dir(folder)
        for p in folder.iterdir():
            if p.name.startswith(".") and _TMP_MARK in p.name and not p.is_dir():
                p.unlink()
        return record


def _prepare_dir(folder) -> Path:
    """``folder``, created if needed."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"run directory: {folder} exists and is not a directory")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ------------------------------------------------------------------ writer lock

_held: dict[str, int] = {}  # folders this process holds the writer lock of -> nesting depth
_held_guard = threading.Lock()


def _holder(fd: int) -> str:
    """Who the lock file's content names, in words ("process 12 on host, since <time>")."""
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        h = json.loads(raw.decode("utf-8"))
        return f"process {int(h['pid'])} on {str(h['host'])[:64]}, since {str(h['started'])[:40]}"
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return ""


@contextlib.contextmanager
def writer_lock(folder):
    """Hold ``folder``'s writer lock for the block; a ValueError naming the holder if another process has it.

    The lock is ``folder/.lock``, locked with ``flock`` (the kernel releases
    it when its process dies, however it dies) and naming its holder: pid,
    host and start time. A lock file left by a dead process is taken over,
    with a warning that names it. Nested calls in one process share the
    lock. Readers take no lock: they read the last committed group.
    """
    folder = _prepare_dir(folder)
    key = os.path.realpath(folder)
    with _held_guard:
        nested = key in _held
        if nested:
            _held[key] += 1
    if nested or fcntl is None:
        try:
            yield
        finally:
            if nested:
                with _held_guard:
                    _held[key] -= 1
        return
    path = folder / LOCK
    fd = _acquire(path)
    with _held_guard:
        _held[key] = 1
    try:
        yield
    finally:
        with _held_guard:
            del _held[key]
        path.unlink(missing_ok=True)  # while still locked, so no one locks the old file after us
        os.close(fd)


def _acquire(path: Path) -> int:
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as e:  # a link planted as the lock, a read-only folder
            raise ValueError(f"run directory: the lock {path} cannot be opened ({e.strerror})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError(f"run directory: the lock {path} is not a regular file")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                who = _holder(fd) or "another process (it has not written its name yet)"
                raise ValueError(f"run directory: {path.parent} is being written by {who}; the lock is {path}. "
                                 "Wait for it to finish, or write to another folder") from None
            try:  # the holder before us may have deleted the file between our open and our lock
                same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = _holder(fd)
            if previous:
                warnings.warn(f"run directory: taking over the lock {path} left by {previous}, which has ended",
                              RuntimeWarning, stacklevel=4)
            me = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(me).encode("utf-8"))
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise


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
