"""Lesson 05 — the report card: accuracy and beyond.

A distilled student is judged on more than top-1 accuracy. This module computes,
from one pass of each model over a split (:func:`kdtutor.train.predict`):

* **quality** — top-1 / top-k accuracy, per-class precision, recall and F1,
  macro-F1, the confusion matrix, negative log-likelihood (NLL);
* **fidelity** to the teacher (Stanton et al. 2021) — top-1 *agreement* and
  KL(teacher ‖ student) at T = 1;
* **calibration** — expected calibration error (ECE) and reliability-diagram bins;
* **cost** — parameters, FLOPs per image, latency at batch 1 and 256, size on
  disk, and how much smaller and faster than the teacher;
* **spread across seeds** — mean, sample standard deviation and a t-interval.

Shapes and units: ``logits: (N, C) float``, ``labels: (N,) int64`` in ``[0, C)``,
``teacher_logits: (N, C)``. Fractions are returned in [0, 1] (tables show %);
NLL and KL are in nats; latency in milliseconds; sizes in bytes.

Conventions (stated once, used everywhere):

* the predicted class is ``argmax`` of the logits; on ties the *first* (lowest)
  class index wins, as in ``torch.argmax`` and ``numpy.argmax``;
* precision, recall and F1 of a class whose denominator is 0 are **0**
  (scikit-learn's ``zero_division=0``); macro-F1 averages over *all* ``C`` classes
  (scikit-learn's ``f1_score(..., labels=range(C), average="macro", zero_division=0)``);
* ECE bins are ``(lower, upper]`` (Guo et al. 2017), so a confidence of exactly
  1.0 lands in the last bin. (torchmetrics uses ``[lower, upper)`` and puts
  confidence 1.0 in an extra bin of its own; the two agree unless a confidence
  falls exactly on a bin edge.)
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .losses import check_labels, check_logit_pair, cross_entropy, kl_divergence
from .models import count_parameters
from .softmax import check_logits, softmax
from .train import autocast, predict, sync


# --------------------------------------------------------------------------- input checks
def check_predictions(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Return ``logits`` as float, or raise ``ValueError`` naming what is wrong.

    Wrong: not ``(N, C)``, N = 0 (an empty split), NaN/inf logits, labels not
    ``(N,)`` integers in ``[0, C)``.
    """
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a tensor of shape (N, C), got {shape}")
    if logits.shape[0] == 0:
        raise ValueError("empty split: logits hold no examples (N = 0), so no metric is defined; "
                         "check the loader and the data set sizes of the profile")
    if logits.shape[1] == 0:
        raise ValueError("logits have no classes (C = 0)")
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be a tensor of shape (N,), got {type(labels).__name__}")
    logits = check_logits(logits)
    check_labels(labels, logits)
    return logits


def _check_pair(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    check_logit_pair(student_logits, teacher_logits)
    if student_logits.shape[0] == 0:
        raise ValueError("empty split: logits hold no examples (N = 0), so agreement is not defined")
    check_logits(student_logits, "student_logits")
    check_logits(teacher_logits, "teacher_logits")


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Predicted classes ``(N,) int64``: the argmax of each row (first index on ties)."""
    return logits.argmax(dim=1)


# --------------------------------------------------------------------------- quality
def top1_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of examples whose argmax equals the label, in [0, 1].

    Args:
        logits: ``(N, C) float``; labels: ``(N,) int64``.
    """
    logits = check_predictions(logits, labels)
    return (predictions(logits) == labels).double().mean().item()


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 5) -> float:
    """Fraction of examples whose label is among the ``k`` largest logits, in [0, 1].

    The rank of the label counts the classes that beat it: a larger logit, or an
    equal logit at a lower index (so ``k = 1`` agrees with :func:`top1_accuracy`).

    Args:
        logits: ``(N, C) float``; labels: ``(N,) int64``; k: 1 ≤ k ≤ C.
    """
    logits = check_predictions(logits, labels)
    C = logits.shape[1]
    if not (1 <= int(k) <= C):
        raise ValueError(f"k must lie in [1, C] = [1, {C}], got k = {k}")
    z_true = logits.gather(1, labels.long()[:, None])  # (N, 1)
    lower_index = torch.arange(C, device=logits.device)[None, :] < labels[:, None]
    beaten_by = (logits > z_true) | ((logits == z_true) & lower_index)
    return (beaten_by.sum(dim=1) < int(k)).double().mean().item()


def confusion_matrix(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Counts ``(C, C) int64``: entry ``[i, j]`` = examples of true class i predicted as j.

    Rows are true classes, columns predicted classes (as in scikit-learn). Rows
    sum to the class counts of ``labels``; the diagonal holds the correct ones.
    """
    logits = check_predictions(logits, labels)
    C = logits.shape[1]
    flat = labels.long() * C + predictions(logits)
    return torch.bincount(flat, minlength=C * C).reshape(C, C).cpu()


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` elementwise, 0 where ``den == 0`` (scikit-learn's ``zero_division=0``)."""
    return torch.where(den > 0, num / den.clamp_min(1), torch.zeros_like(num))


def precision_recall_f1(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-class precision, recall, F1 and support, each ``(C,)``.

    For class c with TP, FP, FN counted from the confusion matrix:
    precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2·TP/(2·TP+FP+FN)
    (the harmonic mean of the two), each **0 when its denominator is 0**: a class
    never predicted has precision 0, a class absent from ``labels`` has recall 0.
    Recall of class c is also the *per-class accuracy* of c.

    Returns:
        ``{"precision", "recall", "f1"}``: float64 tensors in [0, 1];
        ``"support"``: int64 counts of each class in ``labels``.
    """
    cm = confusion_matrix(logits, labels).double()
    tp = cm.diagonal()
    predicted, support = cm.sum(dim=0), cm.sum(dim=1)
    return {
        "precision": _safe_div(tp, predicted),
        "recall": _safe_div(tp, support),
        "f1": _safe_div(2 * tp, predicted + support),  # 2TP + FP + FN = predicted + support
        "support": support.long(),
    }


def per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(C,)`` float64: accuracy on the examples of each class (its recall); NaN for a class with none."""
    cm = confusion_matrix(logits, labels).double()
    support = cm.sum(dim=1)
    return torch.where(support > 0, cm.diagonal() / support.clamp_min(1), torch.full_like(support, math.nan))


def macro_f1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Unweighted mean of the per-class F1 over all ``C`` classes, in [0, 1].

    Every class counts the same, however rare: a model that ignores a small class
    loses 1/C of its macro-F1, but barely any accuracy (= micro-F1).
    """
    return precision_recall_f1(logits, labels)["f1"].mean().item()


def negative_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean of ``−log softmax(logits)[label]`` over examples, in nats (the test cross-entropy)."""
    logits = check_predictions(logits, labels)
    return cross_entropy(logits.double(), labels, check=False).item()


# --------------------------------------------------------------------------- fidelity
def top1_agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """Fraction of examples where the student's argmax equals the teacher's, in [0, 1].

    Labels play no part: a student can agree with the teacher on its mistakes.
    (Stanton et al. 2021: agreement stays well below 1 even when accuracy is close.)

    Args:
        student_logits, teacher_logits: ``(N, C)``, same examples in the same order.
    """
    _check_pair(student_logits, teacher_logits)
    return (predictions(student_logits) == predictions(teacher_logits)).double().mean().item()


def teacher_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """``KL(softmax(teacher) ‖ softmax(student))`` at T = 1, in nats, mean over examples.

    0 when the student reproduces the teacher's distribution exactly. Computed
    by :func:`kdtutor.losses.kl_divergence` (sum over classes, batch mean), in float64.
    """
    _check_pair(student_logits, teacher_logits)
    return kl_divergence(student_logits.double(), teacher_logits.double(), T=1.0, check=False).item()


# --------------------------------------------------------------------------- calibration
@dataclass
class ReliabilityBins:
    """The data of a reliability diagram: ``n_bins`` equal-width confidence bins on [0, 1].

    Bin b covers confidences in ``(lower[b], upper[b]]``. All fields are ``(n_bins,)``:
    ``count`` (int64, examples in the bin), ``confidence`` (mean max-softmax probability
    of those examples) and ``accuracy`` (their fraction correct), both NaN for an
    empty bin. ``n`` is the total number of examples.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    count: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    n: int

    @property
    def n_bins(self) -> int:
        return len(self.count)

    def ece(self) -> float:
        """``Σ_b (n_b / N) · |acc_b − conf_b|`` over non-empty bins, in [0, 1]."""
        full = self.count > 0
        gap = (self.accuracy[full] - self.confidence[full]).abs()
        return (self.count[full].double() / self.n * gap).sum().item()


def reliability_bins(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> ReliabilityBins:
    """Sort examples into ``n_bins`` equal-width bins by confidence; see :class:`ReliabilityBins`.

    Confidence is the largest softmax probability of a row (T = 1), computed in
    float64; an example is correct when its argmax equals its label.
    """
    logits = check_predictions(logits, labels)
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    n_bins = int(n_bins)
    probs = softmax(logits.double(), check=False)
    confidence, _ = probs.max(dim=1)
    correct = (predictions(logits) == labels).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    # right=False: bin i holds edges[i] < confidence <= edges[i + 1]; the inner edges decide
    index = torch.bucketize(confidence.cpu(), edges[1:-1], right=False)
    count = torch.bincount(index, minlength=n_bins)
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, confidence.cpu())
    acc_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, correct.cpu())
    nan = torch.full((n_bins,), math.nan, dtype=torch.float64)
    mean = lambda s: torch.where(count > 0, s / count.clamp_min(1), nan)  # noqa: E731
    return ReliabilityBins(edges[:-1], edges[1:], count, mean(conf_sum), mean(acc_sum), len(labels))


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Expected calibration error, in [0, 1]: ``Σ_b (n_b / N) · |acc_b − conf_b|``.

    ``n_b`` examples fall in bin b of ``n_bins`` equal-width confidence bins
    (confidence = max softmax probability); ``acc_b`` is their accuracy and
    ``conf_b`` their mean confidence. 0 means "as sure as it is right" on average.
    """
    return reliability_bins(logits, labels, n_bins).ece()


# --------------------------------------------------------------------------- cost
def _model_device(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _example_batch(example: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``batch_size`` images made by cycling through ``example (B, C, H, W)``."""
    idx = torch.arange(batch_size, device=example.device) % len(example)
    return example[idx]


@torch.no_grad()
def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass for **one image**, as counted by ``torch.utils.flop_counter``.

    ``FlopCounterMode`` counts matrix multiplications and convolutions only, at
    **2 FLOPs per multiply–accumulate** (2 × MACs): a ``Linear(i, o)`` is ``2·i·o``,
    a ``Conv2d`` is ``2·(C_in/groups)·C_out·k_h·k_w·H_out·W_out``. Bias additions,
    BatchNorm, activations and pooling are **not** counted (they are a few % of a CNN's total).
    The model runs in eval mode on a batch of one image (taken from ``example``).

    Args:
        example: ``(B, C, H, W)`` (or ``(B, F)``) input on the model's device; only ``example[:1]`` is used.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(example[:1])
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


@torch.no_grad()
def measure_latency(model: nn.Module, example: torch.Tensor, batch_size: int = 1, warmup: int = 3,
                    repeats: int = 10) -> float:
    """Median wall-clock time of one forward pass on ``batch_size`` images, in **milliseconds**.

    Runs ``warmup`` untimed passes first (allocations, cuDNN autotuning), then
    ``repeats`` timed ones; on CUDA each timing is bracketed by
    ``torch.cuda.synchronize`` (GPU work is asynchronous) and runs in the device's
    fast precision (:func:`kdtutor.precision.amp_dtype`: bf16 or fp16 autocast on CUDA,
    float32 on the CPU), as a deployed model would. Accuracy and the other quality
    numbers come from :func:`kdtutor.train.predict`, always in float32.
    The model runs in eval mode on its own device.

    Args:
        example: ``(B, C, H, W)`` images; cycled to make a batch of ``batch_size``.
    """
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"need batch_size ≥ 1, repeats ≥ 1, warmup ≥ 0; got {batch_size}, {repeats}, {warmup}")
    device = _model_device(model)
    x = _example_batch(example.to(device), batch_size)
    if device.type == "cuda" and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    model.eval()
    times = []
    try:
        with autocast(device):
            for i in range(warmup + repeats):
                sync(device)
                t0 = time.perf_counter()
                model(x)
                sync(device)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
    finally:
        model.train(was_training)
    return 1000 * statistics.median(times)


def size_on_disk(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``, written to a temporary file (then deleted).

    Includes buffers (e.g. BatchNorm statistics) and the pickle's small overhead.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state_dict.pt"
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
        return os.path.getsize(path)


@dataclass
class ModelCost:
    """What a model costs. ``latency_ms``: ``{batch size: median ms per forward pass}``,
    measured on ``device``; ``flops``: per image (2 × MACs, see :func:`count_flops`)."""

    params: int
    flops: int
    size_bytes: int
    latency_ms: dict[int, float]
    device: str


def model_cost(model: nn.Module, example: torch.Tensor, batch_sizes=(1, 256), warmup: int = 3,
               repeats: int = 10, latency: bool = True) -> ModelCost:
    """Parameters, FLOPs per image, size on disk and (if ``latency``) latency at each batch size.

    Args:
        example: ``(B, C, H, W)`` input images on the model's device (normalised as in training).
    """
    times = {int(b): measure_latency(model, example, int(b), warmup, repeats) for b in batch_sizes} if latency else {}
    return ModelCost(count_parameters(model), count_flops(model, example), size_on_disk(model), times,
                     str(_model_device(model)))


# --------------------------------------------------------------------------- across seeds
# 0.975 quantiles of Student's t distribution for 1–30 degrees of freedom (scipy.stats.t.ppf;
# tests/test_evaluate.py compares them with scipy when it is installed).
_T975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157,
         2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922,
         2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831,
         2.048407, 2.045230, 2.042272)


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (for a 95 % interval).

    From a table for ``df ≤ 30``; beyond, the Cornish–Fisher expansion around the
    normal quantile 1.959964 (error < 1e-7). It falls towards 1.96 as df grows;
    for df = 1 (two seeds) it is 12.7, so two seeds give a very wide interval.
    """
    if int(df) != df or df < 1:
        raise ValueError(f"degrees of freedom must be a positive integer, got {df!r}")
    df = int(df)
    if df <= len(_T975):
        return _T975[df - 1]
    z = statistics.NormalDist().inv_cdf(0.975)
    g = ((z**3 + z) / 4,
         (5 * z**5 + 16 * z**3 + 3 * z) / 96,
         (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
         (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160)
    return z + sum(gi / df ** (i + 1) for i, gi in enumerate(g))


@dataclass
class SeedSummary:
    """``mean``, sample ``std`` (ddof = 1) and the 95 % t-interval ``(low, high)`` of ``n`` values.

    With one value, ``std``, ``low`` and ``high`` are NaN: one run says nothing about the spread.
    """

    mean: float
    std: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.4g} (1 run: no spread)"
        return f"{self.mean:.4g} ± {self.half_width:.2g} (95 % CI, n = {self.n}; std {self.std:.2g})"


def summarize_seeds(values, bounds: tuple[float, float] | None = None) -> SeedSummary:
    """Mean, sample standard deviation and 95 % confidence interval of one metric across seeds.

    The interval is ``mean ± t_{0.975, n−1} · std / √n`` (Student's t, for few runs
    whose metric is roughly normal). It says where the *mean over seeds* probably
    lies, not where a single new run will land. With 2 seeds t = 12.71, so the
    interval is very wide, and can leave the metric's range: ``bounds`` (e.g.
    ``(0, 100)`` for a percentage) clips it to what the metric can be.

    Args:
        values: ``n ≥ 1`` finite numbers (e.g. test accuracies of one recipe, one per seed).
    """
    xs = [float(v) for v in (values.tolist() if isinstance(values, torch.Tensor) else values)]
    if not xs:
        raise ValueError("summarize_seeds needs at least one value, got none")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError(f"values must be finite numbers, got {xs}")
    n, mean = len(xs), statistics.fmean(xs)
    if n == 1:
        return SeedSummary(mean, math.nan, math.nan, math.nan, 1)
    std = statistics.stdev(xs)
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        if bounds[0] > bounds[1]:
            raise ValueError(f"bounds must be (low, high) with low ≤ high, got {bounds}")
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return SeedSummary(mean, std, low, high, n)


def bootstrap_std(metric, logits: torch.Tensor, labels: torch.Tensor, n_resamples: int = 200, seed: int = 0) -> float:
    """Standard deviation of ``metric(logits, labels)`` over bootstrap resamples of the rows.

    How much the metric would move with another test set of the same size: e.g. for
    accuracy p on N images it is close to ``sqrt(p (1 − p) / N)``. ``metric`` takes
    ``(logits (N, C), labels (N,))`` and returns a float.
    """
    check_predictions(logits, labels)
    if n_resamples < 2:
        raise ValueError(f"n_resamples must be at least 2, got {n_resamples}")
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    values = [metric(logits[idx], labels[idx]) for idx in (torch.randint(0, n, (n,), generator=g)
                                                           for _ in range(n_resamples))]
    return statistics.stdev(values)


def mean_confidence(logits: torch.Tensor) -> float:
    """Mean of the largest softmax probability over the rows of ``logits (N, C)``, in [0, 1].

    Above the accuracy: the model is over-confident on average; below: under-confident.
    """
    logits = check_logits(logits)
    if logits.ndim != 2 or len(logits) == 0:
        raise ValueError(f"logits must have shape (N, C) with N ≥ 1, got {tuple(logits.shape)}")
    return softmax(logits.double(), check=False).max(dim=1).values.mean().item()


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, temperatures=None) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 that minimises the NLL of ``softmax(logits / T)``.

    Fit it on the **validation** split, then divide the test logits by it. One scalar, so
    the predicted classes (and accuracy) do not change, only the confidence.
    Searches a log-spaced grid (default 0.05 to 20, 400 points) — simple and robust.
    """
    logits = check_predictions(logits, labels)
    grid = torch.logspace(math.log10(0.05), math.log10(20), 400) if temperatures is None else torch.as_tensor(temperatures)
    nll = [cross_entropy(logits.double() / float(t), labels, check=False).item() for t in grid]
    return float(grid[min(range(len(nll)), key=nll.__getitem__)])


def binomial_interval(accuracy: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % interval of an accuracy measured on ``n`` independent test examples (normal approximation).

    ``accuracy ± z · sqrt(accuracy · (1 − accuracy) / n)``, clipped to [0, 1]: the sampling
    error of one test split, even for a perfectly reproducible model.
    """
    if n < 1:
        raise ValueError(f"need at least one test example, got n = {n}")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must lie in [0, 1], got {accuracy}")
    half = z * math.sqrt(accuracy * (1 - accuracy) / n)
    return max(0.0, accuracy - half), min(1.0, accuracy + half)


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


def quality_row(name: str, logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor,
                dataset_name: str, cost: ModelCost, k: int = 5, n_bins: int = 15,
                is_teacher: bool = False) -> ReportRow:
    """A :class:`ReportRow` from already computed logits ``(N, C)``, labels ``(N,)``,
    teacher logits ``(N, C)`` and a :class:`ModelCost` (no model needed)."""
    logits = check_predictions(logits, labels)
    _check_pair(logits, teacher_logits)
    k = min(k, logits.shape[1])
    bins = reliability_bins(logits, labels, n_bins)
    return ReportRow(
        name=name, dataset=dataset_name, is_teacher=is_teacher, n=len(labels), num_classes=logits.shape[1],
        accuracy=top1_accuracy(logits, labels), k=k, topk_accuracy=topk_accuracy(logits, labels, k),
        macro_f1=macro_f1(logits, labels), nll=negative_log_likelihood(logits, labels),
        agreement=top1_agreement(logits, teacher_logits), kl_to_teacher=teacher_kl(logits, teacher_logits),
        ece=bins.ece(), params=cost.params, flops=cost.flops, size_bytes=cost.size_bytes,
        latency_ms=dict(cost.latency_ms), device=cost.device,
        per_class=precision_recall_f1(logits, labels), confusion=confusion_matrix(logits, labels),
        reliability=bins, logits=logits.detach().cpu(),
    )


def report_card(models: dict, loader, teacher_name: str, dataset_name: str, k: int = 5, n_bins: int = 15,
                latency: bool = True, batch_sizes=(1, 256), warmup: int = 3, repeats: int = 10,
                tta: bool | int = False) -> dict[str, ReportRow]:
    """Evaluate every model on ``loader`` once and fill in its :class:`ReportRow`.

    Args:
        models: ``{name: nn.Module}``, each already on ``loader.device``; must include the teacher.
        loader: a non-shuffled :class:`kdtutor.data.DeviceLoader` (e.g. the test loader).
        teacher_name: which entry is the teacher (fidelity and ratios are against it).
        dataset_name: ``Dataset.name``, carried into every row and table.
        k: for top-k accuracy (capped at the number of classes).
        latency: measure latency (set False for a fast card; latency then stays empty).
        batch_sizes, warmup, repeats: see :func:`measure_latency`.
        tta: test-time augmentation level of :func:`kdtutor.train.predict`: True / 1 averages each
            image with its mirror, 2 airbench94's six views (mirror × one-pixel shifts).
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
    for name, model in models.items():
        if _model_device(model).type != loader.device.type:
            raise ValueError(f"model {name!r} is on {_model_device(model)} but the loader's data are on "
                             f"{loader.device}: move it first with model.to(loader.device)")
    example = loader.clean_images(torch.arange(min(loader.num_examples, max(batch_sizes or (1,))),
                                               device=loader.device))
    outputs, costs = {}, {}
    for name, model in models.items():
        outputs[name] = predict(model, loader, tta=tta)
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
                          is_teacher=name == teacher_name)
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
