"""Run hostile cases in a child process with a time limit and a memory cap (used by tests/test_hostile*.py).

A hang, a MemoryError or a signal must fail the one test, not the suite. Starting Python and
importing torch for every case costs seconds, so one server process imports rnnkit once and
forks a child per case; the child caps its address space (RLIMIT_AS: what the server had plus
``CAP``) and its time (SIGALRM kills it), runs the case's code and reports what it raised.

    with Sandbox() as box:
        out = box.run("from rnnkit.serialization import load_model; load_model(%r)" % str(folder))
        assert out.raised("ValueError", "model.safetensors")
"""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CAP = 2 * 2**30  # bytes of address space a case may add to what the server holds after its imports
TIMEOUT = 20  # seconds a case may run

SERVER = r"""
import json, os, resource, signal, sys, traceback, warnings
import numpy, torch, safetensors.torch, h5py
import rnnkit, rnnkit.checkpoint, rnnkit.cli, rnnkit.files, rnnkit.serialization
import rnnkit.interop.keras_file, rnnkit.interop.onnx_export
torch.set_num_threads(1)  # no thread pool in the server: its children are forked
cap = int(sys.argv[1])


def warm_up():
    # Run each path once here, so that lazy imports and first-use setup (torch's optimizers import
    # parts of torch._dynamo on their first step) happen once, not in every child.
    import tempfile
    import rnnkit as rk
    with tempfile.TemporaryDirectory() as d:
        model = rk.Sequential([rk.GRU(3, input_shape=(4, 2)), rk.Dense(2)])
        model.compile("adam", "mse")
        model.fit(numpy.ones((4, 4, 2), numpy.float32), numpy.ones((4, 2), numpy.float32), epochs=1, verbose=0)
        rnnkit.checkpoint.save_checkpoint(d, model, 1, {"loss": [1.0]})
        rnnkit.checkpoint.load_checkpoint(d)
    keras = os.path.join(os.path.dirname(os.path.abspath(sys.argv[2])), "data", "keras", "simple_rnn.keras")
    rnnkit.interop.keras_file.load_keras(keras)


warm_up()
for line in sys.stdin:
    req = json.loads(line)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stdout is the server's reply channel
        size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + cap, size + cap))
        signal.alarm(req["timeout"])  # the default action of SIGALRM ends the process: a signal, reported
        out = {}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ns = {}
                exec(req["code"], ns)
            out = {"raised": None, "result": repr(ns.get("result"))[:4000],
                   "warnings": [str(c.message) for c in caught]}
        except BaseException as e:
            out = {"raised": type(e).__name__, "bases": [c.__name__ for c in type(e).__mro__],
                   "message": str(e)[:4000], "traceback": traceback.format_exc()[-4000:]}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"status": status, "out": b"".join(chunks).decode() or None}), flush=True)
"""


@dataclass
class Outcome:
    """What one case did: ``raised`` (an exception's class name or None), its message, or a signal."""

    raised: str | None = None
    bases: tuple = ()
    message: str = ""
    signal: int | None = None
    result: str = ""
    warnings: tuple = ()
    detail: str = ""

    def refused(self, match: str, kinds=("ValueError", "TypeError")) -> bool:
        """It raised exactly a ValueError or TypeError (or a subclass) whose message matches ``match``."""
        return (self.signal is None and self.raised is not None and any(k in self.bases for k in kinds)
                and re.search(match, self.message, re.S) is not None)

    def __str__(self):
        if self.signal is not None:
            return f"killed by signal {self.signal} (time limit {TIMEOUT} s or a crash)"
        if self.raised is None:
            return f"returned {self.result}; warnings {list(self.warnings)}"
        return f"{self.raised}: {self.message}\n{self.detail}"


class Sandbox:
    """The server process; ``run(code)`` runs ``code`` in a fresh capped child and returns its ``Outcome``."""

    def __init__(self):
        self.proc = None

    def __enter__(self):
        self._start()
        return self

    def __exit__(self, *exc):
        self._stop()

    def _start(self):
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(CAP), __file__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)

    def _stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, code: str, timeout: int = TIMEOUT) -> Outcome:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(json.dumps({"code": code, "timeout": timeout}) + "\n")
        self.proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout + 60)  # the server's own import time, and the child's time limit
        sel.close()
        if not ready:
            self._stop()
            return Outcome(signal=-1, detail="the sandbox server did not answer")
        reply = json.loads(self.proc.stdout.readline())
        status = reply["status"]
        if os.WIFSIGNALED(status):
            return Outcome(signal=os.WTERMSIG(status))
        out = json.loads(reply["out"] or "{}")
        return Outcome(raised=out.get("raised"), bases=tuple(out.get("bases", ())), message=out.get("message", ""),
                       result=out.get("result", ""), warnings=tuple(out.get("warnings", ())),
                       detail=out.get("traceback", ""))
