"""Reference answer to the warm-up exercise of lesson 00 (``00_welcome``)."""

import torch


def warmup_argmax(logits: torch.Tensor) -> int:
    """The position of the largest logit of a ``(C,)`` tensor, as a Python int."""
    return int(torch.argmax(logits))
