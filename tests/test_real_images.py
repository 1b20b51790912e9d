"""The real-image lane: CIFAR-10 images from ``$KDTUTOR_CIFAR10`` (CI points it at the shared JPEG copy).

Skipped, with a reason naming the variable, when it is unset; never skipped when it is set.
"""

import os

import pytest
import torch

from kdtutor.images.cifar10 import CIFAR10_CLASSES
from kdtutor.images.data import CIFAR10_ENV, load_cifar10_copy

SOURCE = os.environ.get(CIFAR10_ENV, "").strip()
pytestmark = pytest.mark.skipif(not SOURCE, reason=f"{CIFAR10_ENV} is not set: no real CIFAR-10 images to test on "
                                                    f"(.ci/run sets it when ../shared/data/cifar10-jpeg.tar.gz exists)")


@pytest.fixture(scope="module")
def cifar():
    return load_cifar10_copy(SOURCE, progress=False)


def test_counts_shapes_dtype_and_classes(cifar):
    assert cifar.classes == CIFAR10_CLASSES and not cifar.is_standin
    assert "CIFAR-10" in cifar.name and cifar.name != "CIFAR-10" or SOURCE.endswith("cifar-10-python.tar.gz"), \
        f"a copy must say it is one, got {cifar.name!r}"
    assert (len(cifar.train), len(cifar.val), len(cifar.test)) == (45000, 5000, 10000)
    train_labels = torch.cat([cifar.train.labels, cifar.val.labels])
    assert torch.bincount(train_labels, minlength=10).tolist() == [5000] * 10
    assert torch.bincount(cifar.test.labels, minlength=10).tolist() == [1000] * 10
    for split in (cifar.train, cifar.val, cifar.test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (3, 32, 32)
    # real photographs: pixel statistics near CIFAR-10's published means (0.49, 0.48, 0.45)
    assert all(abs(m - ref) < 0.03 for m, ref in zip(cifar.mean, (0.491, 0.482, 0.447))), cifar.mean


def test_validation_split_is_disjoint_from_train(cifar):
    rows = lambda s: {hash(r.numpy().tobytes()) for r in s.images[:2000]}  # noqa: E731
    assert not rows(cifar.val) & {hash(r.numpy().tobytes()) for r in cifar.train.images}


def test_a_short_real_training_run_clears_a_bar_well_above_chance(cifar):
    """cnn_tiny, 5,000 training images, 4 epochs (about 15 s on 2 cores): at least 40 % on 2,000
    test images, where chance is 10 % (measured on the JPEG copy: about 48 %)."""
    from kdtutor.images.metrics import top1_accuracy
    from kdtutor.images.predict import predict
    from kdtutor.images.train import eval_loader, train_model
    from kdtutor.images.recipes import student_config

    small = cifar.subset(5000, 500, 2000)
    run = train_model("cnn_tiny", small, student_config(epochs=4, batch_size=250), device="cpu", progress=False)
    acc = top1_accuracy(*predict(run.model, eval_loader(small, "test", "cpu")))
    assert acc >= 0.40, f"cnn_tiny reached only {acc:.1%} on {small.name}"
