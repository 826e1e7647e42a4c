"""export_onnx: the exported graph, run by onnxruntime, computes what rnnkit computes.

Each model is exported from one example input and then checked on random
inputs of other batch sizes and lengths (dynamic axes), max abs error <= 1e-5.
Both GRU variants are checked: an exporter once wrote the wrong
linear_before_reset for GRU (PyTorch issue 189225).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit as rk

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'rnnkit[interop]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'rnnkit[interop]')")

from rnnkit.interop import export_onnx  # noqa: E402 - after the skips

TOL = 1e-5
SHAPES = [(1, 1), (3, 4), (5, 13)]  # (batch, time): none is the example's (2, 6)


def randomised(model, scale=0.5):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if not torch.nn.parameter.is_lazy(p):  # an unbuilt layer's weights come at its first call
                p.copy_(torch.randn_like(p) * scale)
    return model


def export_and_compare(model, tmp_path, features=3, vocabulary=None):
    """Export from a (2, 6) example, then compare onnxruntime and rnnkit on other shapes."""
    def sample(batch, time):
        if vocabulary is not None:
            return torch.randint(0, vocabulary, (batch, time))
        return torch.randn(batch, time, features)

    torch.manual_seed(1)
    path = tmp_path / "model.onnx"
    export_onnx(model, path, sample(2, 6), check=False)  # the test does its own check
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model.eval()
    for batch, time in SHAPES:
        x = sample(batch, time)
        with torch.no_grad():
            want = model(x).numpy()
        (got,) = session.run(["output"], {"input": x.numpy()})
        assert got.shape == want.shape
        err = np.abs(got - want).max()
        assert err <= TOL, f"batch {batch}, time {time}: max abs error {err:.3g}"
    return onnx.load(str(path))


def seq(*layers):
    return rk.Sequential(list(layers))


CASES = {
    "simple_rnn_tanh": lambda: rk.SimpleRNN(4, input_size=3),
    "simple_rnn_relu_seq": lambda: rk.SimpleRNN(4, activation="relu", return_sequences=True, input_size=3),
    "gru_reset_after": lambda: rk.GRU(4, return_sequences=True, input_size=3),
    "gru_reset_before": lambda: rk.GRU(4, reset_after=False, return_sequences=True, input_size=3),
    "gru_reset_after_last": lambda: rk.GRU(4, input_size=3),
    "gru_reset_before_last": lambda: rk.GRU(4, reset_after=False, input_size=3),
    "gru_no_bias": lambda: rk.GRU(4, use_bias=False, return_sequences=True, input_size=3),
    "lstm_seq": lambda: rk.LSTM(4, return_sequences=True, input_size=3),
    "lstm_last": lambda: rk.LSTM(4, input_size=3),
    "lstm_no_bias": lambda: rk.LSTM(4, use_bias=False, input_size=3),
    "go_backwards_seq": lambda: rk.LSTM(4, go_backwards=True, return_sequences=True, input_size=3),
    "go_backwards_last": lambda: rk.GRU(4, go_backwards=True, input_size=3),
    "lstm_hard_sigmoid": lambda: rk.LSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True, input_size=3),
    "gru_hard_sigmoid": lambda: rk.GRU(4, recurrent_activation="hard_sigmoid", reset_after=False, input_size=3),
    "lstm_linear_elu": lambda: rk.LSTM(4, activation="linear", recurrent_activation="elu", input_size=3),
    "rnn_activations": lambda: seq(
        rk.SimpleRNN(4, activation="softsign", return_sequences=True, input_size=3),
        rk.SimpleRNN(4, activation="elu", return_sequences=True),
        rk.SimpleRNN(4, activation="softplus", return_sequences=True),
        rk.SimpleRNN(4, activation="linear"),
    ),
    "stack_dense_head": lambda: seq(
        rk.LSTM(5, return_sequences=True, input_size=3), rk.Dropout(0.3), rk.GRU(4), rk.Dense(2, activation="sigmoid")
    ),
    "time_distributed": lambda: seq(
        rk.GRU(5, reset_after=False, return_sequences=True, input_size=3), rk.TimeDistributed(rk.Dense(2))
    ),
    "bidirectional_seq": lambda: seq(
        rk.Bidirectional(rk.LSTM(4, return_sequences=True, input_size=3)), rk.TimeDistributed(rk.Dense(2))
    ),
    "bidirectional_last": lambda: seq(rk.Bidirectional(rk.GRU(4, input_size=3)), rk.Dense(1)),
    "bidirectional_modes": lambda: seq(
        rk.Bidirectional(rk.SimpleRNN(4, return_sequences=True, input_size=3), merge_mode="sum"),
        rk.Bidirectional(rk.GRU(4, reset_after=False, return_sequences=True), merge_mode="mul"),
        rk.Bidirectional(rk.LSTM(3), merge_mode="ave"),
    ),
    "nested_sequential": lambda: seq(seq(rk.LSTM(4, return_sequences=True, input_size=3), rk.Dense(3)), rk.GRU(2)),
    "bidirectional_given_backward": lambda: rk.Bidirectional(
        rk.GRU(4, return_sequences=True, input_size=3),
        backward_layer=rk.GRU(4, reset_after=False, return_sequences=True, go_backwards=True, input_size=3),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_onnxruntime_matches_rnnkit(case, tmp_path):
    # A linear LSTM's cell state is not squashed: smaller weights keep values near 1 for a 1e-5 absolute test.
    export_and_compare(randomised(CASES[case](), scale=0.2 if "linear" in case else 0.5), tmp_path)


def test_embedding_model(tmp_path):
    model = randomised(seq(rk.Embedding(11, 4), rk.LSTM(5, return_sequences=True), rk.GRU(3), rk.Dense(2)))
    proto = export_and_compare(model, tmp_path, vocabulary=11)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64


@pytest.mark.parametrize(
    "activation", ["tanh", "sigmoid", "relu", "linear", "softmax", "elu", "selu", "softsign", "softplus",
                   "hard_sigmoid", "swish", "relu6", "exponential", "gelu"],
)
def test_dense_activations(activation, tmp_path):
    model = randomised(seq(rk.GRU(4, return_sequences=True, input_size=3), rk.Dense(3, activation=activation)))
    export_and_compare(model, tmp_path)


def test_the_graph_has_dynamic_axes_and_native_recurrent_ops(tmp_path):
    model = randomised(seq(rk.Bidirectional(rk.LSTM(4, return_sequences=True, input_size=3)), rk.GRU(2)))
    proto = export_and_compare(model, tmp_path)
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*proto.graph.input, *proto.graph.output)]
    assert dims == [["batch", "time", 3], ["batch", 2]]
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("LSTM") == 2 and ops.count("GRU") == 1 and "Loop" not in ops and "Scan" not in ops
    gru = next(n for n in proto.graph.node if n.op_type == "GRU")
    assert onnx.helper.get_attribute_value(next(a for a in gru.attribute if a.name == "linear_before_reset")) == 1


@pytest.mark.parametrize("name", ["simple_rnn", "gru_reset_after", "gru_reset_before", "nested_sequential"])
def test_keras_file_to_onnx_keeps_keras_numbers(name, tmp_path):
    pytest.importorskip("h5py", reason="h5py is not installed (pip install 'rnnkit[interop]')")
    from rnnkit.interop import load_keras

    data = Path(__file__).parent / "data" / "keras"
    model = load_keras(data / f"{name}.keras")
    with np.load(data / f"{name}.npz", allow_pickle=False) as d:
        x, y = d["x"], d["y"]
    export_onnx(model, tmp_path / "m.onnx", torch.from_numpy(x))
    (got,) = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    assert np.abs(got - y).max() <= TOL


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: seq(rk.Masking(input_shape=(6, 3)), rk.LSTM(4)), "masks are not exported"),
        (lambda: seq(rk.Embedding(5, 3, mask_zero=True), rk.LSTM(4)), "masks are not exported"),
        (lambda: rk.LSTM(4, stateful=True, input_size=3), "stateful"),
        (lambda: rk.LSTM(4, return_state=True, input_size=3), "return_state=True"),
        (lambda: rk.Bidirectional(rk.LSTM(4, input_size=3), merge_mode=None), "merge_mode=None"),
        (lambda: rk.RNN([rk.LSTMCell(4), rk.LSTMCell(4)], input_shape=(6, 3)), "StackedRNNCells"),
        (lambda: rk.SimpleRNN(4, activation="selu", input_size=3), "activation 'selu'"),
        (lambda: rk.LSTM(4, activation="linear", recurrent_activation="hard_sigmoid", input_size=3), "mixes hard_sigmoid"),
        (lambda: rk.GRU(4, activation="elu", recurrent_activation="hard_sigmoid", input_size=3), "mixes hard_sigmoid"),
        (lambda: seq(rk.LSTM(4, return_sequences=True, input_size=3), torch.nn.Linear(4, 2)), "Linear is not exported"),
        (lambda: rk.LSTM(4, input_size=3).double(), "torch.float64 weights"),
    ],
)
def test_unsupported_configurations(make, match, tmp_path):
    model = make()
    ids = isinstance(model, rk.Sequential) and isinstance(model.layers[0], rk.Embedding)
    x = torch.randint(0, 5, (2, 6)) if ids else torch.randn(2, 6, 3)
    with pytest.raises(ValueError, match=match):
        export_onnx(model, tmp_path / "m.onnx", x)
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_wrong_graph_is_never_written(tmp_path, monkeypatch):
    # Break the gate reordering: the built-in onnxruntime check must catch it and leave the old file alone.
    from rnnkit.interop import onnx_export

    monkeypatch.setattr(onnx_export, "_LSTM_ORDER", [0, 1, 2, 3])
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous model")
    with pytest.raises(RuntimeError, match="differs from rnnkit's"):
        export_onnx(randomised(rk.LSTM(4, input_size=3)), path, torch.randn(2, 6, 3))
    assert path.read_bytes() == b"previous model" and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_lazy_model_is_built_by_the_example(tmp_path):
    model = seq(rk.GRU(4, return_sequences=True), rk.Dense(2))
    export_onnx(model, tmp_path / "m.onnx", torch.randn(2, 6, 3))
    assert model.layers[0].input_size == 3


def test_clear_error_without_onnx(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'rnnkit\[interop\]'"):
        export_onnx(rk.LSTM(4, input_size=3), tmp_path / "m.onnx", torch.randn(2, 6, 3))
