"""Lesson 06's harness: feature hooks and projector, mixup views, the teacher cache, the comparison's numbers."""

import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn

from kdtutor.images import comparison as bl, hints, methods as br
from kdtutor.images.distill import TeacherLogits
from kdtutor.images.history import History
from kdtutor.images.loader import DeviceLoader
from kdtutor.images.models import build_model
from kdtutor.images.splits import Split
from tests.counting import CountingTeacher


def test_feature_hook_records_the_named_layer_and_rejects_unknown_names():
    torch.manual_seed(0)
    m = build_model("cnn_tiny").eval()
    x = torch.randn(2, 3, 32, 32)
    with hints.FeatureHook(m, "7") as hook:
        m(x)
        got = hook.take()
    assert torch.equal(got, nn.Sequential(*list(m)[:8])(x))
    with pytest.raises(ValueError, match="no layer named 'body.9'"):
        hints.FeatureHook(m, "body.9")
    with hints.FeatureHook(m, "7") as hook, pytest.raises(ValueError, match="no output yet"):
        hook.take()


def test_projector_maps_student_features_to_the_teachers_shape():
    p = hints.HintProjector((32, 8, 8), (64, 7, 7))
    assert p(torch.randn(3, 32, 8, 8)).shape == (3, 64, 7, 7)
    with pytest.raises(ValueError, match="expected student features"):
        p(torch.randn(3, 16, 8, 8))
    with pytest.raises(ValueError, match="smaller than the teacher"):
        hints.HintProjector((32, 4, 4), (64, 7, 7))
    assert hints.feature_shape(build_model("airbench_small"), "body.2") == (64, 7, 7)


def _loader(seed=3, n=40):
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8), torch.arange(n) % 4)
    return DeviceLoader(split, 10, mean=(0.5,) * 3, std=(0.25,) * 3, train=True, flip=True, translate=2, seed=seed)


def test_mixup_views_are_a_function_of_seed_epoch_and_index():
    plain = _loader()
    mix = br.MixupLoader.like(plain)
    mix.set_epoch(2)
    plain.set_epoch(2)
    idx = torch.tensor([0, 5, 7])
    partner, lam = mix._mix()
    lam_i = lam[idx].view(-1, 1, 1, 1)
    want = lam_i * plain.view_images(idx) + (1 - lam_i) * plain.view_images(partner[idx])
    assert torch.allclose(mix.view_images(idx), want)
    again = br.MixupLoader.like(_loader())
    again.set_epoch(2)
    assert torch.equal(again.view_images(idx), mix.view_images(idx))  # same (seed, epoch, index): same view
    assert torch.equal(mix.view_params()[0], plain.view_params()[0])  # same order as the plain loader
    assert mix.view_key() != plain.view_key()
    mix.set_epoch(3)
    assert not torch.equal(mix._mix()[1], lam)


class _Teacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4))

    def forward(self, x):
        return self.head(self.body(x))


def test_teacher_logits_serve_the_teachers_outputs_for_the_batchs_own_view():
    torch.manual_seed(0)
    teacher, loader = _Teacher(), _loader()
    outputs = TeacherLogits(teacher, loader, "cached", layer="body")
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        for batch in loader:
            z, f = outputs(batch), outputs.features(batch)
            with torch.no_grad():
                assert torch.allclose(z, teacher(batch.images), atol=1e-5)
                assert torch.allclose(f, teacher.body(batch.images), atol=1e-5)
    assert len(outputs.cache) == 2 and len(outputs.feature_cache) == 2
    fixed = TeacherLogits(teacher, loader, "fixed")  # a fixed teacher: the clean images whatever the view
    with torch.no_grad():
        assert torch.allclose(fixed(batch), teacher(loader.clean_images(batch.index)), atol=1e-5)
    with pytest.raises(ValueError, match="one split"):
        outputs.attach(_loader(n=30))
    outputs.attach(br.MixupLoader.like(_loader()))  # the same split and seed, other views: served
    outputs.attach(_loader(seed=4))  # another seed: the old seed's views can never be asked for again
    assert outputs.cache == {} and outputs.feature_cache == {}


def test_method_loss_rejects_unknown_methods_and_missing_pieces():
    with pytest.raises(ValueError, match="unknown method"):
        br.check_method("CRD")
    with pytest.raises(ValueError, match="needs the teacher's outputs"):
        br.MethodLoss("DKD", None, total_steps=10)
    with pytest.raises(ValueError, match="pass total_steps"):
        br.MethodLoss("DKD", TeacherLogits(_Teacher(), _loader(), "cached"))
    with pytest.raises(ValueError, match="HintedStudent"):
        br.MethodLoss("FitNets", TeacherLogits(_Teacher(), _loader(), "cached", "body"), nn.Linear(2, 2))
    student = hints.HintedStudent(build_model("cnn_tiny"), "7", (4, 8, 8))
    with pytest.raises(ValueError, match="teacher features"):
        br.MethodLoss("FitNets", TeacherLogits(_Teacher(), _loader(), "cached"), student)
    with pytest.raises(ValueError, match="mode 'cached' or 'fixed'"):
        TeacherLogits(_Teacher(), _loader(), "online", layer="body")
    with pytest.raises(ValueError, match="no loader attached"):
        TeacherLogits(_Teacher(), mode="cached")(next(iter(_loader())))


def test_dkd_warmup_is_mdistillers_ramp_scaled_to_the_run():
    steps_per_epoch = 7
    total = 240 * steps_per_epoch
    for epoch in (1, 5, 19, 20, 21, 240):  # mdistiller: min(epoch / 20, 1) with epoch counted from 1
        assert br.dkd_warmup(epoch * steps_per_epoch, total, 20 / 240) == pytest.approx(min(epoch / 20, 1.0))
    with pytest.raises(ValueError, match="warmup"):
        br.dkd_warmup(1, 10, 0.0)


def _logits(seed=0, n=6, c=10):
    g = torch.Generator().manual_seed(seed)
    return (3 * torch.randn(n, c, generator=g, dtype=torch.float64), 3 * torch.randn(n, c, generator=g, dtype=torch.float64),
            torch.randint(0, c, (n,), generator=g))


def test_method_losses_are_the_reference_codes_at_their_settings():
    from kdtutor.kd import beyond
    s, z, y = _logits()
    ce = F.cross_entropy(s, y)
    kd = F.kl_div(F.log_softmax(s / 4, 1), F.log_softmax(z / 4, 1), reduction="batchmean", log_target=True)
    cache = TeacherLogits(_Teacher(), _loader(), "cached")
    assert br.MethodLoss("KD", cache).loss(s, z, y) == pytest.approx(float(0.1 * ce + 0.9 * 16 * kd))
    lf = br.MethodLoss("DKD", cache, total_steps=120)  # warm-up: the first 10 steps
    for step, w in [(5, 0.5), (10, 1.0), (100, 1.0)]:
        lf.steps = step
        want = ce + w * beyond.dkd_loss(s, z, y, alpha=1.0, beta=8.0, T=4.0)
        assert lf.loss(s, z, y) == pytest.approx(float(want))
    lf.steps = 100
    assert lf.loss(s, z, y) == pytest.approx(float(beyond.dkd_training_loss(s, z, y, 1.0, 8.0, 4.0)))
    want = 0.1 * ce + 9 * beyond.ls_kd_loss(s, z, T=2.0)
    assert br.MethodLoss("LS-KD", cache).loss(s, z, y) == pytest.approx(float(want))
    assert br.MethodLoss("scratch", None).loss(s, z, y) == pytest.approx(float(ce))


def test_logit_gradient_norm_has_the_closed_forms_of_ce_and_kd():
    s, z, y = _logits(1)
    want_ce = (F.softmax(s, 1) - F.one_hot(y, 10)).norm(dim=1).mean()
    assert br.logit_gradient_norm(lambda x: F.cross_entropy(x, y), s) == pytest.approx(float(want_ce))
    T = 4.0  # ∂/∂s of T²·KL(p_T ‖ q_T) is T·(q_T − p_T) per example
    want_kd = (T * (F.softmax(s / T, 1) - F.softmax(z / T, 1))).norm(dim=1).mean()
    kd = lambda x: T * T * F.kl_div(F.log_softmax(x / T, 1), F.log_softmax(z / T, 1), reduction="batchmean", log_target=True)  # noqa: E731
    assert br.logit_gradient_norm(kd, s) == pytest.approx(float(want_kd))


def test_lr_candidates_match_every_methods_initial_pull_to_ces():
    norms = {"scratch": 1.0, "KD": 0.5, "DKD": 2.0, "LS-KD": 40.0}
    c = br.lr_candidates(norms)
    assert c == {"scratch": (1.0, 2.0), "KD": (1.0, 2.0), "DKD": (1.0, 0.5), "LS-KD": (1.0, 0.025)}
    assert all(len(v) == 2 for v in c.values())  # the same tuning budget for every method, scratch included


def _run(method, seed, test_accs, correct_final, scale=1.0):
    """A fake run: its history's per-epoch test accuracies and final logits right on ``correct_final`` of 10."""
    logits = torch.zeros(10, 2)
    logits[:correct_final, 0] = 1.0  # labels are all 0
    logits[correct_final:, 1] = 1.0
    h = History([{"epoch": i + 1, "val_acc": 0.5, "test_acc": a} for i, a in enumerate(test_accs)])
    return br.MethodRun(method, scale, seed, h, logits, 1.0)


def test_published_style_gains_and_the_table_from_known_runs():
    c = bl.MethodComparison("toy", True, 2, 10, [1, 2, 3], 0, torch.zeros(10, dtype=torch.long), torch.zeros(10, 2))
    final = {"KD": [6, 6, 6], "DKD": [5, 6, 7], "LS-KD": [8, 8, 9]}
    for m in br.METHODS:
        f = final.get(m, [6, 6, 6])
        c.runs[m] = {s: _run(m, s, [0.9 if m == "DKD" else 0.1, f[i] / 10], f[i]) for i, s in enumerate([1, 2, 3])}
        c.chosen[m] = 1.0
        if m != "scratch":
            c.grid[m] = {1.0: _run(m, 0, [0.5], 6), 0.5: _run(m, 0, [0.5], 6, 0.5)}
    c.grid["KD"][1.0] = _run("KD", 0, [0.4], 4)  # KD at the course's learning rate: 40 %
    c.grid["DKD"][0.5] = _run("DKD", 0, [0.8], 8, 0.5)  # DKD's better learning rate on test: 80 %
    g = bl.published_style_gains(c)["DKD"]
    assert g["honest"] == pytest.approx(0.0, abs=1e-4)
    assert g["best_epoch_on_test"] == pytest.approx(100 * (0.9 - 0.6), abs=1e-4)
    assert g["best_of_seeds"] == pytest.approx(100 * (0.7 - 0.6), abs=1e-4)
    assert g["unequal_tuning"] == pytest.approx(100 * (0.8 - 0.4), abs=1e-4)
    rows = {r["method"]: r for r in c.table()}
    dkd, ls = rows["DKD"], rows["LS-KD"]
    assert dkd["diffs"] == pytest.approx([-10.0, 0.0, 10.0], abs=1e-4) and dkd["acc_mean"] == pytest.approx(60.0, abs=1e-4)
    assert dkd["verdict"] == "inconclusive" and ls["verdict"] == "reliably better" and rows["KD"]["verdict"] is None
    ci = scipy.stats.ttest_rel([80, 80, 90], [60, 60, 60]).confidence_interval(0.95)
    assert ls["ci"] == pytest.approx([ci.low, ci.high], abs=1e-3) and ci.low > 0
    assert any(line.startswith("| DKD | 1 | 60.00 ± 10.00 |") for line in c.markdown())
    c.grid["DKD"][0.5].history.epochs[-1]["val_acc"] = 0.7
    c.chosen["DKD"] = bl._choose(c.grid["DKD"])
    assert c.chosen["DKD"] == 0.5
    assert "DKD: validation accuracy at seed 0 — ×1: 50.00 %, ×0.5: 70.00 %; kept ×0.5" in bl.lr_choice_lines(c)
    lines = bl.verdict_lines(c.table())
    assert any(line.startswith("- DKD vs KD is inconclusive: +0.00 points") for line in lines)
    assert any(line.startswith("- LS-KD beat KD reliably: +23.33 points") for line in lines)


def test_a_setting_overrides_the_reference_and_names_the_run():
    s, z, y = _logits()
    student = hints.HintedStudent(build_model("cnn_tiny"), "7", (4, 8, 8))
    cache = TeacherLogits(_Teacher(), _loader(), "cached", layer="body")
    g = torch.Generator().manual_seed(1)
    student.projected, feats = torch.randn(6, 4, 8, 8, generator=g), torch.randn(6, 4, 8, 8, generator=g)
    ce, mse = F.cross_entropy(s, y), F.mse_loss(student.projected, feats)
    assert br.MethodLoss("FitNets", cache, student).loss(s, z, y, feats) == pytest.approx(float(ce + mse))
    heavy = br.MethodLoss("FitNets", cache, student, settings={"beta": 100.0})
    assert heavy.loss(s, z, y, feats) == pytest.approx(float(ce + 100 * mse))
    assert br.REFERENCE["FitNets"]["beta"] == 1.0  # the override did not change the table
    with pytest.raises(ValueError, match="FitNets has no setting gamma; its settings: beta"):
        br.MethodLoss("FitNets", cache, student, settings={"gamma": 1.0})
    assert br.run_path("d", "cnn_tiny", "FitNets", 1.0, 1, settings={"beta": 100.0}).name == "cnn_tiny_FitNets_beta100_lr1_seed1.pt"
    assert br.run_path("d", "cnn_tiny", "FitNets", 1.0, 1, settings={"beta": 1.0}).name == "cnn_tiny_FitNets_lr1_seed1.pt"


def test_compare_methods_refuses_a_sweep_seed_among_the_seeds():
    with pytest.raises(ValueError, match="chosen on itself"):
        bl.compare_methods(_Teacher(), "airbench_small", "cnn_tiny", None, None, [0, 1], 0, torch.zeros(1))


def test_a_kept_run_is_loaded_without_the_teacher_and_other_settings_retrain(tmp_path, monkeypatch, capsys):
    from kdtutor.images.recipes import student_config
    from kdtutor.images.standin import make_standin
    data = make_standin(120, 40, 40, seed=0)
    cfg, teacher = student_config(epochs=1, batch_size=40, seed=1), CountingTeacher()
    first = br.train_method("KD", "cnn_tiny", data, cfg, TeacherLogits(teacher, mode="cached"), lr_scale=0.5, checkpoint_dir=tmp_path)
    assert teacher.seen > 0 and br.run_path(tmp_path, "cnn_tiny", "KD", 0.5, 1).exists()
    teacher.seen = 0
    again = br.train_method("KD", "cnn_tiny", data, cfg, TeacherLogits(teacher, mode="cached"), lr_scale=0.5, checkpoint_dir=tmp_path)
    assert teacher.seen == 0 and torch.equal(again.test_logits, first.test_logits)
    assert again.history.epochs == first.history.epochs and again.seconds == first.seconds
    monkeypatch.setitem(br.REFERENCE, "KD", {"T": 2.0, "alpha": 0.9})  # the method's settings changed: not the same run
    br.train_method("KD", "cnn_tiny", data, cfg, TeacherLogits(teacher, mode="cached"), lr_scale=0.5, checkpoint_dir=tmp_path)
    assert teacher.seen > 0 and "moved it to" in capsys.readouterr().out
