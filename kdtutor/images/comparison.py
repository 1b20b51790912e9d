"""Lesson 06 — the fair comparison and what unfair ones would have reported.

Protocol (:func:`compare_methods`):

1. **Equal tuning.** Every method gets the same budget: the two values of its one
   parameter in :data:`kdtutor.images.methods.GRID`, trained at the sweep seed and chosen on
   the *validation* split (last epoch).
2. **Seeds.** Each method, at its chosen value, is trained with every comparison seed.
   Runs of one seed share initial weights, data order and augmentations, so each method's
   difference to KD on a seed is a *paired* difference.
3. **Test once.** Test accuracy and top-1 agreement with the teacher, final epoch.

:func:`published_style_gains` then computes, from the same runs, the gain over KD one would
report by choosing the best epoch on the test split, the best of N seeds, or by tuning the
new method on test while KD keeps its first grid value — next to the honest paired mean.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from kdtutor.images.distill import Comparison
from kdtutor.images.methods import GRID, HINT_LAYERS, METHODS, MethodRun, TeacherCache, train_method
from kdtutor.images.metrics import top1_agreement
from kdtutor.images.metrics import top1_accuracy
from kdtutor.images.recipes import TrainConfig
from kdtutor.images.splits import Dataset


@dataclass
class MethodComparison:
    """Everything the lesson's table and figures are computed from.

    ``grid[method][value]`` is the sweep-seed run of each grid value; ``chosen[method]`` the
    value picked on validation; ``runs[method][seed]`` the comparison runs;
    ``test_labels`` and ``teacher_test_logits`` what they are scored against.
    """

    dataset: str
    is_standin: bool
    epochs: int
    n_train: int
    seeds: list[int]
    sweep_seed: int
    test_labels: torch.Tensor
    teacher_test_logits: torch.Tensor
    grid: dict = field(default_factory=dict)
    chosen: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict)

    def test_acc(self, method: str) -> list[float]:
        """Final-epoch test accuracy of ``method``, one per seed (fractions)."""
        return [top1_accuracy(self.runs[method][s].test_logits, self.test_labels) for s in self.seeds]

    def agreement(self, method: str) -> list[float]:
        """Top-1 agreement with the teacher on the test split, one per seed."""
        return [top1_agreement(self.runs[method][s].test_logits, self.teacher_test_logits) for s in self.seeds]

    def versus_kd(self, method: str) -> Comparison:
        """Paired comparison of ``method`` against KD on test (``distilled`` = ``method``)."""
        return Comparison("test", self.test_acc("KD"), self.test_acc(method))

    def table(self) -> list[dict]:
        """One row per method: chosen value, accuracy and agreement (mean, std over seeds, in %),
        paired differences against KD (points) and the verdict."""
        rows = []
        for m in METHODS:
            acc, agr = self.test_acc(m), self.agreement(m)
            c = self.versus_kd(m)
            rows.append({"method": m, "param": GRID[m][0], "value": self.chosen[m],
                         "acc_mean": 100 * statistics.mean(acc), "acc_std": 100 * statistics.stdev(acc),
                         "agree_mean": 100 * statistics.mean(agr), "agree_std": 100 * statistics.stdev(agr),
                         "diffs": [100 * d for d in c.differences], "diff_mean": 100 * c.gain,
                         "verdict": None if m == "KD" else c.verdict(better=m, worse="KD")})
        return rows

    def markdown(self) -> list[str]:
        """The table as Markdown lines (lesson and ``summary.md``)."""
        return comparison_table(self.table(), self.seeds)

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "is_standin": self.is_standin, "epochs": self.epochs,
                "n_train": self.n_train, "seeds": self.seeds, "sweep_seed": self.sweep_seed,
                "grid": {m: {str(v): r.val_acc for v, r in g.items()} for m, g in self.grid.items()},
                "table": self.table(), "published_style": published_style_gains(self),
                "seconds": {m: sum(r.seconds for r in self.runs[m].values()) for m in METHODS}}


def comparison_table(rows: list[dict], seeds) -> list[str]:
    lines = [f"| method | chosen on validation | test accuracy (%) | agreement with teacher (%) | "
             f"− KD, paired, seeds {', '.join(map(str, seeds))} (points) | mean − KD |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        diffs = "—" if r["method"] == "KD" else ", ".join(f"{d:+.2f}" for d in r["diffs"])
        mean = "—" if r["method"] == "KD" else f"{r['diff_mean']:+.2f}"
        lines.append(f"| {r['method']} | {r['param']} = {r['value']:g} | {r['acc_mean']:.2f} ± {r['acc_std']:.2f} | "
                     f"{r['agree_mean']:.2f} ± {r['agree_std']:.2f} | {diffs} | {mean} |")
    return lines


def _choose(runs: dict) -> float:
    """The grid value with the best validation accuracy (the first one on ties)."""
    values = list(runs)
    return max(values, key=lambda v: (runs[v].val_acc, -values.index(v)))


def compare_methods(teacher: torch.nn.Module, teacher_arch: str, arch: str, data: Dataset, make_cfg, seeds, sweep_seed: int,
                    teacher_test_logits: torch.Tensor, device=None, progress: bool = True) -> MethodComparison:
    """Tune every method on its 2-value grid at ``sweep_seed`` (validation), then train each
    chosen method with every seed in ``seeds`` (see the module's protocol).

    ``make_cfg(seed)`` gives one seed's :class:`TrainConfig` (shared by all methods). Teacher
    logits and features are cached per view and shared by every run of a seed, then dropped.
    """
    if sweep_seed in seeds:
        raise ValueError(f"the sweep seed {sweep_seed} is one of the comparison seeds {list(seeds)}: "
                         "the comparison would be chosen on itself")
    if len(seeds) < 2:
        raise ValueError(f"a mean ± std and paired differences need at least 2 seeds, got {list(seeds)}")
    labels = data.test.labels
    result = MethodComparison(data.name, data.is_standin, make_cfg(sweep_seed).epochs, len(data.train), list(seeds),
                              sweep_seed, labels, teacher_test_logits.cpu())
    if teacher_arch not in HINT_LAYERS or arch not in HINT_LAYERS:
        raise ValueError(f"no hint layer known for {teacher_arch!r} → {arch!r}; known: {', '.join(HINT_LAYERS)}")
    cache, cached_seed = TeacherCache(teacher, HINT_LAYERS[teacher_arch]), None
    jobs = [(sweep_seed, m, v) for m in METHODS for v in GRID[m][1]] + [(s, m, None) for s in seeds for m in METHODS]
    bar = tqdm(jobs, desc=f"{len(jobs)} student runs", disable=not progress)
    for seed, method, value in bar:
        if seed != cached_seed:
            cache.clear()  # every view of the previous seed is done
            cached_seed = seed
        if value is None:
            value = result.chosen.setdefault(method, _choose(result.grid[method]))
        bar.set_postfix(seed=seed, method=method, **{GRID[method][0]: value})
        run = train_method(method, {GRID[method][0]: value}, arch, data, make_cfg(seed), cache, device=device,
                           probe_test=seed != sweep_seed)  # per-epoch test accuracy: only the seeds' runs use it
        if seed == sweep_seed:
            result.grid.setdefault(method, {})[value] = run
        else:
            result.runs.setdefault(method, {})[seed] = run
    cache.clear()
    return result


def patient_runs(teacher: torch.nn.Module, arch: str, data: Dataset, cfg: TrainConfig, T: float,
                 device=None) -> dict[str, MethodRun]:
    """Function matching for ``cfg.epochs`` (a longer schedule) with a consistent teacher (same mixup
    view as the student) and a fixed one (the clean image, computed once); same seed and start."""
    out = {}
    for name, fixed in (("consistent teacher", False), ("fixed teacher", True)):
        cache = TeacherCache(teacher)
        out[name] = train_method("FM", {"T": T}, arch, data, cfg, cache, fixed=fixed, device=device, probe_test=False)
        cache.clear()
    return out


def published_style_gains(c: MethodComparison) -> dict:
    """Gain over KD (points) for each method, measured four ways from the same runs.

    * ``honest``: mean paired difference, final epoch, test (the table's number).
    * ``best_epoch_on_test``: the method's best test epoch per seed (mean) − KD's final epoch.
    * ``best_of_seeds``: the method's best seed − KD's mean.
    * ``unequal_tuning``: at the sweep seed, the method's better grid value *on test* − KD's
      first grid value (KD "from the paper's defaults", untuned).
    """
    kd = statistics.mean(c.test_acc("KD"))
    kd_default = top1_accuracy(c.grid["KD"][GRID["KD"][1][0]].test_logits, c.test_labels)
    out = {}
    for m in METHODS:
        if m == "KD":
            continue
        acc = c.test_acc(m)
        best_epoch = statistics.mean(max(c.runs[m][s].history.column("test_acc")) for s in c.seeds)
        tuned_on_test = max(top1_accuracy(r.test_logits, c.test_labels) for r in c.grid[m].values())
        out[m] = {"honest": 100 * c.versus_kd(m).gain, "best_epoch_on_test": 100 * (best_epoch - kd),
                  "best_of_seeds": 100 * (max(acc) - kd), "unequal_tuning": 100 * (tuned_on_test - kd_default)}
    return out


def published_style_lines(gains: dict) -> list[str]:
    lines = ["| method | honest (paired mean) | best epoch on test | best of seeds | tuned on test vs untuned KD |",
             "|---|---:|---:|---:|---:|"]
    for m, g in gains.items():
        lines.append(f"| {m} | {g['honest']:+.2f} | {g['best_epoch_on_test']:+.2f} | {g['best_of_seeds']:+.2f} | "
                     f"{g['unequal_tuning']:+.2f} |")
    return lines
