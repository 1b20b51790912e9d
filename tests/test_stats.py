"""kdtutor.images.stats: the expected maximum behind a sweep's optimism."""

import pytest
import torch


def test_expected_maximum_matches_closed_forms_and_a_simulation():
    import math

    from kdtutor.images.stats import expected_maximum

    assert expected_maximum(1) == pytest.approx(0.0, abs=1e-9)
    assert expected_maximum(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-6)
    assert expected_maximum(3) == pytest.approx(1.5 / math.sqrt(math.pi), rel=1e-6)  # 3/(2√π)
    sim = torch.randn(400_000, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64).max(1).values.mean()
    assert expected_maximum(4) == pytest.approx(float(sim), abs=0.01)
    with pytest.raises(ValueError):
        expected_maximum(0)
