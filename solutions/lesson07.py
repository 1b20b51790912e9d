"""Reference answers of lesson 07 (distilling a language model)."""

import torch
import torch.nn.functional as F


def reverse_kl_tokens(student_logits, teacher_logits):
    log_q = F.log_softmax(student_logits, dim=-1)  # the student's log-probabilities, (B, L, V)
    log_p = F.log_softmax(teacher_logits, dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum(dim=-1).mean()  # sum over characters, mean over positions


def masked_token_mean(values, mask):
    return values[mask].mean()  # select, never multiply: padding may hold inf or NaN


def topk_renormalized_kl(student_logits, topk_logprobs, topk_indices):
    log_p = topk_logprobs - torch.logsumexp(topk_logprobs, dim=-1, keepdim=True)  # renormalised over the k kept
    log_q = F.log_softmax(student_logits, dim=-1).gather(-1, topk_indices)  # full-vocabulary student
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()
