"""Keras's dtype policies (issue 14): dtype="mixed_bfloat16" on layers, a global policy, and what carries them.

Tolerance: a mixed_bfloat16 layer multiplies in bfloat16 (8 significant bits,
relative rounding 2^-9) with float32 state; against the same weights in
float32 its outputs stay within MIXED_TOL for unit-scale inputs over a few
steps, as tests/test_autocast.py bounds the autocast kernels.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

import rnnkit as rk
from rnnkit import mixed_precision
from rnnkit.mixed_precision import DTypePolicy

MIXED_TOL = dict(rtol=3e-2, atol=3e-2)
MIXED = "mixed_bfloat16"
KERAS_POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": MIXED}, "registered_name": None}


@pytest.fixture(autouse=True)
def _no_global_policy():
    """Every test starts and ends without a global policy (it is process-wide state)."""
    mixed_precision.set_global_policy(None)
    yield
    mixed_precision.set_global_policy(None)


def _model(dtype, head_dtype):
    return rk.Sequential([
        rk.LSTM(16, return_sequences=True, dtype=dtype, input_shape=(12, 5)),
        rk.GRU(16, dtype=dtype),
        rk.Dense(4, activation="softmax", dtype=head_dtype),
    ])


# ----------------------------------------------------------------- policies
def test_policy_names_and_dtypes():
    p = DTypePolicy(MIXED)
    assert (p.name, p.variable_dtype, p.compute_dtype) == (MIXED, "float32", "bfloat16")
    assert (DTypePolicy("float64").variable_dtype, DTypePolicy("float64").compute_dtype) == ("float64", "float64")
    assert DTypePolicy("mixed_float16").compute_dtype == "float16"
    assert DTypePolicy().name == "float32" and repr(p) == '<DTypePolicy "mixed_bfloat16">'
    assert DTypePolicy.from_config(p.get_config()) == p and hash(p) == hash(DTypePolicy(MIXED))


def test_global_policy_is_read_when_a_layer_is_made():
    before = rk.Dense(3)
    assert mixed_precision.global_policy() == DTypePolicy("float32")
    mixed_precision.set_global_policy(MIXED)
    assert mixed_precision.global_policy() == DTypePolicy(MIXED)
    during, explicit = rk.LSTM(3), rk.Dense(3, dtype="float32")
    mixed_precision.set_global_policy(DTypePolicy("float32"))
    after = rk.Dense(3)
    assert before.dtype_policy.name == "float32" and during.dtype_policy.name == MIXED
    assert during.cell.dtype_policy.name == MIXED  # the cell gets the layer's policy, as in Keras
    assert explicit.dtype_policy.name == "float32" and after.dtype_policy.name == "float32"
    assert "dtype" in explicit.get_config() and "dtype" not in after.get_config()  # "float32" globally: the default
    x = torch.randn(2, 4)
    assert before(x).dtype == torch.float32 and explicit(x).dtype == torch.float32
    assert during(torch.randn(2, 3, 4)).dtype == torch.bfloat16


def test_models_take_no_global_policy():
    """A Sequential's outputs are its last layer's: a float32 head stays float32 under a global mixed policy."""
    mixed_precision.set_global_policy(MIXED)
    model = rk.Sequential([rk.GRU(8), rk.Dense(3, activation="softmax", dtype="float32")])
    assert model(torch.randn(2, 5, 4)).dtype == torch.float32
    assert model.layers[0].dtype_policy.name == MIXED


@pytest.mark.parametrize("make, arg, error, match", [
    (lambda: rk.Dense(2, dtype="float16x"), "dtype", ValueError, r"dtype: expected a dtype policy name among .*'float16x'"),
    (lambda: rk.LSTM(2, dtype="bfloat16"), "dtype", ValueError, r"dtype: .*'mixed_bfloat16'.*got 'bfloat16'"),
    (lambda: rk.Dense(2, dtype=3), "dtype", TypeError, r"dtype: expected a dtype policy name or a DTypePolicy, got int"),
    (lambda: rk.Dense(2, dtype=torch.int32), "dtype", ValueError, r"dtype: expected torch.float32 or torch.float64"),
    (lambda: rk.Dense(2, dtype={"class_name": "Policy", "config": {}}), "dtype", ValueError, r"dtype: expected a dtype policy config"),
    (lambda: mixed_precision.set_global_policy("mixed"), "policy", ValueError, r"policy: expected a dtype policy name"),
    (lambda: DTypePolicy("half"), "name", ValueError, r"name: expected a dtype policy name"),
])
def test_bad_policies_name_the_argument(make, arg, error, match):
    with pytest.raises(error, match=match):
        make()
    assert mixed_precision.global_policy().name == "float32"  # a refused global policy changes nothing


def test_mixed_float16_is_refused_on_the_cpu():
    layer = rk.Dense(2, dtype="mixed_float16")
    with pytest.raises(ValueError, match=r"dtype: policy 'mixed_float16' computes in float16, .*CUDA.*'mixed_bfloat16'"):
        layer(torch.randn(3, 4))


# ------------------------------------------------------------ weights, dtypes
def test_weights_stay_float32_under_a_mixed_policy():
    mixed_precision.set_global_policy(MIXED)
    model = rk.Sequential([rk.Embedding(10, 4), rk.Bidirectional(rk.LSTM(6)), rk.Dense(3)])
    given = rk.GRU(5, dtype=MIXED, input_size=4)
    model(torch.randint(0, 10, (2, 7)))
    for p in [*model.parameters(), *given.parameters()]:
        assert p.dtype == torch.float32
    assert given.variable_dtype == "float32" and given.compute_dtype == "bfloat16"


def test_float64_policy_makes_float64_weights_and_outputs():
    eager, lazy = rk.Dense(3, dtype="float64", input_size=4), rk.LSTM(3, dtype=torch.float64)
    emb = rk.Embedding(5, 2, dtype="float64")
    assert eager.kernel.dtype == emb.embeddings.dtype == torch.float64
    assert eager(torch.randn(2, 4)).dtype == torch.float64  # float32 inputs are cast, as Keras does
    assert lazy(torch.randn(2, 3, 4)).dtype == torch.float64 and lazy.cell.kernel.dtype == torch.float64
    assert lazy.dtype_policy.name == "float64"


def test_a_layer_without_a_policy_keeps_the_dtype_of_its_first_input():
    layer = rk.GRU(3)
    assert layer.dtype_policy.name == "float32"
    assert layer(torch.randn(2, 3, 4, dtype=torch.float64)).dtype == torch.float64
    assert layer.dtype_policy.name == "float64" and "dtype" not in layer.get_config()


LAYERS = {
    "SimpleRNN": (lambda d: rk.SimpleRNN(4, dtype=d), (2, 5, 3)),
    "GRU": (lambda d: rk.GRU(4, return_sequences=True, dtype=d), (2, 5, 3)),
    "LSTM": (lambda d: rk.LSTM(4, dtype=d), (2, 5, 3)),
    "RNN": (lambda d: rk.RNN(rk.LSTMCell(4), dtype=d), (2, 5, 3)),
    "Bidirectional": (lambda d: rk.Bidirectional(rk.GRU(4), dtype=d), (2, 5, 3)),
    "TimeDistributed": (lambda d: rk.TimeDistributed(rk.Dense(4), dtype=d), (2, 5, 3)),
    "Dense": (lambda d: rk.Dense(4, activation="relu", dtype=d), (2, 3)),
    "Dropout": (lambda d: rk.Dropout(0.5, dtype=d), (2, 3)),
    "Masking": (lambda d: rk.Masking(dtype=d), (2, 5, 3)),
    "Flatten": (lambda d: rk.Flatten(dtype=d), (2, 5, 3)),
    "RepeatVector": (lambda d: rk.RepeatVector(2, dtype=d), (2, 3)),
    "Rescaling": (lambda d: rk.Rescaling(0.5, dtype=d), (2, 3)),
    "Conv2D": (lambda d: rk.Conv2D(2, 3, dtype=d), (2, 5, 5, 1)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_mixed_layers_return_bfloat16_and_float32_layers_float32(name):
    make, shape = LAYERS[name]
    x = torch.randn(*shape)
    assert make(MIXED)(x).dtype == torch.bfloat16
    assert make("float32")(x.to(torch.bfloat16)).dtype == torch.float32  # a float32 layer after a mixed one


def test_embedding_merges_and_states_under_a_mixed_policy():
    assert rk.Embedding(6, 3, dtype=MIXED)(torch.randint(0, 6, (2, 4))).dtype == torch.bfloat16
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    for merge in (rk.Add(dtype=MIXED), rk.Concatenate(dtype=MIXED), rk.Dot(axes=1, dtype=MIXED)):
        assert merge([a, b]).dtype == torch.bfloat16
    layer = rk.LSTM(4, return_state=True, dtype=MIXED)
    x = torch.randn(2, 5, 3)
    out, h, c = layer(x)
    assert out.dtype == h.dtype == c.dtype == torch.bfloat16  # Keras returns the states in the compute dtype too
    again = layer(x, initial_state=[h, c])[0]  # fed back: cast to float32 (exactly) on the way in
    assert again.dtype == torch.bfloat16


# ------------------------------------------------------------------ numbers
def test_a_mixed_model_matches_float32_within_bfloat16_rounding():
    torch.manual_seed(0)
    f32, mixed = _model(None, None), _model(MIXED, "float32")
    mixed.set_weights(f32.get_weights())
    x = torch.randn(8, 12, 5)
    expected, got = f32(x), mixed(x)
    assert got.dtype == torch.float32 and mixed.layers[0](x).dtype == torch.bfloat16
    torch.testing.assert_close(got, expected, **MIXED_TOL)
    assert (got - expected).abs().max() > 1e-6  # the products really ran in bfloat16
    loss = torch.nn.functional.nll_loss(got.log(), torch.arange(8) % 4)
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in mixed.parameters())


def test_the_reference_loop_under_a_policy_keeps_a_float32_state():
    """A cell run by its RNN (same policy) is not cast per step, so the loop matches the fused kernel."""
    torch.manual_seed(0)
    fused = rk.LSTM(8, return_sequences=True, dtype=MIXED)
    x = torch.randn(4, 30, 3)
    out = fused(x)
    fused.unroll = True
    loop = fused(x)
    assert fused.kernel_used == "reference" and loop.dtype == torch.bfloat16
    torch.testing.assert_close(loop.float(), out.float(), **MIXED_TOL)


def test_fit_computes_the_loss_in_float32_and_predict_returns_float32():
    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 12, 5)).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64)
    f32, mixed = _model(None, None), _model(MIXED, MIXED)  # a bfloat16 head: the loss still runs in float32
    mixed.set_weights(f32.get_weights())
    for m in (f32, mixed):
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    assert mixed(torch.as_tensor(x)).dtype == torch.bfloat16
    loss32, loss_mixed = f32.evaluate(x, y), mixed.evaluate(x, y)
    assert abs(loss32[0] - loss_mixed[0]) < 3e-2
    history = mixed.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    pred = mixed.predict(x[:5])
    assert pred.dtype == np.float32 and pred.shape == (5, 4)


def test_functional_models_follow_the_layers_policies():
    inputs = rk.Input((6, 3))
    hidden = rk.GRU(8, dtype=MIXED)(inputs)
    assert hidden.dtype == torch.bfloat16
    outputs = rk.Dense(2, activation="softmax", dtype="float32")(hidden)
    model = rk.Model(inputs, outputs)
    assert model(torch.randn(4, 6, 3)).dtype == torch.float32


# ----------------------------------------------------------- configs, files
def test_config_carries_the_policy_in_keras_form():
    layer = rk.LSTM(4, dtype=MIXED)
    config = layer.get_config()
    assert config["dtype"] == KERAS_POLICY
    json.dumps(config)
    again = rk.LSTM.from_config(config)
    assert again.dtype_policy == DTypePolicy(MIXED) and again.cell.dtype_policy == DTypePolicy(MIXED)
    dense = rk.Dense(3, dtype=DTypePolicy("float64"))
    assert rk.Dense.from_config(dense.get_config()).dtype_policy.name == "float64"
    mixed_precision.set_global_policy(MIXED)
    made_under_global = rk.Dropout(0.1)
    mixed_precision.set_global_policy(None)
    assert rk.Dropout.from_config(made_under_global.get_config()).dtype_policy.name == MIXED
    assert "dtype" not in rk.Dense(3).get_config()  # no policy, no key: configs without one are unchanged


def test_save_and_load_keep_the_policies(tmp_path):
    torch.manual_seed(0)
    model = _model(MIXED, "float32")
    x = torch.randn(3, 12, 5)
    expected = model(x)
    rk.save_model(model, tmp_path / "run")
    loaded = rk.load_model(tmp_path / "run")
    assert [m.dtype_policy.name for m in loaded.layers] == [MIXED, MIXED, "float32"]
    assert loaded.layers[0](x).dtype == torch.bfloat16
    torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)


def test_keras_file_writes_each_layers_policy(tmp_path):
    pytest.importorskip("h5py")
    model = _model(MIXED, "float32")
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        config = json.loads(z.read("config.json"))
    policies = [spec["config"]["dtype"] for spec in config["config"]["layers"][1:]]
    assert policies == [KERAS_POLICY, KERAS_POLICY, {**KERAS_POLICY, "config": {"name": "float32"}}]


# ------------------------------------------------------------ the digits task
def test_build_model_puts_the_head_in_float32():
    from rnnkit.data import build_model, load_task

    pytest.importorskip("sklearn")
    task = load_task("digits")
    model = build_model(task, "gru", 8, bidirectional=True, dropout=0.1, dtype=MIXED)
    assert [m.dtype_policy.name for m in model.layers] == [MIXED, MIXED, "float32"]
    assert model.layers[0].forward_layer.dtype_policy.name == MIXED
    assert model(torch.as_tensor(task.x_test[:2])).dtype == torch.float32


@pytest.mark.slow
def test_digits_in_mixed_bfloat16_reaches_float32_accuracy(tmp_path):
    """Issue 14: the digits task (its presets, seed 0) in mixed_bfloat16 within 0.5 points of float32."""
    pytest.importorskip("sklearn")
    from rnnkit import runs

    quiet = dict(seed=0, verbose=0, print_fn=lambda *a: None)
    f32 = runs.train("digits", tmp_path / "f32", **quiet)["test"]["accuracy"]
    mixed = runs.train("digits", tmp_path / "mixed", dtype=MIXED, **quiet)["test"]["accuracy"]
    assert f32 > 0.97 and abs(mixed - f32) <= 0.005, (f32, mixed)
    loaded = rk.load_model(tmp_path / "mixed")
    assert loaded.layers[0].dtype_policy.name == MIXED


def test_explain_says_whether_the_cpu_multiplies_bfloat16():
    from rnnkit.kernels import native_available
    from rnnkit.kernels.autocast import bf16_status

    layer = rk.LSTM(4, dtype=MIXED, input_shape=(20, 3))
    layer(torch.randn(2, 20, 3))
    if native_available()[0]:
        assert bf16_status() in rk.explain(layer)


def test_tf1_cells_and_wrappers_take_no_global_policy():
    """Their dtype= is TF1's (the weights' dtype): their configs keep it, and a global policy leaves them alone."""
    mixed_precision.set_global_policy(MIXED)
    cell = rk.v1.BasicLSTMCell(4, dtype=torch.float64)
    stack = rk.MultiRNNCell([rk.v1.GRUCell(3), rk.DropoutWrapper(rk.v1.BasicRNNCell(3))])
    mixed_precision.set_global_policy(None)
    assert cell.get_config()["dtype"] == "float64" and "dtype" not in stack.get_config()
    assert type(cell).from_config(cell.get_config()).get_config() == cell.get_config()
    assert stack(torch.randn(2, 3), stack.get_initial_state(2))[0].dtype == torch.float32


def test_cli_trains_with_a_policy_and_resume_keeps_it(tmp_path, capsys):
    from rnnkit import cli

    run = tmp_path / "run"
    assert cli.main(["train", "hello", "--quick", "--dtype", MIXED, "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["task"]["dtype"] == MIXED
    assert [spec["config"].get("dtype", {}).get("config", {}).get("name") for spec in config["model"]["layers"]] \
        == [MIXED, "float32"]
    assert cli.main(["train", "--resume", str(run), "--dtype", "float32"]) == 2
    assert "--dtype" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse refuses it, listing the choices
        cli.main(["train", "hello", "--dtype", "float8"])
    assert "invalid choice: 'float8'" in capsys.readouterr().err
