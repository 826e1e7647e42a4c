"""The recurrent step's product alone: h (rows, units) @ U (units, gates * units), by route.

Each route is one way the native kernel can run its per-step product, the
weights laid out once as for a sequence (``_native.bench_step_product``, a C++
loop: no Python per call): ``ukernel`` (rnnkit's AVX-512 kernel,
csrc/step_gemm.h), ``dnnl`` (oneDNN's matmul, weights reordered once),
``mkl`` (MKL's packed sgemm; bfloat16: at::mm from 16 rows, else the rounded
weights through MKL), ``plain`` (sgemm / at::mm per call). Per shape, the
routes run in interleaved rounds; the table gives the median microseconds per
call over the rounds and GFLOP/s, float32 and with U bfloat16 (h rounded to
bfloat16 as under autocast). Writes JSON.

    python benchmarks/bench_step_product.py [--threads 1] [--rounds 3] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from datetime import datetime, timezone
from pathlib import Path

import torch
from bench_rnn import cpu_info  # benchmarks/ is the script's folder

from rnnkit import _native

# (rows, units, gates): issue 14's LSTM shapes' products (B1/B32 at 256 units, B128 at 128, B64 at 512) and 8 rows
SHAPES = [(1, 256, 4), (8, 256, 4), (32, 256, 4), (128, 128, 4), (64, 512, 4)]
ROUTES = ["ukernel", "dnnl", "mkl", "plain"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).with_name("step_product.json")))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    routes = [r for r in ROUTES if (r != "ukernel" or _native.ukernel_available(False))
              and (r != "dnnl" or _native.dnnl_available())]
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "cpu": cpu_info(),
           "threads": torch.get_num_threads(), "load_average": list(os.getloadavg()), "results": {}}
    for bf16 in (False, True):
        for rows, units, gates in SHAPES:
            flop = 2 * rows * units * units * gates
            iters = max(20, int(2e8 / flop))  # ~0.1 s per timing at 100 GFLOP/s
            us = {r: [] for r in routes}
            for _ in range(a.rounds):
                for r in routes:
                    us[r].append(_native.bench_step_product(rows, units, gates, bf16, r, iters, 3))
            res = {r: {"us": statistics.median(v), "us_range": [min(v), max(v)],
                       "gflops": flop / statistics.median(v) / 1e3} for r, v in us.items()}
            label = f"{'bf16' if bf16 else 'f32'} rows={rows} units={units} gates={gates}"
            out["results"][label] = res
            print(label, "  ".join(f"{r} {v['us']:.1f} us ({v['gflops']:.0f} GF/s)" for r, v in res.items()),
                  flush=True)
    out["load_average_end"] = list(os.getloadavg())
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
