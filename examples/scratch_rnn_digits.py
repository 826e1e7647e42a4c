"""Seed 004, translated: an RNN written from scratch, trained row by row.

The seed writes ``h_t = tanh(h_{t-1} Wh + x_t Wx + b)`` by hand and scans it
over time with ``tf.scan``. Here the same cell is a plain ``torch.nn.Module``
and ``rk.RNN`` owns the loop. It runs on scikit-learn's bundled 8x8 digits
(8 rows of 8 pixels, no download) with RMSProp, logging loss and accuracy as
the seed does. Run: ``.venv/bin/python examples/scratch_rnn_digits.py``.
"""

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import rnnkit as rk


class ScratchCell(nn.Module):
    """The seed's ``rnn_step``: one time step with weights Wx, Wh and bias b."""

    def __init__(self, element_size: int, hidden_size: int):
        super().__init__()
        self.state_size = hidden_size
        self.Wx = nn.Parameter(torch.randn(element_size, hidden_size) * 0.1)
        self.Wh = nn.Parameter(torch.eye(hidden_size))  # identity start keeps early gradients alive
        self.b = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, x, h):
        h = torch.tanh(h @ self.Wh + x @ self.Wx + self.b)
        return h, h


def main(steps: int = 600, batch_size: int = 64, seed: int = 0) -> float:
    torch.manual_seed(seed)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)  # (n, 8 rows, 8 pixels) in [0, 1]
    y = digits.target
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    train, test = order[:1500], order[1500:]

    rnn = rk.RNN(ScratchCell(element_size=8, hidden_size=64))  # the last hidden state, as in the seed
    head = nn.Linear(64, 10)
    params = list(rnn.parameters()) + list(head.parameters())
    optimizer = torch.optim.RMSprop(params, lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    for i in range(steps):
        idx = torch.from_numpy(rng.choice(train, batch_size, replace=False))
        logits = head(rnn(xt[idx]))
        loss = nn.functional.cross_entropy(logits, yt[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i % 100 == 0:
            acc = (logits.argmax(1) == yt[idx]).float().mean().item()
            print(f"Iter {i}, Minibatch Loss = {loss.item():.6f}, Training Accuracy = {100 * acc:.5f}")

    with torch.no_grad():
        test_idx = torch.from_numpy(test)
        acc = (head(rnn(xt[test_idx])).argmax(1) == yt[test_idx]).float().mean().item()
    print(f"Test Accuracy: {100 * acc:.2f}  (kernel: {rnn.kernel_used}, because {rnn.kernel_reason})")
    return acc


if __name__ == "__main__":
    main()
