"""kdtutor.images.distill: frozen teacher, teacher-logit modes, the cache check, fairness, and the proof
that distillation works (on real data: scikit-learn's digits)."""

import re
import statistics

import pytest
import torch
from torch import nn

from kdtutor.images.data import load_digits
from kdtutor.images.distill import (CachedLogitsMismatch, TeacherLogits, best_class_shift, check_cached_logits,
                                    compare_scratch_vs_kd, distill_student, freeze, shift_class_logit, sweep,
                                    teacher_forward, without_class)
from kdtutor.images.models import build_model
from kdtutor.images.predict import predict
from kdtutor.images.recipes import digits_config, student_config
from kdtutor.images.splits import Dataset
from kdtutor.images.standin import make_standin
from kdtutor.images.train import make_loaders, train_model
from tests.counting import CountingTeacher, same_weights, tiny_teacher

TINY = make_standin(120, 40, 40, seed=0)


def test_freeze_sets_eval_and_stops_gradients():
    m = build_model("mlp_large", in_channels=1, image_size=8).train()
    freeze(m)
    assert not m.training and not any(p.requires_grad for p in m.parameters())
    out = teacher_forward(m, torch.randn(3, 1, 8, 8))
    assert not out.requires_grad and out.dtype == torch.float32


def test_cached_logits_equal_online_ones_for_every_batch():
    teacher = tiny_teacher()
    loader = make_loaders(TINY, 32, "cpu")[0]
    online, cached = TeacherLogits(teacher, loader, "online"), TeacherLogits(teacher, loader, "cached")
    for epoch in range(2):
        loader.set_epoch(epoch)
        for batch in loader:
            assert torch.allclose(online(batch), cached(batch), atol=1e-5)
    assert len(cached.cache) == 2  # one set of logits per epoch's views


def test_mirror_only_views_are_served_from_two_views_computed_once():
    """With a random mirror as the only augmentation, the cached teacher runs on 2N images for the whole run
    (not N per epoch), and every batch still gets the logits — and the features — of the very view it shows."""
    from kdtutor.images.distill import FLIPS
    from kdtutor.images.loader import DeviceLoader

    counting = freeze(CountingTeacher())
    loader = DeviceLoader(TINY.train, 32, TINY.mean, TINY.std, train=True, flip=True, translate=0, seed=3)
    cached = TeacherLogits(counting, loader, "cached")
    for epoch in range(3):
        loader.set_epoch(epoch)
        for batch in loader:
            torch.testing.assert_close(cached(batch), teacher_forward(counting.net, batch.images), atol=1e-5, rtol=1e-5)
    assert list(cached.cache) == [FLIPS] and cached.cache[FLIPS].shape == (2, len(TINY.train), 10)
    images_seen_by_tables = 2 * len(TINY.train)
    spot_checks = 3 * 8  # one of 8 images per epoch's view
    assert counting.seen == images_seen_by_tables + spot_checks
    other_seed = DeviceLoader(TINY.train, 32, TINY.mean, TINY.std, train=True, flip=True, translate=0, seed=4)
    cached.attach(other_seed)  # the next seed of a comparison: the mirror table does not depend on the seed
    batch = next(iter(other_seed))
    torch.testing.assert_close(cached(batch), teacher_forward(counting.net, batch.images), atol=1e-5, rtol=1e-5)
    assert counting.seen == images_seen_by_tables + spot_checks + 8  # only the new view's spot check
    with_features = TeacherLogits(counting, loader, "cached", layer="net.7")
    loader.set_epoch(1)
    batch = next(iter(loader))
    from kdtutor.images.hints import FeatureHook
    with FeatureHook(counting, "net.7") as hook:
        with torch.no_grad():
            counting(batch.images)
        want = hook.take().float()
    torch.testing.assert_close(with_features.features(batch), want, atol=1e-5, rtol=1e-5)


def test_shifted_views_are_not_served_from_the_mirror_table():
    teacher = tiny_teacher()
    loader = make_loaders(TINY, 32, "cpu")[0]  # flip and a 2-pixel shift
    cached = TeacherLogits(teacher, loader, "cached")
    batch = next(iter(loader))
    torch.testing.assert_close(cached(batch), teacher_forward(teacher, batch.images), atol=1e-5, rtol=1e-5)
    assert "flips" not in cached.cache


def test_fixed_teacher_uses_clean_images_not_the_students_view():
    teacher = tiny_teacher()
    loader = make_loaders(TINY, 32, "cpu")[0]
    batch = next(iter(loader))
    fixed = TeacherLogits(teacher, loader, "fixed")(batch)
    assert torch.allclose(fixed, teacher_forward(teacher, loader.clean_images(batch.index)), atol=1e-5)
    assert not torch.allclose(fixed, teacher_forward(teacher, batch.images), atol=1e-3)


def test_batch_position_lookup_under_shuffling_is_caught():
    """The bug from the wild: logits cached once, then looked up by batch number while the
    loader shuffles. The spot check must catch it; the lookup by example index must pass."""
    teacher = tiny_teacher()
    loader = make_loaders(TINY, 32, "cpu", augment=False)[0]  # shuffled, not augmented
    all_logits = teacher_forward(teacher, loader.clean_images(torch.arange(loader.num_examples)))
    loader.set_epoch(1)
    for b, batch in enumerate(loader):
        by_index = all_logits[batch.index]
        check_cached_logits(teacher, batch.images, by_index)  # correct: passes
        by_position = all_logits[b * 32:(b + 1) * 32][: len(batch.labels)]  # buggy
        with pytest.raises(CachedLogitsMismatch, match="by example index"):
            check_cached_logits(teacher, batch.images, by_position)
        break


def test_logits_of_another_view_are_caught():
    teacher = tiny_teacher()
    loader = make_loaders(TINY, 32, "cpu")[0]  # augmented
    batch = next(iter(loader))
    clean = teacher_forward(teacher, loader.clean_images(batch.index))
    with pytest.raises(CachedLogitsMismatch):
        check_cached_logits(teacher, batch.images, clean)


def test_cache_refuses_a_batch_from_another_epoch():
    teacher = tiny_teacher()
    loader = make_loaders(TINY, 32, "cpu")[0]
    cached = TeacherLogits(teacher, loader, "cached")
    stale = next(iter(loader))
    loader.set_epoch(1)
    with pytest.raises(CachedLogitsMismatch):
        cached(stale)


def test_alpha_zero_is_exactly_training_from_scratch():
    """Fairness: same seed → same initial weights, order, views and schedule; only the loss differs."""
    cfg = student_config(epochs=2, batch_size=40, seed=5)
    scratch = train_model("cnn_tiny", TINY, cfg, device="cpu", progress=False)
    kd0 = distill_student(tiny_teacher(), "cnn_tiny", TINY, cfg, T=4, alpha=0.0, device="cpu", progress=False)
    kd = distill_student(tiny_teacher(), "cnn_tiny", TINY, cfg, T=4, alpha=0.9, device="cpu", progress=False)
    assert same_weights(scratch.model, kd0.model)
    assert not same_weights(scratch.model, kd.model)
    assert kd.meta["alpha"] == 0.9 and kd.meta["T"] == 4 and kd.meta["kind"] == "distilled"


def test_sweep_shares_teacher_logits_and_picks_on_validation():
    cfg = student_config(epochs=1, batch_size=40)
    s = sweep(tiny_teacher(), "cnn_tiny", TINY, cfg, [1.0, 4.0], [0.5, 0.9], device="cpu", progress=False)
    assert len(s.val_acc) == 2 and len(s.val_acc[0]) == 2
    T, a = s.best
    i, j = s.temperatures.index(T), s.alphas.index(a)
    assert s.val_acc[i][j] == max(max(r) for r in s.val_acc)
    assert s.runs[T, a].meta["teacher_mode"] == "cached"


def test_a_checkpointed_sweep_is_loaded_not_retrained_and_a_new_teacher_retrains(tmp_path, capsys):
    cfg = student_config(epochs=1, batch_size=40)
    teacher = freeze(CountingTeacher())
    first = sweep(teacher, "cnn_tiny", TINY, cfg, [1.0, 4.0], [0.9], device="cpu", progress=False, checkpoint_dir=tmp_path)
    assert teacher.seen > 0 and len(list(tmp_path.glob("cnn_tiny_kd_cached_T*_a0.9_seed0.pt"))) == 2
    teacher.seen = 0
    again = sweep(teacher, "cnn_tiny", TINY, cfg, [1.0, 4.0], [0.9], device="cpu", progress=False, checkpoint_dir=tmp_path)
    assert teacher.seen == 0  # nothing retrained: the teacher never ran
    assert again.val_acc == first.val_acc and same_weights(again.runs[1.0, 0.9].model, first.runs[1.0, 0.9].model)
    other = freeze(CountingTeacher(seed=1))  # other weights: the saved runs were made from another teacher
    sweep(other, "cnn_tiny", TINY, cfg, [1.0], [0.9], device="cpu", progress=False, checkpoint_dir=tmp_path)
    assert other.seen > 0 and "moved it to" in capsys.readouterr().out


def test_teacher_and_student_with_different_class_counts_are_refused():
    teacher = freeze(build_model("cnn_tiny", num_classes=100))
    with pytest.raises(ValueError, match="teacher has 100 classes but student has 10"):
        distill_student(teacher, "cnn_tiny", TINY, student_config(epochs=1, batch_size=40), device="cpu",
                        progress=False)


# --------------------------------------------------------------------------- proof, on real data
N_LABELLED, SEEDS, MARGIN = 50, (0, 1, 2), 0.05  # 5 labelled digits per class; gain ≥ 5 points


@pytest.fixture(scope="module")
def digits_setup():
    digits = load_digits()
    teacher = train_model("mlp_large", digits, digits_config(epochs=40), device="cpu", progress=False).model
    few = Dataset(digits.name, digits.classes, digits.train.subset(N_LABELLED, seed=1), digits.val, digits.test)
    return freeze(teacher), few


def _gain(teacher, data, alpha=0.9):
    cfg = lambda seed: digits_config(epochs=120, batch_size=50, seed=seed)  # noqa: E731
    return compare_scratch_vs_kd(teacher, "mlp_small", data, cfg, SEEDS, T=4, alpha=alpha, split="test",
                                 device="cpu", progress=False)


class ShuffledTeacher(nn.Module):
    """A broken teacher: its logits are shuffled across the examples of each batch."""

    def __init__(self, teacher):
        super().__init__()
        self.teacher = teacher

    def forward(self, x):
        out = self.teacher(x)
        return out[torch.randperm(len(out), generator=torch.Generator().manual_seed(len(out)))]


def test_distillation_beats_scratch_with_little_labelled_data(digits_setup):
    teacher, few = digits_setup
    result = _gain(teacher, few)
    assert result.gain >= MARGIN, result.describe()
    assert min(result.distilled) > max(result.scratch), result.describe()


def test_the_gain_disappears_when_distillation_is_switched_off_or_broken(digits_setup):
    teacher, few = digits_setup
    off = _gain(teacher, few, alpha=0.0)
    assert off.gain == 0.0, off.describe()  # α = 0 is training from labels, bit for bit
    broken = _gain(freeze(ShuffledTeacher(teacher)), few)
    assert broken.gain < MARGIN / 2, broken.describe()


def test_dark_knowledge_teaches_a_class_the_student_never_saw(digits_setup):
    """Hinton et al. (2015), on digits: no 3 in the transfer set, yet the distilled student
    recognises most test 3s; the same student trained from labels recognises none."""
    teacher, _ = digits_setup
    digits = load_digits()
    transfer = without_class(digits, 3)
    assert (transfer.train.labels == 3).sum() == 0 and len(transfer.test) == len(digits.test)
    cfg = digits_config(epochs=40)
    kd = distill_student(teacher, "mlp_small", transfer, cfg, T=8, alpha=0.9, device="cpu", progress=False)
    scratch = train_model("mlp_small", transfer, cfg, device="cpu", progress=False)
    _, val_loader, test_loader = make_loaders(digits, 512, "cpu")
    recall3 = lambda z, y: (z.argmax(1)[y == 3] == 3).float().mean().item()  # noqa: E731
    z, y = predict(kd.model, test_loader)
    z_scratch, _ = predict(scratch.model, test_loader)
    assert recall3(z_scratch, y) == 0.0
    assert recall3(z, y) > 0.6, recall3(z, y)
    zv, yv = predict(kd.model, val_loader)
    shift = best_class_shift(zv, yv, 3, [0.25 * i for i in range(25)])
    assert shift >= 0 and recall3(shift_class_logit(z, 3, shift), y) >= recall3(z, y)


def test_best_class_shift_is_chosen_by_accuracy():
    logits = torch.tensor([[2.0, 0.0], [2.0, 1.5], [0.0, 3.0]])
    labels = torch.tensor([0, 1, 1])
    assert torch.equal(shift_class_logit(logits, 1, 1.0)[:, 1], torch.tensor([1.0, 2.5, 4.0]))
    # row 2 needs a shift > 0.5 on class 1; row 1 flips at 2.0, which costs an error
    assert best_class_shift(logits, labels, 1, [0.0, 0.25, 1.0, 3.0]) == 1.0


def test_comparison_pairs_seeds_and_judges_them_by_the_one_rule():
    from kdtutor.images.distill import Comparison
    from kdtutor.images.stats import paired_seed_difference

    c = Comparison("test", scratch=[0.60, 0.70, 0.65], distilled=[0.615, 0.71, 0.66])
    assert c.differences == pytest.approx([0.015, 0.01, 0.01])
    assert "won on 3 of 3 seeds" in c.describe()
    assert c.paired == paired_seed_difference([0.615, 0.71, 0.66], [0.60, 0.70, 0.65])
    # every seed wins, and yet the interval contains 0: the rule says so (the old 2·std rule said "reliable"
    # only when the mean beat twice the spread, a cut-off with no error rate)
    noisy = Comparison("test", [0.60, 0.70, 0.65], [0.601, 0.73, 0.651])
    assert min(noisy.differences) > 0 and noisy.paired.verdict == "inconclusive"


@pytest.mark.parametrize("scratch, distilled, expected", [
    ([0.60, 0.70, 0.65], [0.615, 0.71, 0.66], "distillation is reliably better than training from scratch: mean "
                                              "paired difference +1.17 points, 95 % interval [+0.45, +1.88] points"),
    ([0.615, 0.71, 0.66], [0.60, 0.70, 0.65], "distillation is reliably worse than training from scratch"),
    ([0.60, 0.70, 0.65], [0.601, 0.73, 0.651], "no reliable difference between distillation and training from scratch"),
    ([0.60, 0.70, 0.65], [0.64, 0.69, 0.65], "a smaller true difference may hide in the interval"),
    ([0.6], [0.7], "one seed"),
])
def test_comparison_verdict_names_what_the_paired_differences_show(scratch, distilled, expected):
    from kdtutor.images.distill import Comparison

    assert expected in Comparison("test", scratch, distilled).verdict()


def test_the_verdict_reports_the_designs_minimum_detectable_difference():
    """The number printed is the difference a two-sided paired t-test at 5 % finds with 80 % power
    (scipy's noncentral t, computed here independently of kdtutor)."""
    from scipy.stats import nct, t

    from kdtutor.images.distill import Comparison

    c = Comparison("test", [0.60, 0.70, 0.65], [0.615, 0.71, 0.66])
    said = float(re.search(r"detects a true difference of ([\d.]+) points 4 times in 5", c.verdict()).group(1))
    sd, n = statistics.stdev(c.differences) * 100, 3
    crit = t.ppf(0.975, n - 1)
    power = nct.sf(crit, n - 1, said / sd * n ** 0.5) + nct.cdf(-crit, n - 1, said / sd * n ** 0.5)
    assert power == pytest.approx(0.80, abs=0.01)  # the printed value is rounded to 0.01 points


def test_loop_verdict_separates_identical_rounding_noise_and_disagreement():
    from kdtutor.images.distill import ROUNDING, loop_verdict

    assert loop_verdict(0.0, 0.5, 0.5, 500, 16) == (True, loop_verdict(0.0, 0.5, 0.5, 500, 16)[1])
    assert "identical" in loop_verdict(0.0, 0.5, 0.5, 500, 16)[1]
    agree, text = loop_verdict(ROUNDING / 2, 0.5, 0.51, 500, 16)
    assert agree and "up to rounding" in text
    # noise of a difference of two accuracies near 50 % on 500 images: 2·√(2·0.25/500) ≈ 6.3 points
    agree, text = loop_verdict(0.1, 0.50, 0.55, 500, 80)
    assert agree and "within the noise" in text and "80 SGD steps" in text
    agree, text = loop_verdict(0.1, 0.50, 0.60, 500, 80)
    assert not agree and "check your kd_step" in text
    assert not loop_verdict(0.1, 0.50, 0.53, 20_000, 80)[0]  # more images: a smaller gap is already too big
    with pytest.raises(ValueError):
        loop_verdict(0.0, 0.5, 0.5, 0, 16)
