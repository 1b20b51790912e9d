"""Lesson 05 — the report card: accuracy and beyond.

A distilled student is judged on more than top-1 accuracy. This module computes,
from one pass of each model over a split (:func:`kdtutor.images.predict.predict`):

* **quality** — top-1 / top-k accuracy, per-class precision, recall and F1,
  macro-F1, the confusion matrix, negative log-likelihood (NLL);
* **fidelity** to the teacher (Stanton et al. 2021) — top-1 *agreement* and
  KL(teacher ‖ student) at T = 1;
* **calibration** — expected calibration error (ECE) and reliability-diagram bins;
* **cost** — parameters, FLOPs per image, latency at batch 1 and 256, size on
  disk, and how much smaller and faster than the teacher;
* **spread across seeds** — mean, sample standard deviation and a t-interval.

The scores live in small modules, all re-exported here so ``evaluate.<name>`` finds them:
:mod:`kdtutor.images.metrics` (quality, fidelity, calibration), :mod:`kdtutor.images.cost` (parameters,
FLOPs, latency, size) and :mod:`kdtutor.images.stats` (seeds, bootstrap, binomial interval).
This module builds the report card from them.

Shapes and units: ``logits: (N, C) float``, ``labels: (N,) int64`` in ``[0, C)``,
``teacher_logits: (N, C)``. Fractions are returned in [0, 1] (tables show %);
NLL and KL are in nats; latency in milliseconds; sizes in bytes.

Conventions (argmax ties, zero-division in precision/recall/F1, ECE bin edges) are stated
once, in :mod:`kdtutor.images.metrics`, and hold for every score here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from kdtutor.images.cost import ModelCost, _model_device, model_cost
from kdtutor.images.metrics import (ReliabilityBins, _check_pair, check_predictions, confusion_matrix,
                                    macro_f1, negative_log_likelihood, precision_recall_f1, reliability_bins, teacher_kl, top1_accuracy, top1_agreement, topk_accuracy)
from kdtutor.images.predict import cached_predict, predict


# --------------------------------------------------------------------------- the report card
@dataclass
class ReportRow:
    """One model's line of the report card (fractions in [0, 1], nats, bytes, ms).

    Quality: ``accuracy`` (top-1), ``topk_accuracy`` (k = ``k``), ``macro_f1``, ``nll``;
    ``per_class`` holds the ``(C,)`` ``precision``, ``recall``, ``f1``, ``support``;
    ``confusion`` the ``(C, C)`` counts. Fidelity to the teacher: ``agreement``,
    ``kl_to_teacher`` (1 and 0 for the teacher itself). Calibration: ``ece`` and
    ``reliability``. Cost: ``params``, ``flops`` (per image), ``size_bytes``,
    ``latency_ms`` ``{batch size: ms}`` on ``device``, and against the teacher
    ``compression`` (teacher params / params) and ``speedup`` ``{batch size: teacher ms / ms}``.
    ``logits`` ``(N, C)`` are kept (on the CPU) for further plots.
    """

    name: str
    dataset: str
    is_teacher: bool
    n: int
    num_classes: int
    accuracy: float
    k: int
    topk_accuracy: float
    macro_f1: float
    nll: float
    agreement: float
    kl_to_teacher: float
    ece: float
    params: int
    flops: int
    size_bytes: int
    latency_ms: dict[int, float]
    device: str
    compression: float = 1.0
    speedup: dict[int, float] = field(default_factory=dict)
    per_class: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    confusion: torch.Tensor | None = field(default=None, repr=False)
    reliability: ReliabilityBins | None = field(default=None, repr=False)
    logits: torch.Tensor | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """The scalar fields (and per-class lists) as plain Python, ready for ``save_json``."""
        skip = {"confusion", "reliability", "logits", "per_class"}
        out = {k: v for k, v in self.__dict__.items() if k not in skip}
        out["latency_ms"] = {str(b): t for b, t in self.latency_ms.items()}
        out["speedup"] = {str(b): s for b, s in self.speedup.items()}
        out["per_class"] = {k: v.tolist() for k, v in self.per_class.items()}
        out["confusion"] = self.confusion.tolist() if self.confusion is not None else None
        return out


METRIC_FNS = ("top1_agreement", "expected_calibration_error", "macro_f1")  # what a report card can take from a learner


def _metric_fns(fns: dict | None) -> dict:
    """``fns`` checked: only names of :data:`METRIC_FNS`, each a callable."""
    fns = dict(fns or {})
    unknown = sorted(set(fns) - set(METRIC_FNS))
    if unknown:
        raise ValueError(f"metric_fns can replace {', '.join(METRIC_FNS)}; got {', '.join(unknown)}")
    for name, fn in fns.items():
        if not callable(fn):
            raise ValueError(f"metric_fns[{name!r}] must be a function, got {type(fn).__name__}")
    return fns


def quality_row(name: str, logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor,
                dataset_name: str, cost: ModelCost, k: int = 5, n_bins: int = 15,
                is_teacher: bool = False, metric_fns: dict | None = None) -> ReportRow:
    """A :class:`ReportRow` from already computed logits ``(N, C)``, labels ``(N,)``,
    teacher logits ``(N, C)`` and a :class:`ModelCost` (no model needed).

    ``metric_fns``: ``{name: fn}`` for names in :data:`METRIC_FNS` — the learner's own
    ``top1_agreement(student, teacher)``, ``expected_calibration_error(logits, labels, n_bins)`` and
    ``macro_f1(logits, labels)`` (lesson 05) compute those columns instead of kdtutor's."""
    logits = check_predictions(logits, labels)
    _check_pair(logits, teacher_logits)
    fns = _metric_fns(metric_fns)
    k = min(k, logits.shape[1])
    bins = reliability_bins(logits, labels, n_bins)
    ece = fns["expected_calibration_error"](logits, labels, n_bins) if "expected_calibration_error" in fns else bins.ece()
    return ReportRow(
        name=name, dataset=dataset_name, is_teacher=is_teacher, n=len(labels), num_classes=logits.shape[1],
        accuracy=top1_accuracy(logits, labels), k=k, topk_accuracy=topk_accuracy(logits, labels, k),
        macro_f1=float(fns.get("macro_f1", macro_f1)(logits, labels)), nll=negative_log_likelihood(logits, labels),
        agreement=float(fns.get("top1_agreement", top1_agreement)(logits, teacher_logits)),
        kl_to_teacher=teacher_kl(logits, teacher_logits), ece=float(ece), params=cost.params, flops=cost.flops, size_bytes=cost.size_bytes,
        latency_ms=dict(cost.latency_ms), device=cost.device,
        per_class=precision_recall_f1(logits, labels), confusion=confusion_matrix(logits, labels),
        reliability=bins, logits=logits.detach().cpu(),
    )


def report_card(models: dict, loader, teacher_name: str, dataset_name: str, k: int = 5, n_bins: int = 15,
                latency: bool = True, batch_sizes=(1, 256), warmup: int = 3, repeats: int = 10,
                tta: bool | int = False, metric_fns: dict | None = None, cache: bool = False) -> dict[str, ReportRow]:
    """Evaluate every model on ``loader`` once and fill in its :class:`ReportRow`.

    Args:
        models: ``{name: nn.Module}``, each already on ``loader.device``; must include the teacher.
        loader: a non-shuffled :class:`kdtutor.images.loader.DeviceLoader` (e.g. the test loader).
        teacher_name: which entry is the teacher (fidelity and ratios are against it).
        dataset_name: ``Dataset.name``, carried into every row and table.
        k: for top-k accuracy (capped at the number of classes).
        latency: measure latency (set False for a fast card; latency then stays empty).
        batch_sizes, warmup, repeats: see :func:`measure_latency`.
        tta: test-time augmentation level of :func:`kdtutor.images.predict.predict`: True / 1 averages each
            image with its mirror, 2 airbench94's six views (mirror × one-pixel shifts).
        metric_fns: the learner's functions for some columns (see :func:`quality_row`).
        cache: take the logits from :func:`kdtutor.images.predict.cached_predict` (computed once per
            content of each model's weights and the loader's data); latency is measured every time.
    Returns:
        ``{name: ReportRow}`` in the order of ``models``.
    """
    if not models:
        raise ValueError("report_card needs at least one model")
    if teacher_name not in models:
        raise ValueError(f"teacher {teacher_name!r} is not among the models: {', '.join(map(str, models))}")
    if not dataset_name:
        raise ValueError("pass dataset_name (Dataset.name) so the report says which data it is about")
    if loader.num_examples == 0:
        raise ValueError("empty split: the loader holds no examples (N = 0)")
    _metric_fns(metric_fns)  # a typo fails before the models are run
    for name, model in models.items():
        if _model_device(model).type != loader.device.type:
            raise ValueError(f"model {name!r} is on {_model_device(model)} but the loader's data are on "
                             f"{loader.device}: move it first with model.to(loader.device)")
    example = loader.clean_images(torch.arange(min(loader.num_examples, max(batch_sizes or (1,))),
                                               device=loader.device))
    outputs, costs = {}, {}
    for name, model in models.items():
        outputs[name] = (cached_predict if cache else predict)(model, loader, tta=tta)
        costs[name] = model_cost(model, example, batch_sizes, warmup, repeats, latency)
    labels = outputs[teacher_name][1]
    teacher_logits = outputs[teacher_name][0]
    card = {}
    for name, (logits, lab) in outputs.items():
        if not torch.equal(lab, labels):
            raise ValueError(f"labels seen with {name!r} differ from the teacher's: is the loader shuffled?")
        if logits.shape[1] != teacher_logits.shape[1]:
            raise ValueError(f"model {name!r} has {logits.shape[1]} classes but the teacher "
                             f"{teacher_name!r} has {teacher_logits.shape[1]}: they must share the label space")
        row = quality_row(name, logits, labels, teacher_logits, dataset_name, costs[name], k, n_bins,
                          is_teacher=name == teacher_name, metric_fns=metric_fns)
        t_cost = costs[teacher_name]
        row.compression = t_cost.params / max(row.params, 1)
        row.speedup = {b: t_cost.latency_ms[b] / row.latency_ms[b] for b in row.latency_ms if row.latency_ms[b] > 0}
        card[name] = row
    return card


def _si(x: float, unit: str = "") -> str:
    """1234567 → '1.23 M' (k, M, G, T)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}".rstrip()


def report_table(card: dict[str, ReportRow], title: str = "Report card") -> str:
    """A compact Markdown table of a :func:`report_card`, with the data set name in its caption.

    Columns: accuracy, agreement with the teacher, KL(teacher ‖ model), ECE (%), NLL,
    parameters, FLOPs per image, latency at batch 1 and the largest batch (ms), size on disk.
    """
    if not card:
        raise ValueError("the report card is empty")
    rows = list(card.values())
    datasets = {r.dataset for r in rows}
    if len(datasets) != 1:
        raise ValueError(f"the rows come from different data sets: {sorted(datasets)}")
    batches = sorted(rows[0].latency_ms)
    lat_cols = [f"latency b{b} (ms)" for b in batches]
    head = ["model", "accuracy", "agreement", "KL (nats)", "ECE", "NLL (nats)", "params", "FLOPs/img",
            *lat_cols, "size"]
    lines = [f"**{title} — {rows[0].dataset}** (N = {rows[0].n} examples"
             + (f"; latency on {rows[0].device}" if batches else "; latency not measured") + ")", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in rows:
        name = f"{r.name} (teacher)" if r.is_teacher and "teacher" not in r.name else r.name
        cells = [name, f"{100 * r.accuracy:.2f} %", f"{100 * r.agreement:.2f} %", f"{r.kl_to_teacher:.4f}",
                 f"{100 * r.ece:.2f} %", f"{r.nll:.4f}", _si(r.params), _si(r.flops),
                 *[f"{r.latency_ms.get(b, math.nan):.3g}" for b in batches], _si(r.size_bytes, "B")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
