"""Every test starts with fresh exercise checks: how often a check has failed decides whether
its message shows a nudge (first ✗) or the full answer (second ✗), so no test may inherit
another test's failures."""

import pytest

from kdtutor import checks


@pytest.fixture(autouse=True)
def _fresh_checks():
    checks.reset()
    yield
    checks.reset()


@pytest.fixture(autouse=True)
def _no_open_figures():
    """Close every matplotlib figure a test leaves open, so a later test that counts open
    figures (e.g. a widget must not leak one per redraw) sees only its own."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
