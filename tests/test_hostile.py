"""Hostile files and inputs (issue 15): each is refused within seconds and bounded memory.

Every case runs in a child process (``sandbox.Sandbox``) with a time limit (20 s) and an address-space
cap (2 GiB over the imports), so a hang, a MemoryError or a signal fails that case, not the suite.
Each must end in a ValueError or TypeError whose message names the file or argument. The files are
made here, in the test process; only the loading runs in the child.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import safetensors.torch
import torch

import rnnkit as rk
from rnnkit import checkpoint, files, serialization

KERAS = Path(__file__).parent / "data" / "keras"


def refused(box, code: str, match: str, kinds=("ValueError", "TypeError")):
    out = box.run(code)
    assert out.refused(match, kinds), str(out)
    return out


def load_model_code(folder, **kw) -> str:
    args = "".join(f", {k}={v}" for k, v in kw.items())
    return f"from rnnkit.serialization import load_model\nfrom rnnkit.files import Limits\nload_model({str(folder)!r}{args})"


def load_checkpoint_code(folder) -> str:
    return f"from rnnkit.checkpoint import load_checkpoint\nload_checkpoint({str(folder)!r})"


def load_keras_code(path, model: str | None = None, **kw) -> str:
    args = "".join(f", {k}={v}" for k, v in kw.items())
    build = (f"import rnnkit as rk\nmodel = {model}\n" if model else "model = None\n")
    return (f"from rnnkit.interop.keras_file import load_keras\nfrom rnnkit.files import Limits\n{build}"
            f"load_keras({str(path)!r}, model=model{args})")


SIMPLE_RNN = ("rk.Sequential([rk.SimpleRNN(4, return_sequences=True), rk.SimpleRNN(3), rk.Dense(2)], "
              "input_shape=(6, 3))")


_TEMPLATES: dict[bool, dict[str, bytes]] = {}


def small_run(folder, compiled=True):
    """A run directory of a GRU and a Dense layer: a checkpoint after one epoch, or a saved model."""
    if compiled not in _TEMPLATES:
        torch.manual_seed(0)
        model = rk.Sequential([rk.GRU(3, input_shape=(4, 2)), rk.Dense(2)])
        template = Path(folder).parent / f"template-{compiled}"
        if compiled:
            model.compile("adam", "mse")
            model.fit(np.ones((4, 4, 2), np.float32), np.ones((4, 2), np.float32), epochs=1, verbose=0)
            checkpoint.save_checkpoint(template, model, 1, {"loss": [1.0]})
        else:
            serialization.save_model(model, template)
        _TEMPLATES[compiled] = {p.name: p.read_bytes() for p in template.iterdir()}
    folder = Path(folder)
    folder.mkdir(parents=True)
    for name, data in _TEMPLATES[compiled].items():
        (folder / name).write_bytes(data)
    return folder


def edit_json(path, change):
    doc = json.loads(Path(path).read_text())
    change(doc)
    Path(path).write_text(json.dumps(doc))


def keras_copy(tmp_path, members: dict[str, bytes] | None = None, name="m.keras", source="simple_rnn.keras"):
    """A copy of a fixture archive with some members replaced (``None`` drops one)."""
    dst = tmp_path / name
    with zipfile.ZipFile(KERAS / source) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = (members or {}).get(item.filename, zin.read(item.filename))
            if data is not None:
                zout.writestr(item.filename, data)
    return dst


def keras_member(name, source="simple_rnn.keras") -> bytes:
    with zipfile.ZipFile(KERAS / source) as z:
        return z.read(name)


# ---------------------------------------------------------------- 1. zip bomb


def test_keras_zip_bomb_is_refused_by_declared_and_inflated_size(box, tmp_path):
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", keras_member("metadata.json"))
        z.writestr("config.json", keras_member("config.json"))
        with z.open("model.weights.h5", "w", force_zip64=True) as f:  # 64 MiB of zeros in ~64 kB
            for _ in range(64):
                f.write(bytes(2**20))
    assert bomb.stat().st_size < 2**20
    refused(box, load_keras_code(bomb, limits="Limits(max_file_bytes=2**20)"),
            r"model.weights.h5.*67108864 bytes, more than Limits.max_file_bytes=1048576")
    # The central directory lies: it declares 100 bytes; the stream is cut at the limit, or the CRC fails.
    data = bytearray(bomb.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo("model.weights.h5")
    liar = tmp_path / "liar.keras"
    forged = bytes(data).replace(info.file_size.to_bytes(8, "little"), (100).to_bytes(8, "little"))  # zip64 sizes
    assert forged != bytes(data)
    liar.write_bytes(forged)
    refused(box, load_keras_code(liar, limits="Limits(max_file_bytes=2**20)"), "liar.keras")


def test_keras_archive_with_duplicate_or_too_many_members(box, tmp_path):
    dup = tmp_path / "dup.keras"
    with zipfile.ZipFile(dup, "w") as z:
        for name in ("metadata.json", "config.json", "model.weights.h5"):
            z.writestr(name, keras_member(name))
        with pytest.warns(UserWarning):
            z.writestr("config.json", b"{}")
    refused(box, load_keras_code(dup), r"'config.json' twice")
    many = keras_copy(tmp_path, name="many.keras")
    with zipfile.ZipFile(many, "a") as z:
        for i in range(30):
            z.writestr(f"junk/{i}", b"")
    refused(box, load_keras_code(many, limits="Limits(max_tensors=20)"), r"33 members, more than Limits.max_tensors=20")


# ------------------------------------------------------ 2. sizes the weights do not back


def test_a_zero_byte_tensor_backs_no_size(box, tmp_path):
    run = small_run(tmp_path / "run", compiled=False)
    tensors = safetensors.torch.load_file(run / "model.safetensors")
    edit_json(run / "config.json", lambda c: c["model"]["layers"][0]["config"].update(units=20000))
    tensors["zero"] = torch.zeros(20000, 0)
    safetensors.torch.save_file(tensors, run / "model.safetensors")
    (run / files.COMMIT).unlink()  # as a stranger would hand it over: no record
    refused(box, load_model_code(run), r"config.json: layers.0.config.units=20000 is larger than any tensor")
    edit_json(run / "config.json", lambda c: c["model"]["layers"][0]["config"].update(units=10**12))
    refused(box, load_model_code(run), r"units=1000000000000 is more than Limits.max_size")


def test_a_size_backed_by_a_small_tensor_is_caught_before_the_real_build(box, tmp_path):
    # units=20000 with a (20000, 1) tensor of 80 kB: a real build would allocate 20000 x 60000 floats.
    run = small_run(tmp_path / "run", compiled=False)
    tensors = safetensors.torch.load_file(run / "model.safetensors")
    tensors["layers.0.cell.bias"] = torch.zeros(20000, 1)
    safetensors.torch.save_file(tensors, run / "model.safetensors")
    edit_json(run / "config.json", lambda c: c["model"]["layers"][0]["config"].update(units=20000))
    (run / files.COMMIT).unlink()
    refused(box, load_model_code(run), r"model.safetensors: tensor 'layers.0.cell.\w+' has shape .*the model expects")


def test_safetensors_headers_within_limits(box, tmp_path):
    run = small_run(tmp_path / "run", compiled=False)
    (run / files.COMMIT).unlink()
    path = run / "model.safetensors"
    good = path.read_bytes()
    n = int.from_bytes(good[:8], "little")
    header = json.loads(good[8:8 + n])
    body = good[8 + n:]

    def write(h):
        text = json.dumps(h).encode()
        path.write_bytes(len(text).to_bytes(8, "little") + text + body)

    path.write_bytes((2**40).to_bytes(8, "little") + good[8:])
    refused(box, load_model_code(run), r"model.safetensors: .* declares a header of 1099511627776 bytes")
    key = next(k for k in header if k != "__metadata__")
    write({**header, key: {**header[key], "shape": [2**31, 2**31]}})
    refused(box, load_model_code(run), r"model.safetensors: .*tensor .* needs \d+ bytes")
    write({**header, key: {**header[key], "shape": [1] * 9}})
    refused(box, load_model_code(run), r"9 dimensions, more than Limits.max_rank=8")
    write({**header, **{f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(30)}})
    refused(box, load_model_code(run, limits="Limits(max_tensors=10)"), r"more than Limits.max_tensors=10")
    path.write_bytes(good)
    refused(box, load_model_code(run, limits="Limits(max_file_bytes=100)"), r"model.safetensors: .* more than "
            r"Limits.max_file_bytes=100; pass limits=Limits\(max_file_bytes=...\)")


# ------------------------------------------------------------- 3. load_keras caps


def test_load_keras_units_steps_and_features_are_capped(box, tmp_path):
    config = json.loads(keras_member("config.json"))
    config["config"]["layers"][1]["config"]["units"] = 20000
    path = keras_copy(tmp_path, {"config.json": json.dumps(config).encode()}, "units.keras")
    assert path.stat().st_size < 30_000
    refused(box, load_keras_code(path), r"config.json.*units: 20000 is more than .* non-empty weight")
    config = json.loads(keras_member("config.json"))
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 10**9, 3]
    path = keras_copy(tmp_path, {"config.json": json.dumps(config).encode()}, "steps.keras")
    refused(box, load_keras_code(path), r"batch_shape: 1000000000 time steps is more than Limits.max_steps=100000")
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 6, 10**7]
    path = keras_copy(tmp_path, {"config.json": json.dumps(config).encode()}, "features.keras")
    refused(box, load_keras_code(path), r"batch_shape: 10000000 features is more than")


def h5_with(tmp_path, name, edit):
    path = tmp_path / name
    shutil.copy(KERAS / "simple_rnn.weights.h5", path)
    with h5py.File(path, "a") as f:
        edit(f)
    return path


def test_hdf5_declared_shapes_are_checked_before_reading(box, tmp_path):
    def huge_chunked(f):
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=(200000, 100000), dtype="f4", chunks=(1000, 1000))

    path = h5_with(tmp_path, "chunked.weights.h5", huge_chunked)
    assert path.stat().st_size < 100_000
    refused(box, load_keras_code(path, SIMPLE_RNN), r"layers/dense/vars/0 declares shape \(200000, 100000\)")

    def square(f):  # 3.6 GB declared, under the file limit: refused by its shape before a byte is read
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=(30000, 30000), dtype="f4")

    path = h5_with(tmp_path, "square.weights.h5", square)
    refused(box, load_keras_code(path, SIMPLE_RNN), r"layers/dense/vars/0: layer 'dense.*' .*expects shape \(3, 2\), "
            r"the file has \(30000, 30000\)")

    def big_chunks(f):
        del f["layers/dense/vars/1"]
        f.create_dataset("layers/dense/vars/1", shape=(2,), maxshape=(None,), dtype="f4", chunks=(2**28,))

    path = h5_with(tmp_path, "chunks.weights.h5", big_chunks)
    refused(box, load_keras_code(path, SIMPLE_RNN), r"layers/dense/vars/1 has chunks \(268435456,\) larger than")

    def strings(f):
        del f["layers/dense/vars/1"]
        f["layers/dense/vars/1"] = np.array([b"ab", b"cd"])

    path = h5_with(tmp_path, "strings.weights.h5", strings)
    refused(box, load_keras_code(path, SIMPLE_RNN), r"layers/dense/vars/1 has dtype \|S2; expected numbers")


# ------------------------------------------------------------- 4. zero features


@pytest.mark.parametrize("call", [
    "rk.GRU(4)(torch.randn(2, 5, 0))",
    "rk.LSTM(4, unroll=True)(torch.randn(2, 5, 0))",
    "rk.Bidirectional(rk.GRU(4))(torch.randn(2, 5, 0))",
    "rk.SimpleRNN(4, input_size=3)(torch.randn(2, 5, 0))",
    "rk.GRUCell(4)(torch.randn(2, 0), torch.zeros(2, 4))",
    "rk.Dense(3)(torch.randn(2, 0))",
    "rk.TimeDistributed(rk.Dense(3))(torch.randn(2, 5, 0))",
    "rk.Sequential([rk.LSTM(3)], input_shape=(5, 0))",
    "rk.Sequential([rk.LSTM(3)])(torch.randn(2, 5, 0))",
    "v1.dynamic_rnn(v1.LSTMCell(3), torch.randn(2, 5, 0))",
    "v1.static_rnn(v1.GRUCell(3), [torch.randn(2, 0)] * 3)",
])
def test_zero_features_are_refused_on_every_path(box, call):
    refused(box, f"import torch, rnnkit as rk\nfrom rnnkit import v1\n{call}", r"(at least one feature|0 features)")


# ------------------------------------------------------------------ 5. export_onnx


@pytest.mark.parametrize("example, kw, match", [
    ("torch.randn(0, 5, 3)", "", r"example_input: expected at least one sample.*\(0, 5, 3\)"),
    ("torch.randn(2, 0, 3)", "", r"example_input: expected at least one sample.*\(2, 0, 3\)"),
    ("torch.randn(2, 5, 0)", "", r"example_input: expected at least one sample"),
    ("torch.full((2, 5, 3), float('nan'))", "", r"example_input: expected finite values"),
    ("torch.randn(2, 5, 3)", ", tolerance=float('nan')", r"tolerance: expected a finite number >= 0, got nan"),
    ("torch.randn(2, 5, 3)", ", tolerance=-1.0", r"tolerance: expected a finite number >= 0, got -1.0"),
    ("torch.randn(2, 5, 3)", ", tolerance='1e-5'", r"tolerance: expected a number, got str"),
])
def test_export_onnx_refuses_invalid_examples_before_onnxruntime(box, tmp_path, example, kw, match):
    pytest.importorskip("onnx")
    code = ("import torch, rnnkit as rk\nfrom rnnkit.interop.onnx_export import export_onnx\n"
            "model = rk.Sequential([rk.LSTM(4, input_size=3), rk.Dense(2)])\n"
            f"export_onnx(model, {str(tmp_path / 'm.onnx')!r}, {example}{kw})")
    refused(box, code, match)
    assert not (tmp_path / "m.onnx").exists()


# ------------------------------------------------------------------ 6. special files


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "history.json", ".commit.json"])
@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom"])
def test_links_to_devices_are_refused(box, tmp_path, name, target):
    run = small_run(tmp_path / "run")
    (run / name).unlink()
    (run / name).symlink_to(target)
    refused(box, load_checkpoint_code(run), rf"{name}: .*{name} is a symbolic link to {target}, outside its folder")


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "history.json", ".commit.json"])
def test_fifos_and_folders_are_refused_without_waiting(box, tmp_path, name):
    run = small_run(tmp_path / "run")
    (run / name).unlink()
    os.mkfifo(run / name)
    refused(box, load_checkpoint_code(run), rf"{name}: .*{name} is a FIFO; expected a regular file")
    (run / name).unlink()
    (run / name).mkdir()
    refused(box, load_checkpoint_code(run), rf"{name}: .*{name} is a directory; expected a regular file")


def test_links_inside_the_folder_are_followed_and_links_out_are_not(box, tmp_path):
    run = small_run(tmp_path / "run", compiled=False)
    (run / "weights.bin").write_bytes((run / "model.safetensors").read_bytes())
    (run / "model.safetensors").unlink()
    (run / "model.safetensors").symlink_to("weights.bin")
    out = box.run(load_model_code(run) + "\nresult = 'loaded'")
    assert out.raised is None and out.result == "'loaded'", str(out)
    outside = tmp_path / "elsewhere.safetensors"
    (run / "weights.bin").rename(outside)
    (run / "model.safetensors").unlink()
    (run / "model.safetensors").symlink_to(outside)
    refused(box, load_model_code(run), r"model.safetensors: .* is a symbolic link to .*elsewhere.safetensors, outside")


def test_special_files_as_keras_paths(box, tmp_path):
    fifo = tmp_path / "fifo.keras"
    os.mkfifo(fifo)
    refused(box, load_keras_code(fifo), r"path: .*fifo.keras is a FIFO; expected a regular file")
    link = tmp_path / "zero.weights.h5"
    link.symlink_to("/dev/zero")
    refused(box, load_keras_code(link, SIMPLE_RNN), r"zero.weights.h5 is a device; expected a regular file")


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"format": "rnnkit-commit", "files": []}',
                                     b'{"format": "rnnkit-commit", "files": {"../x": {}}}',
                                     b'{"format": "rnnkit-commit", "files": {"config.json": {"temp": "/etc/passwd"}}}'])
def test_a_bad_commit_record_is_an_error_on_load_and_recovered_on_save(box, tmp_path, content):
    run = small_run(tmp_path / "run")
    (run / files.COMMIT).write_bytes(content)
    refused(box, load_checkpoint_code(run), r"\.commit\.json: .*\.commit\.json")
    code = ("import rnnkit as rk\nfrom rnnkit import checkpoint\n"
            "model = rk.Sequential([rk.GRU(3, input_shape=(4, 2)), rk.Dense(2)])\nmodel.compile('adam', 'mse')\n"
            f"checkpoint.save_checkpoint({str(run)!r}, model, 2, {{'loss': [1.0, 0.5]}})\n"
            f"result = checkpoint.load_checkpoint({str(run)!r})[1]")
    out = box.run(code)
    assert out.raised is None and out.result == "2", str(out)
    assert any(".commit.json: moved aside" in w for w in out.warnings), out.warnings
    assert (run / ".commit.json.bad").read_bytes() == content


# ------------------------------------------------------------------ 7. deep JSON, long numbers


@pytest.mark.parametrize("name", ["config.json", "history.json", ".commit.json", "optimizer.json"])
@pytest.mark.parametrize("text, match", [
    ("[" * 100000, r"nests 100000 levels deep, more than Limits.max_json_depth=100"),
    ('{"a": ' + "1" * 5000 + "}", r"a number of 5000 characters, more than Limits.max_number_chars=64"),
    ('{"a": 0.' + "1" * 5000 + "}", r"a number of 5002 characters"),
])
def test_deep_json_and_long_numbers_name_the_file(box, tmp_path, name, text, match):
    run = small_run(tmp_path / "run")
    (run / name).write_text(text)
    refused(box, load_checkpoint_code(run), rf"{name}: .*{name} (has )?{match}")


def test_deep_json_in_a_keras_config(box, tmp_path):
    path = keras_copy(tmp_path, {"config.json": b"[" * 100000}, "deep.keras")
    refused(box, load_keras_code(path), r"config.json is not valid JSON: .*nests 100000 levels deep")
    path = keras_copy(tmp_path, {"metadata.json": b'{"v": ' + b"9" * 5000 + b"}"}, "long.keras")
    refused(box, load_keras_code(path), r"metadata.json is not valid JSON: .*5000 characters")


def test_cli_resume_on_deep_json_is_one_line(box, tmp_path):
    run = small_run(tmp_path / "run")
    (run / "config.json").write_text("[" * 100000)
    code = ("import contextlib, io\nfrom rnnkit import cli\nerr = io.StringIO()\n"
            f"with contextlib.redirect_stderr(err):\n    code = cli.main(['train', '--resume', {str(run)!r}])\n"
            "result = (code, err.getvalue())")
    out = box.run(code)
    assert out.raised is None, str(out)
    code, err = eval(out.result)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1 and "nests 100000 levels" in err, err


# ------------------------------------------------------------------ 8. HDF5 links


@pytest.mark.parametrize("where", ["layers/dense", "layers/simple_rnn/cell", "layers/dense/vars"])
@pytest.mark.parametrize("kind", ["external", "soft"])
def test_hdf5_links_on_groups_are_refused(box, tmp_path, where, kind):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_group("g")

    def link(f):
        del f[where]
        f[where] = h5py.ExternalLink(str(other), "/g") if kind == "external" else h5py.SoftLink("/layers")

    path = h5_with(tmp_path, "linked.weights.h5", link)
    refused(box, load_keras_code(path, SIMPLE_RNN), rf"/{where}: is a (ExternalLink|SoftLink); only groups and datasets")


# ------------------------------------------------------------------ 9. checksums


def flip(path, count=100, seed=0):
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    rng = np.random.RandomState(seed)
    for i in rng.choice(np.arange(start, len(data)), size=min(count, len(data) - start), replace=False):
        data[i] ^= 1 << int(rng.randint(8))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.safetensors", "trainer_state.safetensors"])
def test_flipped_bits_in_tensor_files_are_refused_by_name(box, tmp_path, name):
    run = small_run(tmp_path / "run")
    record = json.loads((run / files.COMMIT).read_text())
    assert len(record["files"][name]["sha256"]) == 64
    flip(run / name, count=1 if name == "trainer_state.safetensors" else 100)
    # A flipped optimizer moment may also be refused by its range check first; either names the file.
    refused(box, load_checkpoint_code(run), rf"{name}: (.* has SHA-256 .*, but \.commit\.json recorded|.*negative|.*NaN)")
    if name == "model.safetensors":
        refused(box, load_model_code(run), r"model.safetensors: .* has SHA-256")


def test_save_model_over_a_checkpoint_keeps_the_other_digests(tmp_path):
    run = small_run(tmp_path / "run")
    before = json.loads((run / files.COMMIT).read_text())["files"]
    model = rk.Sequential([rk.GRU(3, input_shape=(4, 2)), rk.Dense(2)])
    model.compile("adam", "mse")
    serialization.save_model(model, run)
    after = json.loads((run / files.COMMIT).read_text())["files"]
    assert after["optimizer.safetensors"]["sha256"] == before["optimizer.safetensors"]["sha256"]
    assert after["model.safetensors"]["sha256"] != before["model.safetensors"]["sha256"]
    with pytest.raises(ValueError, match="different epochs"):  # the old optimizer state is of another epoch
        checkpoint.load_checkpoint(run)


# ------------------------------------------------------------------ 10. values to refuse


@pytest.mark.parametrize("change, match", [
    (lambda t: t["state.0.exp_avg"].fill_(float("nan")), r"'state.0.exp_avg' holds NaN or infinite"),
    (lambda t: t["state.0.exp_avg_sq"].fill_(-1.0), r"'state.0.exp_avg_sq' holds negative values"),
    (lambda t: t["state.0.step"].fill_(-3.0), r"'state.0.step' holds negative values"),
])
def test_optimizer_state_values_are_range_checked(box, tmp_path, change, match):
    run = small_run(tmp_path / "run")
    path = run / "optimizer.safetensors"
    tensors = safetensors.torch.load_file(path)
    meta = json.loads(path.read_bytes()[8:8 + int.from_bytes(path.read_bytes()[:8], "little")])["__metadata__"]
    change(tensors)
    path.write_bytes(safetensors.torch.save(tensors, metadata=meta))
    (run / files.COMMIT).unlink()
    refused(box, load_checkpoint_code(run), rf"optimizer.safetensors: {match}")


@pytest.mark.parametrize("key, value", [("lr", -0.1), ("eps", -1e-7), ("maximize", True), ("betas", [0.9, 1.5]),
                                        ("weight_decay", float("nan"))])
def test_optimizer_hyperparameters_are_range_checked(box, tmp_path, key, value):
    run = small_run(tmp_path / "run")
    edit_json(run / "optimizer.json", lambda d: d["param_groups"][0].update({key: value}))
    refused(box, load_checkpoint_code(run), rf"optimizer.json: param_groups\[0\]\['{key}'\] is ")


@pytest.mark.parametrize("call, match", [
    ("v1.LSTMCell(3, cell_clip=float('nan'))", r"cell_clip: expected a finite number, got nan"),
    ("v1.LSTMCell(3, num_proj=2, proj_clip=float('nan'))", r"proj_clip: expected a finite number, got nan"),
    ("v1.LSTMCell(3, cell_clip=-1.0)", r"cell_clip: expected a number >= 0"),
    ("v1.static_rnn(v1.GRUCell(3), [torch.randn(2, 2)], dtype='float33')", r"dtype: expected a torch dtype .* 'float33'"),
    ("v1.dynamic_rnn(v1.GRUCell(3), torch.randn(2, 4, 2), dtype=torch.int32)", r"dtype: RNN cell only supports floating"),
    ("Stepper(rk.LSTM(3, input_size=2))(torch.randn(1, 2), (torch.zeros(1, 3),))", r"state: an LSTM step takes \(h, c\)"),
    ("Stepper(rk.GRU(3, input_size=2))(torch.randn(1, 2), (torch.zeros(1, 3),))", r"state: a GRUCell step takes one"),
    ("resolve_device('meta')", r"device: expected .* got 'meta'"),
    ("files.Limits(max_steps=0)", r"Limits.max_steps: expected a positive int, got 0"),
    ("files.Limits(max_file_bytes=2.5)", r"Limits.max_file_bytes: expected a positive int, got float"),
    ("load_model('.', limits={'max_steps': 5})", r"limits: expected rnnkit Limits or None, got dict"),
])
def test_arguments_are_refused_by_name(box, call, match):
    code = ("import torch, rnnkit as rk\nfrom rnnkit import v1, files\nfrom rnnkit.kernels.stepper import Stepper\n"
            "from rnnkit.training import resolve_device\nfrom rnnkit.serialization import load_model\n" + call)
    refused(box, code, match)


# ------------------------------------------------------------------ 11. exception contract


def test_damaged_keras_files_give_value_errors(box, tmp_path):
    good = keras_copy(tmp_path, name="good.keras").read_bytes()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(good[: len(good) // 2])
    refused(box, load_keras_code(cut), r"path: .*cut.keras.* (not a .keras \(zip\) archive|cannot be read)")
    crc = tmp_path / "crc.keras"
    data = bytearray(good)
    i = data.find(b"HDF")
    data[i + 200] ^= 0xFF
    crc.write_bytes(bytes(data))
    refused(box, load_keras_code(crc), r"path: .*crc.keras.*(BadZipFile|CRC|HDF5)")

    def dataset_for_group(f):
        del f["layers/dense/vars"]
        f["layers/dense/vars"] = np.zeros(3, np.float32)

    path = h5_with(tmp_path, "shape.weights.h5", dataset_for_group)
    refused(box, load_keras_code(path, SIMPLE_RNN), r"weights: 'layers/dense/vars' is a Dataset; expected a group")
    refused(box, load_keras_code(tmp_path / "missing.keras"), r"missing.keras.*FileNotFoundError")


@pytest.mark.parametrize("change, match", [
    (lambda t: t.pop("seed"), r"task section lacks \['seed'\]"),
    (lambda t: t["settings"].pop("lr"), r"task section lacks \['lr'\]"),
    (lambda t: t["settings"].update(epochs="ten"), r"task.settings.epochs should be a positive integer, got 'ten'"),
    (lambda t: t["settings"].update(lr=float("inf")), r"task.settings.lr should be a positive number"),
])
def test_hand_edited_task_sections_are_one_line_errors(box, tmp_path, change, match):
    run = small_run(tmp_path / "run")
    task = {"name": "hello", "data": None, "seed": 0, "info": {},
            "settings": {"cell": "gru", "units": 3, "layers": 1, "bidirectional": False, "dropout": 0.0, "epochs": 2,
                         "batch_size": 4, "lr": 0.01, "optimizer": "adam", "clipnorm": None}}
    change(task)
    edit_json(run / "config.json", lambda c: c.update(task=task))
    code = ("import contextlib, io\nfrom rnnkit import cli\nerr = io.StringIO()\n"
            f"with contextlib.redirect_stderr(err):\n    code = cli.main(['evaluate', {str(run)!r}])\n"
            "result = (code, err.getvalue())")
    out = box.run(code)
    assert out.raised is None, str(out)
    code, err = eval(out.result)
    assert code == 2 and "Traceback" not in err, err
    assert __import__("re").search(match, err), err


@pytest.mark.parametrize("argv, match", [
    (["train", "hello", "--device", "meta", "--epochs", "1"], r"device: expected .* got 'meta'"),
    (["train", "hello", "--units", "1000000000"], r"--units: expected a positive integer up to 8192"),
])
def test_cli_arguments_are_one_line_errors(box, tmp_path, argv, match):
    argv = [*argv, "--out", str(tmp_path / "out")]
    code = ("import contextlib, io\nfrom rnnkit import cli\nerr = io.StringIO()\n"
            "with contextlib.redirect_stderr(err):\n"
            f"    try:\n        code = cli.main({argv!r})\n    except SystemExit as e:\n        code = e.code\n"
            "result = (code, err.getvalue())")
    out = box.run(code)
    assert out.raised is None, str(out)
    code, err = eval(out.result)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert __import__("re").search(match, lines[0]), lines[0]


# ------------------------------------------------------------------ 12. concurrent use


def hold_lock(folder) -> int:
    """A forked process that holds ``folder``'s writer lock until it is killed; its pid."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child only takes a lock and sleeps: no torch work after the fork
        try:
            os.close(r)
            with files.writer_lock(folder):
                os.write(w, b"held")
                time.sleep(60)
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 4) == b"held"
    os.close(r)
    return pid


def test_a_second_writer_is_refused_naming_the_holder(box, tmp_path):
    run = small_run(tmp_path / "run")
    holder = hold_lock(run)
    try:
        code = ("import rnnkit as rk\nfrom rnnkit import serialization\n"
                f"serialization.save_model(rk.Sequential([rk.Dense(2, input_size=3)]), {str(run)!r})")
        refused(box, code, rf"run directory: .*run is being written by process {holder} on .*, since .*the lock is")
        out = box.run(load_checkpoint_code(run) + "\nresult = 'read'")  # readers take no lock
        assert out.raised is None, str(out)
    finally:
        os.kill(holder, signal.SIGKILL)
        os.waitpid(holder, 0)
    # Killed while holding it: the next writer takes the lock over, saying whose it was.
    assert (run / files.LOCK).exists()
    code = ("import rnnkit as rk\nfrom rnnkit import serialization\n"
            f"serialization.save_model(rk.Sequential([rk.Dense(2, input_size=3)]), {str(run)!r})\nresult = 'saved'")
    out = box.run(code)
    assert out.raised is None and out.result == "'saved'", str(out)
    assert any(f"left by process {holder}" in w and "which has ended" in w for w in out.warnings), out.warnings
    assert not (run / files.LOCK).exists()


SAVER = """
import sys, torch
from rnnkit import checkpoint, Sequential, LSTM, Dense
torch.manual_seed(0)
model = Sequential([LSTM(32, input_shape=(4, 8)), Dense(16)])
model.compile("adam", "mse")
for epoch in range(1, 10**9):
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(epoch)
    checkpoint.save_checkpoint(sys.argv[1], model, epoch, {"loss": [float(e) for e in range(epoch)]})
    if epoch == 1:
        print("saved", flush=True)
"""

READER = """
import time
from rnnkit.checkpoint import load_checkpoint
epochs = []
end = time.monotonic() + 15
while (len(epochs) < 20 or len(set(epochs)) < 3) and time.monotonic() < end:
    model, epoch, history, _ = load_checkpoint(FOLDER)
    assert history["loss"] == [float(e) for e in range(epoch)], (epoch, history)
    assert all(bool((p == epoch).all()) for p in model.parameters()), epoch
    epochs.append(epoch)
result = (len(epochs), len(set(epochs)))
"""


def test_a_commit_during_a_read_makes_the_reader_read_again(tmp_path, monkeypatch):
    # Deterministic: a writer commits epoch 2 right after the reader took model.safetensors of epoch 1.
    torch.manual_seed(0)
    model = rk.Sequential([rk.GRU(3, input_shape=(4, 2)), rk.Dense(2)])
    model.compile("adam", "mse")
    checkpoint.save_checkpoint(tmp_path, model, 1, {"loss": [1.0]})
    real = files._read_member
    seen = []

    def read_then_commit(folder, name, entry, limits, limit_name):
        data = real(folder, name, entry, limits, limit_name)
        seen.append(name)
        if len(seen) == 2:
            checkpoint.save_checkpoint(tmp_path, model, 2, {"loss": [1.0, 0.5]})
        return data

    monkeypatch.setattr(files, "_read_member", read_then_commit)
    _, epoch, history, _ = checkpoint.load_checkpoint(tmp_path)
    assert epoch == 2 and history == {"loss": [1.0, 0.5]} and len(seen) == 2 * len(checkpoint.CHECKPOINT_FILES)


@pytest.mark.slow
def test_readers_during_training_get_the_last_committed_epoch(box, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    saver = subprocess.Popen([sys.executable, "-c", SAVER, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert saver.stdout.readline().strip() == "saved"
        start = time.monotonic()
        out = box.run(READER.replace("FOLDER", repr(str(run))))
        assert out.raised is None, str(out)
        loads, distinct = eval(out.result)
        assert loads >= 20 and distinct >= 3, (loads, distinct, time.monotonic() - start)
    finally:
        saver.kill()
        saver.wait()
