"""Lesson 05 — the scores of one model's predictions: quality, fidelity, calibration.

* **quality** — top-1 / top-k accuracy, per-class precision, recall and F1,
  macro-F1, the confusion matrix, negative log-likelihood (NLL);
* **fidelity** to the teacher (Stanton et al. 2021) — top-1 *agreement*,
  KL(teacher ‖ student) at T = 1 and the share of the teacher's mistakes the student copies;
* **calibration** — expected calibration error (ECE), reliability-diagram bins,
  mean confidence and temperature scaling.

Shapes and units: ``logits: (N, C) float``, ``labels: (N,) int64`` in ``[0, C)``,
``teacher_logits: (N, C)``. Fractions are returned in [0, 1] (tables show %);
NLL and KL are in nats.

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
from dataclasses import dataclass

import torch

from kdtutor.kd.beyond import non_target_entropy
from kdtutor.kd.losses import check_labels, check_logit_pair, cross_entropy, kl_divergence
from kdtutor.kd.softmax import check_logits, entropy, softmax


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
    by :func:`kdtutor.kd.losses.kl_divergence` (sum over classes, batch mean), in float64.
    """
    _check_pair(student_logits, teacher_logits)
    return kl_divergence(student_logits.double(), teacher_logits.double(), T=1.0, check=False).item()


def shared_mistakes(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Of the examples the teacher gets wrong, the fraction on which the student predicts the teacher's
    (wrong) class, in [0, 1]: how many of its teacher's mistakes a student copies (lesson 08).

    A student trained from labels copies some too (images that fool the teacher fool other models), so
    read a distilled student's value against a scratch student's. Predictions are argmaxes (first class
    on ties), as everywhere in this module.

    Args:
        student_logits, teacher_logits: ``(N, C)``, same examples in the same order; labels: ``(N,) int64``.
    Raises:
        ValueError: bad shapes or values (as :func:`top1_agreement`), or a teacher that is never wrong
            (the fraction is then undefined).
    """
    _check_pair(student_logits, teacher_logits)
    check_predictions(teacher_logits, labels)
    teacher = predictions(teacher_logits)
    wrong = teacher != labels
    if not wrong.any():
        raise ValueError(f"the teacher is right on all {len(labels)} examples: there is no mistake to share")
    return (predictions(student_logits)[wrong] == teacher[wrong]).double().mean().item()


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



def soft_targets(logits: torch.Tensor, labels: torch.Tensor, T: float) -> dict:
    """What a teacher's soft targets at temperature ``T`` hold, averaged over the rows of ``logits (N, C)``:

    * ``"p_target"``: the probability of the labelled class, in [0, 1];
    * ``"entropy"``: the entropy of ``softmax(logits / T)`` over its maximum ``log C``, in [0, 1]
      (1: uniform, nothing to learn from them);
    * ``"non_target_entropy"``: the entropy among the ``C − 1`` other classes over ``log(C − 1)``
      (1: the wrong classes all look alike to the teacher — no "this cat looks like a dog" left).
    """
    logits = check_predictions(logits, labels).double()
    p = softmax(logits / float(T), check=False)
    return {"p_target": p.gather(1, labels.view(-1, 1)).mean().item(),
            "entropy": (entropy(p) / math.log(logits.shape[1])).mean().item(),
            "non_target_entropy": non_target_entropy(logits, labels, float(T)).mean().item()}
