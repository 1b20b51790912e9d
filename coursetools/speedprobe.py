"""How fast this machine runs the course's work right now: a probe of about ten seconds.

The same 2-core machine has run identical lessons 1.3–1.7× slower from one hour to the next
(docs/speed.md), so a course time means little without the speed it was measured at. The probe
times, in a fresh process with the kernels' environment (:func:`kdtutor.cpu_environment`), the two
kinds of work the cpu course spends its time on:

* ``cnn_tiny_images_per_s`` — training steps of ``cnn_tiny`` on 250 channels-last images (the students
  of lessons 03–06 and 08: convolutions);
* ``lm_teacher_steps_per_s`` — training steps of lesson 07's cpu teacher (a small transformer: many
  small operations).

``benchmarks/course_time.py`` records a probe before and after its runs (and ``pace.json`` keeps
them); ``python -m coursetools course`` probes the machine it starts on and scales the recorded
lesson times by the ratio (:func:`predicted_seconds`).
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, statistics, sys, time
import torch
import torch.nn.functional as F
from kdtutor.images.models import build_model
from kdtutor.lm.model import CharTransformer, LMConfig
from kdtutor.lm.train import LM_SIZES

steps = int(sys.argv[1])
torch.manual_seed(0)


def steps_per_s(step):
    for _ in range(2):  # warm-up: first-call allocations and kernel choices
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return 1 / statistics.median(times)


cnn = build_model("cnn_tiny").to(memory_format=torch.channels_last)
x = torch.randn(250, 3, 32, 32).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (250,))
s = LM_SIZES["cpu"]
lm = CharTransformer(LMConfig(65, s.block, *s.teacher))
ids = torch.randint(0, 65, (s.batch, s.block + 1))
out = {}
for name, model, loss in (("cnn_tiny_images_per_s", cnn, lambda: F.cross_entropy(cnn(x), y)),
                          ("lm_teacher_steps_per_s", lm,
                           lambda: F.cross_entropy(lm(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten()))):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()

    out[name] = steps_per_s(step) * (250 if name.startswith("cnn") else 1)
print(json.dumps(out))
"""
KEYS = ("cnn_tiny_images_per_s", "lm_teacher_steps_per_s")


def probe(steps: int = 15, timeout: float = 300) -> dict[str, float]:
    """``{"cnn_tiny_images_per_s", "lm_teacher_steps_per_s"}`` measured now (median of ``steps`` timed
    training steps after two warm-up steps, each in a fresh process with the kernels' environment).

    Raises:
        RuntimeError: the probe process failed (its error output is in the message).
    """
    from kdtutor import cpu_environment

    done = subprocess.run([sys.executable, "-c", PROBE, str(steps)], env=cpu_environment(), capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the speed probe failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def speed_ratio(recorded: dict, now: dict, lesson: str) -> float:
    """How much faster this machine runs ``lesson``'s work now than the recorded run's machine did:
    lesson 07 by the transformer steps, every other lesson by ``cnn_tiny``'s images/s."""
    key = KEYS[1] if lesson.startswith("07") else KEYS[0]
    if not (recorded.get(key, 0) > 0 and now.get(key, 0) > 0):
        raise ValueError(f"both probes need a positive {key!r}, got {recorded.get(key)!r} and {now.get(key)!r}")
    return now[key] / recorded[key]


def predicted_seconds(expected: dict[str, float], recorded: dict, now: dict) -> dict[str, float]:
    """``{lesson stem: seconds}``: the recorded run's times (``expected``) on this machine at its speed ``now``,
    each divided by :func:`speed_ratio` (``recorded``: the recorded run's probe)."""
    return {lesson: seconds / speed_ratio(recorded, now, lesson) for lesson, seconds in expected.items()}


def describe(recorded: dict, now: dict) -> str:
    """One line comparing the two probes, e.g. ``cnn_tiny 1,800 against 2,600 images/s (0.69×) …``."""
    cnn, lm = (now[k] / recorded[k] for k in KEYS)
    return (f"cnn_tiny {now[KEYS[0]]:,.0f} against {recorded[KEYS[0]]:,.0f} images/s ({cnn:.2f}×), lesson 07's "
            f"teacher {now[KEYS[1]]:.2f} against {recorded[KEYS[1]]:.2f} steps/s ({lm:.2f}×)")
