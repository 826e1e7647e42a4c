"""What rnnkit lacks or does differently from Keras 3, one strict xfail mark per feature.

A ported test that fails only because of one of these carries its mark.
When a feature lands, its tests start to pass ("XPASS(strict)" fails the
run): remove the mark from those tests, and from here once unused.
"""

import pytest


def _missing(reason):
    return pytest.mark.xfail(strict=True, reason=f"rnnkit: {reason}")


MIXED_PRECISION = _missing("no dtype policies (dtype='mixed_float16': float16 compute, float32 weights)")
