"""Run sizes: one switch, ``KDTUTOR_PROFILE``, picks how big every experiment is.

=========  =======================================  ==============================
profile    data                                     meant for
=========  =======================================  ==============================
``smoke``  generated stand-in, ~2k training images  CI and tests: seconds per lesson
``cpu``    CIFAR-10; students on a 10k subset        a laptop CPU: minutes per lesson
``gpu``    full CIFAR-10 (stand-in if offline)      one GPU: the full recipe
=========  =======================================  ==============================

Without ``KDTUTOR_PROFILE`` the default is ``gpu`` when CUDA is available, else ``cpu``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

ENV_VAR = "KDTUTOR_PROFILE"


@dataclass(frozen=True)
class BeyondBudget:
    """Lesson 06's own student budget: four methods × ``seeds``, a learning-rate sweep (two runs
    per distillation method) and three side-experiment runs must fit the lesson's time. The
    students train on the first ``n_train`` of the profile's student images (``None``: all of
    them) for ``epochs``."""

    n_train: int | None
    epochs: int
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    sweep_seed: int = 0  # the grid's seed: not one of ``seeds``
    n_eval: int | None = None  # validation and test images (None: the profile's)


@dataclass(frozen=True)
class FewLabelsBudget:
    """Lesson 04's headline experiment (:mod:`kdtutor.images.few_labels`): students trained on
    ``label_counts`` labelled images (class-balanced subsets of the profile's student images, all of
    which serve as the unlabelled pool), each for ``steps`` steps of ``batch_size`` labelled images
    (no more than the smallest label count)."""

    label_counts: tuple[int, ...]
    steps: int
    batch_size: int


@dataclass(frozen=True)
class Profile:
    """Every size knob of the course in one place.

    Counts are numbers of images; ``None`` means "the whole split". The teacher
    may train on more images (``n_train_teacher``) than the students'
    ``n_train``: the students' images are always a subset of the teacher's, and
    every student — from scratch or distilled — gets the same ones.
    """

    name: str
    dataset: str  # "cifar10" (falls back to the stand-in offline) or "standin"
    n_train: int | None  # the students' training images (the distillation transfer set)
    n_train_teacher: int | None  # the teacher's training images
    n_val: int | None
    n_test: int | None
    teacher: str  # a name for kdtutor.images.models.build_model
    teacher_epochs: int
    student: str
    student_epochs: int
    batch_size: int
    seeds: tuple[int, ...]  # seeds of the scratch-vs-distilled comparison ("mean ± std")
    temperatures: tuple[float, ...]  # the T grid of the sweep
    alphas: tuple[float, ...]  # the α grid of the sweep
    description: str = ""
    sweep_seed: int = 0  # the T × α sweep's seed: not one of ``seeds``, so the comparison is not chosen on itself
    beyond: BeyondBudget = BeyondBudget(n_train=None, epochs=2)  # lesson 06
    few_labels: FewLabelsBudget = FewLabelsBudget(label_counts=(250, 1000), steps=200, batch_size=128)  # lesson 04

    def with_(self, **changes) -> Profile:
        """A copy with some fields changed, e.g. ``profile.with_(teacher_epochs=2)``."""
        return replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        dataset="standin",
        n_train=2000,
        n_train_teacher=2000,
        n_val=500,
        n_test=500,
        teacher="airbench_small",
        teacher_epochs=2,
        student="cnn_tiny",
        student_epochs=2,
        batch_size=250,
        seeds=(1, 2),
        temperatures=(1.0, 4.0),
        alphas=(0.5, 0.9),
        beyond=BeyondBudget(n_train=250, epochs=1, seeds=(1, 2), n_eval=200),
        few_labels=FewLabelsBudget(label_counts=(50, 200), steps=8, batch_size=25),
        description="CI-sized: generated stand-in data, a couple of epochs; numbers mean little.",
    ),
    "cpu": Profile(
        name="cpu",
        dataset="cifar10",
        n_train=10000,
        n_train_teacher=None,
        n_val=2000,
        n_test=None,
        teacher="airbench_small",
        teacher_epochs=5,
        student="cnn_tiny",
        student_epochs=10,
        batch_size=250,
        seeds=(1, 2, 3),
        temperatures=(2.0, 4.0),
        alphas=(0.5, 0.9),
        beyond=BeyondBudget(n_train=6000, epochs=5, seeds=(1, 2, 3, 4, 5), n_eval=2000),
        few_labels=FewLabelsBudget(label_counts=(250, 1000), steps=200, batch_size=128),
        description="Laptop-sized: a small teacher on CIFAR-10's 45k training images, students on a 10k subset.",
    ),
    "gpu": Profile(
        name="gpu",
        dataset="cifar10",
        n_train=None,
        n_train_teacher=None,
        n_val=None,
        n_test=None,
        teacher="airbench",
        teacher_epochs=10,
        student="cnn_small",
        student_epochs=15,
        batch_size=1024,
        seeds=(1, 2, 3),
        temperatures=(1.0, 2.0, 4.0, 8.0),
        alphas=(0.1, 0.5, 0.9),
        beyond=BeyondBudget(n_train=None, epochs=15, seeds=(1, 2, 3, 4, 5)),
        few_labels=FewLabelsBudget(label_counts=(250, 1000, 4000), steps=1000, batch_size=250),
        description="Full CIFAR-10, an airbench94-style teacher, the full sweep.",
    ),
}


def default_profile_name() -> str:
    """``$KDTUTOR_PROFILE`` if set, else ``gpu`` with CUDA and ``cpu`` without."""
    name = os.environ.get(ENV_VAR, "").strip().lower()
    if name:
        return name
    return "gpu" if torch.cuda.is_available() else "cpu"


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name`` (default: :func:`default_profile_name`).

    >>> get_profile("smoke").n_train
    2000
    """
    name = default_profile_name() if name is None else name.strip().lower()
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} (from {ENV_VAR} or the argument); "
            f"choose one of: {', '.join(PROFILES)}"
        )
    return PROFILES[name]
