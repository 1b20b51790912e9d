"""OpenMP's wait policy on a shared CPU — a measurement, not a test.

    python benchmarks/threads.py            # each setting alone, then next to one busy process

Times one training step of lesson 07's cpu student (a tiny transformer: many small operations)
and of ``cnn_tiny`` (lessons 04–06), in fresh processes with ``OMP_WAIT_POLICY`` ACTIVE (threads
spin while they wait: libgomp's default for PyTorch's thread pool) and PASSIVE (they sleep:
:data:`kdtutor.CPU_ENVIRONMENT`), with nothing else running and next to one busy process (a
second kernel, a browser tab). The policy is read when torch is imported, hence the processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

STEP = r"""
import json, time, torch
from kdtutor.lm.model import CharTransformer, LMConfig
from kdtutor.lm.train import LM_SIZES
from kdtutor.images.models import build_model
s = LM_SIZES["cpu"]
lm = CharTransformer(LMConfig(65, s.block, *s.student))
x = torch.randint(0, 65, (s.batch, s.block))
cnn = build_model("cnn_tiny").to(memory_format=torch.channels_last)
img = torch.randn(250, 3, 32, 32).contiguous(memory_format=torch.channels_last)
out = {}
for name, model, inp in (("lm student step", lm, x), ("cnn_tiny step (250 images)", cnn, img)):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    def step():
        loss = model(inp).float().logsumexp(-1).mean(); opt.zero_grad(); loss.backward(); opt.step()
    step(); step()
    t = time.perf_counter()
    for _ in range(10): step()
    out[name] = (time.perf_counter() - t) / 10
print(json.dumps(out))
"""
BUSY = "while True: pass"


def measure(policy: str) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    done = subprocess.run([sys.executable, "-c", STEP], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = []
    for busy in (False, True):
        hog = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
        try:
            for policy in ("ACTIVE", "PASSIVE"):
                rows.append((busy, policy, measure(policy)))
        finally:
            if hog:
                hog.kill()
    print(f"{os.cpu_count()} cores; seconds per training step (10 steps after 2 warm-up steps)")
    for busy, policy, r in rows:
        print(f"{'one busy process' if busy else 'alone':18s} {policy:8s} " + "  ".join(f"{k}: {v:.4f} s" for k, v in r.items()))


if __name__ == "__main__":
    main()
