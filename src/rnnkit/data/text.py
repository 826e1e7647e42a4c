"""A character-level language model (char-rnn) and sampling from it.

``data=PATH`` trains on a UTF-8 text file. Without it the corpus is built
on the fly from the docstrings of the installed Python standard library
(read with ``ast``, never executed), so nothing has to be shipped or
downloaded. Training pairs are 64-character chunks and the same chunk
shifted by one character; the model predicts the next character at every
step.
"""

from __future__ import annotations

import ast
import sysconfig
from pathlib import Path

import numpy as np
import torch

from .stepping import ModelStepper
from .task import SampleOptions, Task, TaskSpec

SEQ_LEN = 64
DEFAULT_CHARS = 200_000  # enough text for a visible result; more only slows the reference loop
PRESETS = {"cell": "gru", "units": 256, "epochs": 10, "batch_size": 64, "lr": 3e-3}


def stdlib_docstrings(limit: int = DEFAULT_CHARS) -> str:
    """Docstrings of the standard library's top-level modules (sorted, so the corpus is repeatable)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, size = [], 0
    for path in sorted(root.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue  # a file this Python cannot parse is simply not part of the corpus
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and doc.isascii():
                    parts.append(doc.strip() + "\n\n")
                    size += len(parts[-1])
                    if size >= limit:
                        return "".join(parts)[:limit]
    if not parts:
        raise ValueError(f"data: no docstrings found under {root}; pass a text file with --data")
    return "".join(parts)


def read_text(path) -> str:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data: {path} does not exist or is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"data: {path} is not readable UTF-8 text ({e})") from None
    if len(text) < SEQ_LEN + 2:
        raise ValueError(f"data: {path} holds {len(text)} characters; a language model needs at least {SEQ_LEN + 2}")
    return text


def load(data=None, seed: int = 0) -> Task:  # noqa: ARG001 - chunks are fixed; fit shuffles them
    text = stdlib_docstrings() if data is None else read_text(data)
    vocab = "".join(sorted(set(text)))
    ids = _encode(text, vocab)
    n = (len(ids) - 1) // SEQ_LEN
    x = ids[: n * SEQ_LEN].reshape(n, SEQ_LEN)
    y = ids[1 : n * SEQ_LEN + 1].reshape(n, SEQ_LEN)
    n_test = max(1, n // 20)  # the last 5% of the text
    return Task(
        name="text", x_train=x[:-n_test], y_train=y[:-n_test], x_test=x[-n_test:], y_test=y[-n_test:],
        loss="sparse_categorical_crossentropy", metrics=["accuracy"], output_units=len(vocab),
        output_activation="softmax", sequence_output=True, vocab_size=len(vocab),
        presets=dict(PRESETS),
        info={"vocab": vocab, "source": "stdlib docstrings" if data is None else Path(data).name},
    )


def _encode(text: str, vocab: str) -> np.ndarray:
    table = {c: i for i, c in enumerate(vocab)}
    unknown = sorted(set(text) - set(table))
    if unknown:
        raise ValueError(f"prime: characters {unknown[:10]} are not in the model's vocabulary")
    return np.array([table[c] for c in text], dtype=np.int64)


def sample(model, vocab: str, prime: str = "\n", length: int = 200, temperature: float = 1.0,
           seed: int | None = None) -> str:
    """Generate ``length`` characters after ``prime``, carrying the recurrent state.

    Each character is drawn from ``softmax(log(p) / temperature)``: below 1
    the likeliest characters dominate, above 1 the choice flattens.
    """
    if not isinstance(temperature, (int, float)) or not temperature >= 1e-3:
        raise ValueError(f"temperature: expected a number >= 0.001, got {temperature!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length: expected an integer >= 1, got {length!r}")
    if not prime:
        raise ValueError("prime: expected at least one character to start from")
    gen = torch.Generator()
    gen.manual_seed(int(torch.seed() if seed is None else seed))
    device = next(model.parameters()).device
    stepper = ModelStepper(model)
    probs = stepper.warm_up(torch.from_numpy(_encode(prime, vocab))[None].to(device))
    out = []
    for _ in range(length):
        logits = torch.log(probs[0].double().clamp_min(1e-12)).cpu() / temperature
        nxt = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))
        out.append(vocab[nxt])
        probs = stepper.step(torch.tensor([nxt], device=device))
    return "".join(out)


def report(task: Task, model, test: dict, run_dir, print_fn) -> dict:  # noqa: ARG001 - no plots of its own
    """Test loss beside character frequencies (a unigram model), and a sample continuing held-out text."""
    freq = np.bincount(task.y_train.ravel(), minlength=task.output_units) / task.y_train.size
    unigram = float(-np.log(np.clip(freq[task.y_test.ravel()], 1e-12, None)).mean())
    print_fn(f"text: test loss {test['loss']:.3f} nats/char vs {unigram:.3f} for character frequencies; "
             f"accuracy {test['accuracy']:.3f}")
    prime = "".join(task.info["vocab"][i] for i in task.x_test[0, :16])  # held-out text to start from
    said = prime + sample(model, task.info["vocab"], prime=prime, length=120, temperature=0.7, seed=0)
    print_fn("sample: " + said)
    return {"baseline": {"unigram_loss": unigram}, "sample": said}


def sample_run(model, info: dict, options: SampleOptions) -> str:
    """``options.length`` characters (default 200) sampled after ``options.prime``."""
    return sample(model, info["vocab"], prime=options.prime, length=options.length or 200,
                  temperature=options.temperature, seed=options.seed)


def show_sample(result: str, options: SampleOptions) -> str:
    return options.prime + result


SPEC = TaskSpec(name="text", load=load, presets=PRESETS, quick={"units": 16, "epochs": 1}, report=report,
                data_help="a UTF-8 text file", sample=sample_run, show_sample=show_sample,
                sample_help={"length": "characters (default 200)", "temperature": "sampling temperature (>= 0.001)",
                             "prime": "the characters to start from", "seed": "sampling seed"})
