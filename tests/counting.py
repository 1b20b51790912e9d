"""Small models for the tests: a frozen tiny teacher, a weights comparison, and a teacher that counts the images it
is shown (a checkpoint test's proof that nothing was retrained)."""

import torch
from torch import nn

from kdtutor.images.distill import freeze
from kdtutor.images.models import build_model


def tiny_teacher():
    """A frozen ``cnn_tiny`` drawn from seed 0."""
    torch.manual_seed(0)
    return freeze(build_model("cnn_tiny"))


def same_weights(a, b) -> bool:
    """Whether two models hold bit-identical parameters and buffers."""
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


class CountingTeacher(nn.Module):
    """``cnn_tiny`` drawn from ``seed``; ``seen`` counts the images of every forward pass."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net, self.seen = build_model("cnn_tiny"), 0

    def forward(self, x):
        self.seen += len(x)
        return self.net(x)
