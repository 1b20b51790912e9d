"""Reference answers for lesson 05 (evaluating distillation), written from scratch.

Each function has the name of its check in ``kdtutor.checks``; tests prove each passes.
"""

import math

import torch

from kdtutor.images.stats import t_quantile_975


def expected_calibration_error(logits, labels, n_bins=15):
    """ECE of ``logits (N, C)`` against ``labels (N,)`` with ``n_bins`` equal-width bins."""
    probs = torch.softmax(logits, dim=1)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).float()
    # bin b holds confidences in (b/n_bins, (b+1)/n_bins]; confidence 1.0 goes in the last bin
    bin_index = (torch.ceil(confidence * n_bins) - 1).long().clamp(0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bin_index == b
        n_b = int(in_bin.sum())
        if n_b == 0:
            continue  # an empty bin contributes nothing
        gap = abs(correct[in_bin].mean().item() - confidence[in_bin].mean().item())
        ece += n_b / len(labels) * gap
    return ece


def top1_agreement(student_logits, teacher_logits):
    """Fraction of examples on which the student's top class is the teacher's top class."""
    same = student_logits.argmax(dim=1) == teacher_logits.argmax(dim=1)
    return same.float().mean().item()


def macro_f1(logits, labels):
    """Mean over all C classes of F1_c = 2·TP / (2·TP + FP + FN), 0 when undefined."""
    num_classes = logits.shape[1]
    predicted = logits.argmax(dim=1)
    scores = []
    for c in range(num_classes):
        tp = int(((predicted == c) & (labels == c)).sum())
        fp = int(((predicted == c) & (labels != c)).sum())
        fn = int(((predicted != c) & (labels == c)).sum())
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator else 0.0)
    return sum(scores) / num_classes


def summarize_seeds(values):
    """``(mean, sample std, low, high)``: the 95 % t-interval of the mean over seeds."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half
