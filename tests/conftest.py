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
