"""Keras's ``lstm_seq2seq`` (character-level encoder-decoder), with ``rk.Input`` and ``rk.Model``.

The task is generated, so nothing is downloaded: reverse a short string of
letters ("cabd" -> "dbac"). As in the Keras example, characters are one-hot,
the decoder is trained with teacher forcing (its input is the target shifted
right, starting with "\\t"), and inference builds an encoder model and a
one-step decoder model from the trained layers, then decodes greedily until
"\\n". The encoder inputs are right-padded with zero vectors, which
``Masking`` turns into a mask the encoder LSTM reads, so its state is the one
after the last real character. Run: ``.venv/bin/python examples/seq2seq_chars.py``.
"""

import time

import numpy as np
import torch

import rnnkit as rk

LETTERS = "abcdefgh"
START, END = "\t", "\n"


def make_pairs(n: int, rng: np.random.Generator, max_len: int = 8) -> list[tuple[str, str]]:
    words = ["".join(rng.choice(list(LETTERS), size=rng.integers(1, max_len + 1))) for _ in range(n)]
    return [(w, w[::-1]) for w in words]


def one_hot(texts: list[str], chars: str, steps: int) -> np.ndarray:
    index = {c: i for i, c in enumerate(chars)}
    out = np.zeros((len(texts), steps, len(chars)), dtype=np.float32)
    for i, text in enumerate(texts):
        for t, c in enumerate(text):
            out[i, t, index[c]] = 1.0
    return out


def build(n_in: int, n_out: int, latent_dim: int):
    """The training model and the layers inference reuses (Keras's lstm_seq2seq, layer for layer)."""
    encoder_inputs = rk.Input(shape=(None, n_in))
    masked = rk.Masking()(encoder_inputs)
    _, state_h, state_c = rk.LSTM(latent_dim, return_state=True)(masked)
    encoder_states = [state_h, state_c]

    decoder_inputs = rk.Input(shape=(None, n_out))
    decoder_lstm = rk.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = rk.Dense(n_out, activation="softmax")
    model = rk.Model([encoder_inputs, decoder_inputs], decoder_dense(decoder_outputs))

    # Inference: the same layers, wired for one decoder step at a time.
    encoder_model = rk.Model(encoder_inputs, encoder_states)
    state_inputs = [rk.Input(shape=(latent_dim,)), rk.Input(shape=(latent_dim,))]
    step_outputs, h, c = decoder_lstm(decoder_inputs, initial_state=state_inputs)
    decoder_model = rk.Model([decoder_inputs, *state_inputs], [decoder_dense(step_outputs), h, c])
    return model, encoder_model, decoder_model


def decode(encoder_model, decoder_model, x: np.ndarray, target_chars: str, max_steps: int) -> list[str]:
    """Greedy decoding of a whole batch: feed back the most likely character until "\\n"."""
    with torch.no_grad():
        states = encoder_model(torch.from_numpy(x))
        token = torch.zeros(len(x), 1, len(target_chars))
        token[:, 0, target_chars.index(START)] = 1.0
        picked = []
        for _ in range(max_steps):
            probs, *states = decoder_model([token, *states])
            best = probs[:, -1].argmax(-1)
            picked.append(best)
            token = torch.nn.functional.one_hot(best, len(target_chars)).float()[:, None]
    texts = []
    for row in torch.stack(picked, 1).tolist():
        text = "".join(target_chars[i] for i in row)
        texts.append(text.split(END)[0])
    return texts


def main(n_train: int = 6000, n_test: int = 500, epochs: int = 12, latent_dim: int = 96, seed: int = 0,
         verbose: int = 0) -> float:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train, test = make_pairs(n_train, rng), make_pairs(n_test, rng)
    input_chars, target_chars = LETTERS, LETTERS + START + END
    enc_steps = max(len(a) for a, _ in train + test)
    dec_steps = enc_steps + 2

    targets = [START + b + END for _, b in train]
    encoder_input = one_hot([a for a, _ in train], input_chars, enc_steps)
    decoder_input = one_hot([t[:-1] for t in targets], target_chars, dec_steps - 1)
    decoder_target = one_hot([t[1:] for t in targets], target_chars, dec_steps - 1)  # one step ahead

    model, encoder_model, decoder_model = build(len(input_chars), len(target_chars), latent_dim)
    if verbose:
        model.summary()
    model.compile("adam", "categorical_crossentropy", ["accuracy"], learning_rate=3e-3, clipnorm=1.0)
    start = time.perf_counter()
    history = model.fit([encoder_input, decoder_input], decoder_target, batch_size=64, epochs=epochs,
                        validation_split=0.1, verbose=verbose)
    seconds = time.perf_counter() - start

    model.eval()
    decoded = decode(encoder_model, decoder_model, one_hot([a for a, _ in test], input_chars, enc_steps),
                     target_chars, dec_steps)
    accuracy = float(np.mean([d == b for d, (_, b) in zip(decoded, test)]))
    for (a, b), d in list(zip(test, decoded))[:5]:
        print(f"{a!r:10} -> {d!r:10} (want {b!r})")
    print(f"val_loss {history.history['val_loss'][-1]:.4f}; exact-match accuracy on {n_test} unseen strings: "
          f"{accuracy:.3f}; training {seconds:.1f}s")
    print(rk.explain(model))
    return accuracy


if __name__ == "__main__":
    torch.set_num_threads(1)  # small matrices: a second thread costs more than it gives on a busy 2-core machine
    main(verbose=2)
