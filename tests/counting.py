"""A teacher that counts the images it is shown: a checkpoint test's proof that nothing was retrained."""

import torch
from torch import nn

from kdtutor.images.models import build_model


class CountingTeacher(nn.Module):
    """``cnn_tiny`` drawn from ``seed``; ``seen`` counts the images of every forward pass."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net, self.seen = build_model("cnn_tiny"), 0

    def forward(self, x):
        self.seen += len(x)
        return self.net(x)
