"""What lesson 06 costs on this machine — a measurement, not a test.

    python benchmarks/beyond_cost.py --profile cpu     # lesson 06's cpu budget, one seed
    python benchmarks/beyond_cost.py --profile smoke

For one seed, at the profile's lesson-06 budget (``Profile.beyond``): the time of one student
run per method of the comparison and of each side experiment (teacher outputs computed once per
view and then shared, as in the lesson), and the training images/s of each run. From these it
estimates the lesson's run time: the learning-rate sweep (two runs per distillation method), every
method per seed, and the three side-experiment runs. Input: stand-in images of CIFAR-10's shape (speed does not depend on pixel values) —
the estimate is for the lesson on any 32×32 data at that size. Report the load of the machine
with the numbers (``os.getloadavg``): other processes slow it down.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from kdtutor.images.methods import HINT_LAYERS, METHODS, SIDE_METHODS, TeacherCache, train_method
from kdtutor.images.models import build_model
from kdtutor.images.recipes import config_for
from kdtutor.images.standin import make_standin
from kdtutor.profiles import get_profile


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    p = get_profile(args.profile)
    b = p.beyond
    n = b.n_train or 45000
    data = make_standin(n, b.n_eval or p.n_val or 5000, b.n_eval or p.n_test or 10000)
    teacher = build_model(p.teacher)  # untrained: speed only
    cache = TeacherCache(teacher, HINT_LAYERS[p.teacher])
    cfg = config_for(p.student, b.epochs, p.batch_size, seed=1)
    out = {"profile": p.name, "n_train": n, "epochs": b.epochs, "threads": torch.get_num_threads(),
           "load_before": os.getloadavg(), "runs": {}}
    t_all = time.perf_counter()
    for m in METHODS + SIDE_METHODS:
        t0 = time.perf_counter()
        run = train_method(m, p.student, data, cfg, cache)
        total = time.perf_counter() - t0
        ips = [e["images_per_s"] for e in run.history.epochs]
        out["runs"][m] = {"seconds": round(total, 2), "fit_seconds": round(run.seconds, 2),
                          "images_per_s_median": round(sorted(ips)[len(ips) // 2], 1)}
        print(f"{m:8s} {total:6.1f} s   {out['runs'][m]['images_per_s_median']:8.0f} training images/s")
    everything = time.perf_counter() - t_all
    per_seed = sum(out["runs"][m]["seconds"] for m in METHODS)
    runs = len(METHODS) * len(b.seeds) + 2 * (len(METHODS) - 1) + 3
    estimate = per_seed * len(b.seeds) + 2 * (per_seed - out["runs"]["scratch"]["seconds"]) + (
        everything - per_seed) + out["runs"]["FM"]["seconds"]
    out.update({"one_seed_all_methods_s": round(per_seed, 1), "lesson_runs": runs,
                "estimated_lesson_s": round(estimate, 0), "load_after": os.getloadavg()})
    print(f"one seed, the {len(METHODS)} compared methods (teacher views computed once): {per_seed:.0f} s; lesson ≈ "
          f"{runs} runs ≈ {estimate:.0f} s (load average {out['load_before'][0]:.1f} → {out['load_after'][0]:.1f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
