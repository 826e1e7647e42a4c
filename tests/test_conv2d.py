"""Conv2D (Keras's, channels last) against a naive numpy loop, TensorFlow's "same" padding, and gradcheck."""

import numpy as np
import pytest
import torch
from torch.func import functional_call

import rnnkit as rk


def naive_conv(x, k, b, stride, dilation, pads):
    """The definition: a sum over each window, one output pixel at a time."""
    (top, bottom), (left, right) = pads
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw, _, f = k.shape
    h_out = (x.shape[1] - (kh - 1) * dilation[0] - 1) // stride[0] + 1
    w_out = (x.shape[2] - (kw - 1) * dilation[1] - 1) // stride[1] + 1
    y = np.zeros((x.shape[0], h_out, w_out, f))
    for i in range(h_out):
        for j in range(w_out):
            for di in range(kh):
                for dj in range(kw):
                    pixel = x[:, i * stride[0] + di * dilation[0], j * stride[1] + dj * dilation[1], :]
                    y[:, i, j, :] += pixel @ k[di, dj]
    return y + b


@pytest.mark.parametrize("padding, strides, dilation, size, pads", [
    ("valid", (1, 1), (1, 1), (7, 6), ((0, 0), (0, 0))),
    ("valid", (2, 1), (1, 2), (7, 6), ((0, 0), (0, 0))),
    # "same", stride 2 on 7 pixels: ceil(7/2) = 4 outputs need 2 pixels of padding: 1 before, 1 after.
    ("same", (2, 2), (1, 1), (7, 7), ((1, 1), (1, 1))),
    # "same", stride 2 on 6 pixels: 3 outputs need 1 pixel, the odd one after (TensorFlow's rule).
    ("same", (2, 2), (1, 1), (6, 6), ((0, 1), (0, 1))),
])
def test_matches_the_naive_loop(padding, strides, dilation, size, pads):
    torch.manual_seed(0)
    layer = rk.Conv2D(4, 3, strides=strides, padding=padding, dilation_rate=dilation).double()
    x = torch.randn(2, *size, 3, dtype=torch.float64)
    y = layer(x)
    k, b = layer.kernel.detach().numpy(), layer.bias.detach().numpy()
    expected = naive_conv(x.numpy(), k, b, strides, dilation, pads)
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    assert tuple(layer.compute_output_shape(tuple(x.shape))) == tuple(y.shape)


def test_gradients_and_time_distributed():
    layer = rk.Conv2D(2, (2, 3), padding="same", activation="tanh").double()
    x = torch.randn(2, 5, 4, 3, dtype=torch.float64, requires_grad=True)
    layer(x)
    k = layer.kernel.detach().clone().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x, k, b: functional_call(layer, {"kernel": k, "bias": b}, (x,)), (x, k, b))
    video = torch.randn(2, 3, 5, 4, 3, dtype=torch.float64)
    frames = rk.TimeDistributed(layer)(video)
    torch.testing.assert_close(frames[:, 1], layer(video[:, 1]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="padding: expected 'valid' or 'same'"):
        rk.Conv2D(2, 3, padding="causal")
    with pytest.raises(ValueError, match="kernel_size: expected an int or a pair"):
        rk.Conv2D(2, (1, 2, 3))
    with pytest.raises(ValueError, match=r"expects \(batch, height, width, channels\)"):
        rk.Conv2D(2, 3)(torch.zeros(2, 5, 3))
    layer = rk.Conv2D(2, 3)
    assert rk.Conv2D.from_config(layer.get_config()).get_config() == layer.get_config()
