"""Lesson 04 — when distillation pays: a few labelled images and many unlabelled ones.

This is how distillation is used in practice: a teacher is given, labels are scarce, images
without labels are plentiful (Hinton et al. 2015 recovered most of a speech model's accuracy from 3 % of
its data with soft targets: 57.0 % test frame accuracy against 44.5 % from the hard labels and 58.9 % with
all the data; DistilBERT, Noisy Student). Three arms per seed, each a student
from the **same initial weights**, trained for the **same number of steps** on the **same
labelled batches** — only what the loss sees differs:

* ``"scratch"`` (a): cross-entropy on the ``n`` labelled images;
* ``"kd"`` (b): ``(1 − α)·CE + α·T²·KL(teacher ‖ student)`` on the same labelled images;
* ``"kd+unlabelled"`` (c): the same, with a batch of unlabelled images added to every step: the
  distillation term covers both batches, the cross-entropy the labelled one.

The unlabelled images are the teacher's training images with their labels dropped (here the
students' training split, a subset of them). Augmentation is a random horizontal flip, so an image
has two views; :func:`kdtutor.images.distill.flip_logits` computes the teacher's logits for both, once, and every student
is taught on the very view it sees (consistent teaching) without running the teacher at each step.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from kdtutor.evalcache import cached
from kdtutor.fingerprint import code_fingerprint, digest, fingerprint, weights_fingerprint
from kdtutor.images.distill import Sweep, flip_logits, split_accuracy
from kdtutor.images.loader import DeviceLoader
from kdtutor.images.models import ModelSpec, make_model, model_label
from kdtutor.images.recipes import lr_factor, make_optimizer, student_config
from kdtutor.images.splits import Dataset
from kdtutor.images.stats import PairedDifference, paired_seed_difference, verdict_sentence
from kdtutor.images.train import default_device, seed_everything
from kdtutor.kd.losses import check_alpha, cross_entropy, kd_loss
from kdtutor.kd.softmax import check_temperature
from kdtutor.precision import place
from kdtutor.storage import kept

ARMS = ("scratch", "kd", "kd+unlabelled")
ARM_NAMES = {"scratch": "(a) scratch on the labels", "kd": "(b) KD on the labelled images",
             "kd+unlabelled": "(c) KD + unlabelled images"}


@dataclass(frozen=True)
class Budget:
    """What every student of the experiment gets: ``steps`` optimiser steps of ``batch_size`` labelled
    images (arm c adds as many unlabelled ones per step), the student recipe's SGD and schedule
    (:func:`kdtutor.images.recipes.student_config`), and the distillation's ``T`` and ``alpha``.
    ``mirror``: each image is mirrored at random (turn it off where a mirror changes the class: digits, text)."""

    steps: int = 200
    batch_size: int = 128
    T: float = 4.0
    alpha: float = 0.9
    mirror: bool = True

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be at least 1, got {self.steps} and {self.batch_size}")
        check_temperature(self.T)
        check_alpha(self.alpha)


def labelled_subset(labels: torch.Tensor, n: int, num_classes: int, seed: int = 0) -> torch.Tensor:
    """``(n,) int64`` positions of ``n`` labelled examples, ``n / num_classes`` of each class, drawn at
    random (seeded) from ``labels (N,)``.

    Raises:
        ValueError: ``n`` is not a positive multiple of ``num_classes``, or a class has too few examples.
    """
    if n < num_classes or n % num_classes:
        raise ValueError(f"n must be a positive multiple of the {num_classes} classes (a balanced subset), got {n}")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    picked = []
    for c in range(num_classes):
        of_c = order[labels[order] == c][: n // num_classes]
        if len(of_c) < n // num_classes:
            raise ValueError(f"class {c} has only {len(of_c)} examples, fewer than the {n // num_classes} asked for")
        picked.append(of_c)
    return torch.cat(picked).sort().values


class Pool:
    """The students' training images, normalised, on ``device``, with their labels and the teacher's
    :func:`flip_logits`: the unlabelled images of arm (c), and the source of every labelled subset."""

    def __init__(self, teacher: nn.Module, data: Dataset, device=None):
        device = torch.device(device) if device else default_device()
        loader = DeviceLoader(data.train, 1024, data.mean, data.std, device=device)
        self.images = loader.clean_images(torch.arange(loader.num_examples, device=device))
        self.labels = loader.labels
        self.teacher, self.data, self.device = teacher, data, device
        self.key = digest(data.fingerprint(), weights_fingerprint(teacher))  # what every result here depends on
        self._teacher_logits = None

    @property
    def teacher_logits(self) -> torch.Tensor:
        """``(2, N, K)``: :func:`flip_logits` of the pool, computed when first needed (not when every
        student is loaded from its file) and :func:`kdtutor.evalcache.cached` by the content of the teacher
        and the images (a re-run loads them)."""
        if self._teacher_logits is None:
            teacher, images = place(self.teacher, self.device), self.images
            logits = cached("flip_logits", {"teacher": teacher, "images": images},
                            lambda: flip_logits(teacher, images))
            self._teacher_logits = logits.to(self.device)
        return self._teacher_logits

    def __len__(self) -> int:
        return len(self.labels)

    def view(self, index: torch.Tensor, flip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images (B, C, H, W), teacher logits (B, K))`` of the examples at ``index``, mirrored where ``flip``."""
        x = self.images[index]
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        return x, self.teacher_logits[flip.long(), index]


def batches(positions: torch.Tensor, batch_size: int, generator: torch.Generator):
    """Endless ``(index (B,), flip (B,) bool)``: ``positions`` reshuffled each pass, a coin per image."""
    while True:
        order = positions[torch.randperm(len(positions), generator=generator)]
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield order[i:i + batch_size], torch.rand(batch_size, generator=generator) < 0.5
        if len(order) < batch_size:
            raise ValueError(f"{len(order)} images cannot fill a batch of {batch_size}")


def train_arm(arch: ModelSpec, arm: str, pool: Pool, labelled: torch.Tensor, budget: Budget, seed: int) -> nn.Module:
    """One student of ``arm`` (see :data:`ARMS`), trained for ``budget.steps`` steps from ``arch``'s seed-``seed``
    weights; ``labelled`` holds the positions in ``pool`` whose labels it may use. The labelled batches and
    their flips depend on the seed only, so the three arms of a seed see the same ones."""
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
    seed_everything(seed)
    c, h, _ = pool.data.image_shape
    model = place(make_model(arch, seed, pool.data.num_classes, c, h), pool.device).train()
    cfg = student_config(epochs=1, batch_size=budget.batch_size, seed=seed)
    optimizer = make_optimizer(model, cfg)
    labelled_batches = batches(labelled.cpu(), budget.batch_size, torch.Generator().manual_seed(seed))
    unlabelled_batches = batches(torch.arange(len(pool)), budget.batch_size, torch.Generator().manual_seed(10_007 + seed))
    for step in range(budget.steps):
        for group in optimizer.param_groups:  # warm-up, then linear decay
            group["lr"] = group["base_lr"] * lr_factor(step, budget.steps, cfg)
        index, flip = next(labelled_batches)
        flip &= budget.mirror
        x, z_teacher = pool.view(index.to(pool.device), flip.to(pool.device))
        labels = pool.labels[index.to(pool.device)]
        if arm == "kd+unlabelled":
            u_index, u_flip = next(unlabelled_batches)
            xu, zu = pool.view(u_index.to(pool.device), (u_flip & budget.mirror).to(pool.device))
            x, z_teacher = torch.cat([x, xu]), torch.cat([z_teacher, zu])
        z = model(x)
        loss = cross_entropy(z[:len(labels)], labels, check=False)
        if arm != "scratch":
            loss = (1 - budget.alpha) * loss + budget.alpha * kd_loss(z, z_teacher, budget.T, check=False)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@dataclass
class FewLabels:
    """Accuracies of every arm, label count and seed: ``val[arm, n]`` and ``test[arm, n]`` are lists in seed
    order (fractions); ``models[arm, n, seed]`` the students."""

    label_counts: list[int]
    seeds: list[int]
    budget: Budget
    val: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict, repr=False)

    def paired(self, n: int, better: str = "kd+unlabelled", worse: str = "scratch", split: str = "test") -> PairedDifference:
        """``better − worse`` at ``n`` labels over the seeds (paired: same weights, same labelled batches)."""
        acc = getattr(self, split)
        return paired_seed_difference(acc[better, n], acc[worse, n])

    def verdict(self, n: int, better: str = "kd+unlabelled", worse: str = "scratch", split: str = "test") -> str:
        """The course's one verdict rule on ``better − worse`` at ``n`` labels."""
        return verdict_sentence(self.paired(n, better, worse, split), ARM_NAMES[better], ARM_NAMES[worse],
                                scale=100, unit="points")

    def table(self, split: str = "test") -> str:
        """A Markdown table: one row per label count, mean ± std of each arm (%), the two gains over scratch."""
        acc = getattr(self, split)
        head = "| labels | " + " | ".join(ARM_NAMES[a] for a in ARMS) + " | (c) − (a), 95 % interval | (b) − (a), 95 % interval |"
        rows = [head, "|" + "---:|" * (len(ARMS) + 3)]
        for n in self.label_counts:
            cells = [f"{100 * statistics.mean(acc[a, n]):.2f} ± {100 * statistics.stdev(acc[a, n]):.2f}" for a in ARMS]
            gains = [self.paired(n, b, "scratch", split) for b in ("kd+unlabelled", "kd")]
            rows.append(f"| {n:,d} | " + " | ".join(cells) + " | " + " | ".join(
                f"{100 * g.mean:+.2f} [{100 * g.low:+.2f}, {100 * g.high:+.2f}]" for g in gains) + " |")
        return "\n".join(rows)

    def to_dict(self) -> dict:
        """JSON-ready: the budget, label counts, seeds and every accuracy (``"arm@n"`` keys)."""
        return {"budget": asdict(self.budget), "label_counts": self.label_counts, "seeds": self.seeds,
                "val": {f"{a}@{n}": v for (a, n), v in self.val.items()},
                "test": {f"{a}@{n}": v for (a, n), v in self.test.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> FewLabels:
        """The inverse of :meth:`to_dict` (without the students): a saved run's table and verdicts."""
        def split(accs: dict) -> dict:
            return {(key.rsplit("@", 1)[0], int(key.rsplit("@", 1)[1])): v for key, v in accs.items()}
        return cls(list(d["label_counts"]), list(d["seeds"]), Budget(**d["budget"]), split(d["val"]), split(d["test"]))


def run(teacher: nn.Module, arch: ModelSpec, data: Dataset, label_counts, seeds, budget: Budget = Budget(),
        arms=ARMS, folder=None, device=None, pool: Pool | None = None, progress: bool = True) -> FewLabels:
    """Train every arm for every label count in ``label_counts`` and seed in ``seeds``; measure validation
    and test accuracy of each student.

    Each seed draws its own balanced labelled subset (:func:`labelled_subset` with that seed), the same for
    the arms of the seed. ``arch``: a model name, your constructor ``seed → nn.Module`` or an ``nn.Module``
    (each run starts from :func:`kdtutor.images.models.make_model`'s weights for its seed). With ``folder``
    each student is kept there — its weights, its accuracies and fingerprints of what it was made from
    (teacher, images, labelled subset, initial weights, budget, arm, seed, evaluation splits, code) — and
    loaded instead of retrained while all of that is the same; otherwise the file is set aside and the
    student trained again.

    Raises:
        ValueError: a label count smaller than ``budget.batch_size`` (it could not fill one batch).
    """
    too_few = [n for n in label_counts if n < budget.batch_size]
    if too_few:
        raise ValueError(f"label counts {too_few} cannot fill a batch of {budget.batch_size} labelled images: "
                         "use a smaller batch_size or more labels")
    pool = pool or Pool(teacher, data, device)
    result = FewLabels(list(label_counts), list(seeds), budget)
    runs = [(n, seed, arm) for n in result.label_counts for seed in result.seeds for arm in arms]
    code = code_fingerprint(__name__)
    evaluated_on = digest(fingerprint(data.val.images, data.val.labels), fingerprint(data.test.images, data.test.labels))
    for n, seed, arm in tqdm(runs, desc=f"few labels: {len(runs)} students", disable=not progress):
        labelled = labelled_subset(pool.labels.cpu(), n, data.num_classes, seed=seed)
        c, h, _ = data.image_shape
        init = weights_fingerprint(make_model(arch, seed, data.num_classes, c, h))
        identity = {"pool": pool.key, "labelled": fingerprint(labelled), "arch": model_label(arch), "init": init,
                    "arm": arm, "seed": seed, "budget": asdict(budget), "code": code, "eval": evaluated_on}

        def make():
            model = train_arm(arch, arm, pool, labelled, budget, seed)
            return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                    "val": split_accuracy(model, data, "val", pool.device), "test": split_accuracy(model, data, "test", pool.device)}

        name = f"{model_label(arch)}_{arm}_n{n}_seed{seed}_T{budget.T:g}_alpha{budget.alpha:g}.pt"  # one file per run
        path = Path(folder) / name if folder else None
        saved = kept(path, "student", identity, make) if path else {"identity": identity, **make()}
        model = place(make_model(arch, seed, data.num_classes, c, h), pool.device)
        model.load_state_dict(saved["state_dict"])
        result.models[arm, n, seed] = model.eval()
        result.val.setdefault((arm, n), []).append(saved["val"])
        result.test.setdefault((arm, n), []).append(saved["test"])
    return result


def sweep_t_alpha(teacher: nn.Module, arch: ModelSpec, data: Dataset, n: int, seed: int, temperatures, alphas,
          budget: Budget = Budget(), arm: str = "kd+unlabelled", folder=None, pool: Pool | None = None,
          device=None, progress: bool = True) -> Sweep:
    """Validation accuracy of ``arm`` at ``n`` labels and one ``seed`` for every ``(T, α)``: a
    :class:`kdtutor.images.distill.Sweep` (``best`` is the cell to use; the test split is not looked at).
    Its ``runs[T, α]`` are the trained students (``nn.Module``), not ``TrainResult``s."""
    pool = pool or Pool(teacher, data, device)
    result = Sweep(list(temperatures), list(alphas), [])
    grid = [(T, a) for T in temperatures for a in alphas]
    accs = {}
    for T, a in tqdm(grid, desc=f"sweep T×α ({len(grid)} runs)", disable=not progress):
        cell = Budget(budget.steps, budget.batch_size, T, a, budget.mirror)
        r = run(teacher, arch, data, [n], [seed], cell, arms=(arm,), folder=folder, pool=pool, progress=False)
        accs[T, a] = r.val[arm, n][0]
        result.runs[T, a] = r.models[arm, n, seed]
    result.val_acc = [[accs[T, a] for a in alphas] for T in temperatures]
    return result
