"""rnnkit's fused kernels against PyTorch (and JAX/Keras when installed), in one process.

Workload (issue 5; the seeds' row-by-row MNIST): batch 128, 28 steps, 28
features, 128 units, a dense head (10 classes) on the last output.

* ``train``: one Adam step on cross-entropy, ms per step;
* ``infer``: the forward pass under ``torch.no_grad()``;
* ``floor``: only the matmuls a training step (or a forward) must do, input
  projection hoisted: the bound no kernel can beat at this BLAS speed;
* ``generate``: batch 1, 256 units, one LSTM step at a time with the state
  carried, microseconds per step;
* ``long``: 1,000 steps, batch 32, 256 units: one training step, and the bytes
  autograd saves at 250/500/1,000 steps (linear in steps).

Contenders run in interleaved rounds (every contender once per round, so
machine noise hits all alike); the table shows medians and each one's ratio to
the best PyTorch contender (``nn.RNN/GRU/LSTM`` or the ``nn.*Cell`` loop).

    python benchmarks/bench_rnn.py            # full run, writes benchmarks/results.json
    python benchmarks/bench_rnn.py --quick    # a short run
    python benchmarks/bench_rnn.py --no-optional  # without JAX/Keras even when installed
    python benchmarks/bench_rnn.py --shapes [--compile] [--keras] [--kinds GRU LSTM]  # issue 14's four shapes, fp32/bf16
    python benchmarks/bench_rnn.py --denormal-sweep  # SimpleRNN/LSTM train steps, 125..2,000 steps, flushed or not

The JSON records the CPU model and its AVX-512/BF16/AMX flags. On a shared
machine the milliseconds are noisy: compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import torch
import torch.nn.functional as F
from torch import nn

import rnnkit as rk
from rnnkit.kernels import Stepper
from rnnkit.rnn import explain

BATCH, STEPS, FEATURES, UNITS, CLASSES = 128, 28, 28, 128, 10
KINDS = {"SimpleRNN": (1, nn.RNN, nn.RNNCell), "GRU": (3, nn.GRU, nn.GRUCell), "LSTM": (4, nn.LSTM, nn.LSTMCell)}


# --------------------------------------------------------------- contenders
# Each contender is a callable running one training step (or one forward).


class RnnkitModel(nn.Module):
    def __init__(self, kind, unroll=False):
        super().__init__()
        self.rnn = getattr(rk, kind)(UNITS, unroll=unroll, input_shape=(STEPS, FEATURES))
        self.head = nn.Linear(UNITS, CLASSES)

    def forward(self, x):
        return self.head(self.rnn(x))


class TorchModule(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.rnn = KINDS[kind][1](FEATURES, UNITS, batch_first=True)
        self.head = nn.Linear(UNITS, CLASSES)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


class TorchCellLoop(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.cell = KINDS[kind][2](FEATURES, UNITS)
        self.head = nn.Linear(UNITS, CLASSES)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], UNITS)
        state = (h, h) if self.kind == "LSTM" else h
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state)
        return self.head(state[0] if self.kind == "LSTM" else state)


def train_step_fn(model, x, y):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def infer_fn(model, x):
    def run():
        with torch.no_grad():
            model(x)

    return run


def floor_fns(kind, x, train):
    """Only the matmuls, input projection hoisted, into preallocated buffers."""
    g = KINDS[kind][0] * UNITS
    W, U = torch.randn(FEATURES, g), torch.randn(UNITS, g)
    X = x.transpose(0, 1).reshape(STEPS * BATCH, FEATURES).contiguous()
    XW = torch.empty(STEPS * BATCH, g)
    H = torch.randn(STEPS, BATCH, UNITS)
    mm = torch.empty(BATCH, g)
    dZ = torch.randn(STEPS, BATCH, g)
    dh = torch.empty(BATCH, UNITS)
    dW, dU = torch.empty(FEATURES, g), torch.empty(UNITS, g)
    Ut = U.t()
    head_w = torch.randn(UNITS, CLASSES)
    logits = torch.empty(BATCH, CLASSES)

    def forward():
        torch.mm(X, W, out=XW)
        for t in range(STEPS):
            torch.mm(H[t], U, out=mm)
        torch.mm(H[-1], head_w, out=logits)

    def training():
        # No input gradient: the workload's input needs none, and no contender computes it.
        forward()
        for t in range(STEPS):
            torch.mm(dZ[t], Ut, out=dh)
        torch.mm(H.view(-1, UNITS).t(), dZ.view(-1, g), out=dU)
        torch.mm(X.t(), dZ.view(-1, g), out=dW)

    with torch.no_grad():
        return training if train else forward


def jax_fns(kind, x, y):
    """JAX ``lax.scan`` under ``jit`` (only when jax is importable)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    g = KINDS[kind][0]
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    params = {
        "W": jax.random.normal(k1, (FEATURES, g * UNITS)) * 0.1,
        "U": jax.random.normal(k2, (UNITS, g * UNITS)) * 0.1,
        "b": jnp.zeros(g * UNITS),
        "Wo": jax.random.normal(k3, (UNITS, CLASSES)) * 0.1,
        "bo": jnp.zeros(CLASSES),
    }

    def cell(p, carry, xw):
        h, c = carry
        if kind == "SimpleRNN":
            h = jnp.tanh(xw + h @ p["U"])
        elif kind == "LSTM":
            i, f, gg, o = jnp.split(xw + h @ p["U"], 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(gg)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
        else:  # GRU, reset_after form without the recurrent bias
            hz, hr, hh = jnp.split(h @ p["U"], 3, axis=-1)
            xz, xr, xh = jnp.split(xw, 3, axis=-1)
            zg, r = jax.nn.sigmoid(xz + hz), jax.nn.sigmoid(xr + hr)
            h = zg * h + (1 - zg) * jnp.tanh(xh + r * hh)
        return (h, c), None

    def loss(p, xs, ys):
        xw = jnp.einsum("btf,fg->tbg", xs, p["W"]) + p["b"]
        h0 = jnp.zeros((xs.shape[0], UNITS))
        (h, _), _ = jax.lax.scan(lambda carry, xw_t: cell(p, carry, xw_t), (h0, h0), xw)
        logits = h @ p["Wo"] + p["bo"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), ys[:, None], axis=1))

    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8

    @jax.jit
    def train(p, m, v, xs, ys):
        grads = jax.grad(loss)(p, xs, ys)
        m = jax.tree_util.tree_map(lambda a, g_: b1 * a + (1 - b1) * g_, m, grads)
        v = jax.tree_util.tree_map(lambda a, g_: b2 * a + (1 - b2) * g_ * g_, v, grads)
        p = jax.tree_util.tree_map(lambda a, mm, vv: a - lr * mm / (jnp.sqrt(vv) + eps), p, m, v)
        return p, m, v

    fwd = jax.jit(loss)
    xs, ys = jnp.asarray(x.numpy()), jnp.asarray(np.asarray(y.numpy(), np.int32))
    state = {"p": params, "m": jax.tree_util.tree_map(jnp.zeros_like, params)}
    state["v"] = state["m"]

    def train_step():
        state["p"], state["m"], state["v"] = train(state["p"], state["m"], state["v"], xs, ys)
        jax.block_until_ready(state["p"])

    def infer():
        fwd(state["p"], xs, ys).block_until_ready()

    return train_step, infer


def keras_fns(kind, x, y):
    """Keras 3 ``model.train_on_batch`` (only when keras is importable)."""
    import keras

    model = keras.Sequential(
        [keras.Input((STEPS, FEATURES)), getattr(keras.layers, kind)(UNITS), keras.layers.Dense(CLASSES)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    xs, ys = x.numpy(), y.numpy()

    def train_step():
        model.train_on_batch(xs, ys)

    def infer():
        model.predict_on_batch(xs)

    return train_step, infer


# ------------------------------------------------------------------ timing


LAST_MINIMA: dict = {}  # the fastest round of each contender, from the latest time_rounds call


def time_rounds(fns: dict, rounds: int, iters: int, warmup: int = 3) -> dict:
    """Median ms per call over ``rounds`` interleaved rounds of ``iters`` calls.

    The fastest round of each lands in ``LAST_MINIMA``: on a busy machine
    it is the steadier figure (other processes only ever add time).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(0.02)  # let the previous contender's worker threads (TF, XLA) stop spinning
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            samples[name].append((time.perf_counter() - t0) / iters * 1e3)
    LAST_MINIMA.clear()
    LAST_MINIMA.update({name: min(s) for name, s in samples.items()})
    return {name: statistics.median(s) for name, s in samples.items()}


def optional_contenders(kind, x, y):
    out = {}
    for label, make in (("jax_scan_jit", jax_fns), ("keras3", keras_fns)):
        module = label.split("_")[0].rstrip("3")
        try:
            __import__(module)
        except ImportError:
            continue
        try:
            out[label] = make(kind, x, y)
        except Exception as exc:  # an optional contender never stops the run
            print(f"  {label}: skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
    return out


def bench_workload(rounds, iters, optional=True):
    torch.manual_seed(0)
    x = torch.randn(BATCH, STEPS, FEATURES)
    y = torch.randint(0, CLASSES, (BATCH,))
    results = {}
    for kind in KINDS:
        rk_model = RnnkitModel(kind)
        models = {
            "rnnkit": rk_model,
            "rnnkit_reference_loop": RnnkitModel(kind, unroll=True),
            "torch_nn_module": TorchModule(kind),
            "torch_cell_loop": TorchCellLoop(kind),
        }
        extra = optional_contenders(kind, x, y) if optional else {}
        for mode in ("train", "infer"):
            fns = {
                name: train_step_fn(m, x, y) if mode == "train" else infer_fn(m, x) for name, m in models.items()
            }
            fns.update({name: pair[0] if mode == "train" else pair[1] for name, pair in extra.items()})
            fns["matmul_floor"] = floor_fns(kind, x, train=mode == "train")
            ms = time_rounds(fns, rounds, iters)
            best = min(ms["torch_nn_module"], ms["torch_cell_loop"])
            results[f"{kind}/{mode}"] = {
                "ms": ms,
                "min_ms": dict(LAST_MINIMA),
                "best_torch_ms": best,
                "ratio_to_best_torch": {k: v / best for k, v in ms.items()},
                "ratio_to_floor": {k: v / ms["matmul_floor"] for k, v in ms.items()},
            }
            print(f"  {kind}/{mode}: done", file=sys.stderr)
        results[f"{kind}/kernel"] = explain(rk_model)
    return results


def bench_generation(rounds, iters, units=256, features=32):
    """Batch 1, one LSTM step at a time, state carried: microseconds per step."""
    torch.manual_seed(0)
    layer = rk.LSTM(units, input_shape=(1, features))
    stepper = Stepper(layer)
    torch_cell = nn.LSTMCell(features, units)
    x = torch.randn(1, features)
    state = {"rk": stepper.initial_state(1), "layer": None, "torch": (torch.zeros(1, units), torch.zeros(1, units))}

    def rk_stepper():
        _, state["rk"] = stepper(x, state["rk"])

    layer.return_state = True

    def rk_layer():  # the plain layer call, one step long: what a user would write first
        with torch.no_grad():
            _, h, c = layer(x[:, None], initial_state=state["layer"])
            state["layer"] = [h, c]

    def torch_eager():
        with torch.no_grad():
            state["torch"] = torch_cell(x, state["torch"])

    ms = time_rounds({"rnnkit_stepper": rk_stepper, "rnnkit_layer_call": rk_layer, "torch_lstmcell": torch_eager},
                     rounds, iters)
    return {name: v * 1e3 for name, v in ms.items()}  # microseconds


def saved_bytes(layer, x):
    """Bytes autograd keeps for backward after one forward (distinct storages)."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(x)
    return sum(seen.values()), out


def bench_long(rounds):
    torch.manual_seed(0)
    units, batch = 256, 32
    layer = rk.LSTM(units, input_shape=(1000, 32))
    memory = {}
    for steps in (250, 500, 1000):
        x = torch.randn(batch, steps, 32)
        memory[steps], _ = saved_bytes(layer, x)
    x = torch.randn(batch, 1000, 32)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        layer(x).square().mean().backward()
        opt.step()

    ms = time_rounds({"rnnkit_lstm_1000_steps": step}, rounds, 1, warmup=1)
    return {"ms_per_train_step": ms["rnnkit_lstm_1000_steps"], "saved_bytes_by_steps": memory,
            "kernel": explain(layer)}


def bench_denormal_sweep(steps=(125, 250, 500, 1000, 2000), units=256, batch=32, features=32, rounds=1):
    """One training step of SimpleRNN and LSTM over growing lengths (issue 14).

    The early steps' gradients decay into subnormal floats; unflushed, x86
    CPUs slow down 10-100x on them, so the step's cost jumps above a few
    hundred steps instead of growing linearly. Contenders: rnnkit (flushing,
    its default), rnnkit with ``flush_denormals(False)``, and torch.nn's
    fused layer. Reports wall ms and process CPU ms (steadier on a shared
    machine: time other processes take is not counted) and CPU ms per step.
    """
    out = {}
    for kind, torch_layer in (("SimpleRNN", nn.RNN), ("LSTM", nn.LSTM)):
        for t in steps:
            layer, fns = sweep_contenders(kind, torch_layer, batch, t, features, units)
            for fn in fns.values():
                fn()  # warm up
            row = {}
            for name, fn in fns.items():
                walls, cpus = [], []
                for _ in range(rounds):
                    w0, c0 = time.perf_counter(), time.process_time()
                    fn()
                    walls.append((time.perf_counter() - w0) * 1e3)
                    cpus.append((time.process_time() - c0) * 1e3)
                row[name] = {"wall_ms": min(walls), "cpu_ms": min(cpus), "cpu_ms_per_step": min(cpus) / t}
            out[f"{kind}/{t}"] = {**row, "kernel": layer.kernel_used}
            print(f"  {kind} {t} steps: " + ", ".join(f"{k} {v['cpu_ms']:.0f} cpu ms" for k, v in row.items()),
                  file=sys.stderr)
    return out


def sweep_contenders(kind, torch_layer, batch, steps, features, units):
    """The sweep's rnnkit layer and its three training-step callables."""
    from rnnkit.kernels import flush_denormals

    torch.manual_seed(0)
    x = torch.randn(batch, steps, features)
    layer = getattr(rk, kind)(units, input_shape=(steps, features))
    reference = torch_layer(features, units, batch_first=True)

    def rk_step(flush):
        def step():
            previous = flush_denormals(flush)
            try:
                layer.zero_grad(set_to_none=True)
                layer(x).square().mean().backward()
            finally:
                flush_denormals(previous)

        return step

    def torch_step():
        reference.zero_grad(set_to_none=True)
        reference(x)[0][:, -1].square().mean().backward()

    return layer, {"rnnkit": rk_step(True), "rnnkit_no_flush": rk_step(False), "torch_nn_module": torch_step}


# The four shapes: (batch, steps, units); 32 input features except the MNIST rows (28).
SHAPES = {"B128_T28_H128": (128, 28, 128), "B32_T1000_H256": (32, 1000, 256), "B1_T1000_H256": (1, 1000, 256),
          "B64_T100_H512": (64, 100, 512)}


def keras_shape_fns(kind, x, units, train):
    """Keras 3 on the shape (only when keras is importable): ``train_on_batch`` (SGD, mean square of the last
    output: the forward, backward and a cheap update) or ``predict_on_batch``, float32."""
    import keras

    model = keras.Sequential([keras.Input(tuple(x.shape[1:])), getattr(keras.layers, kind)(units)])
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    xs = x.numpy()
    ys = xs[:, -1, :1].repeat(units, axis=1)  # any target of the output's shape

    def run():
        if train:
            model.train_on_batch(xs, ys)
        else:
            model.predict_on_batch(xs)

    return run


def shape_contenders(kind, batch, steps, units, train, bf16, compile_loop, keras_too=False):
    """``{name: callable}`` for one shape: rnnkit, torch.nn's layer, optionally torch.compile'd cell loop
    and (float32 only) Keras 3.

    Each callable runs one forward (``infer``, no grad) or forward + backward
    (``train``, loss on the last output) under bfloat16 autocast when ``bf16``.
    Returns ``(fns, compile_seconds or None)``.
    """
    features = 28 if steps == 28 else 32
    torch.manual_seed(0)
    x = torch.randn(batch, steps, features)
    rk_layer = getattr(rk, kind)(units, input_shape=(steps, features))
    torch_layer = KINDS[kind][1](features, units, batch_first=True)
    cell = KINDS[kind][2](features, units)
    lstm = kind == "LSTM"

    def cell_loop(xs):
        h = xs.new_zeros(xs.shape[0], units)
        state = (h, h) if lstm else h
        for t in range(xs.shape[1]):
            state = cell(xs[:, t], state)
        return state[0] if lstm else state

    models = {"rnnkit": rk_layer, "torch_nn_module": lambda xs: torch_layer(xs)[0][:, -1]}
    compile_s = None
    if compile_loop:
        compiled = torch.compile(cell_loop)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16), torch.set_grad_enabled(train):
            out = compiled(x)
            if train:
                out.float().square().mean().backward()
        compile_s = time.perf_counter() - t0
        models["torch_compile_cell_loop"] = compiled

    def make(model, params):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                if not train:
                    with torch.no_grad():
                        model(x)
                    return
                for p in params:
                    p.grad = None
                model(x).float().square().mean().backward()

        return run

    params = {"rnnkit": list(rk_layer.parameters()), "torch_nn_module": list(torch_layer.parameters()),
              "torch_compile_cell_loop": list(cell.parameters())}
    fns = {name: make(model, params[name]) for name, model in models.items()}
    if keras_too and not bf16:
        fns["keras"] = keras_shape_fns(kind, x, units, train)
    return fns, compile_s, rk_layer


def bench_shapes(kinds=("LSTM",), rounds=3, compile_loop=False, keras_too=False):
    """The four shapes x train/infer x float32/bfloat16 autocast: ms medians and ratios to torch.nn."""
    out = {}
    for kind in kinds:
        for label, (batch, steps, units) in SHAPES.items():
            for mode in ("train", "infer"):
                for precision in ("float32", "bf16_autocast"):
                    fns, compile_s, layer = shape_contenders(kind, batch, steps, units, mode == "train",
                                                             precision != "float32", compile_loop, keras_too)
                    iters = max(1, min(10, int(4e6 // (batch * steps * units))))
                    ms = time_rounds(fns, rounds, iters, warmup=1)
                    key = f"{kind}/{label}/{mode}/{precision}"
                    out[key] = {"ms": ms, "min_ms": dict(LAST_MINIMA),
                                "ratio_to_torch_nn": {k: v / ms["torch_nn_module"] for k, v in ms.items()},
                                "kernel": layer.kernel_used}
                    if compile_s is not None:
                        out[key]["compile_s"] = compile_s
                    print(f"  {key}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items()), file=sys.stderr)
    return out


def print_shapes(shapes):
    print(f"\n{'shape (median ms; ratio to torch.nn)':<44}{'rnnkit':>16}{'torch.nn':>10}{'compiled loop':>16}")
    for key, r in shapes.items():
        ms, ratio = r["ms"], r["ratio_to_torch_nn"]
        compiled = (f"{ms['torch_compile_cell_loop']:>8.1f} ({ratio['torch_compile_cell_loop']:.2f})"
                    if "torch_compile_cell_loop" in ms else "")
        keras = f"   Keras {ms['keras']:.1f} (rnnkit / Keras {ms['rnnkit'] / ms['keras']:.2f})" if "keras" in ms else ""
        print(f"{key:<44}{ms['rnnkit']:>9.1f} ({ratio['rnnkit']:.2f}){ms['torch_nn_module']:>10.1f}{compiled:>16}{keras}")


def print_sweep(sweep):
    names = ("rnnkit", "rnnkit_no_flush", "torch_nn_module")
    print(f"\n{'denormal sweep (B32 H256 train)':<34}" + "".join(f"{n + ' cpu ms':>24}" for n in names)
          + f"{'rnnkit cpu ms/step':>20}")
    for key, row in sweep.items():
        print(f"{key:<34}" + "".join(f"{row[n]['cpu_ms']:>24.1f}" for n in names)
              + f"{row['rnnkit']['cpu_ms_per_step']:>20.3f}")


# ------------------------------------------------------------------- report


def print_table(results):
    print(f"\n{'workload':<16}{'contender':<24}{'median ms':>10}{'min ms':>9}{'/best torch':>13}{'/floor':>9}")
    for key, r in results["workload"].items():
        if key.endswith("/kernel"):
            continue
        for name, ms in sorted(r["ms"].items(), key=lambda kv: kv[1]):
            print(f"{key:<16}{name:<24}{ms:>10.2f}{r['min_ms'][name]:>9.2f}"
                  f"{r['ratio_to_best_torch'][name]:>13.2f}{r['ratio_to_floor'][name]:>9.2f}")
    print("\ngeneration, batch 1, 256 units, LSTM (us per step):")
    for name, us in results["generation_us"].items():
        print(f"  {name:<24}{us:>9.1f}")
    long = results["long"]
    print(f"\n1,000 steps, batch 32, 256 units, LSTM train step: {long['ms_per_train_step']:.1f} ms; saved MB by steps: "
          + ", ".join(f"{k}: {v / 2**20:.1f}" for k, v in long["saved_bytes_by_steps"].items()))


def cpu_info() -> dict:
    """The CPU's model and the flags that decide bf16 and subnormal speed (Linux; else what platform knows)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16")
    return {"model": model, "flags": {f: f in flags for f in wanted},
            "mkldnn_bf16": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (fewer rounds)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core)")
    parser.add_argument("--no-optional", action="store_true",
                        help="leave out JAX and Keras even when installed (their worker threads add noise)")
    parser.add_argument("--denormal-sweep", action="store_true",
                        help="only the subnormal sweep: SimpleRNN/LSTM training steps, 125 to 2,000 steps (issue 14)")
    parser.add_argument("--shapes", action="store_true",
                        help="only the issue's four shapes, train/infer, float32 and bfloat16 autocast")
    parser.add_argument("--kinds", nargs="+", default=["LSTM"], choices=list(KINDS),
                        help="layer kinds for --shapes (default: LSTM)")
    parser.add_argument("--keras", action="store_true",
                        help="with --shapes: add Keras 3 (float32 rows; needs keras importable, e.g. on PYTHONPATH)")
    parser.add_argument("--compile", action="store_true",
                        help="with --shapes: add torch.compile of the nn.*Cell loop (compile time reported; slow)")
    parser.add_argument("--out", default=None,
                        help="where to write the JSON results (default: benchmarks/results.json, "
                             "benchmarks/denormal_sweep.json with --denormal-sweep)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rounds, iters = (3, 3) if args.quick else (9, 10)
    here = os.path.dirname(__file__)
    machine = {"platform": platform.platform(), "cpu": cpu_info(), "cpus": os.cpu_count(),
               "torch": torch.__version__, "threads": torch.get_num_threads()}
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if args.denormal_sweep:
        sweep = bench_denormal_sweep(rounds=1 if args.quick else 3)
        print_sweep(sweep)
        write_json({"date": date, "machine": machine, "denormal_sweep": sweep},
                   args.out or os.path.join(here, "denormal_sweep.json"))
        return
    if args.shapes:
        shapes = bench_shapes(args.kinds, rounds=1 if args.quick else 3, compile_loop=args.compile, keras_too=args.keras)
        print_shapes(shapes)
        versions = {name: getattr(sys.modules[name], "__version__", "?") for name in ("keras", "tensorflow") if name in sys.modules}
        write_json({"date": date, "machine": machine, "optional_versions": versions, "shapes": shapes},
                   args.out or os.path.join(here, "shapes.json"))
        return
    results = {
        "date": date,
        "machine": machine,
        "shape": {"batch": BATCH, "steps": STEPS, "features": FEATURES, "units": UNITS, "classes": CLASSES},
        "rounds": rounds,
        "iters_per_round": iters,
    }
    results["workload"] = bench_workload(rounds, iters, optional=not args.no_optional)
    results["optional_versions"] = {
        name: getattr(sys.modules[name], "__version__", "?") for name in ("jax", "keras", "tensorflow") if name in sys.modules
    }
    results["generation_us"] = bench_generation(rounds, iters * 20)
    results["long"] = bench_long(max(1, rounds // 3))
    print_table(results)
    write_json(results, args.out or os.path.join(here, "results.json"))


def write_json(results, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, path)  # never a half-written file
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
