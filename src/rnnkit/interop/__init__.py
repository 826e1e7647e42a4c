"""Moving models in and out of rnnkit without losing a number.

* ``from_torch(module)`` / ``to_torch(layer)``: ``torch.nn.RNN``/``GRU``/``LSTM``
  <-> rnnkit layers (``torch_nn``);
* ``load_keras(path, model=None)``: a Keras 3 ``.keras`` archive or
  ``.weights.h5`` file, read as data only (``keras_file``; needs h5py);
* ``export_onnx(model, path, example_input)``: an ONNX graph with dynamic batch
  and time axes, recurrent layers as ONNX's RNN/GRU/LSTM operators
  (``onnx_export``; needs onnx, and onnxruntime to check the result).

The optional packages are imported only when the function that needs them
runs: ``pip install rnnkit[interop]``. See docs/interop.md.
"""

from .keras_file import load_keras
from .onnx_export import export_onnx
from .torch_nn import from_torch, to_torch

__all__ = ["from_torch", "to_torch", "load_keras", "export_onnx"]
