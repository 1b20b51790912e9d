"""Lesson 07's warm start and seeds: a continuation from the midpoint is the uninterrupted run, its
checkpoint is keyed by the weights it started from, and verdicts need the gap to beat both the
seed-to-seed spread and the evaluation noise (checked against direct computations)."""

import math

import numpy as np
import pytest
import torch

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


# --------------------------------------------------------------------------- verdicts over seeds
def _blocked_se(d: np.ndarray, block: int) -> float:
    means = d[: len(d) // block * block].reshape(-1, block).mean(1)
    return means.std(ddof=1) / math.sqrt(len(means))


def test_paired_gap_is_the_mean_of_per_seed_differences_with_blocked_errors():
    g = torch.Generator().manual_seed(0)
    a = [torch.rand(53, generator=g, dtype=torch.float64) for _ in range(2)]
    b = [x + 0.1 + 0.01 * torch.randn(53, generator=g, dtype=torch.float64) for x in a]
    gap = E.paired_gap(a, b, block=5)
    per_seed = [float(np.mean(x.numpy() - y.numpy())) for x, y in zip(a, b)]
    ses = [_blocked_se(x.numpy() - y.numpy(), 5) for x, y in zip(a, b)]
    assert gap["per_seed"] == pytest.approx(per_seed) and gap["mean"] == pytest.approx(np.mean(per_seed))
    assert gap["spread"] == pytest.approx(max(per_seed) - min(per_seed))
    assert gap["eval_se"] == pytest.approx(math.sqrt(sum(s * s for s in ses)) / 2)
    one = E.paired_gap(a[:1], b[:1], block=1)  # one seed, blocks of one window: the plain paired s.e.
    assert one["spread"] == 0 and one["eval_se"] == pytest.approx(E.paired_difference(a[0], b[0])[1])
    with pytest.raises(ValueError, match="same number"):
        E.paired_gap(a, b[:1])
    with pytest.raises(ValueError, match="blocks"):
        E.paired_gap(a, b, block=30)
    with pytest.raises(ValueError, match=r"\(M,\)"):
        E.paired_gap([a[0][None]], [b[0][None]])


@pytest.mark.parametrize("per_seed, eval_se, want", [
    ([-0.05, -0.04], 0.005, "better"),        # both seeds agree, gap ≫ spread and noise
    ([0.05, 0.04], 0.005, "worse"),
    ([-0.05, 0.01], 0.001, "inconclusive"),   # seeds disagree on the sign
    ([-0.09, -0.01], 0.001, "inconclusive"),  # mean 0.05 < spread 0.08
    ([-0.05, -0.04], 0.03, "inconclusive"),   # mean 0.045 < 2 × 0.03 of evaluation noise
    ([0.0, 0.0], 0.0, "inconclusive"),
])
def test_verdicts_need_the_gap_to_beat_seed_spread_and_evaluation_noise(per_seed, eval_se, want):
    gap = {"mean": sum(per_seed) / 2, "per_seed": per_seed, "spread": max(per_seed) - min(per_seed),
           "eval_se": eval_se}
    assert E.gap_verdict(gap) == want
    assert E.gap_text("A", "B", gap).startswith(f"A vs B: {want} (A − B = {gap['mean']:+.3f}")


def test_seed_table_and_seed_mean():
    rows = [{"bpc": 2.0, "entropy": 1.0, "samples": ["x"]}, {"bpc": 2.2, "entropy": 1.4, "samples": ["y"]}]
    assert E.seed_mean(rows) == pytest.approx({"bpc": 2.1, "entropy": 1.2})
    lines = E.seed_table({"scratch": rows, "teacher": rows[:1]}, keys=("bpc", "entropy", "distinct_2"))
    assert lines[0] == "| model | seeds | bits/char | entropy (bits) | distinct-2 |"
    assert lines[2] == "| scratch | 2 | 2.100 ± 0.100 | 1.200 ± 0.200 | — |"
    assert lines[3] == "| teacher | 1 | 2.000 | 1.000 | — |"


def test_per_seed_order():
    assert E.per_seed_order([1.0, 2.0], [1.5, 2.5]) == "lower in every seed"
    assert E.per_seed_order([2.0, 3.0], [1.5, 2.5]) == "higher in every seed"
    assert E.per_seed_order([1.0, 3.0], [1.5, 2.5]) == "seeds disagree"
    assert E.per_seed_order([1.0, 2.0], [1.0, 2.5]) == "seeds disagree"  # a tie is no order
    with pytest.raises(ValueError, match="same number"):
        E.per_seed_order([1.0], [1.0, 2.0])
