"""Where the LSTM should run: rnnkit's native kernel, the oneDNN route, against torch.nn.LSTM.

For each of issue 14's four shapes, one forward (``infer``, no grad) or
forward + backward (``train``, loss on the last output), float32 or under
bfloat16 autocast (``--bf16``; torch.nn.LSTM under the same autocast), all
contenders in interleaved rounds in one process. ``rnnkit_native`` forces the
native kernel (the route's step threshold raised for the call; its per-step
products through the AVX-512 kernel where the CPU has one),
``rnnkit_native_dnnl`` the same without that kernel (oneDNN's matmul per
``native.DNNL_MIN_ROWS``, else MKL), ``rnnkit_native_mkl`` with the per-step
products through MKL / at::mm only (``native.DNNL_MIN_ROWS`` raised too),
``rnnkit_native_unpacked`` with neither (sgemm per step, float32),
``rnnkit_onednn`` is the default route (oneDNN from ``ONEDNN_MIN_STEPS``
steps). Writes medians, min and max (wall and process CPU ms) and per-round
ratios to torch.nn to JSON.

    python benchmarks/bench_lstm_route.py [--rounds 3] [--threads 1] [--bf16] [--shapes B1_T1000_H256 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from bench_rnn import cpu_info  # benchmarks/ is the script's folder
from torch import nn

import rnnkit as rk
from rnnkit import _native, kernels
from rnnkit.kernels import native as native_kernels

SHAPES = {"B128_T28_H128": (128, 28, 128), "B32_T1000_H256": (32, 1000, 256), "B1_T1000_H256": (1, 1000, 256),
          "B64_T100_H512": (64, 100, 512)}


def shape_label(label: str) -> str:
    """``B<batch>_T<steps>_H<units>``, checked (any such shape, not only the issue's four)."""
    if not re.fullmatch(r"B\d+_T\d+_H\d+", label):
        raise argparse.ArgumentTypeError(f"shape: expected B<batch>_T<steps>_H<units>, got {label!r}")
    return label


def contenders(batch, steps, units, train, bf16=False):
    features = 28 if steps == 28 else 32
    torch.manual_seed(0)
    x = torch.randn(batch, steps, features)
    layer = rk.LSTM(units, input_shape=(steps, features))
    ref = nn.LSTM(features, units, batch_first=True)

    def native(xs):
        saved, kernels.ONEDNN_MIN_STEPS = kernels.ONEDNN_MIN_STEPS, 1 << 30
        try:
            return layer(xs)
        finally:
            kernels.ONEDNN_MIN_STEPS = saved

    def dnnl(xs):  # the native kernel without the AVX-512 per-step products (oneDNN's matmul, else MKL)
        previous = native_kernels.set_ukernel_products((0, 0))
        try:
            return native(xs)
        finally:
            native_kernels.set_ukernel_products(previous)

    def mkl(xs):  # neither the AVX-512 kernel nor oneDNN's matmul (MKL packed, or at::mm under autocast)
        previous = native_kernels.set_dnnl_products((1 << 62, 1 << 62), 0)
        try:
            return dnnl(xs)
        finally:
            native_kernels.set_dnnl_products(*previous)

    def unpacked(xs):  # neither: sgemm per step (weights not laid out once per sequence)
        rows = _native.set_pack_min_rows(1 << 62)
        try:
            return mkl(xs)
        finally:
            _native.set_pack_min_rows(rows)

    models = {"rnnkit_native": (native, layer), "rnnkit_native_dnnl": (dnnl, layer), "rnnkit_native_mkl": (mkl, layer),
              "rnnkit_native_unpacked": (unpacked, layer), "rnnkit_onednn": (layer, layer),
              "torch_nn": (lambda xs: ref(xs)[0][:, -1], ref)}
    if bf16:  # autocast: the route never picks oneDNN's LSTM, and sgemm does not multiply bfloat16
        del models["rnnkit_onednn"], models["rnnkit_native_unpacked"]

    def make(model, owner):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                if not train:
                    with torch.no_grad():
                        model(x)
                    return
                for p in owner.parameters():
                    p.grad = None
                model(x).float().square().mean().backward()
        return run

    return {k: make(*v) for k, v in models.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), type=shape_label,
                   help="labels B<batch>_T<steps>_H<units> (default: the issue's four)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--bf16", action="store_true", help="under torch.autocast('cpu', dtype=torch.bfloat16)")
    p.add_argument("--out", default=None, help="JSON path (default: benchmarks/lstm_route[_bf16].json)")
    a = p.parse_args()
    a.out = a.out or str(Path(__file__).with_name("lstm_route_bf16.json" if a.bf16 else "lstm_route.json"))
    if a.threads:
        torch.set_num_threads(a.threads)
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "cpu": cpu_info(),
           "threads": torch.get_num_threads(), "bf16_autocast": a.bf16, "load_average": list(os.getloadavg()),
           "results": {}}
    for label in a.shapes:
        for mode in ("infer", "train"):
            batch, steps, units = (int(v[1:]) for v in label.split("_"))
            fns = contenders(batch, steps, units, mode == "train", a.bf16)
            times = {k: [] for k in fns}
            cpu = {k: [] for k in fns}
            for f in fns.values():
                f()  # warm up
            for _ in range(a.rounds):
                for k, f in fns.items():
                    t, c = time.perf_counter(), time.process_time()
                    f()
                    times[k].append((time.perf_counter() - t) * 1e3)
                    cpu[k].append((time.process_time() - c) * 1e3)
            res = {}
            for k in fns:
                res[k] = {"median_ms": statistics.median(times[k]), "min_ms": min(times[k]), "max_ms": max(times[k]),
                          "cpu_median_ms": statistics.median(cpu[k]), "cpu_min_ms": min(cpu[k]),
                          "cpu_max_ms": max(cpu[k])}
                # per round ratios (the contenders ran back to back in each round): median, min, max
                for what, series in (("", times), ("cpu_", cpu)):
                    r = [a_ / b_ for a_, b_ in zip(series[k], series["torch_nn"])]
                    res[k][f"{what}ratio_to_torch_nn"] = statistics.median(r)
                    res[k][f"{what}ratio_range"] = [min(r), max(r)]
            out["results"][f"{label} {mode}"] = res
            print(label, mode, {k: f"{r['median_ms']:.1f} ms ({r['ratio_to_torch_nn']:.2f}) cpu {r['cpu_median_ms']:.1f}"
                                   f" ({r['cpu_ratio_to_torch_nn']:.2f} {r['cpu_ratio_range'][0]:.2f}-"
                                   f"{r['cpu_ratio_range'][1]:.2f})" for k, r in res.items()}, flush=True)
            out["load_average_end"] = list(os.getloadavg())
            Path(a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
