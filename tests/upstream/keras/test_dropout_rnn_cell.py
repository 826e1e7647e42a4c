"""Keras 3's ``keras/src/layers/rnn/dropout_rnn_cell_test.py``, ported to rnnkit.

The cell (``cells.RNNCellWithDropout``) takes its dropout masks from the
layer, rnnkit's way for custom cells; Keras's cell draws them itself via
the ``DropoutRNNCell`` mixin. ``test_seed_tracking`` is not ported: see
``tests/upstream/README.md``.
"""

import pytest
import torch

import rnnkit as rk

from . import missing
from .cells import RNNCellWithDropout
from .layer_checks import check_call, check_config_round_trip, check_output_shape, check_supports_masking


def test_basics_call():
    """Upstream ``keras/src/layers/rnn/dropout_rnn_cell_test.py::DropoutRNNCellTest::test_basics``: build, weight counts, call shapes in training, a training step."""
    check_call(
        rk.RNN,
        {"cell": RNNCellWithDropout(5, seed=1337)},
        (3, 2, 4),
        (3, 5),
        call_kwargs={"training": True},
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )


def test_basics_config():
    """Upstream ``keras/src/layers/rnn/dropout_rnn_cell_test.py::DropoutRNNCellTest::test_basics``: the get_config/from_config round trip."""
    check_config_round_trip(rk.RNN, {"cell": RNNCellWithDropout(5, seed=1337)})


def test_basics_symbolic_shape():
    """Upstream ``keras/src/layers/rnn/dropout_rnn_cell_test.py::DropoutRNNCellTest::test_basics``: the symbolic call's output shape."""
    check_output_shape(rk.RNN, {"cell": RNNCellWithDropout(5, seed=1337)}, (3, 2, 4), (3, 5))


def test_basics_supports_masking():
    """Upstream ``keras/src/layers/rnn/dropout_rnn_cell_test.py::DropoutRNNCellTest::test_basics``: ``supports_masking=False``."""
    check_supports_masking(rk.RNN, {"cell": RNNCellWithDropout(5, seed=1337)}, False)


# Upstream runs this half of test_basics on torch only with CUDA.
@pytest.mark.skipif(not torch.cuda.is_available(), reason="upstream runs the mixed precision check on CUDA only")
@missing.MIXED_PRECISION
def test_basics_mixed_precision():
    """Upstream ``keras/src/layers/rnn/dropout_rnn_cell_test.py::DropoutRNNCellTest::test_basics``: the same checks under ``dtype="mixed_float16"``."""
    check_call(
        rk.RNN,
        {"cell": RNNCellWithDropout(5, seed=1337, dtype="mixed_float16"), "dtype": "mixed_float16"},
        (3, 2, 4),
        (3, 5),
        call_kwargs={"training": True},
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=0,
    )
