"""GlobalAveragePooling1D, GlobalMaxPooling1D, LayerNormalization, Activation, SpatialDropout1D (issue 17).

Hand computations here; Keras's own numbers on copied weights in test_functional_keras.py
(``bilstm_average_pooled``, ``normalized_pooled``), test_interop_keras.py (``embedding_pooled``,
``gru_max_pooled``) and test_functional_keras_file.py (the same read from and written to .keras files,
and ``mixed_bfloat16``).
"""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit as rk
from rnnkit.layers import LAYERS, deserialize, serialize

DATA = Path(__file__).parent / "data"
X = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [5.0, 0.5]],
                  [[-1.0, 2.0], [0.0, -3.0], [7.0, 1.0]]])
MASK = torch.tensor([[True, True, False], [True, False, False]])


# ---------------------------------------------------------------- pooling


def test_average_pooling_by_hand():
    np.testing.assert_allclose(rk.GlobalAveragePooling1D()(X).numpy(), X.numpy().mean(axis=1))
    masked = rk.GlobalAveragePooling1D()(X, mask=MASK).numpy()
    np.testing.assert_allclose(masked, [[2.0, 1.0], [-1.0, 2.0]])  # the valid steps' mean only
    kept = rk.GlobalAveragePooling1D(keepdims=True)(X, mask=MASK)
    assert kept.shape == (2, 1, 2)
    np.testing.assert_allclose(kept[:, 0].numpy(), masked)
    first = rk.GlobalAveragePooling1D(data_format="channels_first")(X.transpose(1, 2), mask=MASK)
    np.testing.assert_allclose(first.numpy(), masked)


def test_average_pooling_never_reads_masked_steps():
    x = X.clone()
    x[0, 2] = float("nan")
    x[1, 1:] = float("inf")
    np.testing.assert_allclose(rk.GlobalAveragePooling1D()(x, mask=MASK).numpy(), [[2.0, 1.0], [-1.0, 2.0]])
    # A row without valid steps is 0/0, as in Keras.
    assert torch.isnan(rk.GlobalAveragePooling1D()(X, mask=torch.zeros(2, 3, dtype=torch.bool))).all()


def test_max_pooling_by_hand_reads_no_mask():
    np.testing.assert_allclose(rk.GlobalMaxPooling1D()(X).numpy(), [[5.0, 4.0], [7.0, 2.0]])
    np.testing.assert_allclose(rk.GlobalMaxPooling1D(data_format="channels_first")(X).numpy(),
                               [[1.0, 4.0, 5.0], [2.0, 0.0, 7.0]])
    assert rk.GlobalMaxPooling1D(keepdims=True)(X).shape == (2, 1, 2)
    # Keras 3.15's GlobalMaxPooling1D takes padded steps too: after Masking the zeros count.
    model = rk.Sequential([rk.Masking(0.0), rk.GlobalMaxPooling1D()])
    x = torch.tensor([[[-1.0], [-2.0], [0.0]]])
    assert model(x).item() == 0.0


def test_poolings_end_the_mask_in_a_sequential_and_a_graph():
    ids = torch.tensor([[3, 1, 0, 0], [2, 0, 0, 0]])
    emb = rk.Embedding(5, 2, mask_zero=True)
    steps = emb(ids)
    expected = torch.stack([steps[0, :2].mean(0), steps[1, :1].mean(0)])
    model = rk.Sequential([emb, rk.GlobalAveragePooling1D()])
    np.testing.assert_allclose(model(ids).detach().numpy(), expected.detach().numpy(), rtol=1e-6)
    assert model.layers[1].compute_mask(steps, ids != 0) is None
    inp = rk.Input((None,), dtype="int32")
    pooled = rk.GlobalAveragePooling1D()(emb(inp))
    assert pooled.mask is None and rk.GlobalMaxPooling1D()(emb(inp)).mask is None
    np.testing.assert_allclose(rk.Model(inp, pooled)(ids).detach().numpy(), expected.detach().numpy(), rtol=1e-6)


def test_pooling_shapes_and_bad_inputs():
    assert rk.GlobalAveragePooling1D().compute_output_shape((None, 7, 3)) == (None, 3)
    assert rk.GlobalMaxPooling1D(data_format="channels_first", keepdims=True).compute_output_shape((2, 3, 7)) == (2, 3, 1)
    with pytest.raises(ValueError, match="data_format: expected one of"):
        rk.GlobalAveragePooling1D(data_format="channels_middle")
    with pytest.raises(TypeError, match="keepdims: expected True or False, got 1"):
        rk.GlobalMaxPooling1D(keepdims=1)
    with pytest.raises(ValueError, match=r"inputs: layer .* expects \(batch, steps, features\), got shape \(2, 3\)"):
        rk.GlobalMaxPooling1D()(torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"mask: layer .* expects a \(batch, steps\) mask of shape \(2, 3\)"):
        rk.GlobalAveragePooling1D()(X, mask=torch.ones(2, 4, dtype=torch.bool))


# ---------------------------------------------------------- LayerNormalization


def _layer_norm(x, axes, gamma, beta, eps):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def test_layer_normalization_by_hand():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5)).astype("float32")
    norm = rk.LayerNormalization(input_shape=(4, 5))
    gamma, beta = rng.normal(size=5).astype("float32"), rng.normal(size=5).astype("float32")
    norm.set_weights([gamma, beta])  # Keras's order: gamma, then beta
    assert [tuple(w.shape) for w in norm.weights] == [(5,), (5,)]
    np.testing.assert_allclose(norm(torch.from_numpy(x)).detach().numpy(), _layer_norm(x, -1, gamma, beta, 1e-3),
                               rtol=1e-5, atol=1e-5)
    both = rk.LayerNormalization(axis=[1, 2], epsilon=0.1, center=False)
    y = both(torch.from_numpy(x))
    assert [tuple(w.shape) for w in both.weights] == [(4, 5)]
    np.testing.assert_allclose(y.detach().numpy(), _layer_norm(x, (1, 2), 1.0, 0.0, 0.1), rtol=1e-5, atol=1e-5)
    assert rk.LayerNormalization(center=False, scale=False)(torch.from_numpy(x)).shape == x.shape


def test_layer_normalization_passes_the_mask_and_keeps_bfloat16():
    assert rk.LayerNormalization.supports_masking
    norm = rk.LayerNormalization(dtype="mixed_bfloat16")
    x = torch.tensor([[[1000.0, 1001.0, 1003.0]]])
    y = norm(x)
    assert y.dtype == torch.bfloat16 and norm.gamma.dtype == torch.float32
    # statistics in float32: bfloat16 would round 1001 to 1000 and lose the spread
    np.testing.assert_allclose(y.detach().float().numpy(), _layer_norm(x.numpy(), -1, 1.0, 0.0, 1e-3), atol=2e-2)


def test_layer_normalization_bad_inputs():
    with pytest.raises(TypeError, match="axis: expected an int or a list of ints, got 'last'"):
        rk.LayerNormalization(axis="last")
    with pytest.raises(ValueError, match="epsilon: expected a number >= 0, got -1"):
        rk.LayerNormalization(epsilon=-1)
    with pytest.raises(TypeError, match="center: expected True or False"):
        rk.LayerNormalization(center="yes")
    with pytest.raises(ValueError, match="axis: layer .* normalizes over 3"):
        rk.LayerNormalization(axis=3)(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="names the batch axis"):
        rk.LayerNormalization(axis=0)(torch.ones(2, 3))
    norm = rk.LayerNormalization(input_shape=(4,))
    with pytest.raises(ValueError, match=r"was built for sizes \(4,\)"):
        norm(torch.ones(2, 5))


# ------------------------------------------------------ Activation, SpatialDropout1D


def test_activation_by_hand():
    np.testing.assert_allclose(rk.Activation("relu")(X).numpy(), X.clamp(min=0).numpy())
    np.testing.assert_allclose(rk.Activation("softmax")(X).numpy(), torch.softmax(X, -1).numpy(), rtol=1e-6)
    assert rk.Activation.supports_masking
    with pytest.raises(ValueError, match="activation: unknown activation 'swishy'"):
        rk.Activation("swishy")
    with pytest.raises(TypeError, match="activation: expected an activation name or a callable, got None"):
        rk.Activation(None)
    with pytest.raises(ValueError, match="custom activation"):
        rk.Activation(torch.sin).get_config()


def test_spatial_dropout_drops_whole_features():
    drop = rk.SpatialDropout1D(0.5, seed=1)
    x = torch.ones(64, 10, 8)
    y = drop(x, training=True)
    per_feature = y[:, :1].expand_as(y)
    assert torch.equal(y, per_feature)  # the same draw at every step
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert 0.4 < (y[:, 0] == 0).float().mean().item() < 0.6
    assert torch.equal(rk.SpatialDropout1D(0.5, seed=1)(x, training=True), y)  # the seed repeats the draws
    assert torch.equal(drop.eval()(x), x)
    assert rk.SpatialDropout1D.supports_masking
    with pytest.raises(ValueError, match=r"rate: expected a float in \[0, 1\), got 1.0"):
        rk.SpatialDropout1D(1.0)
    with pytest.raises(TypeError, match="seed: expected an int or None, got 'a'"):
        rk.SpatialDropout1D(0.1, seed="a")
    with pytest.raises(ValueError, match=r"inputs: layer .* expects \(batch, steps, features\)"):
        rk.SpatialDropout1D(0.1)(torch.ones(2, 3), training=True)


def test_masks_pass_through_the_companions_to_the_average():
    ids = torch.tensor([[3, 1, 0, 0], [2, 4, 1, 0]])
    torch.manual_seed(0)
    model = rk.Sequential([rk.Embedding(5, 3, mask_zero=True), rk.SpatialDropout1D(0.3), rk.LayerNormalization(),
                           rk.Activation("tanh"), rk.Rescaling(2.0), rk.GlobalAveragePooling1D()]).eval()
    steps = rk.Sequential(model.layers[:5]).eval()(ids)
    expected = torch.stack([steps[0, :2].mean(0), steps[1, :3].mean(0)])
    np.testing.assert_allclose(model(ids).detach().numpy(), expected.detach().numpy(), rtol=1e-6)


# ---------------------------------------------------------------- configs

COMPANIONS = [
    rk.GlobalAveragePooling1D(keepdims=True), rk.GlobalMaxPooling1D(data_format="channels_first"),
    rk.LayerNormalization(axis=[1, 2], epsilon=0.01, center=False, input_shape=(4, 3)), rk.Activation("tanh"),
    rk.SpatialDropout1D(0.25, seed=7), rk.GlobalAveragePooling1D(dtype="mixed_bfloat16"),
]


@pytest.mark.parametrize("layer", COMPANIONS, ids=lambda m: m.name)
def test_config_round_trip(layer):
    cfg = layer.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg
    rebuilt = deserialize(serialize(layer))
    assert type(rebuilt) is type(layer) and LAYERS[type(layer).__name__] is type(layer)
    assert rebuilt.get_config() == cfg
    x = torch.randn(2, 4, 3)
    rebuilt.load_state_dict(layer.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x), layer.eval()(x))


def test_run_directory_round_trip(tmp_path):
    model = rk.Sequential([rk.Input((5, 3)), rk.LSTM(4, return_sequences=True),
                           rk.LayerNormalization(axis=[1, 2], center=False), rk.Activation("relu"),
                           rk.SpatialDropout1D(0.1), rk.GlobalMaxPooling1D(keepdims=True), rk.Flatten(), rk.Dense(2)])
    with torch.no_grad():
        model.layers[1].gamma.uniform_(0.5, 1.5)
    rk.save_model(model, tmp_path / "run")
    again = rk.load_model(tmp_path / "run")
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def test_keras_file_round_trip(tmp_path):
    """Written by rnnkit, read by rnnkit (Keras reads them too: the rk_* fixtures of test_functional_keras_file)."""
    ids = rk.Input((None,), dtype="int32", name="ids")
    x = rk.Embedding(9, 3, mask_zero=True, name="embed")(ids)
    x = rk.Rescaling(2.0, 0.5, name="rescale")(rk.LayerNormalization(name="norm")(x))
    model = rk.Model(ids, {"avg": rk.GlobalAveragePooling1D(name="avg")(x),
                           "max": [rk.GlobalMaxPooling1D(keepdims=True, name="max")(x)]})
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        specs = {s["name"]: s for s in json.loads(z.read("config.json"))["config"]["layers"]}
    assert specs["rescale"]["config"]["scale"] == 2.0 and specs["max"]["config"]["keepdims"] is True
    again = rk.load_model(tmp_path / "m.keras")
    xs = np.array([[1, 2, 0], [3, 0, 0]], dtype="int32")
    got, want = again.predict(xs), model.predict(xs)
    assert set(got) == {"avg", "max"} and isinstance(got["max"], list)
    np.testing.assert_array_equal(got["avg"], want["avg"])
    np.testing.assert_array_equal(got["max"][0], want["max"][0])
