"""Fuzzing the loaders: mutated run directories give a clean ValueError, or a load that is correct and usable.

Starts from a real training checkpoint (model, optimizer, RNG state, history) and changes one thing:
bytes of a file (flipped, cut, added, removed), or one value or key of a JSON document (config.json,
optimizer.json, trainer_state.json, history.json and the JSON headers inside the safetensors files).
Keras-made functional ``.keras`` files with masks get the same JSON mutations of their config.json.
"""

import copy
import json
import math
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import rnnkit as rk
from rnnkit import checkpoint, serialization
from rnnkit.layers import LAYERS

SAFETENSORS = ["model.safetensors", "optimizer.safetensors", "trainer_state.safetensors"]
JSONS = ["config.json", "optimizer.json", "trainer_state.json", "history.json"]

x_data = np.random.RandomState(0).randn(6, 4, 2).astype(np.float32)
y_data = np.arange(6) % 2


def pristine() -> dict[str, bytes]:
    torch.manual_seed(0)
    model = rk.Sequential([rk.Bidirectional(rk.GRU(3, return_sequences=True, dropout=0.2), input_shape=(4, 2)),
                           rk.LSTM(3), rk.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"], clipnorm=1.0)
    history = model.fit(x_data, y_data, batch_size=3, epochs=1, verbose=0)
    with tempfile.TemporaryDirectory() as d:
        checkpoint.save_checkpoint(d, model, 1, history.history, task={"name": "fuzz"})
        return {p.name: p.read_bytes() for p in Path(d).iterdir()}


FILES = pristine()

# ------------------------------------------------------------------ mutations

json_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-3, 70), st.sampled_from([0, 10**6, 2**31, 2**63 - 1, -(2**63), 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(sorted(LAYERS) + ["os.system", "__import__", "Adam", "SGD", "mse", "relu", "F32", "I64",
                                      "MT19937", "rnnkit-run"]),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                  st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=6)


def paths(node, prefix=()):
    """Every place in a JSON tree: (path to the container, key or index)."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for k, v in items:
        out.append((prefix, k))
        out.extend(paths(v, (*prefix, k)))
    return out


@st.composite
def json_mutation(draw, doc):
    doc = copy.deepcopy(doc)
    places = paths(doc)
    if not places:
        return draw(json_values)
    where, key = draw(st.sampled_from(places))
    parent = doc
    for k in where:
        parent = parent[k]
    op = draw(st.sampled_from(["replace", "replace", "delete", "rename", "insert"]))
    if op == "replace":
        parent[key] = draw(json_values)
    elif op == "delete":
        del parent[key]
    elif op == "rename" and isinstance(parent, dict):
        parent[draw(st.text(max_size=6) | st.sampled_from(["units", "layers", "weight", "state.0.step"]))] = parent.pop(key)
    elif isinstance(parent, dict):
        parent[draw(st.text(max_size=6))] = draw(json_values)
    else:
        parent.insert(key, draw(json_values))
    return doc


def header(data: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def with_header(doc: dict, body: bytes) -> bytes:
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + body


@st.composite
def mutation(draw):
    """``(description, file name, new bytes or None for a deleted file)``."""
    kind = draw(st.sampled_from(["bytes", "json", "header", "delete"]))
    if kind == "delete":
        name = draw(st.sampled_from(sorted(FILES)))
        return f"delete:{name}", name, None
    if kind == "json":
        name = draw(st.sampled_from(JSONS))
        return f"json:{name}", name, json.dumps(draw(json_mutation(json.loads(FILES[name]))), allow_nan=True).encode()
    if kind == "header":
        name = draw(st.sampled_from(SAFETENSORS))
        doc, body = header(FILES[name])
        return f"header:{name}", name, with_header(draw(json_mutation(doc)), body)
    name = draw(st.sampled_from(sorted(FILES)))
    data = bytearray(FILES[name])
    op = draw(st.sampled_from(["flip", "flip", "truncate", "insert", "remove", "prefix"]))
    head = min(len(data), 8 + int.from_bytes(bytes(data[:8]), "little")) if name in SAFETENSORS else len(data)
    if op == "flip":  # mostly in the header, where the structure is
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, head - 1) | st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    elif op == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif op == "insert":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=16))
    elif op == "remove":
        i = draw(st.integers(0, len(data) - 1))
        del data[i:i + draw(st.integers(1, 16))]
    else:  # the safetensors length prefix, or the start of a JSON file
        data[:8] = draw(st.integers(0, 2**64 - 1)).to_bytes(8, "little")
    return f"bytes:{name}:{op}", name, bytes(data)


def write_run(folder, name=None, data=None):
    """The pristine files into ``folder``, with ``name`` replaced by ``data`` (or left out when None)."""
    for n, content in FILES.items():
        if n != name or data is not None:
            Path(folder, n).write_bytes(data if n == name else content)


# ------------------------------------------------------------------ the test


def check_correct(folder: Path, model, epoch, history):
    """A load that succeeded must hold what the files hold, and train."""
    on_disk = safetensors.torch.load(Path(folder, "model.safetensors").read_bytes())
    state = model.state_dict()
    assert on_disk.keys() == state.keys() and all(torch.equal(on_disk[k], state[k]) for k in state)
    assert isinstance(epoch, int) and epoch >= 0
    assert isinstance(history, dict) and all(isinstance(v, list) for v in history.values())
    out = model.predict(x_data)
    assert out.shape[0] == len(x_data)
    model.fit(x_data, y_data, batch_size=3, epochs=epoch + 1, initial_epoch=epoch, verbose=0)


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutation())
def test_mutated_run_directories_fail_cleanly_or_load_correctly(case):
    what, name, data = case
    rng_state = torch.get_rng_state()
    with tempfile.TemporaryDirectory() as d:
        write_run(d, name, data)
        try:
            model, epoch, history, _ = checkpoint.load_checkpoint(d)
        except ValueError as e:
            assert str(e), what
            event(f"ValueError from {str(e).split(':')[0]}")
        else:
            check_correct(Path(d), model, epoch, history)
            event("loaded and trained")
        try:
            serialization.load_model(d)
        except ValueError as e:
            assert str(e), what
    torch.set_rng_state(rng_state)


def test_the_pristine_checkpoint_loads_and_trains():
    with tempfile.TemporaryDirectory() as d:
        write_run(d)
        model, epoch, history, config = checkpoint.load_checkpoint(d)
        assert epoch == 1 and config["task"] == {"name": "fuzz"} and math.isfinite(history["loss"][0])
        check_correct(Path(d), model, epoch, history)


@pytest.mark.parametrize("name, change, match", [
    ("config.json", lambda c: c["model"]["layers"][1].update(class_name="Lambda"), "unknown layer class 'Lambda'"),
    ("config.json", lambda c: c["model"]["layers"][1]["config"].update(units=10**6),
     "units=1000000.*larger than any tensor"),
    ("config.json", lambda c: c["model"].update(input_shape=[10**9, 2]), "input_shape"),
    ("config.json", lambda c: c["compile"].update(loss="mse"), "compile.*loss"),
    ("optimizer.json", lambda c: c["param_groups"][0].update(lr="fast"), "lr"),
    ("trainer_state.json", lambda c: c["numpy"].update(pos=10**9), "numpy"),
    ("history.json", lambda c: c.update(loss="low"), "history.json"),
])
def test_named_problems(name, change, match):
    with tempfile.TemporaryDirectory() as d:
        write_run(d)
        doc = json.loads(FILES[name])
        change(doc)
        Path(d, name).write_text(json.dumps(doc))
        with pytest.raises(ValueError, match=match):
            checkpoint.load_checkpoint(d)


@pytest.mark.parametrize("change, match", [
    (lambda t: t.update({"state.0.exp_avg": torch.tensor(0.0)}), "Adam state does not fit.*shape"),
    (lambda t: t.pop("state.0.step"), "Adam state does not fit.*KeyError: 'step'"),
])
def test_an_optimizer_state_that_would_break_training_is_refused_at_load(change, match):
    with tempfile.TemporaryDirectory() as d:
        write_run(d)
        tensors = safetensors.torch.load(FILES["optimizer.safetensors"])
        change(tensors)
        Path(d, "optimizer.safetensors").write_bytes(
            safetensors.torch.save(tensors, metadata=header(FILES["optimizer.safetensors"])[0]["__metadata__"]))
        with pytest.raises(ValueError, match=match):
            checkpoint.load_checkpoint(d)


def test_a_model_without_weights_still_loads():
    with tempfile.TemporaryDirectory() as d:
        serialization.save_model(rk.Sequential([rk.Masking(input_shape=(5, 3))]), d)
        x = np.ones((2, 5, 3), dtype=np.float32)
        np.testing.assert_array_equal(serialization.load_model(d).predict(x), x)


def test_nothing_is_unpickled(monkeypatch):
    import pickle

    def refuse(*a, **k):
        raise AssertionError("pickle used while loading")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    with tempfile.TemporaryDirectory() as d:
        write_run(d)
        checkpoint.load_checkpoint(d)


# ------------------------------------------------------- Keras functional files

KERAS_FUNCTIONAL = Path(__file__).parent / "data" / "keras_functional"
MASKED_KERAS_FILES = ["masking_bidirectional", "merged_masks", "concat_partly_masked", "masked_add", "bidirectional_pair"]


def _keras_members(name):
    with zipfile.ZipFile(KERAS_FUNCTIONAL / f"{name}.keras") as z:
        return {info.filename: z.read(info) for info in z.infolist()}


KERAS_MEMBERS = {name: _keras_members(name) for name in MASKED_KERAS_FILES}


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(MASKED_KERAS_FILES), st.data())
def test_mutated_keras_functional_configs_fail_cleanly_or_run(name, data):
    """One value of a Keras-made config.json changed (its mask ops among them): a ValueError, or a model that runs."""
    pytest.importorskip("h5py")
    members = dict(KERAS_MEMBERS[name])
    members["config.json"] = json.dumps(data.draw(json_mutation(json.loads(members["config.json"]))),
                                        allow_nan=True).encode()
    inputs = np.load(KERAS_FUNCTIONAL / f"{name}.npz", allow_pickle=False)
    xs = [inputs[k] for k in sorted(inputs.files) if k.startswith("x_")]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.keras"
        with zipfile.ZipFile(path, "w") as z:
            for member, blob in members.items():
                z.writestr(member, blob)
        try:
            model = rk.load_model(path)
        except ValueError as e:
            assert str(e)
            event(f"ValueError from {str(e).split(':')[0][:60]}")
            return
    try:
        model.predict(xs if len(xs) > 1 else xs[0])
        event("loaded and ran")
    except ValueError as e:  # a changed input shape that the fixture's inputs no longer fit
        assert "input" in str(e), str(e)
        event("loaded; the fixture's inputs refused")
