"""Lesson 06 — the fair comparison and what unfair ones would have reported.

Protocol (:func:`compare_methods`):

1. **Reference settings.** Every method's loss is fixed at the settings of its reference code
   (:data:`kdtutor.images.methods.REFERENCE`); nothing about the loss is tuned.
2. **A learning rate per method, chosen on validation.** The methods pull on the student's
   logits with very different strength at the start (:func:`~kdtutor.images.methods.initial_gradient_norms`),
   so one learning rate for all favours some of them. Each distillation method tries two
   learning rates at the sweep seed — the course's (tuned for CE) and the one that makes its
   initial gradient as strong as CE's — and keeps the better one on the *validation* split.
3. **Seeds.** Each method, at its chosen learning rate, is trained with every comparison seed.
   Runs of one seed share initial weights, data order and augmentations, so each method's
   difference to KD on a seed is a *paired* difference.
4. **Test once, judge with the design's power.** Test accuracy and top-1 agreement with the
   teacher, final epoch; for each method, the paired differences with KD, their 95 % interval,
   a verdict in three classes (:data:`kdtutor.images.stats.VERDICTS`) and the minimum detectable
   difference of the design.

:func:`published_style_gains` then computes, from the same runs, the gain over KD one would
report by choosing the best epoch on the test split, the best of N seeds, or by tuning the
new method on test while KD keeps the course's learning rate — next to the honest paired mean.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from kdtutor.images.distill import TeacherLogits
from kdtutor.images.methods import (HINT_LAYERS, METHODS, MethodRun, initial_gradient_norms,
                                    lr_candidates, train_method)
from kdtutor.images.metrics import top1_accuracy, top1_agreement
from kdtutor.images.recipes import TrainConfig
from kdtutor.images.splits import Dataset
from kdtutor.images.stats import PairedDifference, paired_seed_difference

NEW_METHODS = tuple(m for m in METHODS if m not in ("scratch", "KD"))  # what papers compare with KD


@dataclass
class MethodComparison:
    """Everything the lesson's table and figures are computed from.

    ``grad_norms[method]``: the initial gradient strength on the logits; ``grid[method][lr_scale]``:
    the sweep-seed run of each learning-rate multiplier; ``chosen[method]``: the multiplier picked on
    validation; ``runs[method][seed]``: the comparison runs; ``test_labels`` and
    ``teacher_test_logits``: what they are scored against.
    """

    dataset: str
    is_standin: bool
    epochs: int
    n_train: int
    seeds: list[int]
    sweep_seed: int
    test_labels: torch.Tensor
    teacher_test_logits: torch.Tensor
    grad_norms: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    chosen: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict)

    def test_acc(self, method: str) -> list[float]:
        """Final-epoch test accuracy of ``method``, one per seed (fractions)."""
        return [top1_accuracy(self.runs[method][s].test_logits, self.test_labels) for s in self.seeds]

    def agreement(self, method: str) -> list[float]:
        """Top-1 agreement with the teacher on the test split, one per seed."""
        return [top1_agreement(self.runs[method][s].test_logits, self.teacher_test_logits) for s in self.seeds]

    def versus_kd(self, method: str) -> PairedDifference:
        """``method − KD`` on test, paired by seed (fractions)."""
        return paired_seed_difference(self.test_acc(method), self.test_acc("KD"))

    def table(self) -> list[dict]:
        """One row per method: chosen learning-rate multiplier, accuracy and agreement (mean, std
        over seeds, in %), paired differences with KD, their 95 % interval and the minimum
        detectable difference (points), and the verdict (None for KD)."""
        rows = []
        for m in METHODS:
            acc, agr = self.test_acc(m), self.agreement(m)
            row = {"method": m, "lr_scale": self.chosen[m], "grad_norm": self.grad_norms.get(m),
                   "acc_mean": 100 * statistics.mean(acc), "acc_std": 100 * statistics.stdev(acc),
                   "agree_mean": 100 * statistics.mean(agr), "agree_std": 100 * statistics.stdev(agr),
                   "diffs": None, "diff_mean": None, "ci": None, "mdd": None, "verdict": None}
            if m != "KD":
                d = self.versus_kd(m)
                row.update(diffs=[100 * (a - k) for a, k in zip(acc, self.test_acc("KD"))], diff_mean=100 * d.mean,
                           ci=[100 * d.low, 100 * d.high], mdd=100 * d.mdd, verdict=d.verdict)
            rows.append(row)
        return rows

    def markdown(self) -> list[str]:
        """The table as Markdown lines (lesson and ``summary.md``)."""
        return comparison_table(self.table(), self.seeds)

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "is_standin": self.is_standin, "epochs": self.epochs,
                "n_train": self.n_train, "seeds": self.seeds, "sweep_seed": self.sweep_seed,
                "grad_norms": self.grad_norms,
                "grid": {m: {f"{v:.4g}": r.val_acc for v, r in g.items()} for m, g in self.grid.items()},
                "table": self.table(), "published_style": published_style_gains(self),
                "seconds": {m: sum(r.seconds for r in self.runs[m].values()) for m in METHODS}}


def comparison_table(rows: list[dict], seeds) -> list[str]:
    """Markdown lines of :meth:`MethodComparison.table`'s rows."""
    lines = [f"| method | learning rate × | test accuracy (%) | agreement with teacher (%) | "
             f"− KD, paired, seeds {', '.join(map(str, seeds))} (points) | mean − KD [95 % CI] | "
             "detectable (80 % power) | verdict vs KD |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if r["verdict"] is None:
            diffs = mean = mdd = verdict = "—"
        else:
            diffs = ", ".join(f"{d:+.2f}" for d in r["diffs"])
            mean = f"{r['diff_mean']:+.2f} [{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]"
            mdd, verdict = f"{r['mdd']:.2f}", r["verdict"]
        lines.append(f"| {r['method']} | {r['lr_scale']:.3g} | {r['acc_mean']:.2f} ± {r['acc_std']:.2f} | "
                     f"{r['agree_mean']:.2f} ± {r['agree_std']:.2f} | {diffs} | {mean} | {mdd} | {verdict} |")
    return lines


def verdict_lines(rows: list[dict]) -> list[str]:
    """One sentence per method on what the paired differences with KD show, with the design's power."""
    out = []
    for r in rows:
        if r["verdict"] is None:
            continue
        lo, hi = r["ci"]
        what = {"reliably better": f"{r['method']} beat KD reliably",
                "reliably worse": f"{r['method']} was reliably worse than KD",
                "inconclusive": f"{r['method']} vs KD is inconclusive"}[r["verdict"]]
        out.append(f"- {what}: {r['diff_mean']:+.2f} points on average, 95 % interval [{lo:+.2f}, {hi:+.2f}]; "
                   f"with this spread and {len(r['diffs'])} seeds the design finds a true difference of "
                   f"{r['mdd']:.2f} points 4 times in 5" + (" — a smaller one may be hiding in the interval."
                                                              if r["verdict"] == "inconclusive" else "."))
    return out


def lr_choice_lines(c: MethodComparison) -> list[str]:
    """One line per tuned method: the validation accuracy of each learning-rate candidate at the
    sweep seed, and which one was kept."""
    out = []
    for m, runs in c.grid.items():
        tried = ", ".join(f"×{v:.3g}: {100 * r.val_acc:.2f} %" for v, r in runs.items())
        out.append(f"{m}: validation accuracy at seed {c.sweep_seed} — {tried}; kept ×{c.chosen[m]:.3g}")
    return out


def _choose(runs: dict) -> float:
    """The learning-rate multiplier with the best validation accuracy (the first one on ties)."""
    values = list(runs)
    return max(values, key=lambda v: (runs[v].val_acc, -values.index(v)))


def compare_methods(teacher: torch.nn.Module, teacher_arch: str, arch: str, data: Dataset, make_cfg, seeds,
                    sweep_seed: int, teacher_test_logits: torch.Tensor, device=None,
                    progress: bool = True, checkpoint_dir=None) -> MethodComparison:
    """Choose every distillation method's learning rate on validation at ``sweep_seed``, then
    train every method of :data:`~kdtutor.images.methods.METHODS` with every seed in ``seeds``
    (see the module's protocol).

    ``make_cfg(seed)`` gives one seed's :class:`TrainConfig` (shared by all methods). Teacher
    logits are cached per view and shared by every run of a seed, then dropped; with mirror-only views
    (``translate=0``) they are computed once for every seed. The test split is measured after every epoch
    only in the newer methods' comparison runs (what :func:`published_style_gains` reads). With
    ``checkpoint_dir`` every run is kept and reused when current (:func:`~kdtutor.images.methods.train_method`).
    """
    if sweep_seed in seeds:
        raise ValueError(f"the sweep seed {sweep_seed} is one of the comparison seeds {list(seeds)}: "
                         "the comparison would be chosen on itself")
    if len(seeds) < 2:
        raise ValueError(f"a mean ± std and paired differences need at least 2 seeds, got {list(seeds)}")
    if teacher_arch not in HINT_LAYERS or arch not in HINT_LAYERS:
        raise ValueError(f"no hint layer known for {teacher_arch!r} → {arch!r}; known: {', '.join(HINT_LAYERS)}")
    result = MethodComparison(data.name, data.is_standin, make_cfg(sweep_seed).epochs, len(data.train), list(seeds),
                              sweep_seed, data.test.labels, teacher_test_logits.cpu())
    result.grad_norms = initial_gradient_norms(teacher, arch, data, make_cfg(sweep_seed), device=device)
    candidates = lr_candidates(result.grad_norms)
    jobs = [(sweep_seed, m, v) for m in METHODS if len(candidates[m]) > 1 for v in candidates[m]]
    jobs += [(s, m, None) for s in seeds for m in METHODS]
    outputs = TeacherLogits(teacher, mode="cached")  # a new seed drops the old seed's views (not the mirror table)
    bar = tqdm(jobs, desc=f"{len(jobs)} student runs", disable=not progress)
    for seed, method, scale in bar:
        if scale is None:
            scale = result.chosen.setdefault(method, _choose(result.grid[method]) if method in result.grid
                                             else candidates[method][0])
        bar.set_postfix(seed=seed, method=method, lr_scale=f"{scale:.3g}")
        run = train_method(method, arch, data, make_cfg(seed), None if method == "scratch" else outputs,
                           lr_scale=scale, device=device, checkpoint_dir=checkpoint_dir,
                           probe_test=method in NEW_METHODS and seed != sweep_seed)
        if seed == sweep_seed:
            result.grid.setdefault(method, {})[scale] = run
        else:
            result.runs.setdefault(method, {})[seed] = run
    return result


def side_experiments(teacher: torch.nn.Module, teacher_arch: str, arch: str, data: Dataset, cfg: TrainConfig,
                     device=None, progress: bool = True, checkpoint_dir=None) -> dict[str, MethodRun]:
    """One seed (``cfg.seed``) of each side experiment, at the course's learning rate: FitNets
    (features at :data:`~kdtutor.images.methods.HINT_LAYERS`) with the hint weighted β = 1 and
    β = 100 (RepDistiller's and mdistiller's weight), and function matching with a consistent
    teacher (it sees the student's mixup view) and with a fixed one (its outputs on the clean
    image, as a precomputed-logits pipeline would give)."""
    hinted = TeacherLogits(teacher, mode="cached", layer=HINT_LAYERS[teacher_arch])  # shared by both FitNets runs
    jobs = [("FitNets, β = 1", "FitNets", hinted, {"beta": 1.0}),
            ("FitNets, β = 100", "FitNets", hinted, {"beta": 100.0}),
            ("FM, consistent teacher", "FM", TeacherLogits(teacher, mode="cached"), None),
            ("FM, fixed teacher", "FM", TeacherLogits(teacher, mode="fixed"), None)]
    out = {}
    for i, (name, method, outputs, settings) in enumerate(tqdm(jobs, desc="side experiments", disable=not progress)):
        out[name] = train_method(method, arch, data, cfg, outputs, device=device, checkpoint_dir=checkpoint_dir,
                                 settings=settings, probe_test=False)
        if i + 1 == len(jobs) or jobs[i + 1][2] is not outputs:
            outputs.clear()
    return out


def published_style_gains(c: MethodComparison) -> dict:
    """Gain over KD (points) of each newer method (DKD, LS-KD), measured four ways from the same runs.

    * ``honest``: mean paired difference, final epoch, test (the table's number).
    * ``best_epoch_on_test``: the method's best test epoch per seed (mean) − KD's final epoch.
    * ``best_of_seeds``: the method's best seed − KD's mean.
    * ``unequal_tuning``: at the sweep seed, the method's better learning rate *on test* − KD at
      the course's learning rate (KD "with the usual settings", untuned).
    """
    kd = statistics.mean(c.test_acc("KD"))
    kd_untuned = top1_accuracy(c.grid["KD"][1.0].test_logits, c.test_labels)
    out = {}
    for m in NEW_METHODS:
        acc = c.test_acc(m)
        best_epoch = statistics.mean(max(c.runs[m][s].history.column("test_acc")) for s in c.seeds)
        tuned_on_test = max(top1_accuracy(r.test_logits, c.test_labels) for r in c.grid[m].values())
        out[m] = {"honest": 100 * c.versus_kd(m).mean, "best_epoch_on_test": 100 * (best_epoch - kd),
                  "best_of_seeds": 100 * (max(acc) - kd), "unequal_tuning": 100 * (tuned_on_test - kd_untuned)}
    return out


def published_style_lines(gains: dict) -> list[str]:
    lines = ["| method | honest (paired mean) | best epoch on test | best of seeds | tuned on test vs untuned KD |",
             "|---|---:|---:|---:|---:|"]
    for m, g in gains.items():
        lines.append(f"| {m} | {g['honest']:+.2f} | {g['best_epoch_on_test']:+.2f} | {g['best_of_seeds']:+.2f} | "
                     f"{g['unequal_tuning']:+.2f} |")
    return lines
