"""bfloat16 autocast for the native kernels: bfloat16 products, float32 state.

Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` torch runs its matrix
products in bfloat16 and its RNN layers return bfloat16. The native kernels
do the same where it pays and keep the rest exact:

* every product (the input projection ``x W``, each step's ``h U``, and in
  backward the input, kernel and recurrent-kernel gradients) rounds its
  operands to bfloat16 and runs as torch's bfloat16 matmul (oneDNN:
  AVX512-BF16 or AMX where the CPU has them, float32 accumulation, a
  bfloat16 result, as any autocast matmul); the per-step products of large
  kernels through oneDNN's matmul with the weights reordered once per
  sequence (``native.DNNL_MIN_ROWS``, ``DNNL_MIN_WEIGHTS``). Other per-step
  products of fewer than 16 rows (batch 1 generation, small blocks) gain
  nothing from bfloat16 (measured slower) and multiply the bfloat16-rounded
  weights in float32;
* the gates, the pointwise passes and the carried state (``h``, ``c``) stay
  float32, so rounding does not compound over the steps;
* the layer's outputs come back as bfloat16, as torch's layers return
  them; its final states stay float32 (torch's come back as bfloat16): the
  carried state is what ``initial_state`` and stateful layers take back, and
  rnnkit checks it against the weights' dtype. The parameters and their
  gradients stay float32.

Against the same layer in float32 the outputs differ by about bfloat16's
resolution (relative 2^-8 = 0.4%) times the growth through the steps; the
tests bound them at 3e-2 absolute for unit-scale inputs.

>>> import torch, rnnkit as rk
>>> layer = rk.LSTM(8)
>>> with torch.autocast("cpu", dtype=torch.bfloat16):
...     y = layer(torch.randn(2, 5, 3))
>>> y.dtype
torch.bfloat16
"""

from __future__ import annotations

import functools

import torch

__all__ = ["bf16_autocast", "gemm_weights", "autocast_outputs", "bf16_status"]


def bf16_autocast(x: torch.Tensor) -> bool:
    """Whether CPU autocast to bfloat16 is on and applies to ``x`` (float32 on the CPU)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
    )


def gemm_weights(cell, x: torch.Tensor):
    """``(kernel, recurrent_kernel)`` as the native products take them: bfloat16 copies under autocast."""
    W, U = cell.kernel, cell.recurrent_kernel
    if bf16_autocast(x):
        return W.to(torch.bfloat16), U.to(torch.bfloat16)
    return W, U


def autocast_outputs(x: torch.Tensor, outputs: torch.Tensor, state):
    """``(outputs, state)`` with the outputs in bfloat16 under autocast (``x`` the layer's input).

    The state stays float32 (see the module's docstring).
    """
    return (outputs.to(torch.bfloat16) if bf16_autocast(x) else outputs), state


@functools.lru_cache(maxsize=1)
def bf16_status() -> str:
    """One line: whether this CPU multiplies bfloat16 natively (else the products convert, and gain nothing)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    native = [name for name in ("amx_bf16", "avx512_bf16") if name in flags]
    if native:
        return f"bfloat16 autocast: native bfloat16 products ({', '.join(native)})"
    if flags:
        return "bfloat16 autocast: this CPU has no AVX512-BF16/AMX: bfloat16 products are emulated (slower than float32)"
    mkldnn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if mkldnn is not None and mkldnn():
        return "bfloat16 autocast: oneDNN reports bfloat16 support"
    return "bfloat16 autocast: no bfloat16 instructions detected: products are emulated (slower than float32)"
