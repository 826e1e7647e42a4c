"""Issue 14's table from several ``bench_rnn.py --shapes`` runs: median ratio and its spread, and the geomean.

Each run is a JSON file that ``python benchmarks/bench_rnn.py --shapes --kinds SimpleRNN GRU LSTM --out F``
wrote. The table gives, per shape and layer, rnnkit's time over torch.nn's (train | infer) as the median of
the runs' ratios with their min-max, then the geometric mean of the medians and how many meet the target::

    python benchmarks/shapes_table.py run1.json run2.json run3.json [--dtype float32|bf16_autocast]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics


def load(paths):
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    return runs


def ratios(runs, dtype):
    """{(kind, shape, mode): [ratio per run]} for rnnkit against torch.nn."""
    out: dict = {}
    for run in runs:
        for key, entry in run["shapes"].items():
            kind, shape, mode, dt = key.split("/")
            if dt == dtype:
                out.setdefault((kind, shape, mode), []).append(entry["ratio_to_torch_nn"]["rnnkit"])
    return out


def cell(values):
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.2f}", med
    return f"{med:.2f} ({min(values):.2f}-{max(values):.2f})", med


def table(runs, dtype, target):
    found = ratios(runs, dtype)
    kinds = list(dict.fromkeys(k for k, _, _ in found))
    shapes = list(dict.fromkeys(s for _, s, _ in found))
    lines = ["| shape (batch, steps, units) | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    medians = []
    for shape in shapes:
        row = [shape.replace("_", " ")]
        for kind in kinds:
            parts = []
            for mode in ("train", "infer"):
                if (kind, shape, mode) in found:
                    text, med = cell(found[(kind, shape, mode)])
                    medians.append(med)
                    parts.append(text)
            row.append(" / ".join(parts))
        lines.append("| " + " | ".join(row) + " |")
    geomean = math.exp(sum(map(math.log, medians)) / len(medians))
    met = sum(m <= target for m in medians)
    lines.append("")
    lines.append(f"{dtype}: geometric mean {geomean:.2f} over {len(medians)} ratios; {met} of them <= {target}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="JSON files written by bench_rnn.py --shapes")
    parser.add_argument("--dtype", choices=["float32", "bf16_autocast"], default=None,
                        help="only this dtype (default: both)")
    args = parser.parse_args(argv)
    runs = load(args.runs)
    first = runs[0]["machine"]
    print(f"{len(runs)} run(s), {first['cpu']['model']}, {first['cpus']} CPUs, torch {first['torch']}, "
          f"{first['threads']} threads; dates {', '.join(r['date'] for r in runs)}\n")
    for dtype, target in (("float32", 0.95), ("bf16_autocast", 0.67)):
        if args.dtype in (None, dtype):
            print(table(runs, dtype, target) + "\n")


if __name__ == "__main__":
    main()
