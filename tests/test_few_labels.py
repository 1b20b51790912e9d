"""kdtutor.images.few_labels: lesson 04's headline experiment — teacher views, balanced subsets, the pairing of
the three arms, the kept results and the one verdict rule."""

import json

import pytest
import torch
import torch.nn.functional as F

from kdtutor.images import few_labels
from kdtutor.images.distill import flip_logits
from kdtutor.images.standin import make_standin
from kdtutor.images.stats import paired_seed_difference, verdict_sentence
from kdtutor.kd.losses import kd_loss
from tests.counting import same_weights, tiny_teacher

TINY = make_standin(200, 40, 40, seed=0)


def test_flip_logits_are_the_teachers_outputs_on_both_views():
    teacher, x = tiny_teacher(), torch.randn(5, 3, 32, 32)
    table = flip_logits(teacher, x, chunk=2)
    with torch.no_grad():
        torch.testing.assert_close(table[0], teacher(x))
        torch.testing.assert_close(table[1], teacher(torch.flip(x, dims=[3])))


def test_pool_view_pairs_each_image_with_the_teacher_logits_of_that_view():
    pool = few_labels.Pool(tiny_teacher(), TINY, "cpu")
    index, flip = torch.tensor([3, 0, 7]), torch.tensor([True, False, True])
    x, z = pool.view(index, flip)
    assert torch.equal(x[0], pool.images[3].flip(2)) and torch.equal(x[1], pool.images[0])
    with torch.no_grad():
        torch.testing.assert_close(z, pool.teacher(x))


def test_labelled_subset_is_balanced_seeded_and_checked():
    labels = TINY.train.labels
    idx = few_labels.labelled_subset(labels, 50, 10)
    assert len(idx) == len(set(idx.tolist())) == 50
    assert torch.bincount(labels[idx], minlength=10).tolist() == [5] * 10
    assert torch.equal(idx, few_labels.labelled_subset(labels, 50, 10))
    assert not torch.equal(idx, few_labels.labelled_subset(labels, 50, 10, seed=1))
    with pytest.raises(ValueError, match="multiple"):
        few_labels.labelled_subset(labels, 55, 10)
    with pytest.raises(ValueError, match="only"):
        few_labels.labelled_subset(labels, 10_000, 10)


def test_arms_of_a_seed_share_weights_and_labelled_batches():
    """With α = 0 the distillation arm's loss is the cross-entropy: the same start and the same labelled
    batches then give bit-identical weights, which proves the pairing; another seed gives other weights."""
    pool = few_labels.Pool(tiny_teacher(), TINY, "cpu")
    labelled = few_labels.labelled_subset(pool.labels, 50, 10)
    budget = few_labels.Budget(steps=6, batch_size=16, T=4.0, alpha=0.0)
    scratch = few_labels.train_arm("cnn_tiny", "scratch", pool, labelled, budget, seed=1)
    kd = few_labels.train_arm("cnn_tiny", "kd", pool, labelled, budget, seed=1)
    assert same_weights(scratch, kd)
    assert not same_weights(scratch, few_labels.train_arm("cnn_tiny", "scratch", pool, labelled, budget, seed=2))
    with pytest.raises(ValueError, match="arm"):
        few_labels.train_arm("cnn_tiny", "fixed", pool, labelled, budget, seed=1)


def test_one_step_of_arm_c_is_ce_on_labelled_plus_kd_on_both_batches():
    """Arm (c)'s first update equals the one autograd gives for (1 − α)·CE(labelled) + α·T²·KL over the labelled and
    the unlabelled batch, written here from torch.nn.functional."""
    pool = few_labels.Pool(tiny_teacher(), TINY, "cpu")
    labelled = few_labels.labelled_subset(pool.labels, 50, 10)
    budget = few_labels.Budget(steps=1, batch_size=8, T=3.0, alpha=0.7)
    got = few_labels.train_arm("cnn_tiny", "kd+unlabelled", pool, labelled, budget, seed=4)
    # the same step by hand
    from kdtutor.images.models import make_model
    from kdtutor.images.recipes import lr_factor, make_optimizer, student_config
    from kdtutor.images.train import seed_everything
    seed_everything(4)
    model = make_model("cnn_tiny", 4).train()
    cfg = student_config(epochs=1, batch_size=8, seed=4)
    opt = make_optimizer(model, cfg)
    for g in opt.param_groups:
        g["lr"] = g["base_lr"] * lr_factor(0, 1, cfg)
    i, f = next(few_labels.batches(labelled, 8, torch.Generator().manual_seed(4)))
    j, g_ = next(few_labels.batches(torch.arange(len(pool)), 8, torch.Generator().manual_seed(10_007 + 4)))
    (x, zt), (xu, zu) = pool.view(i, f), pool.view(j, g_)
    z = model(torch.cat([x, xu]))
    zt_all = torch.cat([zt, zu])
    kl = F.kl_div(F.log_softmax(z / 3.0, 1), F.log_softmax(zt_all / 3.0, 1), reduction="batchmean", log_target=True)
    loss = 0.3 * F.cross_entropy(z[:8], pool.labels[i]) + 0.7 * 9.0 * kl
    torch.testing.assert_close(kd_loss(z, zt_all, 3.0), 9.0 * kl)
    opt.zero_grad()
    loss.backward()
    opt.step()
    for (name, a), b in zip(got.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_run_keeps_students_and_retrains_when_the_budget_changes(tmp_path, monkeypatch):
    teacher = tiny_teacher()
    budget = few_labels.Budget(steps=3, batch_size=10)
    first = few_labels.run(teacher, "cnn_tiny", TINY, [20], [1, 2], budget, folder=tmp_path, progress=False)
    assert set(first.test) == {(a, 20) for a in few_labels.ARMS} and all(len(v) == 2 for v in first.test.values())
    assert len(list(tmp_path.glob("*.pt"))) == 6

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although every student was kept")

    monkeypatch.setattr(few_labels, "train_arm", no_training)
    again = few_labels.run(teacher, "cnn_tiny", TINY, [20], [1, 2], budget, folder=tmp_path, progress=False)
    assert again.test == first.test and same_weights(again.models["kd", 20, 1], first.models["kd", 20, 1])
    with pytest.raises(AssertionError, match="trained again"):
        few_labels.run(teacher, "cnn_tiny", TINY, [20], [1], few_labels.Budget(steps=4, batch_size=10),
                       folder=tmp_path, progress=False)


def test_verdict_is_the_course_rule_on_the_paired_test_accuracies():
    r = few_labels.FewLabels([100], [1, 2, 3], few_labels.Budget())
    r.test = {("scratch", 100): [0.30, 0.32, 0.31], ("kd", 100): [0.33, 0.34, 0.35],
              ("kd+unlabelled", 100): [0.50, 0.53, 0.51]}
    p = r.paired(100)
    assert p == paired_seed_difference([0.50, 0.53, 0.51], [0.30, 0.32, 0.31])
    assert r.verdict(100) == verdict_sentence(p, few_labels.ARM_NAMES["kd+unlabelled"], few_labels.ARM_NAMES["scratch"],
                                              scale=100, unit="points")
    assert "+20.33 [" in r.table()
    r.val = {k: [a - 0.01 for a in v] for k, v in r.test.items()}
    again = few_labels.FewLabels.from_dict(json.loads(json.dumps(r.to_dict())))  # through a JSON file and back
    assert (again.label_counts, again.seeds, again.budget, again.val, again.test) == (r.label_counts, r.seeds, r.budget,
                                                                                     r.val, r.test)
    assert again.table("val") == r.table("val") and again.verdict(100) == r.verdict(100)


def test_budget_refuses_nonsense():
    with pytest.raises(ValueError):
        few_labels.Budget(steps=0)
    with pytest.raises(ValueError):
        few_labels.Budget(alpha=1.5)


def test_sweep_fills_the_grid_from_validation_runs_of_one_arm(tmp_path):
    teacher = tiny_teacher()
    s = few_labels.sweep_t_alpha(teacher, "cnn_tiny", TINY, 20, 0, [1.0, 4.0], [0.5], few_labels.Budget(steps=2, batch_size=10),
                         folder=tmp_path, progress=False)
    assert len(s.val_acc) == 2 and len(s.val_acc[0]) == 1 and s.best in {(1.0, 0.5), (4.0, 0.5)}
    again = few_labels.run(teacher, "cnn_tiny", TINY, [20], [0], few_labels.Budget(steps=2, batch_size=10, T=4.0, alpha=0.5),
                           arms=("kd+unlabelled",), folder=tmp_path, progress=False)
    assert again.val["kd+unlabelled", 20] == [s.val_acc[1][0]]  # the sweep's run was kept and is the same student


def test_a_sweep_keeps_one_file_per_cell(tmp_path):
    few_labels.sweep_t_alpha(tiny_teacher(), "cnn_tiny", TINY, 20, 0, [1.0, 4.0], [0.5, 0.9], few_labels.Budget(steps=1, batch_size=10),
                     folder=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.pt"))) == 4 and not list(tmp_path.glob("*.old*"))


def test_a_label_count_that_cannot_fill_a_batch_is_refused_before_training():
    with pytest.raises(ValueError, match="cannot fill a batch of 30"):
        few_labels.run(tiny_teacher(), "cnn_tiny", TINY, [20, 50], [1], few_labels.Budget(steps=1, batch_size=30),
                       progress=False)


def test_every_profile_can_run_its_few_labels_experiment():
    from kdtutor.profiles import PROFILES

    for p in PROFILES.values():
        fl = p.few_labels
        assert min(fl.label_counts) >= fl.batch_size and all(n % 10 == 0 for n in fl.label_counts), p.name


def test_mirror_off_shows_every_image_as_it_is(monkeypatch):
    pool = few_labels.Pool(tiny_teacher(), TINY, "cpu")
    labelled = few_labels.labelled_subset(pool.labels, 50, 10)
    flips = []
    view = pool.view
    monkeypatch.setattr(pool, "view", lambda index, flip: (flips.append(flip.clone()), view(index, flip))[1])
    few_labels.train_arm("cnn_tiny", "kd+unlabelled", pool, labelled, few_labels.Budget(steps=3, batch_size=10, mirror=False), 1)
    assert len(flips) == 6 and not any(f.any() for f in flips)
    flips.clear()
    few_labels.train_arm("cnn_tiny", "kd+unlabelled", pool, labelled, few_labels.Budget(steps=3, batch_size=10), 1)
    assert any(f.any() for f in flips)  # with the default, some images are mirrored


def test_the_pools_teacher_logits_are_computed_once_per_teacher_and_images(tmp_path, monkeypatch):
    from kdtutor import evalcache

    calls = []

    def counted(teacher, images):
        calls.append(len(images))
        return flip_logits(teacher, images)

    monkeypatch.setattr(few_labels, "flip_logits", counted)
    monkeypatch.setattr(evalcache, "EVAL_DIR", tmp_path)  # an empty cache
    teacher = tiny_teacher()
    first = few_labels.Pool(teacher, TINY, "cpu").teacher_logits
    again = few_labels.Pool(teacher, TINY, "cpu").teacher_logits  # a re-run: loaded, the teacher not run
    assert calls == [len(TINY.train)] and torch.equal(again, first)
    with torch.no_grad():
        teacher[0].weight.mul_(1.5)  # another teacher: computed again, not the stale table
    pool = few_labels.Pool(teacher, TINY, "cpu")
    torch.testing.assert_close(pool.teacher_logits, flip_logits(teacher, pool.images))
    assert len(calls) == 2
