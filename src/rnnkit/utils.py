"""Keras's data utilities: ``pad_sequences``.

    ids = pad_sequences([[3, 1], [4, 1, 5, 9]])        # [[0, 0, 3, 1], [4, 1, 5, 9]]
"""

from __future__ import annotations

import numpy as np

__all__ = ["pad_sequences"]


def pad_sequences(sequences, maxlen: int | None = None, dtype="int32", padding: str = "pre",
                  truncating: str = "pre", value=0.0) -> np.ndarray:
    """Lists of varying length -> one array (samples, maxlen), as ``keras.utils.pad_sequences``.

    sequences: a list of sequences (lists or arrays); each item may itself be
        an array (then the result is (samples, maxlen, *item_shape)).
    maxlen: the length to pad or cut to; None = the longest sequence.
    padding / truncating: "pre" pads or cuts at the start, "post" at the end.
    value: the padding value (cast to ``dtype``).

    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2, padding="post")
    array([[2, 3],
           [4, 0]], dtype=int32)
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"sequences: expected a list of sequences, got {type(sequences).__name__}")
    for arg, v in (("padding", padding), ("truncating", truncating)):
        if v not in ("pre", "post"):
            raise ValueError(f"{arg}: expected 'pre' or 'post', got {v!r}")
    if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0):
        raise ValueError(f"maxlen: expected an integer >= 0 or None, got {maxlen!r}")
    lengths, item_shape = [], None
    for i, s in enumerate(sequences):
        if not hasattr(s, "__len__"):
            raise ValueError(f"sequences[{i}]: expected a sequence (list or array), got {type(s).__name__} {s!r}")
        lengths.append(len(s))
        if item_shape is None and len(s):
            item_shape = np.asarray(s).shape[1:]  # the shape of one step, from the first non-empty sequence
    maxlen = max(lengths, default=0) if maxlen is None else int(maxlen)
    is_text = np.issubdtype(np.dtype(dtype), np.str_) or np.issubdtype(np.dtype(dtype), np.object_)
    if isinstance(value, str) and not is_text:
        raise ValueError(f"value: a string padding value needs dtype str or object, got dtype {dtype!r}")
    out = np.full((len(sequences), maxlen, *(item_shape or ())), value, dtype=dtype)
    for i, s in enumerate(sequences):
        if not len(s) or not maxlen:
            continue
        steps = np.asarray(s, dtype=dtype)
        steps = steps[-maxlen:] if truncating == "pre" else steps[:maxlen]
        if steps.shape[1:] != tuple(item_shape):
            raise ValueError(f"sequences[{i}]: steps of shape {steps.shape[1:]} differ from the first sequence's {item_shape}")
        if padding == "post":
            out[i, :len(steps)] = steps
        else:
            out[i, -len(steps):] = steps
    return out
