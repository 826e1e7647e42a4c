"""TF1 graph mode (rnnkit.compat.v1): building, sessions, the RNN loops against eager mode, scan, pictures, TensorBoard."""

import numpy as np
import pytest
import torch

import rnnkit
import rnnkit.compat.v1 as tf
from rnnkit import v1 as eager
from rnnkit.compat.v1 import session as session_module
from rnnkit.compat.v1.loops import flatten

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    torch.manual_seed(0)
    yield
    tf.reset_default_graph()


# ------------------------------------------------------------ graph + session


def test_placeholder_variable_session_nested_fetches():
    x = tf.placeholder(tf.float32, [None, 3], name="X")
    w = tf.Variable(np.arange(6, dtype=np.float32).reshape(3, 2), name="W")
    b = tf.Variable(tf.zeros([2]))
    y = tf.matmul(x, w) + b
    assert tuple(y.shape) == (None, 2) and y.dtype == torch.float32
    assert w.name == "W:0" and y.op.type == "Add"
    total = tf.reduce_sum(y)
    init = tf.global_variables_initializer()
    xb = np.ones((4, 3))
    with tf.Session() as sess:
        init.run()
        out = sess.run({"pair": (y, total), "list": [w]}, feed_dict={x: xb})
        assert out["pair"][0].shape == (4, 2)
        np.testing.assert_allclose(out["pair"][0], np.ones((4, 3)) @ np.arange(6).reshape(3, 2))
        assert isinstance(out["pair"][1], np.float32) and out["pair"][1] == pytest.approx(4 * (6 + 9))
        assert total.eval(feed_dict={x: xb}) == pytest.approx(60.0)


def test_operators_slicing_and_shapes():
    x = tf.placeholder(tf.float32, [None, 5, 4])
    h = tf.transpose(x, perm=[1, 0, 2])
    assert tuple(h.shape) == (5, None, 4)
    assert tuple(h[-1].shape) == (None, 4)
    assert tuple(x[:, 1:3].shape) == (None, 2, 4)
    assert tuple(tf.expand_dims(x, 0).shape) == (1, None, 5, 4)
    assert tuple(tf.concat([x, x], axis=2).shape) == (None, 5, 8)
    assert tuple(tf.stack(tf.unstack(h), axis=1).shape) == (None, 5, 4)
    assert tuple(tf.reshape(x, [-1, 20]).shape) == (None, 20)
    # None meets a known size as that size (seed 004's zeros([batch, hidden]) + x @ W).
    assert tuple((tf.zeros([128, 4]) + x[:, 0]).shape) == (128, 4)
    z = 2 * tf.square(-x) / 4.0 - 1
    s = tf.strided_slice(x, [0, 1, 0], [2, 3, 4], [1, 1, 1])
    xb = np.random.rand(3, 5, 4).astype(np.float32)
    with tf.Session() as sess:
        zv, sv, hv = sess.run([z, s, h[-1]], feed_dict={x: xb})
    np.testing.assert_allclose(zv, 2 * xb**2 / 4 - 1, rtol=1e-6)
    np.testing.assert_array_equal(sv, xb[0:2, 1:3, 0:4])
    np.testing.assert_array_equal(hv, xb[:, -1])


def test_losses_metrics_and_casts():
    logits = tf.placeholder(tf.float32, [None, 3])
    labels = tf.placeholder(tf.int32, [None])
    onehot = tf.placeholder(tf.float32, [None, 3])
    sparse = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    dense = tf.nn.softmax_cross_entropy_with_logits_v2(labels=onehot, logits=logits)
    top1 = tf.nn.in_top_k(logits, labels, 1)
    acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(onehot, axis=1), tf.argmax(logits, axis=1)), tf.float32))
    z = np.array([[1.0, 2.0, 0.5], [3.0, 3.0, 1.0]], np.float32)
    y = np.array([1, 1], np.int32)
    with tf.Session() as sess:
        sv, dv, tv, av = sess.run([sparse, dense, top1, acc], feed_dict={logits: z, labels: y, onehot: np.eye(3)[y]})
    expected = -torch.log_softmax(torch.tensor(z), 1)[[0, 1], [1, 1]].numpy()
    np.testing.assert_allclose(sv, expected, rtol=1e-6)
    np.testing.assert_allclose(dv, expected, rtol=1e-6)
    assert tv.tolist() == [True, True]  # TF's rule: a tie with the top value counts as in the top k
    assert av == pytest.approx(0.5)


def test_errors_name_what_is_wrong():
    x = tf.placeholder(tf.float32, [None, 3], name="X")
    w = tf.Variable(tf.ones([3, 1]), name="W")
    y = tf.matmul(x, w)
    with tf.Session() as sess:
        with pytest.raises(tf.InvalidArgumentError, match="You must feed a value for placeholder tensor 'X'"):
            sess.run(y)
        with pytest.raises(ValueError, match=r"Cannot feed value of shape \(2, 4\) for Tensor 'X:0'"):
            sess.run(y, feed_dict={x: np.ones((2, 4))})
        with pytest.raises(tf.FailedPreconditionError, match="uninitialized value W"):
            sess.run(y, feed_dict={x: np.ones((2, 3))})
    with pytest.raises(ValueError, match="dimensions must be equal"):
        tf.matmul(x, tf.ones([4, 2]))
    with pytest.raises(TypeError, match="tf.unstack"):
        list(x)
    other = tf.Graph()
    with other.as_default():
        z = tf.placeholder(tf.float32, [None, 3])
    with pytest.raises(ValueError, match="must be from the same graph"):
        _ = x + z


def test_unsupported_names_raise_naming_the_op():
    for namespace, name in [(tf, "while_loop"), (tf.nn, "conv2d"), (tf.train, "MomentumOptimizer"),
                            (tf.contrib, "layers"), (tf.contrib.rnn, "AttentionCellWrapper"), (tf.layers, "conv2d")]:
        with pytest.raises(AttributeError, match=f"'{name}' is not supported by rnnkit's graph mode"):
            getattr(namespace, name)
    assert not hasattr(tf, "cond")


def test_variable_scope_reuse_and_names():
    with tf.variable_scope("layer"):
        w = tf.get_variable("W", [3, 2], initializer=tf.zeros_initializer())
        with pytest.raises(ValueError, match="already exists, disallowed"):
            tf.get_variable("W", [3, 2])
    with tf.variable_scope("layer", reuse=True):
        assert tf.get_variable("W") is w
        with pytest.raises(ValueError, match="does not exist"):
            tf.get_variable("V", [1])
    with tf.variable_scope("layer", reuse=tf.AUTO_REUSE):
        assert tf.get_variable("W", [3, 2]) is w
        v = tf.get_variable("V", [1])
    assert w.name == "layer/W:0" and v.name == "layer/V:0"
    with tf.name_scope("loss"):
        m = tf.reduce_mean(w)
    assert m.op.name == "loss/Mean"
    d1 = tf.layers.dense(tf.placeholder(tf.float32, [None, 3]), 4)
    d2 = tf.layers.dense(d1, 2)
    names = [v.op.name for v in tf.trainable_variables()]
    assert names[-4:] == ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]
    assert tuple(d2.shape) == (None, 2)
    with tf.device("/gpu:0"):
        e = d2 * 2.0
    assert e.op.device == "/gpu:0"


def test_sessions_plan_once_per_fetches_and_feeds(monkeypatch):
    x = tf.placeholder(tf.float32, [None, 2])
    w = tf.Variable(tf.ones([2, 2]))
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w)))
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    init = tf.global_variables_initializer()
    calls = []
    real = session_module.plan_ops
    monkeypatch.setattr(session_module, "plan_ops", lambda *a, **k: calls.append(1) or real(*a, **k))
    with tf.Session() as sess:
        sess.run(init)
        for _ in range(5):
            sess.run(train, feed_dict={x: np.ones((3, 2))})
        assert len(calls) == 2  # init once, train once: five runs reuse the plan
        sess.run([train, loss], feed_dict={x: np.ones((3, 2))})
        assert len(calls) == 3


def test_optimizers_follow_tf1_update_rules():
    w0 = np.array([1.0, -2.0], np.float32)
    for make, update in [
        (lambda: tf.train.AdamOptimizer(0.1), lambda g: w0 - 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9) * (0.1 * g) / (np.sqrt(0.001 * g * g) + 1e-8)),
        (lambda: tf.train.RMSPropOptimizer(0.1), lambda g: w0 - 0.1 * g / np.sqrt(0.9 + 0.1 * g * g + 1e-10)),  # ms starts at 1
        (lambda: tf.train.GradientDescentOptimizer(0.1), lambda g: w0 - 0.1 * g),
    ]:
        tf.reset_default_graph()
        w = tf.Variable(w0)
        loss = tf.reduce_sum(tf.square(w))
        step = make().minimize(loss)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(step)
            np.testing.assert_allclose(sess.run(w), update(2 * w0), rtol=1e-6)


# ------------------------------------------------------------- RNN loops


def _cells():
    return {
        "basic_rnn": lambda: tf.nn.rnn_cell.BasicRNNCell(5),
        "basic_lstm": lambda: tf.nn.rnn_cell.BasicLSTMCell(4),
        "gru": lambda: tf.nn.rnn_cell.GRUCell(3),
        "multi": lambda: tf.nn.rnn_cell.MultiRNNCell([tf.nn.rnn_cell.BasicRNNCell(4), tf.nn.rnn_cell.BasicLSTMCell(3)]),
        "projection": lambda: tf.contrib.rnn.OutputProjectionWrapper(tf.nn.rnn_cell.BasicRNNCell(6, activation=tf.nn.relu), 2),
    }


@pytest.mark.parametrize("kind", list(_cells()))
def test_dynamic_and_static_rnn_give_eager_numbers(kind):
    cell = _cells()[kind]()
    X = tf.placeholder(tf.float32, [None, 6, 3])
    lengths = tf.placeholder(tf.int32, [None])
    dyn_out, dyn_state = tf.nn.dynamic_rnn(cell, X, sequence_length=lengths, dtype=tf.float32)
    st_out, st_state = tf.nn.static_rnn(cell, tf.unstack(tf.transpose(X, [1, 0, 2])), dtype=tf.float32)
    xb = np.random.RandomState(1).randn(4, 6, 3).astype(np.float32)
    lb = np.array([6, 3, 0, 5], np.int32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        d_out, d_state, s_out, s_state = sess.run([dyn_out, dyn_state, st_out, st_state], feed_dict={X: xb, lengths: lb})
    e_out, e_state = eager.dynamic_rnn(cell.core, torch.tensor(xb), sequence_length=torch.tensor(lb))
    np.testing.assert_array_equal(d_out, e_out.detach().numpy())  # the same call: bit for bit
    for got, want in zip(flatten(d_state), flatten(e_state), strict=True):
        np.testing.assert_array_equal(got, want.detach().numpy())
    es_out, es_state = eager.static_rnn(cell.core, list(torch.tensor(xb).unbind(1)))
    np.testing.assert_allclose(np.stack(s_out, 1), torch.stack(es_out, 1).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_node_counts_static_grows_dynamic_constant():
    def count(kind, steps):
        tf.reset_default_graph()
        X = tf.placeholder(tf.float32, [None, steps, 3])
        cell = tf.nn.rnn_cell.BasicRNNCell(5)
        if kind == "static":
            tf.nn.static_rnn(cell, tf.unstack(tf.transpose(X, perm=[1, 0, 2])), dtype=tf.float32)
        else:
            tf.nn.dynamic_rnn(cell, X, dtype=tf.float32)
        g = tf.get_default_graph()
        cells = [op for op in g.get_operations() if op.type == "BasicRNNCell"]
        return len(g.get_operations()), len(cells)

    steps = [2, 5, 10, 20]
    static = [count("static", n) for n in steps]
    dynamic = [count("dynamic", n) for n in steps]
    assert [c for _, c in static] == steps  # one cell op per step
    per_step = (static[-1][0] - static[0][0]) / (steps[-1] - steps[0])
    assert per_step == 1 and all(n - static[0][0] == per_step * (s - 2) for (n, _), s in zip(static, steps))
    assert len({n for n, _ in dynamic}) == 1 and all(c == 1 for _, c in dynamic)  # one cell, inside the loop
    loop = [op for op in tf.get_default_graph().get_operations() if op.type == "While"][0]
    assert [op.type for op in loop.body.ops] == ["BasicRNNCell"]


def test_user_cell_runs_traced_with_the_same_numbers():
    class DeviceCellWrapper(tf.contrib.rnn.RNNCell):  # seed 003's
        def __init__(self, device, cell):
            self._cell, self._device = cell, device

        @property
        def state_size(self):
            return self._cell.state_size

        @property
        def output_size(self):
            return self._cell.output_size

        def __call__(self, inputs, state, scope=None):
            with tf.device(self._device):
                return self._cell(inputs, state, scope)

    inner = [tf.contrib.rnn.BasicRNNCell(num_units=4) for _ in range(2)]
    cell = tf.contrib.rnn.MultiRNNCell([DeviceCellWrapper(d, c) for d, c in zip(["/gpu:0", "/gpu:1"], inner)])
    assert cell.core is None
    X = tf.placeholder(tf.float32, [None, 5, 3])
    outputs, states = tf.nn.dynamic_rnn(cell, X, dtype=tf.float32)
    xb = np.random.RandomState(2).randn(2, 5, 3).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run(outputs, feed_dict={X: xb})
    want, _ = eager.dynamic_rnn(eager.MultiRNNCell([c.core for c in inner]), torch.tensor(xb))
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-5, atol=1e-6)
    devices = {op.device for op in tf.get_default_graph().get_operations() if op.type == "BasicRNNCell"}
    assert devices == {"/gpu:0", "/gpu:1"}


# ------------------------------------------------------------------- scan


def test_scan_eager_semantics_and_gradcheck():
    xs = torch.arange(1.0, 5.0)
    assert rnnkit.scan(lambda a, x: a + x, xs, torch.tensor(0.0)).tolist() == [1, 3, 6, 10]
    assert rnnkit.scan(lambda a, x: a + x, xs).tolist() == [1, 3, 6, 10]  # elems[0] starts
    assert rnnkit.scan(lambda a, x: a + x, xs, torch.tensor(0.0), reverse=True).tolist() == [10, 9, 7, 4]
    pair = rnnkit.scan(lambda a, x: (a[0] + x[0], a[1] * x[1]), (xs, xs), (torch.tensor(0.0), torch.tensor(1.0)))
    assert pair[0].tolist() == [1, 3, 6, 10] and pair[1].tolist() == [1, 2, 6, 24]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    h0 = torch.randn(2, 4, dtype=torch.float64, generator=g, requires_grad=True)
    wx = torch.randn(3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    wh = torch.randn(4, 4, dtype=torch.float64, generator=g, requires_grad=True)

    def run(x, h0, wx, wh):
        return rnnkit.scan(lambda h, x_t: torch.tanh(h @ wh + x_t @ wx), x, h0)

    assert torch.autograd.gradcheck(run, (x, h0, wx, wh))
    with pytest.raises(TypeError, match="fn: expected a callable"):
        rnnkit.scan(3, xs)


def test_graph_scan_equals_eager_scan():
    X = tf.placeholder(tf.float32, [None, 4, 3])
    Wx = tf.Variable(tf.truncated_normal([3, 5], stddev=0.5))
    Wh = tf.Variable(tf.truncated_normal([5, 5], stddev=0.5))
    states = tf.scan(lambda h, x: tf.tanh(tf.matmul(h, Wh) + tf.matmul(x, Wx)), tf.transpose(X, [1, 0, 2]),
                     initializer=tf.zeros([2, 5]), name="hidden_states")
    assert tuple(states.shape) == (4, 2, 5) and states.op.name == "hidden_states"
    xb = np.random.RandomState(3).randn(2, 4, 3).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got, wx, wh = sess.run([states, Wx, Wh], feed_dict={X: xb})
    want = rnnkit.scan(lambda h, x: torch.tanh(h @ torch.tensor(wh) + x @ torch.tensor(wx)),
                       torch.tensor(xb).transpose(0, 1), torch.zeros(2, 5))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=1e-7)
    assert np.all(np.abs(wx) <= 1.0 + 1e-6)  # truncated at two standard deviations


# --------------------------------------------------------------- pictures


def _rnn_graph(kind, steps=3):
    tf.reset_default_graph()
    X = tf.placeholder(tf.float32, [None, steps, 3], name="X")
    cell = tf.nn.rnn_cell.BasicRNNCell(5)
    if kind == "static":
        tf.nn.static_rnn(cell, tf.unstack(tf.transpose(X, perm=[1, 0, 2])), dtype=tf.float32)
    else:
        tf.nn.dynamic_rnn(cell, X, dtype=tf.float32)
    return tf.get_default_graph()


def test_svg_and_png_pictures(tmp_path):
    svg = tf.draw.to_svg(_rnn_graph("static"), tmp_path / "static.svg")
    assert svg.startswith("<svg") and svg.count(">BasicRNNCell<") == 3
    svg = tf.draw.to_svg(_rnn_graph("dynamic"), tmp_path / "dynamic.svg", title="dynamic_rnn")
    assert svg.count(">BasicRNNCell<") == 1 and ">While<" in svg and 'stroke="#2b8a3e"' in svg
    pytest.importorskip("matplotlib")
    tf.draw.to_png(_rnn_graph("dynamic"), tmp_path / "dynamic.png")
    assert (tmp_path / "dynamic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tensorboard_reads_the_graph(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    graph = _rnn_graph("dynamic")
    path = tf.draw.write_tensorboard(graph, tmp_path / "logs")
    assert "events.out.tfevents" in path
    acc = EventAccumulator(str(tmp_path / "logs"))
    acc.Reload()
    gd = acc.Graph()
    names = {n.name: n for n in gd.node}
    assert set(names) == {op.name for op in graph.get_operations()}
    assert names["rnn/while"].op == "While" and names["rnn/while/basic_rnn_cell"].op == "BasicRNNCell"
    assert "rnn/basic_rnn_cell/kernel" in names["rnn/while"].input
    assert [d.size for d in names["X"].attr["_output_shapes"].list.shape[0].dim] == [-1, 3, 3]


def test_rnnkit_graph_command(tmp_path, capsys):
    from rnnkit import cli

    script = tmp_path / "seed.py"
    script.write_text(
        "import numpy as np\nimport rnnkit.compat.v1 as tf\n"
        "X = tf.placeholder(tf.float32, [None, 4, 3])\n"
        "outputs, states = tf.nn.dynamic_rnn(tf.nn.rnn_cell.BasicRNNCell(5), X, dtype=tf.float32)\n"
        "with tf.Session() as sess:\n"
        "    sess.run(tf.global_variables_initializer())\n"
        "    raise SystemExit('the graph command stops before this')\n"
    )
    out = tmp_path / "g.svg"
    assert cli.main(["graph", str(script), "-o", str(out), "--logdir", str(tmp_path / "tb")]) == 0
    assert ">While<" in out.read_text()
    printed = capsys.readouterr().out
    assert str(out) in printed and "events.out.tfevents" in printed


def test_rnnkit_graph_command_on_a_saved_model(tmp_path):
    from rnnkit import cli

    model = rnnkit.Sequential([rnnkit.SimpleRNN(4), rnnkit.Dense(2)])
    model(torch.zeros(1, 5, 3))
    rnnkit.save_model(model, tmp_path / "model")
    out = tmp_path / "model.svg"
    assert cli.main(["graph", str(tmp_path / "model"), "-o", str(out)]) == 0
    svg = out.read_text()
    assert ">SimpleRNN<" in svg and ">Dense<" in svg


def test_a_cell_reused_in_a_new_graph_gets_variables_there():
    cell = tf.nn.rnn_cell.BasicRNNCell(3)
    for _ in range(2):
        tf.reset_default_graph()
        outputs, _ = tf.nn.dynamic_rnn(cell, tf.placeholder(tf.float32, [None, 2, 4]), dtype=tf.float32)
        assert [v.op.name for v in tf.global_variables()] == [
            "rnn/basic_rnn_cell/kernel", "rnn/basic_rnn_cell/recurrent_kernel", "rnn/basic_rnn_cell/bias"]
        assert all(v.param is p for v, p in zip(tf.global_variables(), cell.core.parameters()))
