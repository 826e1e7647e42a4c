"""rnnkit: Keras's recurrent layers, and TF1's, on PyTorch tensors.

    import rnnkit as rk
    rnn = rk.SimpleRNN(2, return_sequences=True, return_state=True)
    outputs, states = rnn(x_data)          # x_data: (batch, time, features)

The tree reads in dependency order, floor by floor (``python
scripts/import_graph.py`` prints the floors; there is no import cycle):

* files (atomic writes), ops (activations, initializers, checks), graph
  (symbolic tensors of the functional API), base (Layer), losses, optimizers,
  callbacks, distributed;
* pooling, normalization, activation, spatial_dropout, rescaling (Keras's
  stateless or per-step companions: GlobalAveragePooling1D ..., on base and
  ops alone) -> merging (Concatenate, Add, ...; operators on symbolic tensors);
* cells (one time step) -> kernels/ (fused paths) -> rnn (the time loop, the
  definition) -> layers (Input, and Keras's ``keras.layers`` namespace: it
  registers the companions and holds the merges too), wrappers -> v1 (TF1
  names, thin over the core);
* training (compile/fit/evaluate/predict), functional_training (several inputs
  and outputs) -> model (Sequential) -> functional (Model), tbptt;
* serialization (configs, safetensors) -> checkpoint (resumable runs) -> interop/;
* data/ (each task's presets, report, sampling) -> runs (run directories) -> cli
  (parses and dispatches only).
"""

from . import distributed, interop, mixed_precision, utils, v1
from .activation import Activation
from .base import Layer
from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from .cells import Cell, DropoutMasks, GRUCell, LSTMCell, LSTMState, SimpleRNNCell, StackedRNNCells
from .checkpoint import ModelCheckpoint
from .functional import Model
from .kernels import Stepper
from .layers import (
    GRU,
    LSTM,
    Bidirectional,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Input,
    InputLayer,
    Masking,
    RepeatVector,
    Rescaling,
    SimpleRNN,
    TimeDistributed,
)
from .losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    Huber,
    MeanAbsoluteError,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
)
from .merging import Add, Average, Concatenate, Dot, Multiply, Subtract
from .model import Sequential
from .normalization import LayerNormalization
from .ops import Constant
from .pooling import GlobalAveragePooling1D, GlobalMaxPooling1D
from .rnn import RNN, explain, reference_loop
from .scanning import scan
from .serialization import load_model, save_model
from .spatial_dropout import SpatialDropout1D
from .tbptt import tbptt_chunks, truncated_bptt
from .tensorboard import TensorBoard
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
    "RepeatVector",
    "Rescaling",
    "Flatten",
    "Conv2D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "LayerNormalization",
    "Activation",
    "SpatialDropout1D",
    "Sequential",
    "Constant",
    # the functional API (Keras's Model(inputs, outputs)) and its merge layers
    "Model",
    "Concatenate",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Dot",
    # training (Keras's compile/fit/evaluate/predict on Sequential)
    "History",
    "SparseCategoricalCrossentropy",
    "CategoricalCrossentropy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "BinaryCrossentropy",
    "Huber",
    "Callback",
    "CSVLogger",
    "EarlyStopping",
    "ModelCheckpoint",
    "TerminateOnNaN",
    "ReduceLROnPlateau",
    "LearningRateScheduler",
    "TensorBoard",
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
    # Keras's data utilities (pad_sequences)
    "utils",
    # Keras's dtype policies: dtype="mixed_bfloat16" on layers, set_global_policy
    "mixed_precision",
]
