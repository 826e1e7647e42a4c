"""Keras's training API for models with several inputs and outputs (``rnnkit.functional.Model``).

``FunctionalTraining`` is ``TrainingMixin`` with ``x`` and ``y`` given per
input and per output: a list in model order or a dict by name, one array
each, or the structure the model was built on (nested dicts and lists). ``compile`` takes ``loss``, ``metrics`` and ``loss_weights`` per output
(one value for all, a list, or a dict by output name)::

    model.compile("adam", {"label": "sparse_categorical_crossentropy", "score": "mse"},
                  metrics={"label": ["accuracy"]}, loss_weights={"label": 1.0, "score": 0.5})
    model.fit({"ids": ids, "side": side}, {"label": y_label, "score": y_score}, epochs=5)
    # logs: loss (the weighted sum), label_loss, score_loss, label_accuracy

With one trained output the logs have Keras's plain names (``loss``,
``accuracy``) and the numbers are ``Sequential``'s. The model provides
``input_names`` and ``output_names``; the training loop is TrainingMixin's,
run on lists: a batch is one tensor per input and per output.
"""

from __future__ import annotations

import torch

from . import graph
from .losses import get_loss, get_metric
from .training import TrainingMixin, _as_data, _is_batches, _to_tensor


class FunctionalTraining(TrainingMixin):
    """``compile``/``fit``/``evaluate``/``predict`` over lists or dicts of inputs and outputs."""

    _heads = None  # per output: (log name, loss, weight, metrics), or None when untrained; set by compile
    input_names: list[str]
    _inputs: object  # the inputs as the model was built on them (a tensor, or lists, tuples, dicts, nested)
    output_names: list[str]
    _outputs: object  # the outputs likewise
    _optional: list[bool]  # per input: may it be None (rk.Input(optional=True))

    def _per_output(self, spec, arg: str) -> list:
        names = self.output_names
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in names]
            if unknown:
                raise ValueError(f"{arg}: unknown output names {unknown}; the outputs are {names}")
            return [spec.get(k) for k in names]
        if isinstance(spec, (list, tuple)):
            if len(spec) != len(names):
                raise ValueError(f"{arg}: expected one entry per output {names}, got {len(spec)}")
            return list(spec)
        return [spec] * len(names)

    def compile(self, optimizer="adam", loss="sparse_categorical_crossentropy", metrics=None, loss_weights=None,
                clipnorm: float | None = None, clipvalue: float | None = None, learning_rate: float | None = None,
                weighted_metrics=None):
        """``Sequential.compile``, per output: ``loss``, ``metrics`` and ``loss_weights`` may be lists or dicts.

        One loss (or one list of metric names) applies to every output; a
        ``None`` loss leaves that output untrained (its ``y`` may be None).
        ``weighted_metrics`` (Keras's) are metrics weighted by ``sample_weight``:
        ``sum(w_i m_i) / sum(w_i)`` over the batch's samples i, logged as
        ``weighted_<name>`` (``<output>_weighted_<name>`` with several losses);
        without sample weights they equal the plain metric. As every log of
        rnnkit's loop, an epoch's value is the batches' values averaged by
        batch size (Keras divides the epoch's weighted sum by its sum of weights).
        """
        losses = [None if s is None else get_loss(_one_loss(s, name))
                  for s, name in zip(self._per_output(loss, "loss"), self.output_names)]
        if all(fn is None for fn in losses):
            raise ValueError("loss: every output's loss is None; give at least one")
        per_metrics = self._metric_lists(metrics, "metrics", len(losses))
        per_weighted = self._metric_lists(weighted_metrics, "weighted_metrics", len(losses))
        weights = [1.0] * len(losses) if loss_weights is None else self._per_output(loss_weights, "loss_weights")
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)):
                raise ValueError(f"loss_weights: expected numbers, got {w!r}")
        prefix = sum(fn is not None for fn in losses) > 1
        heads = []
        for name, fn, w, names, weighted in zip(self.output_names, losses, weights, per_metrics, per_weighted):
            if fn is None:
                heads.append(None)
                continue
            fns = {(f"{name}_{m}" if prefix else m): get_metric(m, fn) for m in names}
            fns.update({(f"{name}_weighted_{m}" if prefix else f"weighted_{m}"): _Weighted(get_metric(m, fn))
                        for m in weighted})
            heads.append((f"{name}_loss" if prefix else None, fn, float(w), fns))
        first = next(fn for fn in losses if fn is not None)
        super().compile(optimizer, first, None, clipnorm=clipnorm, clipvalue=clipvalue, learning_rate=learning_rate)
        self._heads = heads
        self.metric_names = [k for h in heads if h is not None for k in h[3]]

    def _metric_lists(self, metrics, arg: str, n: int) -> list[list[str]]:
        """Per output, its metric names: one list of names applies to every output, else a list or dict per
        output whose entries are a name or a list of names."""
        if isinstance(metrics, str):
            raise TypeError(f"{arg}: expected a list of names, got the string {metrics!r}; write [{metrics!r}]")
        if metrics is None or (isinstance(metrics, (list, tuple)) and all(isinstance(m, str) for m in metrics)):
            return [list(metrics or [])] * n
        return [[names] if isinstance(names, str) else list(names or []) for names in self._per_output(metrics, arg)]

    def _scores(self, y, y_pred, sw=None):
        preds = graph.flat_tensors(y_pred)
        total, out = None, {"loss": None}
        for head, yt, p in zip(self._heads, y, preds):
            if head is None:
                continue
            label, fn, w, metric_fns = head
            value = fn(yt, p) if sw is None else fn(yt, p, sample_weight=sw)  # one weight per sample, every output
            if label is not None:
                out[label] = value
            total = (value if w == 1.0 else w * value) if total is None else total + (value if w == 1.0 else w * value)
            for k, m in metric_fns.items():
                out[k] = m(yt, p, sw) if isinstance(m, _Weighted) else m(yt, p)
        out["loss"] = total
        return out

    def _make_data(self, x, y, arg="x", need_y=True, sample_weight=None):
        if isinstance(x, torch.utils.data.Dataset) or _is_batches(x):
            if len(self.input_names) > 1 or len(self.output_names) > 1:
                raise TypeError(f"{arg}: a model with several inputs or outputs takes arrays (a list or dict per input), "
                                f"not a {type(x).__name__}")
            return _as_data(x, y, arg, need_y, sample_weight)
        xs = self._per_name(x, self.input_names, arg, self._inputs)
        for name, v, optional in zip(self.input_names, xs, self._optional):
            if v is None and not optional:
                raise ValueError(f"{arg}: The input {name!r} is not optional, but None was passed; expected one "
                                 f"array per input {self.input_names}")
        if all(v is None for v in xs):
            raise ValueError(f"{arg}: every input is None; give an array for one at least")
        ys = None
        if need_y:
            if y is None:
                raise ValueError(f"y: targets are required with array {arg}")
            ys = self._per_name(y, self.output_names, "y", self._outputs)
            for name, head, v in zip(self.output_names, self._heads or [], ys):
                if head is not None and v is None:
                    raise ValueError(f"y: output {name!r} has a loss but no targets")
        return _Columns(xs, ys, arg, sample_weight)

    @staticmethod
    def _per_name(data, names, arg, structure):
        """One array per input (output) in model order: from the model's own (nested) structure, a dict by
        name, or a list in order."""
        if graph.is_nested(structure) and not (isinstance(data, dict) and set(data) <= set(names)):
            return graph.flatten_like(structure, data, arg)
        if isinstance(data, dict):
            unknown = [k for k in data if k not in names]
            if unknown:
                raise ValueError(f"{arg}: unknown names {unknown}; expected {names}")
            return [data.get(k) for k in names]
        if len(names) == 1:
            return [data[0] if isinstance(data, (list, tuple)) and len(data) == 1 else data]
        if not isinstance(data, (list, tuple)) or len(data) != len(names):
            got = f"{len(data)} arrays" if isinstance(data, (list, tuple)) else type(data).__name__
            raise ValueError(f"{arg}: expected a list or dict of {len(names)} arrays {names}, got {got}")
        return list(data)

    def _batch_len(self, xb) -> int:
        return len(graph.flat_tensors(xb)[0])  # the first input given (an optional one may be None)

    def _prepare(self, x, y, sw=None, class_weight=None):
        if class_weight is not None:
            raise ValueError("class_weight: not supported for a functional Model; give sample_weight")
        xs = x if isinstance(x, list) else [x]
        ys = None if y is None else (y if isinstance(y, list) else [y])
        dev, dtype = self._device(), self._dtype()
        xs = [None if t is None else t.to(dev).to(dtype) if t.is_floating_point() else t.to(dev) for t in xs]
        sw = None if sw is None else sw.to(device=dev, dtype=dtype)
        if graph.is_nested(self._inputs):  # called with the structure it was built on
            xs = graph.pack_like(self._inputs, xs)
        elif isinstance(self._inputs, dict) and len(xs) > 1:  # a model built on a dict is called with one
            xs = dict(zip(self.input_names, xs))
        return xs, None if ys is None else [None if t is None else t.to(dev) for t in ys], sw

    def _outputs_to_cpu(self, y_pred):
        return graph.map_structure(lambda t: t.cpu(), y_pred, torch.Tensor)

    def _concat_outputs(self, outs):
        first = outs[0]
        if isinstance(first, dict):
            return {k: self._concat_outputs([o[k] for o in outs]) for k in first}
        if isinstance(first, (list, tuple)):
            return [self._concat_outputs(list(parts)) for parts in zip(*outs)]
        return torch.cat(outs).numpy()


class _Weighted:
    """A metric weighted by ``sample_weight`` (Keras's ``weighted_metrics``): ``sum(w_i m_i) / sum(w_i)``.

    ``m_i`` is the metric on sample i alone; without weights, the plain metric.
    """

    def __init__(self, metric):
        self.metric = metric

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            return self.metric(y_true, y_pred)
        w = sample_weight.reshape(len(sample_weight), -1)
        if w.shape[1] != 1:
            raise ValueError(f"sample_weight: weighted_metrics take one weight per sample, got shape "
                             f"{tuple(sample_weight.shape)}")
        per_sample = torch.stack([self.metric(y_true[i:i + 1], y_pred[i:i + 1]) for i in range(len(y_pred))])
        w = w[:, 0].to(per_sample.dtype)
        return (w * per_sample).sum() / w.sum()


def _one_loss(spec, output: str):
    """An output's loss; Keras 3 also takes it wrapped in a one-element list (``["binary_crossentropy"]``)."""
    if isinstance(spec, (list, tuple)):
        if len(spec) != 1:
            raise ValueError(f"loss: output {output!r} takes one loss, got a list of {len(spec)}: {list(spec)!r}")
        return spec[0]
    return spec


class _Columns:
    """Samples as one tensor per input (and per output); a batch is the same rows of each."""

    def __init__(self, xs, ys, arg, sample_weight=None):
        self.xs = [None if v is None else _to_tensor(v, f"{arg}[{i}]") for i, v in enumerate(xs)]  # None: optional
        self.sw = None if sample_weight is None else _to_tensor(sample_weight, "sample_weight")
        self.ys = None if ys is None else [None if v is None else _to_tensor(v, f"y[{i}]") for i, v in enumerate(ys)]
        first = next(i for i, c in enumerate(self.xs) if c is not None)
        n = len(self.xs[first])
        for what, cols in ((arg, self.xs), ("y", self.ys or [])):
            for i, c in enumerate(cols):
                if c is not None and len(c) != n:
                    raise ValueError(f"{what}[{i}]: expected {n} samples like {arg}[{first}], got {len(c)}")
        if self.sw is not None and len(self.sw) != n:
            raise ValueError(f"sample_weight: expected {n} samples like {arg}[{first}], got {len(self.sw)}")
        self.n = n

    def __len__(self):
        return self.n

    def batch(self, idx):
        ys = None if self.ys is None else [None if c is None else c[idx] for c in self.ys]
        return [None if c is None else c[idx] for c in self.xs], ys, None if self.sw is None else self.sw[idx]
