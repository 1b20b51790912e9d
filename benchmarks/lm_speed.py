"""Lesson 07's runs, timed: the teacher and every student of a profile — a measurement, not a test.

    python benchmarks/lm_speed.py                       # the cpu profile, in a fresh temporary folder
    python benchmarks/lm_speed.py --profile smoke --json results/lm_speed_smoke.json

Trains what lesson 07 trains (same code: ``kdtutor.lm.lesson``), in a temporary folder so
nothing is loaded from an earlier run, and prints seconds per run, the total, the table of
held-out scores and three samples per model. Set ``KDTUTOR_TEXT`` to read a local copy of
tiny Shakespeare. The fp32 matmul speed is measured before and after: on a shared machine
it tells how much of the CPU the runs actually had (the course's 2-core reference machine
does ≈ 150 GFLOP/s idle).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from kdtutor.lm.evaluate import lm_table, side_by_side
from kdtutor.lm.lesson import setup
from kdtutor.lm.train import NextChar, OnPolicyKD, TokenKD, TopKKD
from kdtutor.images.models import count_parameters


def lesson_objectives(lesson) -> dict:
    """The seven students of lesson 07, built as the notebook builds them (sections 4–6)."""
    s, t, w = lesson.sizes, lesson.teacher().model, lesson.transfer
    return {"scratch": NextChar(w, s.batch, s.block, name="scratch"),
            "forward KL": TokenKD(t, w, s.batch, "forward", T=s.T),
            "reverse KL": TokenKD(t, w, s.batch, "reverse", T=s.T),
            f"JSD({s.beta:g})": TokenKD(t, w, s.batch, "jsd", beta=s.beta, T=s.T),
            "sequence-level KD": NextChar(lesson.corpus(), lesson.seq_batch, s.block, prompt_len=s.prompt_len,
                                          name="sequence-level KD"),
            f"on-policy JSD({s.beta:g})": OnPolicyKD(t, w, s.batch, "jsd", beta=s.beta, T=s.T, lmbda=s.lmbda,
                                                     prompt_len=s.prompt_len),
            f"top-{s.k} KD": TopKKD(lesson.topk(), w, s.batch, rest="bucket")}


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0) / 1e9


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--folder", help="checkpoint folder (default: a fresh temporary one)")
    parser.add_argument("--json", help="write the timings and scores here")
    args = parser.parse_args(argv)

    folder = Path(args.folder or tempfile.mkdtemp(prefix="kdtutor-lm-speed-"))
    before = matmul_gflops()
    t_all = time.perf_counter()
    lesson = setup(args.profile, progress=False, folder=folder)
    print(f"{lesson.data}; profile {lesson.profile_name}; {lesson.device}, {torch.get_num_threads()} threads; "
          f"fp32 matmul {before:.0f} GFLOP/s before", flush=True)
    seconds, cpu_seconds, gflops = {}, {}, {}

    def timed(name, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        seconds[name], cpu_seconds[name] = time.perf_counter() - t0, time.process_time() - c0
        gflops[name] = matmul_gflops()  # how much of the machine we had, just after
        print(f"  {name:28s} {seconds[name]:7.1f} s wall, {cpu_seconds[name]:7.1f} s CPU; "
              f"matmul {gflops[name]:.0f} GFLOP/s after", flush=True)
        return out

    models = {"teacher": timed("teacher", lesson.teacher).model}
    timed("teacher writes (seq-KD data)", lesson.corpus)
    timed(f"top-{lesson.sizes.k} cache", lesson.topk)
    for m, objective in lesson_objectives(lesson).items():
        models[m] = timed(m, lambda: lesson.student(m, objective)).model
    train_total, train_cpu = sum(seconds.values()), sum(cpu_seconds.values())
    results = timed("evaluation + samples", lambda: lesson.evaluate(models))
    total = time.perf_counter() - t_all
    after = matmul_gflops()
    print(f"teacher {count_parameters(models['teacher']):,d} parameters, students "
          f"{count_parameters(models['scratch']):,d}")
    print(f"teacher + all students (with the seq-KD text and the top-k cache): {train_total:.0f} s wall, "
          f"{train_cpu:.0f} s CPU (all threads); "
          f"everything incl. loading and evaluation: {total:.0f} s; fp32 matmul {after:.0f} GFLOP/s after "
          f"({platform.processor() or platform.machine()})")
    print("\n".join(lm_table(results, lesson.reference_diversity())))
    for name, r in results.items():
        print(side_by_side({f"{name}, sample {i + 1}": s for i, s in enumerate(r["samples"][:3])}, width=100))
    report = {"profile": lesson.profile_name, "text": lesson.data.name, "seconds": seconds, "cpu_seconds": cpu_seconds,
              "gflops_after_each": gflops, "train_total_s": train_total, "train_cpu_s": train_cpu,
              "total_s": total, "gflops_before": before, "gflops_after": after, "threads": torch.get_num_threads(),
              "results": results}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return report


if __name__ == "__main__":
    main()
