"""How long the course takes on this machine, per lesson — a measurement, not a test.

    python -m benchmarks.course_time --profile cpu            # from what data/ holds now, then again
    python -m benchmarks.course_time --profile cpu --once     # one run only

Runs every lesson headless twice, as ``make course`` does (``coursetools.course.run_course``):
the first run trains whatever ``$KDTUTOR_DATA`` does not hold yet (point it at an empty folder
to time the course "from nothing"), the second finds every model kept by the first and times
a re-run. Prints the minutes per lesson of both runs, the load average and the machine's speed
(:mod:`coursetools.speedprobe`: the same machine can be 1.5× slower an hour later) before and after
(other processes slow it down: time it on an idle machine), and writes them to ``--json``.
The lesson-06/07 budgets and the course's targets (≤ 10 min per lesson, ≤ 30 min for the
whole course from nothing, ≤ 3 min for a re-run on the cpu profile) are in docs/speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from coursetools import speedprobe
from coursetools.course import run_course


def one_run(profile: str, results: Path) -> dict:
    summary = run_course(profile, results_dir=results)
    return json.loads((summary.parent / "timings.json").read_text())["lessons"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--once", action="store_true", help="one run only (no re-run)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--results", default=None, help="keep each run's results/ here (run1/, run2/; default: a temporary folder)")
    args = ap.parse_args()
    import platform

    import torch

    data = os.environ.get("KDTUTOR_DATA", "data/")
    out = {"profile": args.profile, "data": data, "data_empty_at_start": not any(p.name != "README.md" for p in Path(data).glob("*")),  # a clone's data/ holds its README
           "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "cuda": torch.cuda.is_available(),
           "python": platform.python_version(), "load_before": os.getloadavg(), "probe_before": speedprobe.probe(),
           "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(1 if args.once else 2):
            out["runs"].append(one_run(args.profile, Path(args.results or tmp) / f"run{i + 1}"))
    out["load_after"], out["probe_after"] = os.getloadavg(), speedprobe.probe()
    names = list(out["runs"][0])
    print(f"{'lesson':40s}" + "".join(f"{'run ' + str(i + 1):>10s}" for i in range(len(out["runs"]))))
    for name in names:
        print(f"{name:40s}" + "".join(f"{r[name] / 60:9.1f}m" for r in out["runs"]))
    print(f"{'total':40s}" + "".join(f"{sum(r.values()) / 60:9.1f}m" for r in out["runs"]))
    print(f"load average {out['load_before'][0]:.1f} → {out['load_after'][0]:.1f} on {out['cpu_count']} cores; torch "
          f"{out['torch']}, {out['torch_threads']} threads, CUDA {'yes' if out['cuda'] else 'no'}; data folder "
          f"{out['data']} ({'empty' if out['data_empty_at_start'] else 'NOT empty: not a run from nothing'} at the start)")
    for when in ("before", "after"):
        probe = out[f"probe_{when}"]
        print(f"speed {when}: cnn_tiny {probe['cnn_tiny_images_per_s']:,.0f} images/s, lesson 07's teacher "
              f"{probe['lm_teacher_steps_per_s']:.2f} steps/s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
