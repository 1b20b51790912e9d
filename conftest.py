"""pytest, for the unit tests and the notebooks under nbval alike.

Every test session works in a fresh temporary data folder (checkpoints, caches) and
results folder, so ``make test`` never reads or writes the repository's ``data/`` and
``results/`` (test artefacts included): each run trains what it needs instead of finding a checkpoint an earlier
run left behind. The notebooks' kernels inherit these variables.
Set ``KDTUTOR_TEST_DATA`` to a folder to keep (and reuse) the test session's data there.
"""

import atexit
import os
import shutil
import tempfile

import kdtutor  # noqa: F401  (before torch: its CPU settings, kdtutor.CPU_ENVIRONMENT, for this process and the kernels)

_keep = os.environ.get("KDTUTOR_TEST_DATA")
_root = _keep or tempfile.mkdtemp(prefix="kdtutor-test-")
os.environ["KDTUTOR_DATA"] = os.path.join(_root, "data")
os.environ["KDTUTOR_RESULTS"] = os.path.join(_root, "results")
# Screenshots and graded CSVs the tests keep for a person to look at: in the session's folder too,
# unless KDTUTOR_TEST_ARTEFACTS names a folder to keep them in (nothing is written into the checkout).
os.environ.setdefault("KDTUTOR_TEST_ARTEFACTS", os.path.join(_root, "artefacts"))
if not _keep:
    atexit.register(shutil.rmtree, _root, ignore_errors=True)
