"""Fuzzing the parts of a file a loader trusts least (issue 15), each fuzzer in a capped, timed child.

Four fuzzers (hypothesis, derandomized, a fixed number of examples each): the safetensors header,
the commit record ``.commit.json``, the member list of a Keras archive, and the layout of an HDF5
weights file. Every example must end in a ValueError or TypeError, or in a correct load; the whole
run happens in one child process of ``sandbox.Sandbox`` (2 GiB over its imports, a time limit), so
an allocation, a hang or a crash on any example fails the fuzzer. Each test reports how many
examples it ran, how many loaded, and how long it took.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

# Examples per fuzzer: the commit record's writes fsync each file, so it gets fewer.
EXAMPLES = {"safetensors_header": 100, "commit_record": 50, "keras_members": 100, "hdf5_layout": 100}
KERAS = Path(__file__).parent / "data" / "keras"


def in_child(box, fuzzer: str):
    code = (f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\nimport test_hostile_fuzz as m\n"
            f"result = m.{fuzzer}({EXAMPLES[fuzzer]})")
    out = box.run(code, timeout=120)
    assert out.raised is None and out.signal is None, str(out)
    counts = eval(out.result)
    print(f"\n{fuzzer}: {counts}")
    assert counts["examples"] >= EXAMPLES[fuzzer] // 2, counts  # hypothesis may stop early, not below half
    return counts


# Each fuzzer below runs in the child: it imports hypothesis and rnnkit there.


def _settings(n):
    from hypothesis import HealthCheck, settings
    return settings(max_examples=n, deadline=5000, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _expect(call, counts):
    """Run ``call``; a ValueError/TypeError counts as refused, anything else propagates (and fails)."""
    counts["examples"] += 1
    try:
        result = call()
    except (ValueError, TypeError) as e:
        assert str(e), "an error without a message"
        counts["refused"] += 1
        return None
    counts["loaded"] += 1
    return result


def _done(counts, start):
    counts["seconds"] = round(time.monotonic() - start, 1)
    return counts


def _saved_model(folder):
    import torch

    import rnnkit as rk
    from rnnkit import files, serialization
    torch.manual_seed(0)
    model = rk.Sequential([rk.GRU(3, input_shape=(4, 2)), rk.Dense(2)])
    serialization.save_model(model, folder)
    (Path(folder) / files.COMMIT).unlink()
    return model


# ------------------------------------------------------------------ safetensors header


def safetensors_header(n):
    import safetensors.torch
    import torch
    from hypothesis import given
    from hypothesis import strategies as st

    from rnnkit.serialization import load_model

    d = tempfile.mkdtemp()
    _saved_model(d)
    path = Path(d, "model.safetensors")
    good = path.read_bytes()
    size = int.from_bytes(good[:8], "little")
    header = json.loads(good[8:8 + size])
    body = good[8 + size:]
    numbers = st.sampled_from([0, 1, 2, 3, 6, 9, 36, 2**31, 2**63 - 1, 2**64, -1]) | st.integers(0, 400)
    entry = st.fixed_dictionaries({
        "dtype": st.sampled_from(["F32", "F64", "I64", "BOOL", "F16", "X9", 3]),
        "shape": st.lists(numbers, max_size=10),
        "data_offsets": st.lists(numbers, min_size=0, max_size=3),
    })
    names = st.sampled_from(sorted(k for k in header if k != "__metadata__") + ["x", "__metadata__", ""])
    counts = {"examples": 0, "refused": 0, "loaded": 0}

    @_settings(n)
    @given(st.data())
    def run(data):
        doc = dict(header)
        for _ in range(data.draw(st.integers(1, 3))):
            op = data.draw(st.sampled_from(["set", "delete", "field", "nest", "length"]))
            name = data.draw(names)
            if op == "set":
                doc[name] = data.draw(entry)
            elif op == "delete":
                doc.pop(name, None)
            elif op == "field" and isinstance(doc.get(name), dict):
                field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
                doc[name] = {**doc[name], field: data.draw(entry)[field]}
            elif op == "nest":
                doc[name] = json.loads("[" * 50 + "]" * 50)
        text = json.dumps(doc).encode()
        if data.draw(st.booleans()):
            text = data.draw(st.sampled_from([b"[" * 5000, b'{"a": ' + b"1" * 200 + b"}", text + b"   "]))
        length = data.draw(st.sampled_from([len(text), len(text), 0, 2**40, len(text) + 1]))
        path.write_bytes(length.to_bytes(8, "little") + text + body)
        model = _expect(lambda: load_model(d), counts)
        if model is not None:
            want = safetensors.torch.load(path.read_bytes())
            assert all(torch.equal(v, want[k]) for k, v in model.state_dict().items())

    start = time.monotonic()
    run()
    return _done(counts, start)


# ------------------------------------------------------------------ commit record


def commit_record(n):
    import safetensors.torch
    import torch
    from hypothesis import given
    from hypothesis import strategies as st

    import rnnkit as rk
    from rnnkit import files, serialization

    names = ["config.json", "model.safetensors", "../model.safetensors", ".x", "", "a/b", "other.bin"]
    hexes = st.text("0123456789abcdef", min_size=8, max_size=8)
    entry = st.dictionaries(st.sampled_from(["temp", "sha256", "bytes", "x"]), st.one_of(
        st.none(), st.integers(-2, 2**64), st.text(max_size=8), hexes.map(lambda h: f".model.safetensors.tmp-{h}"),
        st.just("0" * 64), st.just(".config.json.tmp-0000000a"), st.just(".model.safetensors.tmp-0000000b")),
        max_size=3)
    record = st.one_of(
        st.fixed_dictionaries({"format": st.sampled_from(["rnnkit-commit", "other", None]),
                               "files": st.dictionaries(st.sampled_from(names), entry, max_size=3)
                               | st.sampled_from([[], None, "x"])}),
        st.recursive(st.none() | st.integers() | st.text(max_size=4), lambda x: st.lists(x, max_size=3), max_leaves=5),
    )
    counts = {"examples": 0, "refused": 0, "loaded": 0}

    @_settings(n)
    @given(record, st.booleans(), st.sampled_from([b"", b"[" * 3000, b"\xff\xfe", b'{"files": {"a": 1' + b"9" * 99]))
    def run(doc, raw, junk):
        with tempfile.TemporaryDirectory() as d:
            _saved_model(d)
            folder = Path(d)
            # Temporary files a record might name: one whole model, one damaged.
            (folder / ".model.safetensors.tmp-0000000b").write_bytes((folder / "model.safetensors").read_bytes())
            (folder / ".config.json.tmp-0000000a").write_bytes(b"{broken")
            (folder / files.COMMIT).write_bytes(junk if raw else json.dumps(doc).encode())
            model = _expect(lambda: serialization.load_model(d), counts)
            if model is not None:
                want = safetensors.torch.load((folder / "model.safetensors").read_bytes())
                assert all(torch.equal(v, want[k]) for k, v in model.state_dict().items())
            # A writer always recovers, and what it wrote loads.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                saved = rk.Sequential([rk.Dense(2, input_size=3)])
                serialization.save_model(saved, d)
            loaded = serialization.load_model(d)
            assert torch.equal(loaded.state_dict()["layers.0.kernel"], saved.state_dict()["layers.0.kernel"])

    start = time.monotonic()
    run()
    return _done(counts, start)


# ------------------------------------------------------------------ Keras archive members


def keras_members(n):
    from hypothesis import given
    from hypothesis import strategies as st

    from rnnkit.interop.keras_file import load_keras

    with zipfile.ZipFile(KERAS / "simple_rnn.keras") as z:
        real = {name: z.read(name) for name in z.namelist()}
    expected = np.load(KERAS / "simple_rnn.npz")
    contents = st.sampled_from(sorted(real)).map(real.get) | st.sampled_from(
        [b"", b"{}", b"[" * 4000, b'{"keras_version": "2.1"}', b"\x89HDF\r\n\x1a\n" + bytes(64), b"PK\x03\x04"]
    ) | st.binary(max_size=64)
    member = st.tuples(st.sampled_from(sorted(real) + ["junk", "../config.json", "config.json/", "a" * 200]),
                       contents, st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    counts = {"examples": 0, "refused": 0, "loaded": 0}

    @_settings(n)
    @given(st.lists(member, max_size=6), st.booleans(), st.sampled_from([0, 0, 0, 1, 22, 500]))
    def run(members, whole, cut):
        if whole:  # start from the real members, then add or replace
            members = [(name, data, zipfile.ZIP_DEFLATED) for name, data in real.items()] + members
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate names
            with zipfile.ZipFile(buf, "w") as z:
                for name, data, kind in members:
                    z.writestr(zipfile.ZipInfo(name), data, compress_type=kind)
        data = buf.getvalue()
        if cut:
            data = data[:-cut] if cut < len(data) else data[:1]
        with tempfile.TemporaryDirectory() as d:
            path = Path(d, "m.keras")
            path.write_bytes(data)
            model = _expect(lambda: load_keras(path), counts)
            if model is not None:
                np.testing.assert_allclose(model.predict(expected["x"]), expected["y"], rtol=1e-5, atol=1e-6)

    start = time.monotonic()
    run()
    return _done(counts, start)


# ------------------------------------------------------------------ HDF5 layout


def hdf5_layout(n):
    import h5py
    import torch
    from hypothesis import given
    from hypothesis import strategies as st

    import rnnkit as rk
    from rnnkit.interop.keras_file import load_keras

    source = (KERAS / "simple_rnn.weights.h5").read_bytes()
    with h5py.File(io.BytesIO(source), "r") as f:
        paths = []
        f.visit(paths.append)
    dims = st.sampled_from([0, 1, 2, 3, 4, 2**20, 2**31])
    op = st.one_of(
        st.tuples(st.just("delete"), st.sampled_from(paths)),
        st.tuples(st.just("dataset"), st.sampled_from(paths + ["layers/dense/vars/2", "x"]),
                  st.lists(dims, max_size=4), st.sampled_from(["f4", "f8", "i8", "u1", "S3", "c8"]),
                  st.booleans()),
        st.tuples(st.just("soft"), st.sampled_from(paths), st.sampled_from(["/layers", "/nowhere", "/layers/dense"])),
        st.tuples(st.just("external"), st.sampled_from(paths)),
        st.tuples(st.just("group"), st.sampled_from(paths + ["layers/dense/vars/x"])),
        st.tuples(st.just("deep"), st.integers(1, 60)),
        st.tuples(st.just("attr"), st.sampled_from(paths)),
    )
    counts = {"examples": 0, "refused": 0, "loaded": 0}

    @_settings(n)
    @given(st.lists(op, min_size=1, max_size=3))
    def run(ops):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d, "w.weights.h5")
            path.write_bytes(source)
            with h5py.File(path, "a") as f:
                for o in ops:
                    kind, where = o[0], o[1]
                    if kind == "deep":
                        f.require_group("/".join(["g"] * where))
                        continue
                    if kind != "attr" and where in f:
                        del f[where]
                    parent = where.rsplit("/", 1)[0] if "/" in where else None
                    if parent is not None and parent not in f:
                        continue
                    if kind == "dataset":
                        shape, dtype, chunked = tuple(o[2]), o[3], o[4]
                        big = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize > 2**20
                        try:
                            f.create_dataset(where, shape=shape, dtype=dtype,
                                             chunks=tuple(max(1, min(s, 64)) for s in shape) if chunked and shape else None,
                                             data=None if big else np.zeros(shape, dtype))
                        except (ValueError, TypeError, OSError):
                            continue  # a shape or chunking HDF5 itself refuses to create
                    elif kind == "soft":
                        f[where] = h5py.SoftLink(o[2])
                    elif kind == "external":
                        f[where] = h5py.ExternalLink("/etc/hostname", "/x")
                    elif kind == "group":
                        f.require_group(where)
                    elif where in f:
                        f[where].attrs["a"] = np.zeros(100)
            model = rk.Sequential([rk.SimpleRNN(4, return_sequences=True), rk.SimpleRNN(3), rk.Dense(2)],
                                  input_shape=(6, 3))
            loaded = _expect(lambda: load_keras(path, model=model), counts)
            if loaded is not None:
                with h5py.File(path, "r") as f:
                    kernel = np.asarray(f["layers/dense/vars/0"])
                assert torch.equal(loaded.layers[2].kernel.detach(), torch.from_numpy(kernel))

    start = time.monotonic()
    run()
    return _done(counts, start)


# ------------------------------------------------------------------ the tests


@pytest.mark.parametrize("fuzzer", ["safetensors_header", "commit_record", "keras_members", "hdf5_layout"])
def test_fuzz(box, fuzzer):
    counts = in_child(box, fuzzer)
    assert counts["refused"] + counts["loaded"] == counts["examples"]
