"""rnnkit: Keras's recurrent layers, and TF1's, on PyTorch tensors.

    import rnnkit as rk
    rnn = rk.SimpleRNN(2, return_sequences=True, return_state=True)
    outputs, states = rnn(x_data)          # x_data: (batch, time, features)

The tree reads in dependency order, floor by floor (``python
scripts/import_graph.py`` prints the floors; there is no import cycle):

* files (atomic writes), ops (activations, initializers, checks), base (Layer),
  losses, optimizers, callbacks, distributed;
* cells (one time step) -> kernels/ (fused paths) -> rnn (the time loop, the
  definition) -> layers, wrappers -> v1 (TF1 names, thin over the core);
* training (compile/fit/evaluate/predict) -> model (Sequential) -> tbptt;
* serialization (configs, safetensors) -> checkpoint (resumable runs) -> interop/;
* data/ (each task's presets, report, sampling) -> runs (run directories) -> cli
  (parses and dispatches only).
"""

from . import distributed, interop, v1
from .base import Layer
from .callbacks import (
    Callback,
    EarlyStopping,
    LearningRateScheduler,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from .cells import Cell, DropoutMasks, GRUCell, LSTMCell, LSTMState, SimpleRNNCell, StackedRNNCells
from .checkpoint import ModelCheckpoint
from .kernels import Stepper
from .layers import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Input,
    InputLayer,
    Masking,
    SimpleRNN,
    TimeDistributed,
)
from .losses import CategoricalCrossentropy, MeanAbsoluteError, MeanSquaredError, SparseCategoricalCrossentropy
from .model import Sequential
from .ops import Constant
from .rnn import RNN, explain, reference_loop
from .scanning import scan
from .serialization import load_model, save_model
from .tbptt import tbptt_chunks, truncated_bptt
from .training import History
from .v1 import dynamic_rnn, static_rnn
from .wrappers import DeviceWrapper, DropoutWrapper, MultiRNNCell, OutputProjectionWrapper, ResidualWrapper

__version__ = "0.1.0"

__all__ = [
    # cells
    "Cell",
    "SimpleRNNCell",
    "GRUCell",
    "LSTMCell",
    "LSTMState",
    "DropoutMasks",
    "StackedRNNCells",
    # the loop
    "RNN",
    "reference_loop",
    "scan",
    # layers
    "Layer",
    "SimpleRNN",
    "GRU",
    "LSTM",
    "Bidirectional",
    "Dense",
    "TimeDistributed",
    "Masking",
    "Dropout",
    "Embedding",
    "Input",
    "InputLayer",
    "Sequential",
    "Constant",
    # training (Keras's compile/fit/evaluate/predict on Sequential)
    "History",
    "SparseCategoricalCrossentropy",
    "CategoricalCrossentropy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
    "TerminateOnNaN",
    "ReduceLROnPlateau",
    "LearningRateScheduler",
    "save_model",
    "load_model",
    # which kernel ran and why; fast single steps for generation
    "explain",
    "Stepper",
    # sequences too long to backprop whole
    "truncated_bptt",
    "tbptt_chunks",
    # TF1 (seed 003): functions, stack and wrappers; the TF1 cell names live in rnnkit.v1
    "static_rnn",
    "dynamic_rnn",
    "MultiRNNCell",
    "DropoutWrapper",
    "OutputProjectionWrapper",
    "DeviceWrapper",
    "ResidualWrapper",
    "v1",
    # weights in and out of PyTorch, Keras files and ONNX
    "interop",
    # several processes under torchrun (DistributedDataParallel)
    "distributed",
]
