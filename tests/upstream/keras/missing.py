"""What rnnkit lacks or does differently from Keras 3, one strict xfail mark per feature.

A ported test that fails only because of one of these carries its mark.
When a feature lands, its tests start to pass ("XPASS(strict)" fails the
run): remove the mark from those tests, and from here once unused.
"""

import pytest


def _missing(reason):
    return pytest.mark.xfail(strict=True, reason=f"rnnkit: {reason}")


REGULARIZERS = _missing("no kernel_regularizer/recurrent_regularizer/bias_regularizer arguments (and no layer.losses)")
CONSTRAINTS = _missing("no kernel_constraint/recurrent_constraint/bias_constraint arguments")
FROM_CONFIG = _missing("layers have get_config but no from_config classmethod")
OUTPUT_SHAPE = _missing("layers have no compute_output_shape (Keras's symbolic call)")
MASKING_FLAG = _missing(
    "RNN layers and Bidirectional set supports_masking=True; Keras 3's have supports_masking=False "
    "(they take the mask in call instead of passing it through)"
)
NUMPY_INITIAL_STATE = _missing("initial_state must be torch tensors; numpy arrays raise TypeError")
IMPLEMENTATION_ARG = _missing("no `implementation` argument (Keras's 1/2 kernel choice; accepted and ignored by Keras 3)")
CELL_BUILT_FLAG = _missing(
    "a custom Layer's build() must set self.built itself; Keras marks a layer built once build() returns"
)
STATEFUL_BATCH_MESSAGE = _missing(
    "a stateful layer called with another batch size raises ValueError without the words 'batch size'"
)
INPUT_BATCH_SIZE = _missing("Input has no batch_size argument (and there is no functional Model(inputs, outputs))")
NESTED_STACK_STATES = _missing(
    "RNN over stacked cells returns the states flat ([output, *all leaves]); "
    "Keras returns one entry per cell, each nested as that cell's state ([output, cell_1_state, cell_2_state])"
)
CELL_OUTPUT_SIZE = _missing(
    "StackedRNNCells needs every cell's output_size; Keras uses the cell's (first) state_size when it has none"
)
USE_CUDNN = _missing("GRU/LSTM take no `use_cudnn` argument (True/False/'auto'; rnnkit picks its kernel itself)")
SEEDED_INITIALIZERS = _missing("no initializer objects with a seed (GlorotUniform(seed=...), Orthogonal(seed=...))")
TIME_DISTRIBUTED_MASK = _missing(
    "TimeDistributed takes no `mask` argument (Keras passes the mask on to the inner layer, per step, "
    "and checks its (batch, time) shape)"
)
CONV2D = _missing("no Conv2D layer (TimeDistributed over images)")
EMBEDDING_FLOAT_IDS = _missing(
    "Embedding rejects float token ids (TypeError); Keras casts them to int (e.g. np.random.uniform(1, 10) ids)"
)
MIXED_PRECISION = _missing("no dtype policies (dtype='mixed_float16': float16 compute, float32 weights)")
TIME_DISTRIBUTED_MASKING_FLAG = _missing(
    "TimeDistributed sets supports_masking=True; Keras 3's has supports_masking=False "
    "(it takes the mask in call and hands it to the inner layer)"
)
