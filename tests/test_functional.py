"""The functional API (rk.Input, rk.Model, merge layers) against hand-written torch on the same weights."""

import json
import zipfile

import numpy as np
import pytest
import torch

import rnnkit as rk

F64 = "float64"


def w(layer):
    return [torch.from_numpy(a) for a in layer.get_weights()]


def simple_rnn_by_hand(x, kernel, rec, bias, h=None, lengths=None):
    """Keras's SimpleRNN: h_t = tanh(x_t K + h_{t-1} R + b); with lengths, the last valid step's h."""
    h = torch.zeros(x.shape[0], kernel.shape[1], dtype=x.dtype) if h is None else h
    out = []
    for b in range(x.shape[0]):
        hb = h[b]
        for t in range(x.shape[1] if lengths is None else lengths[b]):
            hb = torch.tanh(x[b, t] @ kernel + hb @ rec + bias)
        out.append(hb)
    return torch.stack(out)


def lstm_by_hand(x, kernel, rec, bias, h=None, c=None):
    """Keras's LSTM (gates i, f, c, o); returns (sequence, h, c)."""
    u = rec.shape[0]
    h = torch.zeros(x.shape[0], u, dtype=x.dtype) if h is None else h
    c = torch.zeros(x.shape[0], u, dtype=x.dtype) if c is None else c
    seq = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ rec + bias
        i, f, g, o = torch.sigmoid(z[:, :u]), torch.sigmoid(z[:, u:2 * u]), torch.tanh(z[:, 2 * u:3 * u]), torch.sigmoid(z[:, 3 * u:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        seq.append(h)
    return torch.stack(seq, 1), h, c


# ------------------------------------------------------------------ numbers


def test_two_inputs_match_hand_written_torch():
    torch.manual_seed(0)
    seq_in, side_in = rk.Input((6, 3), dtype=F64), rk.Input((4,), dtype=F64)
    rnn, side, head = rk.SimpleRNN(5), rk.Dense(2, activation="tanh"), rk.Dense(3, activation="softmax")
    out = head(rk.Concatenate()([rnn(seq_in), side(side_in)]))
    model = rk.Model([seq_in, side_in], out)
    assert out.shape == (None, 3) and out.dtype == torch.float64

    x, s = torch.randn(7, 6, 3, dtype=torch.float64), torch.randn(7, 4, dtype=torch.float64)
    (k, r, b), (dk, db), (hk, hb) = w(rnn), w(side), w(head)
    want = torch.softmax(torch.cat([simple_rnn_by_hand(x, k, r, b), torch.tanh(s @ dk + db)], -1) @ hk + hb, -1)
    torch.testing.assert_close(model([x, s]), want, rtol=0, atol=1e-12)
    torch.testing.assert_close(model({seq_in.node.layer.name: x, side_in.node.layer.name: s}), want, rtol=0, atol=1e-12)


def test_initial_state_from_another_layers_return_state():
    torch.manual_seed(1)
    enc_in, dec_in = rk.Input((None, 3), dtype=F64), rk.Input((None, 2), dtype=F64)
    encoder = rk.LSTM(4, return_state=True)
    _, h, c = encoder(enc_in)
    decoder = rk.LSTM(4, return_sequences=True)
    seq = decoder(dec_in, initial_state=[h, c])
    assert (h.shape, seq.shape) == ((None, 4), (None, None, 4))
    model = rk.Model([enc_in, dec_in], seq)

    xe, xd = torch.randn(5, 7, 3, dtype=torch.float64), torch.randn(5, 6, 2, dtype=torch.float64)
    _, he, ce = lstm_by_hand(xe, *w(encoder))
    want, _, _ = lstm_by_hand(xd, *w(decoder), h=he, c=ce)
    torch.testing.assert_close(model([xe, xd]), want, rtol=0, atol=1e-12)


def test_shared_layer_used_twice():
    torch.manual_seed(2)
    a, b = rk.Input((5, 3), dtype=F64), rk.Input((5, 3), dtype=F64)
    shared = rk.SimpleRNN(4)
    merged = rk.Add()([shared(a), shared(b)])
    model = rk.Model([a, b], rk.Dense(1)(merged))
    assert [m.name for m in model.layers].count(shared.name) == 1
    assert len(model.get_weights()) == 3 + 2

    xa, xb = torch.randn(6, 5, 3, dtype=torch.float64), torch.randn(6, 5, 3, dtype=torch.float64)
    k, r, bias = w(shared)
    dk, db = w(model.layers[-1])
    want = (simple_rnn_by_hand(xa, k, r, bias) + simple_rnn_by_hand(xb, k, r, bias)) @ dk + db
    torch.testing.assert_close(model([xa, xb]), want, rtol=0, atol=1e-12)
    assert shared.input is a and len(shared._inbound_nodes) == 2
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "Connected to" in text and f"{a.node.layer.name}[0][0]" in text and f"{b.node.layer.name}[0][0]" in text
    assert f"{shared.name}[0][0]" in text and f"{shared.name}[1][0]" in text


def test_embedding_mask_zero_reaches_the_rnn():
    torch.manual_seed(3)
    ids_in = rk.Input((None,), dtype="int64")
    emb = rk.Embedding(12, 3, mask_zero=True)
    vectors = emb(ids_in)
    assert vectors.mask is not None and vectors.mask.shape == (None, None)
    rnn = rk.SimpleRNN(4)
    model = rk.Model(ids_in, rnn(vectors))

    ids = torch.tensor([[3, 5, 7, 0, 0], [1, 0, 0, 0, 0], [2, 4, 6, 8, 9]])
    lengths = [3, 1, 5]
    want = simple_rnn_by_hand(emb.embeddings.detach()[ids], *w(rnn), lengths=lengths)
    torch.testing.assert_close(model(ids), want, rtol=1e-6, atol=1e-6)


def test_merged_masks_are_combined():
    torch.manual_seed(11)
    a_in, b_in = rk.Input((None,), dtype="int64"), rk.Input((None,), dtype="int64")
    emb = rk.Embedding(9, 2, mask_zero=True)
    joined = rk.Concatenate()([emb(a_in), emb(b_in)])
    rnn = rk.SimpleRNN(3)
    model = rk.Model([a_in, b_in], rnn(joined))
    a, b = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]]), torch.tensor([[1, 2, 0, 0], [4, 5, 6, 7]])
    mask = (a != 0) | (b != 0)  # Keras 3: a step counts when either input has a token there
    torch.testing.assert_close(model([a, b]), rnn(torch.cat([emb(a), emb(b)], -1), mask=mask), rtol=0, atol=0)

    plain_in = rk.Input((None, 2))
    in_time = rk.Concatenate(axis=1)([emb(a_in), plain_in])  # joined in time: so are the masks
    rnn2 = rk.SimpleRNN(3)
    model = rk.Model([a_in, plain_in], rnn2(in_time))
    p = torch.randn(2, 3, 2)
    mask = torch.cat([a != 0, torch.ones(2, 3, dtype=torch.bool)], 1)
    torch.testing.assert_close(model([a, p]), rnn2(torch.cat([emb(a), p], 1), mask=mask), rtol=0, atol=0)


def test_masking_mask_goes_through_a_sequence_layer_and_bidirectional():
    torch.manual_seed(4)
    inp = rk.Input((6, 2))
    masked = rk.Masking()(inp)
    seq = rk.LSTM(3, return_sequences=True)(masked)
    assert seq.mask is masked.mask  # a sequence keeps its mask
    bi = rk.Bidirectional(rk.GRU(2))
    out = bi(rk.Dense(3)(seq))  # Dense passes the mask on (Keras 3)
    model = rk.Model(inp, out)

    x = torch.randn(4, 6, 2)
    x[0, 4:] = 0.0
    x[2, 1:] = 0.0
    mask = (x != 0).any(-1)
    lstm, dense = model.layers[2], model.layers[3]
    want = bi(dense(lstm(x, mask=mask)), mask=mask)
    torch.testing.assert_close(model(x), want, rtol=0, atol=0)


def test_explicit_mask_input_and_a_cell_in_the_graph():
    torch.manual_seed(10)
    x_in, m_in = rk.Input((5, 3)), rk.Input((5,), dtype="bool")
    gru = rk.GRU(4, return_sequences=True)
    seq = gru(x_in, mask=m_in)
    assert seq.mask is m_in  # a sequence keeps the mask it was given
    h_in, c_in = rk.Input((4,)), rk.Input((4,))
    cell = rk.LSTMCell(4)
    y, state = cell(rk.Dense(3)(rk.SimpleRNN(3)(seq)), rk.LSTMState(h_in, c_in))
    assert isinstance(state, rk.LSTMState) and state.c.shape == (None, 4)
    model = rk.Model([x_in, m_in, h_in, c_in], [y, state.c])

    x, m = torch.randn(3, 5, 3), torch.tensor([[1, 1, 1, 0, 0], [1, 0, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    h, c = torch.randn(3, 4), torch.randn(3, 4)
    rnn, dense = model.layers[5], model.layers[6]
    want_y, want_state = cell(dense(rnn(gru(x, mask=m), mask=m)), rk.LSTMState(h, c))
    got_y, got_c = model([x, m, h, c])
    assert torch.equal(got_y, want_y) and torch.equal(got_c, want_state.c)
    with pytest.raises(ValueError, match="LSTMCell is not one of rnnkit's serializable layers"):
        model.get_config()  # cells are not in the registry; the layers are
    masked = rk.Model([x_in, m_in], seq)
    rebuilt = rk.Model.from_config(json.loads(json.dumps(masked.get_config())))
    rebuilt.set_weights(masked.get_weights())
    assert torch.equal(rebuilt([x, m]), gru(x, mask=m))


def test_config_round_trip_gives_identical_outputs():
    torch.manual_seed(5)
    ids_in, side_in = rk.Input((None,), dtype="int64", name="ids"), rk.Input((3,), name="side")
    emb = rk.Embedding(9, 4, mask_zero=True)(ids_in)
    seq, h = rk.GRU(5, return_sequences=True, return_state=True)(emb)
    last = rk.Bidirectional(rk.LSTM(3))(seq)
    side = rk.Dense(5)(side_in)
    state = rk.Average()([h, side])
    again = rk.SimpleRNN(5)(rk.TimeDistributed(rk.Dense(2))(seq), initial_state=[state])
    joined = rk.Concatenate()([last, again, rk.Multiply()([h, side])])
    score = rk.Dot(axes=1, normalize=True)([h, side])
    model = rk.Model({"ids": ids_in, "side": side_in}, {"probs": rk.Dense(4, activation="softmax")(joined), "score": score})

    cfg = model.get_config()
    assert set(cfg) >= {"layers", "input_layers", "output_layers"}
    assert all("inbound_nodes" in spec for spec in cfg["layers"])
    rebuilt = rk.Model.from_config(json.loads(json.dumps(cfg)))
    assert [m.name for m in rebuilt.layers] == [m.name for m in model.layers]
    rebuilt.set_weights(model.get_weights())

    x = {"ids": torch.tensor([[1, 2, 3, 0], [4, 0, 0, 0]]), "side": torch.randn(2, 3)}
    model.eval(), rebuilt.eval()
    want, got = model(x), rebuilt(x)
    assert set(got) == {"probs", "score"}
    for k in want:
        assert torch.equal(want[k], got[k])
    assert got["score"].shape == (2, 1)


def test_sub_model_reuses_layers_for_step_by_step_decoding():
    torch.manual_seed(6)
    enc_in, dec_in = rk.Input((None, 3)), rk.Input((None, 4))
    _, h, c = rk.LSTM(6, return_state=True)(enc_in)
    dec_lstm = rk.LSTM(6, return_sequences=True, return_state=True)
    seq, _, _ = dec_lstm(dec_in, initial_state=[h, c])
    dense = rk.Dense(4, activation="softmax")
    training = rk.Model([enc_in, dec_in], dense(seq))

    encoder = rk.Model(enc_in, [h, c])
    h_in, c_in = rk.Input((6,)), rk.Input((6,))
    step_seq, h2, c2 = dec_lstm(dec_in, initial_state=[h_in, c_in])
    decoder = rk.Model([dec_in, h_in, c_in], [dense(step_seq), h2, c2])
    assert decoder.get_layer(dec_lstm.name) is dec_lstm  # the same layer, not a copy

    xe, xd = torch.randn(3, 5, 3), torch.randn(3, 4, 4)
    states = encoder(xe)
    steps = []
    for t in range(xd.shape[1]):
        probs, *states = decoder([xd[:, t:t + 1], *states])
        steps.append(probs)
    torch.testing.assert_close(torch.cat(steps, 1), training([xe, xd]), rtol=1e-5, atol=1e-6)

    # A model is a layer: called on new inputs it adds no weights.
    outer_in = rk.Input((None, 3))
    outer = rk.Model(outer_in, rk.Add()(encoder(outer_in)))
    assert {id(p) for p in outer.parameters()} <= {id(p) for p in training.parameters()}
    torch.testing.assert_close(outer(xe), states_sum(encoder(xe)))
    assert "lstm" in rk.explain(outer)


def states_sum(states):
    return states[0] + states[1]


def test_explain_lists_the_rnn_layers_and_each_layer_runs_once_per_call():
    enc_in = rk.Input((8, 3))
    y = rk.Dense(2)(rk.GRU(4, return_sequences=True)(rk.SimpleRNN(4, return_sequences=True)(enc_in)))
    model = rk.Model(enc_in, y)
    calls = []
    for layer in model.layers:
        layer.register_forward_hook(lambda m, *_: calls.append(m.name))
    model(torch.randn(2, 8, 3))
    assert calls == [m.name for m in model.layers[1:]]
    lines = rk.explain(model).splitlines()
    assert len(lines) == 2 and "native" in lines[0] and "native" in lines[1]


def test_training_argument_switches_dropout_for_one_call():
    inp = rk.Input((50,))
    model = rk.Model(inp, rk.Dropout(0.5)(inp))
    x = torch.ones(4, 50)
    model.eval()
    assert torch.equal(model(x), x)
    assert (model(x, training=True) == 0).any() and not model.training
    model.train()
    assert torch.equal(model(x, training=False), x) and model.training


def test_layer_and_model_accessors():
    a = rk.Input((4,), name="a")
    dense = rk.Dense(2, name="proj")
    y = dense(a)
    model = rk.Model(a, y)
    assert dense.input is a and dense.output is y and a.node.layer.output is a
    assert model.inputs == [a] and model.outputs == [y] and model.input is a and model.output is y
    assert model.get_layer("proj") is dense and model.get_layer(index=0).name == "a"
    with pytest.raises(ValueError, match="no layer 'nope'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="has not been called on symbolic tensors"):
        _ = rk.Dense(1).output


def test_merge_layers_eagerly():
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(rk.Add()([a, b]), a + b)
    torch.testing.assert_close(rk.Multiply()([a, b]), a * b)
    torch.testing.assert_close(rk.Average()([a, b, a]), (a + b + a) / 3)
    torch.testing.assert_close(rk.Concatenate(axis=1)([a, b]), torch.cat([a, b], 1))
    torch.testing.assert_close(rk.Dot(axes=1)([a, b]), (a * b).sum(1, keepdim=True))
    x, y = torch.randn(2, 5, 6), torch.randn(2, 7, 6)
    torch.testing.assert_close(rk.Dot(axes=2)([x, y]), x @ y.transpose(1, 2))
    torch.testing.assert_close(rk.Dot(axes=(1, 1))([x, x]), x.transpose(1, 2) @ x)
    cos = rk.Dot(axes=1, normalize=True)([a, b])
    torch.testing.assert_close(cos[:, 0], torch.nn.functional.cosine_similarity(a, b))


# ---------------------------------------------------------------- training


def test_multi_input_multi_output_fit_reduces_the_loss():
    torch.manual_seed(7)
    rng = np.random.default_rng(0)
    n = 256
    seq = rng.normal(size=(n, 6, 2)).astype(np.float32)
    side = rng.normal(size=(n, 3)).astype(np.float32)
    label = ((seq[:, :, 0].sum(1) + side[:, 0]) > 0).astype(np.int64)
    total = (seq.sum((1, 2)) + side.sum(1))[:, None].astype(np.float32) / 4

    seq_in, side_in = rk.Input((6, 2), name="seq"), rk.Input((3,), name="side")
    joined = rk.Concatenate()([rk.GRU(8)(seq_in), side_in])
    model = rk.Model(
        {"seq": seq_in, "side": side_in},
        {"cls": rk.Dense(2, activation="softmax")(joined), "reg": rk.Dense(1)(joined)},
    )
    model.compile("adam", {"cls": "sparse_categorical_crossentropy", "reg": "mse"}, metrics={"cls": ["accuracy"]},
                  loss_weights={"cls": 1.0, "reg": 0.5}, learning_rate=1e-2)
    history = model.fit({"seq": seq, "side": side}, {"cls": label, "reg": total}, epochs=8, batch_size=32, verbose=0,
                        validation_split=0.25)
    h = history.history
    assert set(h) == {"loss", "cls_loss", "reg_loss", "cls_accuracy", "val_loss", "val_cls_loss", "val_reg_loss", "val_cls_accuracy"}
    assert h["loss"][-1] < 0.7 * h["loss"][0]
    np.testing.assert_allclose(h["loss"][-1], h["cls_loss"][-1] + 0.5 * h["reg_loss"][-1], rtol=1e-5)
    scores = model.evaluate([seq, side], [label, total], return_dict=True)
    assert scores["cls_accuracy"] > 0.8
    pred = model.predict([seq, side])
    assert set(pred) == {"cls", "reg"} and pred["cls"].shape == (n, 2) and pred["reg"].shape == (n, 1)
    with pytest.raises(ValueError, match="y: expected a list or dict of 2 arrays"):
        model.evaluate([seq, side], label)
    with pytest.raises(ValueError, match="x: expected a list or dict of 2 arrays"):
        model.predict(seq)
    with pytest.raises(ValueError, match="loss: expected one entry per output"):
        model.compile("adam", ["mse"])


def test_single_output_model_trains_like_sequential():
    x = np.random.default_rng(1).normal(size=(64, 5, 3)).astype(np.float32)
    y = (x[:, :, 0].mean(1) > 0).astype(np.int64)

    def build(functional):
        torch.manual_seed(8)
        layers = [rk.LSTM(4), rk.Dense(2, activation="softmax")]
        if not functional:
            return rk.Sequential([rk.Input((5, 3)), *layers])
        inp = rk.Input((5, 3))
        return rk.Model(inp, layers[1](layers[0](inp)))

    logs = []
    for functional in (False, True):
        model = build(functional)
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        torch.manual_seed(9)
        logs.append(model.fit(x, y, epochs=2, batch_size=16, verbose=0).history)
        assert model.predict(x).shape == (64, 2)
    assert logs[0] == logs[1]


# ------------------------------------------------------------------- errors


def test_output_not_reachable_from_the_inputs():
    a, b = rk.Input((3,), name="a_in"), rk.Input((3,), name="b_in")
    out = rk.Add()([rk.Dense(2)(a), rk.Dense(2)(b)])
    with pytest.raises(ValueError, match="not reachable.*'b_in'"):
        rk.Model(a, out)


def test_incompatible_shapes_name_the_layer():
    a, b = rk.Input((4, 3)), rk.Input((5, 3))
    with pytest.raises(ValueError, match="'concatenate.*concatenates on axis -1"):
        rk.Concatenate(name="concatenate_bad")([a, b])
    with pytest.raises(ValueError, match="'add_bad'.*one shape"):
        rk.Add(name="add_bad")([a, b])
    with pytest.raises(ValueError, match="'dense_built'.*expects 7 features"):
        rk.Dense(2, input_size=7, name="dense_built")(a)
    with pytest.raises(ValueError, match="initial_state"):
        rk.LSTM(4)(a, initial_state=[rk.Input((4,)), rk.Input((5,))])


def test_torch_functions_on_symbolic_tensors_say_to_use_a_layer():
    x = rk.Input((3,))
    for bad in (lambda: torch.tanh(x), lambda: torch.cat([x, x], 1), lambda: x / 2, lambda: x ** 2,
                lambda: torch.nn.Linear(3, 2)(x), lambda: x[:, 0], lambda: np.asarray(x)):
        with pytest.raises(TypeError, match="no Lambda layer.*rk.Layer subclass"):
            bad()


def test_operators_on_symbolic_tensors_record_layers():
    """``+ - *`` and unary ``-`` (Keras's operators): Add/Subtract/Multiply between tensors, Rescaling with a number."""
    a, b = rk.Input((3,), name="op_a"), rk.Input((3,), name="op_b")
    model = rk.Model([a, b], [a + b, a - b, a * b, 2 * a + 1, 1 - b, -a, a * 0.5 - 2])
    xa, xb = torch.rand(4, 3), torch.rand(4, 3)
    want = [xa + xb, xa - xb, xa * xb, 2 * xa + 1, 1 - xb, -xa, xa * 0.5 - 2]
    for got, expected in zip(model([xa, xb]), want):
        torch.testing.assert_close(got, expected)
    assert sorted({type(m).__name__ for m in model.layers}) == ["Add", "InputLayer", "Multiply", "Rescaling", "Subtract"]
    rebuilt = rk.Model.from_config(json.loads(json.dumps(model.get_config())))
    for got, expected in zip(rebuilt([xa, xb]), want):
        torch.testing.assert_close(got, expected)
    with pytest.raises(TypeError, match="operand: .*got str"):
        a + "1"


def test_flatten_and_rescaling_layers():
    assert rk.Flatten()(torch.ones(2, 3, 4)).shape == (2, 12)
    assert rk.Flatten()(torch.ones(5)).shape == (5, 1)
    assert rk.Flatten()(rk.Input((None, 4))).shape == (None, None)
    assert rk.Flatten()(rk.Input((3, 4))).shape == (None, 12)
    torch.testing.assert_close(rk.Rescaling(0.5, 1.0)(torch.full((2, 2), 4.0)), torch.full((2, 2), 3.0))
    with pytest.raises(TypeError, match="scale: expected a number"):
        rk.Rescaling("2")
    with pytest.raises(ValueError, match="exactly 2 tensors"):
        rk.Subtract()([torch.ones(1, 2)] * 3)


def test_bad_model_arguments():
    a = rk.Input((3,))
    y = rk.Dense(2)(a)
    with pytest.raises(ValueError, match="outputs\\[0\\]: All `outputs` values must be KerasTensors.*got Tensor"):
        rk.Model(a, [torch.zeros(1)])
    with pytest.raises(ValueError, match="inputs\\['b'\\]\\[1\\]: All `inputs` values must be KerasTensors.*got str 'x'"):
        rk.Model({"b": [a, "x"]}, y)
    with pytest.raises(ValueError, match="outputs: All `outputs` values must be KerasTensors.*got an empty list"):
        rk.Model(a, [])
    with pytest.raises(ValueError, match="inputs\\[1\\]: .* is given twice"):
        rk.Model([a, a], y)
    with pytest.raises(TypeError, match="mixed with a concrete Tensor"):
        rk.Add()([a, torch.zeros(1, 3)])
    model = rk.Model(a, y)
    with pytest.raises(ValueError, match="expects shape \\(None, 3\\).*got \\(2, 4\\)"):
        model(torch.zeros(2, 4))
    two = rk.Model([a, b := rk.Input((2,))], rk.Concatenate()([y, b]))
    with pytest.raises(ValueError, match="expects 2 inputs"):
        two([torch.zeros(1, 3)])
    with pytest.raises(ValueError, match="dtype: expected None"):
        rk.Input((3,), dtype="complex64")


def test_nested_model_and_sequential_round_trip_through_config():
    torch.manual_seed(12)
    a = rk.Input((5, 3))
    _, h, c = rk.LSTM(4, return_state=True)(a)
    encoder = rk.Model(a, [h, c], name="encoder_rt")
    head = rk.Sequential([rk.Dense(3, input_shape=(4,)), rk.Dense(2)])
    b = rk.Input((5, 3))
    model = rk.Model(b, head(rk.Add()(encoder(b))))
    rebuilt = rk.Model.from_config(json.loads(json.dumps(model.get_config())))
    rebuilt.set_weights(model.get_weights())
    x = torch.randn(2, 5, 3)
    assert torch.equal(model(x), rebuilt(x))
    assert [type(m).__name__ for m in rebuilt.layers] == ["InputLayer", "Model", "Add", "Sequential"]


def test_list_losses_and_an_untrained_output():
    torch.manual_seed(13)
    inp = rk.Input((4, 2))
    seq, h = rk.GRU(3, return_sequences=True, return_state=True)(inp)
    model = rk.Model(inp, [seq, rk.Dense(1, name="value")(h)])
    model.compile("sgd", [None, "mse"], metrics=[[], ["mae"]])
    x, y = np.random.default_rng(2).normal(size=(16, 4, 2)), np.ones((16, 1))
    logs = model.fit(x, [None, y], epochs=1, batch_size=8, verbose=0).history
    assert set(logs) == {"loss", "mae"}  # one trained output: Keras's plain names
    out = model.evaluate(x, {"value": y}, return_dict=True)
    assert set(out) == {"loss", "mae"} and model.output_names == [model.layers[1].name, "value"]
    with pytest.raises(ValueError, match="y: output 'value' has a loss but no targets"):
        model.evaluate(x, [y, None])


def test_summary_connected_to_column_as_keras_3_prints_it():
    # Keras 3.15's summary of this model has, per row: "-" for each Input, "a[0][0], b[0][0]" for the shared
    # layer (one cell, both calls), "shared[0][0], shared[1][0]" for the merge.
    a, b = rk.Input((5, 3), name="a"), rk.Input((5, 3), name="b")
    shared = rk.SimpleRNN(4, name="rnn_s")
    model = rk.Model([a, b], rk.Dense(1, name="dense_s")(rk.Add(name="add_s")([shared(a), shared(b)])))
    lines = []
    model.summary(print_fn=lines.append)
    rows = {line.split()[0]: line.split() for line in lines[0].splitlines() if line[:1].isalpha()}
    assert rows["a"][-1] == "-" and rows["b"][-1] == "-"
    assert rows["rnn_s"][2:] == ["(None,", "4)", "32", "a[0][0],", "b[0][0]"]
    assert rows["add_s"][-2:] == ["rnn_s[0][0],", "rnn_s[1][0]"]
    assert rows["dense_s"][-1] == "add_s[0][0]"
    # A long list wraps inside the column, one ", "-separated piece per line at most 29 characters.
    ins = [rk.Input((2,), name=f"input_number_{i}") for i in range(4)]
    wide = rk.Model(ins, rk.Concatenate(name="cat_s")(ins))
    lines = []
    wide.summary(print_fn=lines.append)
    text = lines[0].splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("cat_s"))
    cells = [line[70:] for line in text[start:start + 4]]
    assert cells == ["input_number_0[0][0],", "input_number_1[0][0],", "input_number_2[0][0],", "input_number_3[0][0]"]


def test_input_batch_size_carries_over_when_every_input_has_it():
    a, b = rk.Input((3,), batch_size=2), rk.Input((4,), batch_size=2)
    seq = rk.Input((5, 3), batch_size=2)
    y, h = rk.GRU(4, return_state=True)(seq)
    assert (y.shape, h.shape) == ((2, 4), (2, 4))
    assert rk.Concatenate()([rk.Dense(5)(a), b]).shape == (2, 9)
    assert rk.Concatenate()([a, rk.Input((4,))]).shape == (None, 7)  # one input without it: None
    model = rk.Model([a, b], rk.Concatenate()([a, b]))
    assert model([torch.zeros(7, 3), torch.zeros(7, 4)]).shape == (7, 7)  # any batch when called
    again = rk.Model.from_config(json.loads(json.dumps(model.get_config())))
    assert again.inputs[0].shape == (2, 3)
    with pytest.raises(ValueError, match="batch_size: expected None or a positive int, got 0"):
        rk.Input((3,), batch_size=0)


def test_compile_takes_one_loss_per_output_also_in_a_one_element_list():
    x = rk.Input((3,), name="loss_in")
    model = rk.Model(x, [rk.Dense(1, name="la")(x), rk.Dense(1, name="lb")(x)])
    model.compile("sgd", loss=["mse", ["mae"]])
    with pytest.raises(ValueError, match="loss: output 'lb' takes one loss, got a list of 2"):
        model.compile("sgd", loss=["mse", ["mae", "mse"]])


def test_metric_keys_as_written_and_bce():
    """Keras 3 logs a metric under the name the user wrote ('acc' stays 'acc'); 'bce' is binary crossentropy."""
    torch.manual_seed(0)
    x = rk.Input((3,), name="m_in")
    model = rk.Model(x, [rk.Dense(1, name="ma")(x), rk.Dense(1, name="mb", activation="sigmoid")(x)])
    model.compile("sgd", loss=["mse", "bce"], metrics=[["bce"], ["acc"]])
    data, ya, yb = torch.rand(8, 3), torch.rand(8, 1), torch.randint(0, 2, (8, 1)).float()
    logs = model.evaluate(data, [ya, yb], batch_size=8, return_dict=True, verbose=0)
    with torch.no_grad():
        pa, pb = model(data)
    p = pa.clamp(1e-7, 1 - 1e-7)  # a linear output: the metric clips it, as Keras's does
    assert logs["ma_bce"] == pytest.approx(float(-(ya * p.log() + (1 - ya) * (1 - p).log()).mean()), rel=1e-5)
    assert logs["mb_loss"] == pytest.approx(float(rk.BinaryCrossentropy()(yb, pb)), rel=1e-5)
    assert logs["mb_acc"] == pytest.approx(float(((pb > 0.5).float() == yb).float().mean()))


def test_weighted_metrics_weigh_each_sample():
    """Keras's weighted_metrics: sum(w_i m_i) / sum(w_i); the plain metric without sample weights."""
    torch.manual_seed(0)
    x = rk.Input((3,), name="w_in")
    model = rk.Model(x, rk.Dense(1, name="w_out")(x))
    model.compile("sgd", loss="mse", metrics=["mae"], weighted_metrics=["mae"])
    data, y, w = torch.rand(6, 3), torch.rand(6, 1), torch.tensor([0.0, 1.0, 2.0, 0.5, 3.0, 1.0])
    with torch.no_grad():
        err = (model(data) - y).abs()[:, 0]
    logs = model.evaluate(data, y, batch_size=6, sample_weight=w, return_dict=True, verbose=0)
    assert logs["mae"] == pytest.approx(float(err.mean()), rel=1e-5)
    assert logs["weighted_mae"] == pytest.approx(float((w * err).sum() / w.sum()), rel=1e-5)
    logs = model.evaluate(data, y, batch_size=6, return_dict=True, verbose=0)
    assert logs["weighted_mae"] == pytest.approx(logs["mae"])
    with pytest.raises(TypeError, match="weighted_metrics: expected a list of names"):
        model.compile("sgd", loss="mse", weighted_metrics="mae")


def dense_by_hand(layer, x):
    kernel, bias = w(layer)
    return x @ kernel + bias


def test_nested_inputs_and_outputs_compute_each_leaf():
    torch.manual_seed(21)
    i1, i2, i3 = rk.Input((1,), name="n1"), rk.Input((2,), name="n2"), rk.Input((3,), name="n3")
    d1, d2, d3 = rk.Dense(2), rk.Dense(3), rk.Dense(1)
    joined = rk.Concatenate()([d1(i1), d2(i2)])
    model = rk.Model({"one": i1, "more": [i2, {"three": i3}]}, {"a": joined, "b": [d3(i3), i2]})
    assert model.input_names == ["n1", "n2", "n3"]
    x = {"one": torch.randn(4, 1), "more": [torch.randn(4, 2), {"three": torch.randn(4, 3)}]}
    out = model(x)
    assert set(out) == {"a", "b"} and isinstance(out["b"], list)
    want_a = torch.cat([dense_by_hand(d1, x["one"]), dense_by_hand(d2, x["more"][0])], dim=1)
    torch.testing.assert_close(out["a"], want_a)
    torch.testing.assert_close(out["b"][0], dense_by_hand(d3, x["more"][1]["three"]))
    assert out["b"][1] is x["more"][0]

    symbolic = model({"one": rk.Input((1,)), "more": [rk.Input((2,)), {"three": rk.Input((3,))}]})
    assert symbolic["a"].shape == (None, 5) and symbolic["b"][0].shape == (None, 1)

    config = json.loads(json.dumps(model.get_config()))
    assert config["input_layers"] == {"one": ["n1", 0, 0], "more": [["n2", 0, 0], {"three": ["n3", 0, 0]}]}
    rebuilt = rk.Model.from_config(config)
    rebuilt.set_weights(model.get_weights())
    got = rebuilt(x)
    torch.testing.assert_close(got["a"], want_a)
    assert json.dumps(rebuilt.get_config()) == json.dumps(config)

    with pytest.raises(ValueError, match=r"inputs\['more'\]\[1\]: The structure of `inputs` doesn't match"):
        model({"one": x["one"], "more": [x["more"][0], x["more"][1]["three"]]})
    with pytest.raises(ValueError, match=r"inputs: The structure of `inputs` doesn't match.*'one': 'n1'"):
        model([x["one"], x["more"][0], x["more"][1]["three"]])


def test_a_list_of_one_list_stays_nested_through_config():
    a = rk.Input((3,), name="only")
    model = rk.Model([[a]], rk.Dense(2)(a))
    config = model.get_config()
    assert config["input_layers"] == [[["only", 0, 0]]]
    rebuilt = rk.Model.from_config(config)
    assert rebuilt.get_config()["input_layers"] == [[["only", 0, 0]]]
    rebuilt.set_weights(model.get_weights())
    x = torch.randn(2, 3)
    torch.testing.assert_close(rebuilt([[x]]), model([[x]]))


def test_slicing_a_model_at_computed_tensors_shares_the_layers():
    torch.manual_seed(22)
    inputs = rk.Input((None, 2), name="seq_in")
    d1, d2, d3 = rk.Dense(3, name="s1"), rk.Dense(4, name="s2"), rk.Dense(5, name="s3")
    x1 = d1(inputs)
    x2 = d2(x1)
    full = rk.Model(inputs, d3(x2))
    head = rk.Model(x2, full.output, name="head")
    middle = rk.Model(x1, x2, name="middle")
    assert [type(m).__name__ for m in head.layers] == ["InputLayer", "Dense"] and head.layers[1] is d3
    assert head.layers[0].name == "s2_clone" and head.inputs[0].shape == (None, None, 4)

    x = torch.randn(2, 3, 2)
    h1 = dense_by_hand(d1, x)
    h2 = dense_by_hand(d2, h1)
    torch.testing.assert_close(middle(h1), h2)
    torch.testing.assert_close(head(h2), dense_by_hand(d3, h2))
    torch.testing.assert_close(head(middle(d1(x))), full(x))
    with torch.no_grad():  # one set of weights: a change shows in every model built on the layer
        d3.bias.add_(1.0)
    torch.testing.assert_close(head(h2), full(x))

    lines = []
    head.summary(print_fn=lines.append)
    assert "s2_clone[0][0]" in lines[0]
    rebuilt = rk.Model.from_config(json.loads(json.dumps(head.get_config())))
    rebuilt.set_weights(head.get_weights())
    torch.testing.assert_close(rebuilt(h2), head(h2))


def test_a_slice_starts_without_the_mask_its_input_carried():
    torch.manual_seed(23)
    ids = rk.Input((None,), dtype="int64")
    emb = rk.Embedding(6, 3, mask_zero=True)
    vectors = emb(ids)
    rnn = rk.SimpleRNN(4)
    full = rk.Model(ids, rnn(vectors))
    tail = rk.Model(vectors, rnn(vectors))  # as Keras's clone: the Input standing for `vectors` has no mask
    tokens = torch.tensor([[1, 2, 0], [3, 0, 0]])
    seq = emb.embeddings.detach()[tokens]
    torch.testing.assert_close(full(tokens), simple_rnn_by_hand(seq, *w(rnn), lengths=[2, 1]), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(tail(seq), simple_rnn_by_hand(seq, *w(rnn)), rtol=1e-6, atol=1e-6)


class AddIfGiven(rk.Layer):
    """x + y, or x when the optional y is None."""

    def forward(self, x, y=None):
        return x if y is None else x + y


def test_optional_input_takes_none():
    torch.manual_seed(24)
    a, b = rk.Input((2,), name="req"), rk.Input((2,), name="opt", optional=True)
    dense = rk.Dense(3)
    model = rk.Model([a, b], dense(AddIfGiven()(a, b)))
    x, y = torch.randn(4, 2), torch.randn(4, 2)
    torch.testing.assert_close(model([x, None]), dense_by_hand(dense, x))
    torch.testing.assert_close(model([x, y]), dense_by_hand(dense, x + y))
    with pytest.raises(ValueError, match="The input 'req' is not optional, but None was passed"):
        model([None, y])
    with pytest.raises(TypeError, match="optional: expected a bool, got str"):
        rk.Input((2,), optional="yes")
    config = rk.Model([a, b], rk.Concatenate()([a, b])).get_config()
    assert config["layers"][1]["config"]["optional"] is True and "optional" not in config["layers"][0]["config"]
    assert rk.Model.from_config(config).get_layer("opt").optional is True


def test_sub_model_output_carries_the_mask_its_layers_make():
    torch.manual_seed(25)
    ids = rk.Input((None,), dtype="int64")
    emb = rk.Embedding(7, 3, mask_zero=True)
    embedder = rk.Model(ids, emb(ids))
    outer_ids = rk.Input((None,), dtype="int64")
    vectors = embedder(outer_ids)
    assert vectors.mask is not None and vectors.mask.shape == (None, None)
    rnn = rk.SimpleRNN(4)
    model = rk.Model(outer_ids, rnn(vectors))

    tokens = torch.tensor([[4, 5, 0, 0], [1, 2, 3, 6]])
    assert torch.equal(embedder.compute_mask(tokens), tokens != 0)
    want = simple_rnn_by_hand(emb.embeddings.detach()[tokens], *w(rnn), lengths=[2, 4])
    torch.testing.assert_close(model(tokens), want, rtol=1e-6, atol=1e-6)

    dense_in = rk.Input((3,))
    no_mask = rk.Model(dense_in, rk.Dense(2)(dense_in))
    assert no_mask.compute_mask(torch.ones(1, 3)) is None and no_mask(rk.Input((3,))).mask is None


def test_compute_output_spec_records_nothing():
    a = rk.Input((None, 3))
    lstm = rk.LSTM(4, return_sequences=True, return_state=True)
    seq, h, c = lstm(a)
    model = rk.Model(a, {"seq": seq, "state": [h, c]})
    before = len(vars(lstm)["_inbound_nodes"]), len(vars(model).get("_inbound_nodes", []))
    spec = model.compute_output_spec(rk.Input((5, 3), batch_size=2))
    assert spec["seq"].shape == (2, 5, 4) and [t.shape for t in spec["state"]] == [(2, 4), (2, 4)]
    assert spec["seq"].dtype == torch.float32 and spec["seq"].node is None
    assert (len(vars(lstm)["_inbound_nodes"]), len(vars(model).get("_inbound_nodes", []))) == before
    with pytest.raises(ValueError, match="from compute_output_spec with no layer call behind it"):
        rk.Model(a, rk.Dense(1)(spec["seq"]))
    with pytest.raises(ValueError, match=r"inputs: .* is a shape and dtype from compute_output_spec"):
        rk.Model(spec["seq"], rk.Dense(1)(spec["seq"]))


def _keras2_config(dense_sources, outputs):
    """A Keras 2 (tf.keras) functional config: ``batch_input_shape`` and list-form ``inbound_nodes``."""
    return {
        "name": "keras2_model",
        "layers": [
            {"class_name": "InputLayer", "name": "in_a", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, 3], "dtype": "float32", "name": "in_a"}},
            {"class_name": "InputLayer", "name": "in_b", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, 3], "dtype": "float32", "name": "in_b"}},
            {"class_name": "Add", "name": "add_k2", "config": {"name": "add_k2"},
             "inbound_nodes": [[["in_a", 0, 0, {}], ["in_b", 0, 0, {}]]]},
            *({"class_name": "Dense", "name": name, "config": {"units": 2, "name": name},
               "inbound_nodes": [[[source, 0, 0, {}]]]} for name, source in dense_sources),
        ],
        "input_layers": [["in_a", 0, 0], ["in_b", 0, 0]],
        "output_layers": [[name, 0, 0] for name in outputs],
    }


def test_keras2_list_form_inbound_nodes():
    torch.manual_seed(26)
    model = rk.Model.from_config(_keras2_config([("d_k2", "add_k2")], ["d_k2"]))
    assert [m.name for m in model.layers] == ["in_a", "in_b", "add_k2", "d_k2"]
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(model([a, b]), dense_by_hand(model.get_layer("d_k2"), a + b))

    with pytest.raises(ValueError, match=r"Missing node: nowhere; layer 'd_k2' reads a call of layer 'nowhere'"):
        rk.Model.from_config(_keras2_config([("d_k2", "nowhere")], ["d_k2"]))
    with pytest.raises(ValueError, match=r"the calls of \['d_x', 'd_y'\] wait on each other in a loop"):
        rk.Model.from_config(_keras2_config([("d_x", "d_y"), ("d_y", "d_x")], ["d_y"]))
    bad = _keras2_config([], ["add_k2"])
    for node in ([["in_a", 0]], [["in_a", 0, 0, "training"]], "in_a"):
        bad["layers"][2]["inbound_nodes"] = [node]
        with pytest.raises(ValueError, match=r"layer 'add_k2' inbound_nodes\[0\]: expected Keras 3's .* or Keras 2's"):
            rk.Model.from_config(bad)


def test_nested_model_evaluates_fits_and_predicts_in_its_own_structure():
    torch.manual_seed(27)
    i1, i2 = rk.Input((2,), name="np_"), rk.Input((3,), name="nq")
    dx, dz = rk.Dense(1, name="ndx"), rk.Dense(2, name="ndz")
    model = rk.Model({"a": i1, "o": {"b": i2}}, {"x": dx(i1), "y": [dz(i2)]})
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    x = {"a": rng.random((16, 2), dtype=np.float32), "o": {"b": rng.random((16, 3), dtype=np.float32)}}
    y = {"x": rng.random((16, 1), dtype=np.float32), "y": [rng.random((16, 2), dtype=np.float32)]}
    with torch.no_grad():
        px = dense_by_hand(dx, torch.from_numpy(x["a"]))
        pz = dense_by_hand(dz, torch.from_numpy(x["o"]["b"]))
    mse_x = ((px - torch.from_numpy(y["x"])) ** 2).mean().item()
    mse_z = ((pz - torch.from_numpy(y["y"][0])) ** 2).mean().item()
    loss, loss_x, loss_z = model.evaluate(x, y, batch_size=16, verbose=0)
    np.testing.assert_allclose([loss, loss_x, loss_z], [mse_x + mse_z, mse_x, mse_z], rtol=1e-5)
    # The same data as flat dicts by name.
    flat = model.evaluate({"np_": x["a"], "nq": x["o"]["b"]}, {"ndx": y["x"], "ndz": y["y"][0]}, batch_size=16, verbose=0)
    np.testing.assert_allclose(flat, [loss, loss_x, loss_z], rtol=1e-6)
    pred = model.predict(x, batch_size=8, verbose=0)
    np.testing.assert_allclose(pred["x"], px.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pred["y"][0], pz.numpy(), rtol=1e-6, atol=1e-6)
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ValueError, match=r"x\['o'\]: The structure of `x` doesn't match"):
        model.fit({"a": x["a"], "o": x["o"]["b"]}, y, verbose=0)


def test_optional_input_may_be_none_in_evaluate_and_fit():
    torch.manual_seed(28)
    a, b = rk.Input((2,), name="fa"), rk.Input((2,), name="fb", optional=True)
    dense = rk.Dense(1)
    model = rk.Model([a, b], dense(AddIfGiven()(a, b)))
    model.compile("sgd", "mse")
    rng = np.random.default_rng(1)
    x, y = rng.random((12, 2), dtype=np.float32), rng.random((12, 1), dtype=np.float32)
    with torch.no_grad():
        want = ((dense_by_hand(dense, torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).mean().item()
    np.testing.assert_allclose(model.evaluate([x, None], y, batch_size=12, verbose=0), want, rtol=1e-6)
    np.testing.assert_allclose(model.evaluate({"fa": x, "fb": None}, y, batch_size=5, verbose=0), want, rtol=1e-6)
    history = model.fit([x, None], y, epochs=10, batch_size=4, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    with pytest.raises(ValueError, match="x: The input 'fa' is not optional, but None was passed"):
        model.fit([None, x], y, verbose=0)


def test_a_dict_model_takes_a_list_only_when_its_keys_are_sorted():
    a, b = rk.Input((2,), name="ka"), rk.Input((2,), name="kb")
    x, y = torch.randn(3, 2), torch.randn(3, 2)
    model = rk.Model({"a": a, "b": b}, rk.Subtract()([a, b]))
    with pytest.warns(UserWarning, match=r"takes a dict with the keys \['a', 'b'\], got a list of 2, read in the keys' order"):
        torch.testing.assert_close(model([x, y]), x - y)
    reversed_keys = rk.Model({"b": b, "a": a}, rk.Subtract()([a, b]))
    with pytest.raises(ValueError, match="doesn't match the expected structure"):
        reversed_keys([x, y])
    torch.testing.assert_close(reversed_keys({"a": x, "b": y}), x - y)


def test_keras_file_marks_the_optional_input(tmp_path):
    a, b = rk.Input((2,), name="kf_req"), rk.Input((2,), name="kf_opt", optional=True)
    rk.Model([a, b], rk.Concatenate()([a, b])).save(str(tmp_path / "m.keras"))
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        config = json.loads(archive.read("config.json"))
    optional = {spec["name"]: spec["config"]["optional"] for spec in config["config"]["layers"]
                if spec["class_name"] == "InputLayer"}
    assert optional == {"kf_req": False, "kf_opt": True}


def test_a_sub_model_in_a_sequential_runs_once_and_passes_its_mask_on():
    torch.manual_seed(29)
    calls = []

    class Count(rk.Layer):
        supports_masking = True

        def forward(self, x):
            calls.append(1)
            return x

    plain_in = rk.Input((3,))
    plain = rk.Model(plain_in, Count()(rk.Dense(3)(plain_in)))
    seq = rk.Sequential([plain, rk.Dense(2)])
    seq(torch.randn(2, 3))  # builds the Sequential (a run on zeros) and runs
    calls.clear()
    seq(torch.randn(2, 3))
    assert len(calls) == 1 and plain.compute_mask(torch.randn(2, 3)) is None

    ids = rk.Input((None,), dtype="int64")
    emb = rk.Embedding(5, 3, mask_zero=True)
    rnn = rk.SimpleRNN(2)
    model = rk.Sequential([rk.Model(ids, emb(ids)), rnn])
    tokens = torch.tensor([[1, 2, 0], [3, 0, 0]])
    want = simple_rnn_by_hand(emb.embeddings.detach()[tokens], *w(rnn), lengths=[2, 1])
    torch.testing.assert_close(model(tokens), want, rtol=1e-6, atol=1e-6)
