"""Lesson 07's warm start and seeds: a continuation from the midpoint is the uninterrupted run, its
checkpoint is keyed by the weights it started from, and verdicts come from the course's one rule
(kdtutor.images.stats' paired t-interval over seeds) widened by the evaluation's own error."""

import math

import numpy as np
import pytest
import scipy.stats as sp
import torch

from kdtutor.images import stats
from kdtutor.lm import evaluate as E
from kdtutor.lm.model import LMConfig, build_lm
from kdtutor.lm.train import LMSizes, LMTrainConfig, NextChar, fit_lm, load_start, run_config, train_lm

CFG = LMConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)
IDS = torch.randint(0, 11, (400,), generator=torch.Generator().manual_seed(0))
WINDOWS = IDS[: 40 * 9].view(40, 9)


# --------------------------------------------------------------------------- the schedule and continuations
def test_a_continuation_follows_the_tail_of_the_whole_schedule():
    whole = LMTrainConfig(steps=20, lr=1.0, warmup=0.1, final_lr=0.1)
    first = LMTrainConfig(steps=8, lr=1.0, warmup=0.1, final_lr=0.1, schedule_steps=20)
    rest = LMTrainConfig(steps=12, lr=1.0, warmup=0.1, final_lr=0.1, schedule_steps=20, offset=8)
    assert [first.lr_at(i) for i in range(8)] + [rest.lr_at(i) for i in range(12)] == [whole.lr_at(i) for i in range(20)]
    with pytest.raises(ValueError, match="fit"):
        LMTrainConfig(steps=13, schedule_steps=20, offset=8)
    with pytest.raises(ValueError, match="fit"):
        LMTrainConfig(steps=2, offset=1)  # no schedule_steps: the run is the whole schedule


def test_a_whole_run_is_named_as_before_so_old_checkpoints_stay_valid():
    assert "offset" not in run_config(LMTrainConfig(steps=5)) and "schedule_steps" not in run_config(LMTrainConfig(steps=5))
    part = run_config(LMTrainConfig(steps=5, schedule_steps=10, offset=5))
    assert part["offset"] == 5 and part["schedule_steps"] == 10


def test_midpoint_then_continuation_gives_the_uninterrupted_run(tmp_path):
    """Weights, optimizer state and the random numbers of each step carry over: the same result as
    never stopping (the reference is a plain 6-step run)."""
    objective = NextChar(WINDOWS, 4, 8)
    whole = fit_lm(build_lm(CFG, seed=0), objective, LMTrainConfig(steps=6, lr=1e-2), progress=False)
    train_lm(CFG, objective, LMTrainConfig(steps=3, lr=1e-2, schedule_steps=6), "text", tmp_path / "warm.pt",
             progress=False)
    rest = train_lm(CFG, objective, LMTrainConfig(steps=3, lr=1e-2, schedule_steps=6, offset=3), "text",
                    tmp_path / "rest.pt", progress=False, init_from=tmp_path / "warm.pt")
    for (name, p), q in zip(whole.model.state_dict().items(), rest.model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)
    assert [h["loss"] for h in rest.history] == pytest.approx([h["loss"] for h in whole.history[3:]], abs=1e-6)
    other_seed = train_lm(CFG, objective, LMTrainConfig(steps=3, lr=1e-2, schedule_steps=6, offset=3, seed=1), "text",
                          tmp_path / "rest1.pt", progress=False, init_from=tmp_path / "warm.pt")
    assert other_seed.history[0]["loss"] != rest.history[0]["loss"]  # another seed: other windows


def test_a_continuation_is_keyed_by_the_weights_it_started_from(tmp_path, capsys):
    objective = NextChar(WINDOWS, 4, 8)
    cfg = LMTrainConfig(steps=2, lr=1e-2, schedule_steps=4, offset=2)
    train_lm(CFG, objective, LMTrainConfig(steps=2, lr=1e-2, schedule_steps=4), "text", tmp_path / "warm.pt",
             progress=False)
    first = train_lm(CFG, objective, cfg, "text", tmp_path / "rest.pt", progress=False, init_from=tmp_path / "warm.pt")
    assert first.meta["init_sha256"] == load_start(tmp_path / "warm.pt")["sha256"] and first.meta["init_steps"] == 2
    again = train_lm(CFG, objective, cfg, "text", tmp_path / "rest.pt", progress=True, init_from=tmp_path / "warm.pt")
    assert "loaded, not retrained" in capsys.readouterr().out and again.history == first.history
    train_lm(CFG, objective, LMTrainConfig(steps=2, lr=2e-2, schedule_steps=4), "text", tmp_path / "warm.pt",
             progress=False)  # another start: the continuation is another run
    redone = train_lm(CFG, objective, cfg, "text", tmp_path / "rest.pt", progress=False, init_from=tmp_path / "warm.pt")
    assert "moved it to" in capsys.readouterr().out and redone.meta["init_sha256"] != first.meta["init_sha256"]


def test_an_unfinished_start_is_refused(tmp_path):
    class Stop(Exception):
        pass

    class StopAt1(NextChar):
        def __call__(self, model, step, g):
            if step == 1:
                raise Stop
            return super().__call__(model, step, g)

    with pytest.raises(Stop):
        fit_lm(build_lm(CFG, seed=0), StopAt1(WINDOWS, 4, 8), LMTrainConfig(steps=3, save_every=1), tmp_path / "w.pt",
               progress=False)
    with pytest.raises(ValueError, match="unfinished"):
        load_start(tmp_path / "w.pt")


def test_sizes_split_the_student_steps_at_the_midpoint():
    s = LMSizes(n_train=None, n_val=None, n_test=None, block=8, batch=4, teacher=(1, 2, 16), student=(1, 1, 8),
                teacher_steps=4, student_steps=10, transfer_windows=30, eval_windows=10, k=3, prompt_len=3)
    assert (s.midpoint_steps, s.distill_steps) == (5, 5) and s.seeds == (0, 1)
    with pytest.raises(ValueError, match="midpoint"):
        LMSizes(**{**s.__dict__, "midpoint": 1.0})
    with pytest.raises(ValueError, match="seeds"):
        LMSizes(**{**s.__dict__, "seeds": (1, 1)})


# --------------------------------------------------------------------------- verdicts over seeds: the course's one rule
def _blocked_se(d: np.ndarray, block: int) -> float:
    means = d[: len(d) // block * block].reshape(-1, block).mean(1)
    return means.std(ddof=1) / math.sqrt(len(means))


def test_bits_gap_is_the_paired_t_interval_over_seeds_widened_by_the_evaluation_error():
    g = torch.Generator().manual_seed(0)
    a = [torch.rand(53, generator=g, dtype=torch.float64) for _ in range(3)]
    b = [x + 0.1 + 0.01 * torch.randn(53, generator=g, dtype=torch.float64) for x in a]
    gap = E.bits_gap(a, b, block=5)
    per_a, per_b = [x.mean().item() for x in a], [x.mean().item() for x in b]
    ci = sp.ttest_rel(per_a, per_b).confidence_interval(0.95)  # scipy's paired t-test on the per-seed means
    se = _blocked_se(np.mean([x.numpy() - y.numpy() for x, y in zip(a, b)], axis=0), 5)
    assert gap.per_seed == pytest.approx([x - y for x, y in zip(per_a, per_b)])
    assert gap.seeds.mean == pytest.approx(np.mean(gap.per_seed)) and gap.eval_se == pytest.approx(se)
    assert gap.low == pytest.approx(ci.low - 1.959964 * se) and gap.high == pytest.approx(ci.high + 1.959964 * se)
    assert gap.seeds.mdd == pytest.approx(stats.detectable_difference(np.std(gap.per_seed, ddof=1), 3))
    assert gap.verdict == "better" and gap.as_dict()["verdict"] == "better"  # a needs 0.1 bits/char less
    assert gap.text("A", "B").startswith(f"A vs B: better (A − B = {gap.seeds.mean:+.3f} bits/char, 95 % interval")
    with pytest.raises(ValueError, match="same number"):
        E.bits_gap(a, b[:2])
    with pytest.raises(ValueError, match="same number"):
        E.bits_gap(a[:1], b[:1])  # one seed: no spread over seeds, no verdict
    with pytest.raises(ValueError, match="blocks"):
        E.bits_gap(a, b, block=30)
    with pytest.raises(ValueError, match=r"\(M,\)"):
        E.bits_gap([x[None] for x in a], [y[None] for y in b])


@pytest.mark.parametrize("per_seed, eval_se, want", [
    ([-0.050, -0.048], 0.001, "better"),                 # seeds agree closely: the t-interval lies below 0
    ([0.050, 0.048], 0.001, "worse"),
    ([-0.050, -0.040], 0.001, "no reliable difference"),  # two seeds: t = 12.7, the interval is ±6.4 × their gap
    ([-0.050, 0.010], 0.001, "no reliable difference"),   # the seeds disagree on the sign
    ([-0.050, -0.048], 0.020, "no reliable difference"),  # the held-out text's own noise covers the gap
])
def test_bits_gap_verdicts_come_from_the_courses_paired_rule(per_seed, eval_se, want):
    gap = E.BitsGap(stats.paired_seed_difference(per_seed, [0.0, 0.0]), per_seed, eval_se)
    assert gap.verdict == want
    widened = (gap.seeds.low - 1.959964 * eval_se, gap.seeds.high + 1.959964 * eval_se)
    assert (gap.low, gap.high) == pytest.approx(widened)
    if eval_se == 0.020:
        assert gap.seeds.verdict == "reliably worse"  # the seeds alone would call it: the evaluation's error does not


def test_seed_gap_is_the_paired_rule_on_one_measure_of_the_per_seed_rows():
    a = [{"entropy": 2.50, "bpc": 3.0}, {"entropy": 2.55, "bpc": 3.1}, {"entropy": 2.52, "bpc": 3.0}]
    b = [{"entropy": 3.00, "bpc": 3.0}, {"entropy": 3.02, "bpc": 3.2}, {"entropy": 3.05, "bpc": 2.9}]
    d = E.seed_gap(a, b, "entropy")
    ci = sp.ttest_rel([r["entropy"] for r in a], [r["entropy"] for r in b]).confidence_interval(0.95)
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high)) and d.n == 3
    assert E.direction(d) == "reliably lower" and E.direction(E.seed_gap(b, a, "entropy")) == "reliably higher"
    assert E.direction(E.seed_gap(a, b, "bpc")) == "no reliable difference"  # per seed 0, −0.1, +0.1
    with pytest.raises(ValueError, match="'p_teacher_top' is missing from rows"):
        E.seed_gap(a, b, "p_teacher_top")


def test_the_rule_finds_a_fixed_true_gap_more_often_with_more_seeds():
    rng = np.random.default_rng(0)

    def share_called(n_seeds: int, trials: int = 200) -> float:
        calls = 0
        for _ in range(trials):
            per_seed = list(-0.02 + 0.01 * rng.standard_normal(n_seeds))  # true gap −0.02, seed spread 0.01
            gap = E.BitsGap(stats.paired_seed_difference(per_seed, [0.0] * n_seeds), per_seed, 0.001)
            calls += gap.verdict == "better"
        return calls / trials

    two, five = share_called(2), share_called(5)
    assert two < 0.35 and five > 0.7 and five > two + 0.3


def test_seed_table_and_seed_mean():
    rows = [{"bpc": 2.0, "entropy": 1.0, "samples": ["x"]}, {"bpc": 2.2, "entropy": 1.4, "samples": ["y"]}]
    assert E.seed_mean(rows) == pytest.approx({"bpc": 2.1, "entropy": 1.2})
    lines = E.seed_table({"scratch": rows, "teacher": rows[:1]}, keys=("bpc", "entropy", "known_words"))
    assert lines[0] == "| model | seeds | bits/char | entropy (bits) | known words |"
    assert lines[2] == "| scratch | 2 | 2.100 ± 0.100 | 1.200 ± 0.200 | — |"
    assert lines[3] == "| teacher | 1 | 2.000 | 1.000 | — |"
