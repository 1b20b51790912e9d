"""Lesson 03 — what a training run records per epoch: the :class:`History` of :func:`kdtutor.images.train.fit`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """Per-epoch records: ``epoch``, ``train_loss``, ``train_acc``, ``lr``, ``seconds`` (training
    time of the epoch, measured on the device's clock) and ``images_per_s``; ``val_loss`` and
    ``val_acc`` for the epochs that were validated (all of them unless ``val_every`` > 1)."""

    epochs: list[dict] = field(default_factory=list)

    def column(self, key: str) -> list:
        """``key`` of every epoch that has it (e.g. ``val_acc``: the validated epochs)."""
        return [e[key] for e in self.epochs if key in e]

    def points(self, key: str) -> tuple[list, list]:
        """``(epochs, values)`` of the epochs that have ``key``: for plotting."""
        return [e["epoch"] for e in self.epochs if key in e], self.column(key)

    @property
    def validated(self) -> bool:
        return any("val_acc" in e for e in self.epochs)

    @property
    def best_epoch(self) -> int | None:
        """1-based epoch with the highest validation accuracy (the first, on ties); None without validation."""
        ep, acc = self.points("val_acc")
        return ep[acc.index(max(acc))] if acc else None

    @property
    def best_val_acc(self) -> float | None:
        return max(self.column("val_acc"), default=None)

    @property
    def last_val_acc(self) -> float | None:
        """Validation accuracy of the last validated epoch (the last epoch, when any was validated)."""
        acc = self.column("val_acc")
        return acc[-1] if acc else None

    def summary(self) -> str:
        if not self.validated:
            return f"{len(self.epochs)} epochs, no validation (nothing held out to validate on)"
        return (f"last epoch ({len(self.epochs)}): val acc {self.last_val_acc:.2%}; "
                f"best epoch ({self.best_epoch}): val acc {self.best_val_acc:.2%}")
