"""kdtutor.images.evaluate against independent references: scikit-learn, torchmetrics, numpy,
statistics, scipy (if installed) and closed forms."""

import json
import math
import statistics

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from torch import nn

from kdtutor.images import cost, evaluate as ev, metrics, stats
from kdtutor.images.loader import DeviceLoader
from kdtutor.images.models import build_model, count_parameters
from kdtutor.images.predict import predict
from kdtutor.images.splits import Split
from kdtutor.kd.losses import kl_divergence


def random_case(n=400, c=7, seed=0, scale=2.0, never_predicted=(5,)):
    """Random logits and labels where the classes in ``never_predicted`` are never the argmax
    (but do occur among the labels)."""
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, c, generator=g)
    for k in never_predicted:
        logits[:, k] -= 20.0
    labels = torch.randint(0, c, (n,), generator=g)
    return logits, labels


def absent_class_case():
    """Class 6 is neither predicted nor among the labels: its F1 is 0 (0/0 → 0) and still averaged."""
    z, y = random_case(n=200, c=7, seed=9, never_predicted=(6,))
    return z, y % 6


CASES = [random_case(seed=s) for s in range(3)] + [random_case(n=50, c=3, seed=7, never_predicted=()),
                                                  absent_class_case()]


def np_pred(logits):
    return logits.argmax(1).numpy()


# --------------------------------------------------------------------------- quality vs scikit-learn
@pytest.mark.parametrize("case", range(len(CASES)))
def test_accuracy_and_topk_match_sklearn(case):
    z, y = CASES[case]
    assert metrics.top1_accuracy(z, y) == pytest.approx(skm.accuracy_score(y.numpy(), np_pred(z)), abs=1e-12)
    C = z.shape[1]
    for k in range(1, C):  # sklearn warns for k >= C (always 1)
        want = skm.top_k_accuracy_score(y.numpy(), z.double().numpy(), k=k, labels=list(range(C)))
        assert metrics.topk_accuracy(z, y, k) == pytest.approx(want, abs=1e-12), k
    assert metrics.topk_accuracy(z, y, C) == 1.0


def test_topk_with_k1_equals_top1_even_with_ties():
    z = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, 3.0, 3.0]])
    y = torch.tensor([1, 1, 0])
    assert metrics.topk_accuracy(z, y, 1) == metrics.top1_accuracy(z, y) == pytest.approx(2 / 3)
    assert metrics.topk_accuracy(z, y, 2) == 1.0


@pytest.mark.parametrize("case", range(len(CASES)))
def test_precision_recall_f1_match_sklearn_zero_division_0(case):
    z, y = CASES[case]
    C = z.shape[1]
    p, r, f, s = skm.precision_recall_fscore_support(y.numpy(), np_pred(z), labels=list(range(C)),
                                                     zero_division=0)
    got = metrics.precision_recall_f1(z, y)
    np.testing.assert_allclose(got["precision"].numpy(), p, atol=1e-12)
    np.testing.assert_allclose(got["recall"].numpy(), r, atol=1e-12)
    np.testing.assert_allclose(got["f1"].numpy(), f, atol=1e-12)
    np.testing.assert_array_equal(got["support"].numpy(), s)
    want = skm.f1_score(y.numpy(), np_pred(z), labels=list(range(C)), average="macro", zero_division=0)
    assert metrics.macro_f1(z, y) == pytest.approx(want, abs=1e-12)


def test_a_never_predicted_class_has_precision_and_f1_zero_not_nan():
    z, y = CASES[0]
    got = metrics.precision_recall_f1(z, y)
    assert got["support"][5] > 0 and got["precision"][5] == 0 and got["f1"][5] == 0
    assert torch.isfinite(got["f1"]).all()


def test_macro_f1_differs_from_accuracy_when_a_class_is_ignored():
    # 90 examples of class 0, 10 of class 1; the model always says 0: accuracy 0.9, macro-F1 ≈ 0.47
    y = torch.tensor([0] * 90 + [1] * 10)
    z = torch.tensor([[1.0, 0.0]]).repeat(100, 1)
    assert metrics.top1_accuracy(z, y) == pytest.approx(0.9)
    assert metrics.macro_f1(z, y) == pytest.approx((2 * 90 / (2 * 90 + 10) + 0) / 2)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_confusion_matrix_matches_sklearn(case):
    z, y = CASES[case]
    C = z.shape[1]
    want = skm.confusion_matrix(y.numpy(), np_pred(z), labels=list(range(C)))
    got = metrics.confusion_matrix(z, y)
    assert got.dtype == torch.int64 and got.shape == (C, C)
    np.testing.assert_array_equal(got.numpy(), want)
    # rows are true classes: they sum to the label counts
    np.testing.assert_array_equal(got.sum(1).numpy(), np.bincount(y.numpy(), minlength=C))


def test_per_class_accuracy_is_recall_and_nan_for_absent_classes():
    z, y = CASES[1]
    np.testing.assert_allclose(metrics.per_class_accuracy(z, y).numpy(), metrics.precision_recall_f1(z, y)["recall"].numpy())
    y2 = torch.zeros_like(y)  # only class 0 present
    acc = metrics.per_class_accuracy(z, y2)
    assert not math.isnan(acc[0]) and torch.isnan(acc[1:]).all()


@pytest.mark.parametrize("case", range(len(CASES)))
def test_nll_matches_sklearn_log_loss(case):
    z, y = CASES[case]
    z = z.clamp_min(-15)  # sklearn clips probabilities at machine epsilon; stay clear of it
    probs = torch.softmax(z.double(), dim=1).numpy()
    want = skm.log_loss(y.numpy(), probs, labels=list(range(z.shape[1])))
    assert metrics.negative_log_likelihood(z, y) == pytest.approx(want, rel=1e-9)


# --------------------------------------------------------------------------- fidelity
def test_a_model_against_itself_agrees_fully_with_zero_kl():
    z, _ = CASES[0]
    assert metrics.top1_agreement(z, z) == 1.0
    assert metrics.teacher_kl(z, z) == pytest.approx(0.0, abs=1e-12)
    # softmax ignores a constant per row: same distribution, same predictions
    shifted = z + torch.randn(len(z), 1)
    assert metrics.top1_agreement(shifted, z) == 1.0
    assert metrics.teacher_kl(shifted, z) == pytest.approx(0.0, abs=1e-9)


def test_agreement_counts_matching_argmax_not_labels():
    teacher = torch.eye(4)[[0, 1, 2, 3]] * 5
    student = torch.eye(4)[[0, 1, 3, 3]] * 5
    assert metrics.top1_agreement(student, teacher) == 0.75
    # against independent numpy
    s, t = CASES[0][0], CASES[1][0]
    assert metrics.top1_agreement(s, t) == pytest.approx(np.mean(np_pred(s) == np_pred(t)))


def test_teacher_kl_direction_and_value():
    s, t = CASES[0][0], CASES[2][0]
    p = torch.softmax(t.double(), 1)
    want = (p * (torch.log_softmax(t.double(), 1) - torch.log_softmax(s.double(), 1))).sum(1).mean()
    assert metrics.teacher_kl(s, t) == pytest.approx(want.item(), rel=1e-9)
    assert metrics.teacher_kl(s, t) == pytest.approx(kl_divergence(s, t).item(), rel=1e-5)
    assert metrics.teacher_kl(s, t) != pytest.approx(metrics.teacher_kl(t, s), rel=1e-3)  # KL is not symmetric


# --------------------------------------------------------------------------- calibration
@pytest.mark.parametrize("seed,scale", [(0, 1.0), (1, 3.0), (2, 8.0)])
def test_ece_matches_torchmetrics(seed, scale):
    from torchmetrics.functional.classification import multiclass_calibration_error

    z, y = random_case(n=2000, c=10, seed=seed, scale=scale, never_predicted=())
    probs = torch.softmax(z, dim=1)
    want = multiclass_calibration_error(probs, y, num_classes=10, n_bins=15, norm="l1").item()
    assert metrics.expected_calibration_error(z, y) == pytest.approx(want, abs=1e-5)


def test_reliability_bins_are_consistent_with_ece():
    z, y = random_case(n=3000, c=10, seed=3, scale=3.0, never_predicted=())
    bins = metrics.reliability_bins(z, y, n_bins=15)
    assert bins.n_bins == 15 and int(bins.count.sum()) == 3000
    torch.testing.assert_close(bins.lower, torch.arange(15, dtype=torch.float64) / 15)
    torch.testing.assert_close(bins.upper, torch.arange(1, 16, dtype=torch.float64) / 15)
    full = bins.count > 0
    assert torch.isnan(bins.confidence[~full]).all() and torch.isnan(bins.accuracy[~full]).all()
    # each bin's mean confidence lies inside it
    assert (bins.confidence[full] > bins.lower[full]).all() and (bins.confidence[full] <= bins.upper[full]).all()
    # recompute ECE by hand from the bins
    ece = sum(int(n) / 3000 * abs(a - c) for n, a, c in
              zip(bins.count, bins.accuracy.tolist(), bins.confidence.tolist()) if n > 0)
    assert metrics.expected_calibration_error(z, y) == pytest.approx(ece, abs=1e-12)
    # and the bins' accuracies weighted by counts give back the accuracy
    acc = (bins.count[full] * bins.accuracy[full]).sum().item() / 3000
    assert acc == pytest.approx(metrics.top1_accuracy(z, y), abs=1e-12)


def test_perfectly_calibrated_toy_has_ece_near_zero():
    # labels drawn from the model's own predicted distribution: calibrated by construction
    g = torch.Generator().manual_seed(0)
    z = 2.5 * torch.randn(40000, 5, generator=g)
    y = torch.multinomial(torch.softmax(z, 1), 1, generator=g).squeeze(1)
    assert metrics.expected_calibration_error(z, y) < 0.02


def test_over_confident_toy_has_the_closed_form_ece():
    # always confidence 0.9 on class 0, right 60 % of the time → ECE = |0.6 − 0.9| = 0.3
    C = 4
    rest = math.log(0.1 / 3)
    z = torch.tensor([[math.log(0.9)] + [rest] * (C - 1)], dtype=torch.float64).repeat(1000, 1)
    y = torch.tensor([0] * 600 + [1, 2, 3, 1] * 100)
    bins = metrics.reliability_bins(z, y)
    assert int(bins.count.sum()) == int(bins.count[13]) == 1000  # 0.9 lies in (13/15, 14/15]
    assert metrics.expected_calibration_error(z, y) == pytest.approx(0.3, abs=1e-9)


def test_confidence_exactly_one_falls_in_the_last_bin():
    z = torch.tensor([[100.0, 0.0, 0.0], [0.0, 100.0, 0.0]])  # softmax max is exactly 1.0 in float32/64
    y = torch.tensor([0, 2])
    bins = metrics.reliability_bins(z, y)
    assert int(bins.count[-1]) == 2 and int(bins.count.sum()) == 2
    assert metrics.expected_calibration_error(z, y) == pytest.approx(0.5)


def test_a_confidence_on_a_bin_edge_goes_to_the_lower_bin():
    # softmax of equal logits is exactly 1/C: 0.5 is the upper edge of bin 4 of 10, 0.25 of bin 0 of 4
    bins = metrics.reliability_bins(torch.zeros(6, 2), torch.zeros(6, dtype=torch.long), n_bins=10)
    assert int(bins.count[4]) == 6 and bins.confidence[4] == 0.5
    bins = metrics.reliability_bins(torch.zeros(6, 4), torch.zeros(6, dtype=torch.long), n_bins=4)
    assert int(bins.count[0]) == 6


@pytest.mark.parametrize("n_bins", [1, 7, 10])
def test_ece_uses_n_bins_like_torchmetrics(n_bins):
    from torchmetrics.functional.classification import multiclass_calibration_error

    # labels drawn from a softer distribution than the model's: over-confident at the top,
    # under-confident lower down, so the binning matters
    g = torch.Generator().manual_seed(4)
    z = 3 * torch.randn(3000, 10, generator=g)
    y = torch.multinomial(torch.softmax(z / 2, 1), 1, generator=g).squeeze(1)
    want = multiclass_calibration_error(torch.softmax(z, 1), y, num_classes=10, n_bins=n_bins, norm="l1").item()
    assert metrics.reliability_bins(z, y, n_bins=n_bins).n_bins == n_bins
    assert metrics.expected_calibration_error(z, y, n_bins) == pytest.approx(want, abs=1e-5)
    if n_bins != 15:
        assert metrics.expected_calibration_error(z, y, n_bins) != pytest.approx(metrics.expected_calibration_error(z, y, 15))


# --------------------------------------------------------------------------- cost
def test_flops_of_a_linear_layer_are_2_in_out_per_image():
    layer = nn.Linear(64, 32)
    assert cost.count_flops(layer, torch.randn(5, 64)) == 2 * 64 * 32  # one image, whatever the batch


@pytest.mark.parametrize("stride,padding,groups", [(1, 1, 1), (2, 0, 1), (1, 1, 2)])
def test_flops_of_a_conv_are_2_cin_cout_k2_hout_wout(stride, padding, groups):
    c_in, c_out, k, h = 4, 8, 3, 11
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, groups=groups)
    h_out = (h + 2 * padding - k) // stride + 1
    assert cost.count_flops(conv, torch.randn(2, c_in, h, h)) == 2 * (c_in // groups) * c_out * k * k * h_out * h_out


def test_flops_of_an_mlp_and_a_cnn():
    mlp = build_model("mlp_small", 10, 1, 8)  # Linear(64, 32) → ReLU → Linear(32, 10)
    assert cost.count_flops(mlp, torch.randn(1, 1, 8, 8)) == 2 * (64 * 32 + 32 * 10)
    cnn = build_model("cnn_tiny", 10, 3, 32)  # conv stages at 32², 16², 8² (×2), then Linear(48, 10)
    convs = 3 * 16 * 9 * 32**2 + 16 * 32 * 9 * 16**2 + 32 * 48 * 9 * 8**2 + 48 * 48 * 9 * 8**2
    was_training = cnn.training
    assert cost.count_flops(cnn, torch.randn(1, 3, 32, 32)) == 2 * (convs + 48 * 10)
    assert cnn.training == was_training  # mode restored


def test_parameters_and_size_on_disk():
    mlp = build_model("mlp_small", 10, 1, 8)
    assert count_parameters(mlp) == (64 * 32 + 32) + (32 * 10 + 10)
    size = cost.size_on_disk(mlp)
    assert 4 * count_parameters(mlp) < size < 4 * count_parameters(mlp) + 10_000  # float32 + pickle overhead


def test_latency_is_positive_and_names_the_device():
    mlp = build_model("mlp_small", 10, 1, 8)
    card = cost.model_cost(mlp, torch.randn(3, 1, 8, 8), batch_sizes=(1, 8), warmup=1, repeats=2)
    assert set(card.latency_ms) == {1, 8} and all(t > 0 for t in card.latency_ms.values())
    assert card.device == "cpu"
    with pytest.raises(ValueError, match="repeats"):
        cost.measure_latency(mlp, torch.randn(1, 1, 8, 8), repeats=0)


# --------------------------------------------------------------------------- across seeds
@pytest.mark.parametrize("values", [[0.91, 0.93, 0.92], [1.0, 2.0], list(np.linspace(0.5, 0.7, 12)),
                                    list(np.random.default_rng(0).normal(0.8, 0.01, 40))])
def test_summarize_seeds_matches_numpy_and_statistics(values):
    s = stats.summarize_seeds(values)
    assert s.n == len(values)
    assert s.mean == pytest.approx(np.mean(values), rel=1e-12)
    assert s.std == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert s.std == pytest.approx(statistics.stdev(values), rel=1e-12)
    assert s.low < s.mean < s.high and s.half_width == pytest.approx(s.mean - s.low)


def test_summarize_seeds_interval_matches_scipy():
    sp_stats = pytest.importorskip("scipy.stats")
    for values in ([0.91, 0.93, 0.92], [1.0, 2.0], list(np.random.default_rng(1).normal(size=45))):
        s = stats.summarize_seeds(values)
        low, high = sp_stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sp_stats.sem(values))
        assert (s.low, s.high) == pytest.approx((low, high), rel=1e-6)


def test_t_table_matches_scipy():
    sp_stats = pytest.importorskip("scipy.stats")
    for df in list(range(1, 61)) + [100, 1000, 10**6]:
        assert stats.t_quantile_975(df) == pytest.approx(sp_stats.t.ppf(0.975, df), rel=1e-6), df


def test_t_quantiles_known_values_without_scipy():
    assert stats.t_quantile_975(1) == pytest.approx(12.7062, abs=1e-4)
    assert stats.t_quantile_975(4) == pytest.approx(2.7764, abs=1e-4)
    assert stats.t_quantile_975(10**8) == pytest.approx(1.959964, abs=1e-6)
    # continuous across the switch from table to expansion, and decreasing
    qs = [stats.t_quantile_975(df) for df in range(1, 80)]
    assert all(a > b for a, b in zip(qs, qs[1:]))


def test_summarize_one_seed_gives_no_spread():
    s = stats.summarize_seeds([0.9])
    assert s.mean == 0.9 and s.n == 1 and math.isnan(s.std) and math.isnan(s.low)
    assert "no spread" in str(s)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,match", [
    (lambda: metrics.top1_accuracy(torch.randn(4, 3), torch.tensor([0, 1, 2, 3])), r"labels must lie in \[0, 3\)"),
    (lambda: metrics.macro_f1(torch.randn(4, 3), torch.tensor([0, -1, 2, 1])), r"labels must lie in"),
    (lambda: metrics.confusion_matrix(torch.randn(4, 3), torch.tensor([0, 1, 2])), r"labels must have shape \(N,\) = \(4,\)"),
    (lambda: metrics.expected_calibration_error(torch.randn(0, 3), torch.zeros(0, dtype=torch.long)), "empty split"),
    (lambda: metrics.top1_accuracy(torch.tensor([[0.0, math.nan]]), torch.tensor([0])), "NaN"),
    (lambda: metrics.negative_log_likelihood(torch.tensor([[0.0, math.inf]]), torch.tensor([0])), "infinite"),
    (lambda: metrics.top1_agreement(torch.randn(4, 3), torch.randn(5, 3)), "same batch, in the same order"),
    (lambda: metrics.teacher_kl(torch.randn(4, 3), torch.randn(4, 5)), "teacher has 5 classes but student has 3"),
    (lambda: metrics.top1_agreement(torch.randn(0, 3), torch.randn(0, 3)), "empty split"),
    (lambda: metrics.teacher_kl(torch.randn(2, 3), torch.tensor([[0.0, 1.0, math.nan]] * 2)), "teacher_logits contain 2 NaN"),
    (lambda: metrics.top1_accuracy(torch.randn(4), torch.tensor([0, 1, 2, 3])), r"shape \(N, C\)"),
    (lambda: metrics.topk_accuracy(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), k=4), r"k must lie in \[1, C\]"),
    (lambda: metrics.reliability_bins(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), n_bins=0), "n_bins"),
    (lambda: stats.summarize_seeds([]), "at least one value"),
    (lambda: stats.summarize_seeds([0.9, math.nan]), "finite"),
    (lambda: stats.t_quantile_975(0), "degrees of freedom"),
])
def test_bad_input_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- the report card
@pytest.fixture(scope="module")
def digits_like():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 241, (300, 1, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(300) % 10
    loader = DeviceLoader(Split(images, labels), 128, mean=(0.4,), std=(0.3,))
    torch.manual_seed(0)
    models = {"teacher": build_model("mlp_large", 10, 1, 8), "student": build_model("mlp_small", 10, 1, 8)}
    card = ev.report_card(models, loader, "teacher", "toy digits (random)", batch_sizes=(1, 16),
                          warmup=0, repeats=1)
    return models, loader, card


def test_report_card_rows(digits_like):
    models, loader, card = digits_like
    assert list(card) == ["teacher", "student"]
    t, s = card["teacher"], card["student"]
    assert t.is_teacher and not s.is_teacher and t.dataset == s.dataset == "toy digits (random)"
    assert t.agreement == 1.0 and t.kl_to_teacher == pytest.approx(0.0, abs=1e-12) and t.compression == 1.0
    z_s, y = predict(models["student"], loader)
    z_t, _ = predict(models["teacher"], loader)
    assert s.accuracy == metrics.top1_accuracy(z_s, y) and s.n == 300 and s.num_classes == 10
    assert s.agreement == metrics.top1_agreement(z_s, z_t) and s.kl_to_teacher == pytest.approx(metrics.teacher_kl(z_s, z_t))
    assert s.ece == pytest.approx(metrics.expected_calibration_error(z_s, y))
    assert s.macro_f1 == pytest.approx(metrics.macro_f1(z_s, y)) and s.nll == pytest.approx(metrics.negative_log_likelihood(z_s, y))
    assert s.params == count_parameters(models["student"]) and s.flops == 2 * (64 * 32 + 32 * 10)
    assert s.compression == pytest.approx(t.params / s.params)
    assert set(s.latency_ms) == {1, 16} and s.speedup[16] == pytest.approx(t.latency_ms[16] / s.latency_ms[16])
    assert s.confusion.sum() == 300 and s.reliability.n == 300
    d = s.to_dict()
    assert d["accuracy"] == s.accuracy and "logits" not in d and d["latency_ms"].keys() == {"1", "16"}
    assert json.loads(json.dumps(d))["confusion"] == s.confusion.tolist()  # ready for save_json


def test_report_table_is_markdown_with_the_dataset_name(digits_like):
    _, _, card = digits_like
    table = ev.report_table(card)
    lines = table.splitlines()
    assert "toy digits (random)" in lines[0]
    rows = [ln for ln in lines if ln.startswith("|")]
    assert len(rows) == 2 + len(card)
    assert len({ln.count("|") for ln in rows}) == 1  # every row has the same number of cells
    for word in ("accuracy", "agreement", "KL", "ECE", "NLL", "params", "FLOPs", "latency b1", "size"):
        assert word in rows[0], word
    assert "| teacher |" in table and "| student |" in table and "100.00 %" in table


def test_report_card_without_latency(digits_like):
    models, loader, _ = digits_like
    card = ev.report_card(models, loader, "teacher", "toy", latency=False)
    assert card["student"].latency_ms == {} and "latency not measured" in ev.report_table(card)


def test_report_card_bad_input(digits_like):
    models, loader, _ = digits_like
    with pytest.raises(ValueError, match="teacher 'nobody' is not among the models"):
        ev.report_card(models, loader, "nobody", "toy", latency=False)
    with pytest.raises(ValueError, match="dataset_name"):
        ev.report_card(models, loader, "teacher", "", latency=False)
    with pytest.raises(ValueError, match="at least one model"):
        ev.report_card({}, loader, "teacher", "toy", latency=False)
    other = {**models, "wide": build_model("mlp_small", 12, 1, 8)}
    with pytest.raises(ValueError, match="12 classes but the teacher"):
        ev.report_card(other, loader, "teacher", "toy", latency=False)


def test_binomial_interval_matches_closed_form_and_simulation():
    from kdtutor.images.stats import binomial_interval

    low, high = binomial_interval(0.9, 10_000)
    assert high - 0.9 == pytest.approx(1.959964 * (0.9 * 0.1 / 10_000) ** 0.5)
    # simulate many test splits of 500 examples from a model that is right with p = 0.8
    g = torch.Generator().manual_seed(0)
    accs = (torch.rand(20_000, 500, generator=g) < 0.8).double().mean(dim=1)
    sim_low, sim_high = torch.quantile(accs, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    low, high = binomial_interval(0.8, 500)
    assert low == pytest.approx(sim_low, abs=0.004) and high == pytest.approx(sim_high, abs=0.004)
    assert binomial_interval(1.0, 50) == (1.0, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        binomial_interval(0.5, 0)


def test_mean_confidence_and_temperature_scaling_recover_a_known_temperature():
    from kdtutor.images.metrics import expected_calibration_error, fit_temperature, mean_confidence

    g = torch.Generator().manual_seed(0)
    true_logits = 3 * torch.randn(8_000, 5, generator=g)
    labels = torch.multinomial(torch.softmax(true_logits, 1), 1, generator=g).squeeze(1)  # calibrated at T = 1
    sharp = true_logits * 2.5  # an over-confident model: its logits are 2.5× too large
    assert mean_confidence(sharp) > metrics.top1_accuracy(sharp, labels) + 0.05
    T = fit_temperature(sharp, labels)
    assert T == pytest.approx(2.5, rel=0.05)
    # a finer brute force over the same objective agrees with the grid search
    fine = torch.linspace(2.0, 3.0, 201)
    nll = torch.stack([torch.nn.functional.cross_entropy(sharp / t, labels) for t in fine])
    assert T == pytest.approx(fine[nll.argmin()].item(), abs=0.03)
    assert expected_calibration_error(sharp / T, labels) < 0.3 * expected_calibration_error(sharp, labels)
    assert mean_confidence(torch.zeros(4, 5)) == pytest.approx(0.2)


def test_bootstrap_std_of_accuracy_matches_the_binomial_standard_error():
    import math

    from kdtutor.images.stats import bootstrap_std
    from kdtutor.images.metrics import top1_accuracy

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (2000,), generator=g)
    logits = torch.randn(2000, 10, generator=g)
    right = torch.rand(2000, generator=g) < 0.7
    logits[right, labels[right]] += 10  # about 70 % right
    p = top1_accuracy(logits, labels)
    se = math.sqrt(p * (1 - p) / 2000)
    got = bootstrap_std(top1_accuracy, logits, labels, n_resamples=400)
    assert abs(got - se) < 0.15 * se, (got, se)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_std(top1_accuracy, logits, labels, n_resamples=1)


def test_summarize_seeds_bounds_clip_an_interval_that_leaves_the_range():
    from kdtutor.images.stats import summarize_seeds

    wide = summarize_seeds([10.0, 30.0])  # t = 12.71 with two seeds
    assert wide.low < 0 and wide.high > 100  # an "interval" for a percentage from −107 to 147
    assert wide.low == pytest.approx(20 - 12.7062 * math.sqrt(200) / math.sqrt(2), rel=1e-3)
    clipped = summarize_seeds([10.0, 30.0], bounds=(0, 100))
    assert clipped.low == 0 and clipped.high == 100 and clipped.mean == wide.mean
    with pytest.raises(ValueError, match="low ≤ high"):
        summarize_seeds([1.0, 2.0], bounds=(1, 0))


def test_report_card_uses_the_learners_metric_functions_where_given(digits_like):
    models, loader, _ = digits_like
    calls = []

    def my_agreement(student, teacher):
        calls.append("agreement")
        return 0.125

    def my_ece(logits, labels, n_bins):
        calls.append(n_bins)
        return 0.25

    card = ev.report_card(models, loader, "teacher", "toy", latency=False, n_bins=7,
                          metric_fns={"top1_agreement": my_agreement, "expected_calibration_error": my_ece})
    plain = ev.report_card(models, loader, "teacher", "toy", latency=False, n_bins=7)
    assert card["student"].agreement == 0.125 and card["student"].ece == 0.25 and 7 in calls
    assert card["student"].macro_f1 == plain["student"].macro_f1  # not replaced: kdtutor's
    assert plain["student"].ece != 0.25 and plain["student"].agreement != 0.125
    with pytest.raises(ValueError, match="can replace"):
        ev.report_card(models, loader, "teacher", "toy", latency=False, metric_fns={"accuracy": my_ece})
    with pytest.raises(ValueError, match="must be a function"):
        ev.report_card(models, loader, "teacher", "toy", latency=False, metric_fns={"macro_f1": 0.5})


def test_soft_targets_match_a_direct_computation():
    import math

    import torch.nn.functional as F

    from kdtutor.images.metrics import soft_targets

    g = torch.Generator().manual_seed(0)
    z, y, T = torch.randn(40, 10, generator=g) * 4, torch.randint(0, 10, (40,), generator=g), 3.0
    p = F.softmax(z.double() / T, dim=1)
    got = soft_targets(z, y, T)
    assert got["p_target"] == pytest.approx(p[torch.arange(40), y].mean().item())
    h = -(p * p.log()).sum(1) / math.log(10)
    assert got["entropy"] == pytest.approx(h.mean().item())
    others = p.clone()
    others[torch.arange(40), y] = 0
    q = others / others.sum(1, keepdim=True)  # the distribution among the 9 wrong classes
    hq = -(q * q.clamp_min(1e-300).log()).sum(1) / math.log(9)
    assert got["non_target_entropy"] == pytest.approx(hq.mean().item())
    flat = soft_targets(torch.zeros(5, 10), torch.zeros(5, dtype=torch.long), 1.0)
    assert flat["entropy"] == pytest.approx(1.0) and flat["non_target_entropy"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- what lesson 05 says of torchmetrics
def test_the_torchmetrics_defaults_lesson_05_warns_about():
    """The three differences lesson 05 names ("Same name, different number"), each shown on a case."""
    from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError, MulticlassF1Score

    logits = 3 * torch.eye(4)[[0, 0, 1, 1, 2, 2]]  # class 3 never occurs, in the labels or the predictions
    y = torch.tensor([0, 1, 1, 1, 2, 2])
    present = skm.f1_score(y, logits.argmax(1), average="macro")  # over the 3 classes that occur
    assert MulticlassF1Score(4, average="macro")(logits, y).item() == pytest.approx(present, abs=1e-6)
    assert metrics.macro_f1(logits, y) == pytest.approx(present * 3 / 4)  # ours: over all 4, class 3 counting 0
    recall = skm.balanced_accuracy_score(y, logits.argmax(1))
    assert MulticlassAccuracy(4)(logits, y).item() == pytest.approx(recall, abs=1e-6)  # default: macro
    assert MulticlassAccuracy(4, average="micro")(logits, y).item() == pytest.approx(metrics.top1_accuracy(logits, y))
    assert recall != pytest.approx(metrics.top1_accuracy(logits, y))
    z = torch.rand(1000, 10, generator=torch.Generator().manual_seed(0))  # logits that happen to lie in [0, 1]
    labels = torch.randint(0, 10, (1000,), generator=torch.Generator().manual_seed(1))
    ece = metrics.expected_calibration_error(z, labels)
    assert MulticlassCalibrationError(10, n_bins=15)(z.softmax(1), labels).item() == pytest.approx(ece, abs=1e-5)
    assert MulticlassCalibrationError(10, n_bins=15)(z, labels).item() > ece + 0.5  # taken as probabilities
