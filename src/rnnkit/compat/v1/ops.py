"""TF1's array and math ops on graph tensors: each records one op with its torch function and shape rule.

    y = tf.tanh(tf.matmul(x, W) + b)       # MatMul, Add, Tanh: three ops, shapes (None, 5)
    last = outputs[:, -1]                  # StridedSlice
    loss = tf.reduce_mean(tf.square(y - t))

Shape rules follow TF's: ``None`` (a size known only at run time) meets
``k`` as ``k`` when broadcasting, so ``zeros([128, 128]) + x @ W`` with
``x`` of shape ``(None, 28)`` is ``(128, 128)``. The operators of
``Tensor`` (``+ - * / @ ** [] < >`` and unary ``-``, ``abs``) are set here,
where their ops are: TF1 builds its overloads the same way.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .graph import Tensor, as_dtype, constant, convert_to_tensor, float32, get_default_graph, int32, int64, shape_str
from .initializers import truncated_normal as _draw_truncated_normal


def op(type_, fn, inputs, attrs=None, name=None, shape=None, dtype=None) -> Tensor:
    """Record ``type_`` computing ``fn(*inputs, **attrs)``; its one output has ``shape`` and ``dtype``."""
    recorded = get_default_graph().record_op(
        type_, fn, inputs, attrs, name=name, shapes=[shape], dtypes=[dtype or (inputs[0].dtype if inputs else float32)]
    )
    return recorded.outputs[0]


def _pair(a, b):
    """Both as graph tensors; a Python number takes the other's dtype, as TF1 converts it."""
    if isinstance(a, Tensor) and not isinstance(b, Tensor):
        b = constant(b, dtype=a.dtype, name="y")
    elif isinstance(b, Tensor) and not isinstance(a, Tensor):
        a = constant(a, dtype=b.dtype, name="x")
    else:
        a, b = convert_to_tensor(a), convert_to_tensor(b)
    return a, b


def broadcast_shape(a, b, what: str = "inputs"):
    """Numpy broadcasting with unknown sizes: ``None`` meets ``k`` (k != 1) as ``k``."""
    if a is None or b is None:
        return None
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x == 1:
            out.append(y)
        elif y == 1 or y is None:
            out.append(x)
        elif x is None or x == y:
            out.append(y)
        else:
            raise ValueError(f"{what}: dimensions must be equal, but are {x} and {y} for shapes {shape_str(a)} and {shape_str(b)}")
    return tuple(out)


def _binary(type_, fn, a, b, name, dtype=None):
    a, b = _pair(a, b)
    if a.dtype != b.dtype:
        raise TypeError(f"{type_}: inputs must have one dtype, got {a.dtype} ({a.name}) and {b.dtype} ({b.name}); use tf.cast")
    return op(type_, fn, [a, b], name=name, shape=broadcast_shape(a.shape, b.shape, type_), dtype=dtype or a.dtype)


def add(x, y, name=None):
    return _binary("Add", torch.add, x, y, name)


def subtract(x, y, name=None):
    return _binary("Sub", torch.sub, x, y, name)


def multiply(x, y, name=None):
    return _binary("Mul", torch.mul, x, y, name)


def divide(x, y, name=None):
    return _binary("RealDiv", torch.true_divide, x, y, name)


def pow(x, y, name=None):  # noqa: A001 - TF1's name
    return _binary("Pow", torch.pow, x, y, name)


def maximum(x, y, name=None):
    return _binary("Maximum", torch.maximum, x, y, name)


def minimum(x, y, name=None):
    return _binary("Minimum", torch.minimum, x, y, name)


def _compare(type_, fn):
    def compare(x, y, name=None):
        return _binary(type_, fn, x, y, name, dtype=torch.bool)

    compare.__name__ = type_
    return compare


equal = _compare("Equal", torch.eq)
not_equal = _compare("NotEqual", torch.ne)
less = _compare("Less", torch.lt)
less_equal = _compare("LessEqual", torch.le)
greater = _compare("Greater", torch.gt)
greater_equal = _compare("GreaterEqual", torch.ge)


def _unary(type_, fn):
    """A TF op of one tensor, same shape; ``._torch_fn`` lets cells take it as their activation."""

    def unary(x, name=None):
        x = convert_to_tensor(x)
        return op(type_, fn, [x], name=name, shape=x.shape)

    unary.__name__ = type_.lower()
    unary._torch_fn = fn
    return unary


tanh = _unary("Tanh", torch.tanh)
sigmoid = _unary("Sigmoid", torch.sigmoid)
relu = _unary("Relu", torch.relu)
square = _unary("Square", torch.square)
sqrt = _unary("Sqrt", torch.sqrt)
exp = _unary("Exp", torch.exp)
log = _unary("Log", torch.log)
negative = _unary("Neg", torch.neg)
abs = _unary("Abs", torch.abs)  # noqa: A001 - TF1's name
identity = _unary("Identity", lambda x: x)
elu = _unary("Elu", F.elu)
softplus = _unary("Softplus", F.softplus)


def softmax(logits, axis=-1, name=None):
    logits = convert_to_tensor(logits)
    return op("Softmax", lambda x, axis: torch.softmax(x, axis), [logits], {"axis": axis}, name=name, shape=logits.shape)


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    t = convert_to_tensor(t)
    return op("ClipByValue", lambda x, lo, hi: x.clamp(lo, hi), [t], {"lo": clip_value_min, "hi": clip_value_max},
              name=name, shape=t.shape)


# ------------------------------------------------------------------ matmul


def _matmul_shape(a, b, ta, tb):
    if a is None or b is None:
        return None
    if len(a) < 2 or len(b) != 2:
        raise ValueError(f"MatMul: expected a (..., n) @ (n, m) product, got shapes {shape_str(a)} and {shape_str(b)}")
    a = (*a[:-2], a[-1], a[-2]) if ta else tuple(a)
    n, m = (b[1], b[0]) if tb else b
    if a[-1] is not None and n is not None and a[-1] != n:
        raise ValueError(f"MatMul: dimensions must be equal, but are {a[-1]} and {n} for shapes {shape_str(a)} and {shape_str(b)}")
    return (*a[:-1], m)


def _matmul(a, b, transpose_a, transpose_b):
    return (a.transpose(-1, -2) if transpose_a else a) @ (b.transpose(-1, -2) if transpose_b else b)


def matmul(a, b, transpose_a=False, transpose_b=False, name=None):
    """``a @ b`` for 2-D ``b``; ``a`` may have leading batch axes."""
    a, b = _pair(a, b)
    shape = _matmul_shape(a.shape, b.shape, transpose_a, transpose_b)
    return op("MatMul", _matmul, [a, b], {"transpose_a": transpose_a, "transpose_b": transpose_b}, name=name, shape=shape)


# ----------------------------------------------------------- array shapes


def _axis(axis, rank, what):
    if rank is None:
        return axis
    if not -rank <= axis < rank:
        raise ValueError(f"{what}: axis {axis} is out of range for rank {rank}")
    return axis % rank


def transpose(a, perm=None, name="transpose"):
    a = convert_to_tensor(a)
    if perm is None:
        if a.shape is None:
            raise ValueError(f"perm: {a.name} has an unknown rank; pass perm")
        perm = list(range(len(a.shape)))[::-1]
    perm = [int(p) for p in perm]
    if a.shape is not None and sorted(perm) != list(range(len(a.shape))):
        raise ValueError(f"perm: expected a permutation of {list(range(len(a.shape)))}, got {perm}")
    shape = None if a.shape is None else tuple(a.shape[p] for p in perm)
    return op("Transpose", lambda x, perm: x.permute(perm), [a], {"perm": perm}, name=name, shape=shape)


def reshape(tensor, shape, name=None):
    """``shape``: a list of ints, one of them ``-1`` (inferred)."""
    tensor = convert_to_tensor(tensor)
    if isinstance(shape, Tensor):
        raise TypeError("shape: rnnkit's reshape takes a list of ints (a shape computed in the graph is not supported)")
    shape = [int(d) for d in shape]
    known = tensor.shape is not None and all(d is not None for d in tensor.shape)
    out = tuple(None if d == -1 else d for d in shape)
    if -1 in shape and known:
        rest = int(np.prod([d for d in shape if d != -1]))
        total = int(np.prod(tensor.shape))
        if rest == 0 or total % rest:
            raise ValueError(f"shape: cannot reshape {shape_str(tensor.shape)} into {shape}")
        out = tuple(total // rest if d == -1 else d for d in shape)
    elif known and int(np.prod(shape)) != int(np.prod(tensor.shape)):
        raise ValueError(f"shape: cannot reshape {shape_str(tensor.shape)} ({int(np.prod(tensor.shape))} values) into {shape}")
    return op("Reshape", lambda x, shape: x.reshape(shape), [tensor], {"shape": shape}, name=name, shape=out)


def _same_shapes(shapes, what):
    """The shapes merged (a known size wins over None); None if any rank is unknown."""
    out = shapes[0]
    for s in shapes[1:]:
        if out is None or s is None:
            return None
        if len(s) != len(out):
            raise ValueError(f"{what}: inputs of different ranks {shape_str(out)} and {shape_str(s)}")
        out = tuple(a if b is None else b for a, b in zip(out, s))
    return out


def stack(values, axis=0, name="stack"):
    values = [convert_to_tensor(v) for v in values]
    if not values:
        raise ValueError("values: stack needs at least one tensor")
    base = _same_shapes([v.shape for v in values], "stack")
    shape = None
    if base is not None:
        axis = _axis(axis, len(base) + 1, "stack")
        shape = (*base[:axis], len(values), *base[axis:])
    return op("Pack", lambda *xs, axis: torch.stack(xs, axis), values, {"axis": axis}, name=name, shape=shape)


def unstack(value, num=None, axis=0, name="unstack"):
    """The tensors along ``axis``: a list of ``num`` (default: the axis's size, which must be known)."""
    value = convert_to_tensor(value)
    if value.shape is None and num is None:
        raise ValueError(f"num: {value.name} has an unknown rank; pass num")
    axis = _axis(axis, None if value.shape is None else len(value.shape), "unstack")
    n = num if num is not None else value.shape[axis]
    if n is None:
        raise ValueError(f"num: cannot infer the number of tensors from {value.name}'s shape {shape_str(value.shape)}; pass num")
    shape = None if value.shape is None else tuple(d for i, d in enumerate(value.shape) if i != axis)
    recorded = get_default_graph().record_op(
        "Unpack", lambda x, axis: x.unbind(axis), [value], {"axis": axis}, name=name,
        shapes=[shape] * n, dtypes=[value.dtype] * n, n_out=n,
    )
    return list(recorded.outputs)


def concat(values, axis, name="concat"):
    values = [convert_to_tensor(v) for v in values]
    if not values:
        raise ValueError("values: concat needs at least one tensor")
    shape = None
    if all(v.shape is not None for v in values):
        rank = len(values[0].shape)
        axis = _axis(axis, rank, "concat")
        sizes = [v.shape[axis] for v in values]
        rest = _same_shapes([tuple(d for i, d in enumerate(v.shape) if i != axis) for v in values], "concat")
        if rest is not None:
            total = None if None in sizes else sum(sizes)
            shape = (*rest[:axis], total, *rest[axis:])
    return op("ConcatV2", lambda *xs, axis: torch.cat(xs, axis), values, {"axis": axis}, name=name, shape=shape)


def expand_dims(input, axis, name=None):  # noqa: A002 - TF1's name
    input = convert_to_tensor(input)
    shape = None
    if input.shape is not None:
        axis = _axis(axis, len(input.shape) + 1, "expand_dims")
        shape = (*input.shape[:axis], 1, *input.shape[axis:])
    return op("ExpandDims", lambda x, axis: x.unsqueeze(axis), [input], {"axis": axis}, name=name, shape=shape)


def squeeze(input, axis=None, name=None):  # noqa: A002
    input = convert_to_tensor(input)
    axes = None if axis is None else [axis] if isinstance(axis, int) else list(axis)
    if input.shape is None:
        shape = None
    else:
        rank = len(input.shape)
        if axes is None:
            if None in input.shape:
                raise ValueError(f"axis: {input.name} has unknown sizes {shape_str(input.shape)}; name the axes to squeeze")
            axes = [i for i, d in enumerate(input.shape) if d == 1]
        axes = [_axis(a, rank, "squeeze") for a in axes]
        shape = tuple(d for i, d in enumerate(input.shape) if i not in axes)

    def run(x, axes):
        for a in sorted(axes, reverse=True):
            x = x.squeeze(a)
        return x

    return op("Squeeze", run, [input], {"axes": axes}, name=name, shape=shape)


# ----------------------------------------------------------------- slicing


def _slice_shape(shape, key):
    if shape is None:
        return None
    if sum(k is Ellipsis for k in key) > 1:
        raise ValueError("key: an index can have only one Ellipsis (...)")
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    if used > len(shape):
        raise ValueError(f"key: too many indices ({used}) for a tensor of shape {shape_str(shape)}")
    if Ellipsis in key:
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - used) + key[i + 1 :]
    out, d = [], 0
    for k in key:
        if k is None:
            out.append(1)
            continue
        size = shape[d]
        d += 1
        if isinstance(k, slice):
            out.append(None if size is None and k != slice(None) else (size if size is None else len(range(size)[k])))
        elif size is not None and not -size <= k < size:
            raise ValueError(f"key: index {k} is out of bounds for size {size} (shape {shape_str(shape)})")
    return (*out, *shape[d:])


def _check_key(key):
    key = key if isinstance(key, tuple) else (key,)
    for k in key:
        ok = k is None or k is Ellipsis or isinstance(k, (int, np.integer)) and not isinstance(k, bool)
        if isinstance(k, slice):
            ok = all(v is None or isinstance(v, (int, np.integer)) for v in (k.start, k.stop, k.step))
            if k.step is not None and k.step <= 0:
                raise ValueError(f"key: only positive slice steps are supported, got {k.step}")
        if not ok:
            raise TypeError(
                f"key: expected ints, slices of ints, None or ..., got {type(k).__name__} {k!r}"
                " (indexing with a graph tensor is not supported; use tf.gather-free code such as tf.unstack)"
            )
    return tuple(int(k) if isinstance(k, np.integer) else k for k in key)


def _get(x, key):
    return x[key]


def getitem(tensor, key, name="strided_slice"):
    """``tensor[key]``: ints, slices, ``None`` (a new axis) and ``...``, as numpy."""
    key = _check_key(key)
    return op("StridedSlice", _get, [tensor], {"key": key}, name=name, shape=_slice_shape(tensor.shape, key))


def strided_slice(input_, begin, end, strides=None, name=None):
    """``input_[begin[0]:end[0]:strides[0], ...]`` (TF1's masks are not supported)."""
    input_ = convert_to_tensor(input_)
    strides = strides or [1] * len(begin)
    if not len(begin) == len(end) == len(strides):
        raise ValueError(f"begin, end, strides: expected one length, got {len(begin)}, {len(end)}, {len(strides)}")
    key = tuple(slice(int(b), int(e), int(s)) for b, e, s in zip(begin, end, strides))
    return getitem(input_, key, name=name or "strided_slice")


# -------------------------------------------------------------- reductions


def _reduce(type_, fn):
    def reduce(input_tensor, axis=None, keepdims=None, name=None, reduction_indices=None, keep_dims=None):
        x = convert_to_tensor(input_tensor)
        axis = reduction_indices if axis is None else axis
        keep = bool(keepdims or keep_dims)
        axes = None if axis is None else [axis] if isinstance(axis, int) else [int(a) for a in axis]
        if x.shape is None:
            shape = None
        else:
            rank = len(x.shape)
            axes_n = list(range(rank)) if axes is None else [_axis(a, rank, type_) for a in axes]
            shape = tuple(1 if i in axes_n else d for i, d in enumerate(x.shape) if keep or i not in axes_n)
        return op(type_, fn, [x], {"axes": axes, "keep": keep}, name=name, shape=shape)

    reduce.__name__ = type_
    return reduce


def _mean(x, axes, keep):
    if not (x.is_floating_point() or x.is_complex()):  # TF's integer mean truncates
        return _mean(x.double(), axes, keep).trunc().to(x.dtype)
    return x.mean() if axes is None and not keep else x.mean(dim=axes if axes is not None else list(range(x.dim())), keepdim=keep)


def _sum(x, axes, keep):
    return x.sum() if axes is None and not keep else x.sum(dim=axes if axes is not None else list(range(x.dim())), keepdim=keep)


def _amax(x, axes, keep):
    return x.amax(dim=axes if axes is not None else list(range(x.dim())), keepdim=keep)


def _amin(x, axes, keep):
    return x.amin(dim=axes if axes is not None else list(range(x.dim())), keepdim=keep)


reduce_mean = _reduce("Mean", _mean)
reduce_sum = _reduce("Sum", _sum)
reduce_max = _reduce("Max", _amax)
reduce_min = _reduce("Min", _amin)


def argmax(input, axis=None, name=None, dimension=None, output_type=int64):  # noqa: A002 - TF1's names
    """The index of the largest value along ``axis`` (TF1's default axis 0), as int64."""
    x = convert_to_tensor(input)
    axis = dimension if axis is None else axis
    axis = 0 if axis is None else int(axis)
    shape = None if x.shape is None else tuple(d for i, d in enumerate(x.shape) if i != _axis(axis, len(x.shape), "argmax"))
    out = as_dtype(output_type)
    return op("ArgMax", lambda v, axis, out: v.argmax(axis).to(out), [x], {"axis": axis, "out": out}, name=name,
              shape=shape, dtype=out)


def argmin(input, axis=None, name=None, dimension=None, output_type=int64):  # noqa: A002
    x = convert_to_tensor(input)
    axis = dimension if axis is None else axis
    axis = 0 if axis is None else int(axis)
    shape = None if x.shape is None else tuple(d for i, d in enumerate(x.shape) if i != _axis(axis, len(x.shape), "argmin"))
    out = as_dtype(output_type)
    return op("ArgMin", lambda v, axis, out: v.argmin(axis).to(out), [x], {"axis": axis, "out": out}, name=name,
              shape=shape, dtype=out)


def cast(x, dtype, name=None):
    x = convert_to_tensor(x)
    dtype = as_dtype(dtype)
    return op("Cast", lambda v, dtype: v.to(dtype), [x], {"dtype": dtype}, name=name, shape=x.shape, dtype=dtype)


# ------------------------------------------------------------- generators


def _shape_arg(shape, what):
    if isinstance(shape, Tensor) or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
        raise TypeError(f"shape: {what} takes a list of non-negative ints, got {shape!r}")
    return tuple(int(d) for d in shape)


def zeros(shape, dtype=float32, name="zeros"):
    shape, dtype = _shape_arg(shape, "zeros"), as_dtype(dtype)
    return op("Zeros", lambda shape, dtype: torch.zeros(shape, dtype=dtype), [], {"shape": shape, "dtype": dtype},
              name=name, shape=shape, dtype=dtype)


def ones(shape, dtype=float32, name="ones"):
    shape, dtype = _shape_arg(shape, "ones"), as_dtype(dtype)
    return op("Ones", lambda shape, dtype: torch.ones(shape, dtype=dtype), [], {"shape": shape, "dtype": dtype},
              name=name, shape=shape, dtype=dtype)


def zeros_like(tensor, dtype=None, name="zeros_like"):
    tensor = convert_to_tensor(tensor)
    dtype = tensor.dtype if dtype is None else as_dtype(dtype)
    return op("ZerosLike", lambda x, dtype: torch.zeros_like(x, dtype=dtype), [tensor], {"dtype": dtype}, name=name,
              shape=tensor.shape, dtype=dtype)


def ones_like(tensor, dtype=None, name="ones_like"):
    tensor = convert_to_tensor(tensor)
    dtype = tensor.dtype if dtype is None else as_dtype(dtype)
    return op("OnesLike", lambda x, dtype: torch.ones_like(x, dtype=dtype), [tensor], {"dtype": dtype}, name=name,
              shape=tensor.shape, dtype=dtype)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None, name="truncated_normal"):  # noqa: ARG001
    """Normal draws within two standard deviations of the mean, drawn again at each run (torch's global RNG)."""
    shape, dtype = _shape_arg(shape, "truncated_normal"), as_dtype(dtype)
    return op("TruncatedNormal", lambda shape, mean, std, dtype: _draw_truncated_normal(shape, mean, std, dtype), [],
              {"shape": shape, "mean": mean, "std": stddev, "dtype": dtype}, name=name, shape=shape, dtype=dtype)


def random_normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None, name="random_normal"):  # noqa: ARG001
    shape, dtype = _shape_arg(shape, "random_normal"), as_dtype(dtype)
    return op("RandomStandardNormal", lambda shape, mean, std, dtype: torch.randn(shape, dtype=dtype) * std + mean, [],
              {"shape": shape, "mean": mean, "std": stddev, "dtype": dtype}, name=name, shape=shape, dtype=dtype)


def random_uniform(shape, minval=0.0, maxval=1.0, dtype=float32, seed=None, name="random_uniform"):  # noqa: ARG001
    shape, dtype = _shape_arg(shape, "random_uniform"), as_dtype(dtype)
    return op("RandomUniform", lambda shape, lo, hi, dtype: torch.rand(shape, dtype=dtype) * (hi - lo) + lo, [],
              {"shape": shape, "lo": minval, "hi": maxval, "dtype": dtype}, name=name, shape=shape, dtype=dtype)


# ---------------------------------------------------------------- the nn ops


def sparse_softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, name=None):
    """Per-row ``-log softmax(logits)[label]``: labels (batch,) integer classes, logits (batch, classes)."""
    if _sentinel is not None or labels is None or logits is None:
        raise ValueError("sparse_softmax_cross_entropy_with_logits: pass labels= and logits= by name (TF1's rule)")
    labels, logits = convert_to_tensor(labels), convert_to_tensor(logits)
    if labels.dtype not in (int32, int64):
        raise TypeError(f"labels: expected int32 or int64 class indices, got {labels.dtype}")
    return op("SparseSoftmaxCrossEntropyWithLogits", lambda y, z: F.cross_entropy(z, y.long(), reduction="none"),
              [labels, logits], name=name, shape=labels.shape, dtype=logits.dtype)


def _soft_xent(y, z, axis):
    return -(y * torch.log_softmax(z, axis)).sum(axis)


def softmax_cross_entropy_with_logits_v2(_sentinel=None, labels=None, logits=None, axis=-1, name=None, dim=None):
    """Per-row ``-sum(labels * log softmax(logits))``: labels are probabilities (one-hot rows)."""
    if _sentinel is not None or labels is None or logits is None:
        raise ValueError("softmax_cross_entropy_with_logits: pass labels= and logits= by name (TF1's rule)")
    labels, logits = _pair(labels, logits)
    axis = axis if dim is None else dim
    shape = None if logits.shape is None else tuple(d for i, d in enumerate(logits.shape) if i != axis % len(logits.shape))
    return op("SoftmaxCrossEntropyWithLogits", _soft_xent, [labels, logits], {"axis": axis}, name=name, shape=shape)


def _in_top_k(pred, target, k):
    # TF's rule: a class tied with the k-th value counts as in the top k.
    at_target = pred.gather(1, target.long().unsqueeze(1))
    return (pred > at_target).sum(1) < k


def in_top_k(predictions, targets, k, name=None):
    """Whether each row's target class is among its ``k`` largest predictions (bool, (batch,))."""
    predictions, targets = convert_to_tensor(predictions), convert_to_tensor(targets)
    return op("InTopKV2", _in_top_k, [predictions, targets], {"k": int(k)}, name=name, shape=targets.shape, dtype=torch.bool)


def dropout(x, keep_prob=None, noise_shape=None, seed=None, name=None, rate=None):  # noqa: ARG001
    """Keep each value with probability ``keep_prob`` (scaled by 1/keep_prob); TF1 drops at every run."""
    x = convert_to_tensor(x)
    keep = 1.0 - rate if keep_prob is None and rate is not None else keep_prob
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0.0 < keep <= 1.0:
        raise ValueError(f"keep_prob: expected a number in (0, 1], got {keep!r}")
    return op("Dropout", lambda v, keep: v * (torch.rand_like(v) < keep) / keep, [x], {"keep": float(keep)}, name=name,
              shape=x.shape)


# ------------------------------------------------------- Tensor operators

Tensor.__add__ = lambda a, b: add(a, b)
Tensor.__radd__ = lambda a, b: add(b, a)
Tensor.__sub__ = lambda a, b: subtract(a, b)
Tensor.__rsub__ = lambda a, b: subtract(b, a)
Tensor.__mul__ = lambda a, b: multiply(a, b)
Tensor.__rmul__ = lambda a, b: multiply(b, a)
Tensor.__truediv__ = lambda a, b: divide(a, b)
Tensor.__rtruediv__ = lambda a, b: divide(b, a)
Tensor.__matmul__ = lambda a, b: matmul(a, b)
Tensor.__rmatmul__ = lambda a, b: matmul(b, a)
Tensor.__pow__ = lambda a, b: pow(a, b)
Tensor.__neg__ = lambda a: negative(a)
Tensor.__abs__ = lambda a: abs(a)
Tensor.__lt__ = lambda a, b: less(a, b)
Tensor.__le__ = lambda a, b: less_equal(a, b)
Tensor.__gt__ = lambda a, b: greater(a, b)
Tensor.__ge__ = lambda a, b: greater_equal(a, b)
Tensor.__getitem__ = lambda a, key: getitem(a, key)
