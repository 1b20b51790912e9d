"""Lesson 07's training loop, objectives, evaluation and lesson runs: resuming gives the same
weights as not stopping, checkpoints of other runs are refused or set aside, every objective
computes the loss it names, and the scores match direct computations."""

import math

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from kdtutor.checkpoints import CheckpointMismatch
from kdtutor.lm import distill as D, evaluate as E
from kdtutor.lm.model import LMConfig, build_lm
from kdtutor.lm.train import (LMSizes, LMTrainConfig, LM_SIZES, NextChar, OnPolicyKD, TokenKD, TopKKD, fit_lm,
                              lm_sizes, load_lm, step_generator, train_lm)
from kdtutor.storage import CorruptFileError

CFG = LMConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)
IDS = torch.randint(0, 11, (400,), generator=torch.Generator().manual_seed(0))
WINDOWS = IDS[: 40 * 9].view(40, 9)


class Interrupt(Exception):
    pass


class StopAt:
    """An objective that raises at step ``at`` (a crash or Ctrl-C), else delegates."""

    def __init__(self, objective, at):
        self.objective, self.at = objective, at

    def identity(self):
        return self.objective.identity()

    def __call__(self, model, step, g):
        if step == self.at:
            raise Interrupt
        return self.objective(model, step, g)


def test_lr_schedule_warms_up_then_decays():
    cfg = LMTrainConfig(steps=100, lr=1.0, warmup=0.1, final_lr=0.1)
    lrs = [cfg.lr_at(s) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0) and lrs[99] == pytest.approx(0.1, abs=0.01)
    assert max(lrs) == pytest.approx(1.0)


def test_resuming_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    cfg = LMTrainConfig(steps=6, save_every=2, lr=1e-2)
    objective = NextChar(IDS, 4, 8)
    whole = fit_lm(build_lm(CFG, seed=0), objective, cfg, tmp_path / "a.pt", progress=False)
    with pytest.raises(Interrupt):
        fit_lm(build_lm(CFG, seed=0), StopAt(objective, 5), cfg, tmp_path / "b.pt", progress=False)
    # the same run (a checkpoint is keyed by the objective's code too), now not stopped
    resumed = fit_lm(build_lm(CFG, seed=0), StopAt(objective, -1), cfg, tmp_path / "b.pt", progress=False)
    assert len(resumed.history) == 6 and [h["step"] for h in resumed.history] == list(range(1, 7))
    for p, q in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(p, q)
    model, meta = load_lm(tmp_path / "b.pt")
    assert torch.equal(model(WINDOWS[:2, :-1]), whole.model(WINDOWS[:2, :-1]))
    assert meta["objective"]["name"] == "next-char CE"


def test_unfinished_checkpoint_is_not_loaded_as_a_model(tmp_path):
    with pytest.raises(Interrupt):
        fit_lm(build_lm(CFG, seed=0), StopAt(NextChar(IDS, 4, 8), 3), LMTrainConfig(steps=6, save_every=2),
               tmp_path / "c.pt", progress=False)
    with pytest.raises(ValueError, match="unfinished"):
        load_lm(tmp_path / "c.pt")


def test_another_runs_checkpoint_is_refused_then_set_aside(tmp_path, capsys):
    path = tmp_path / "run.pt"
    cfg = LMTrainConfig(steps=2, save_every=1)
    train_lm(CFG, NextChar(IDS, 4, 8), cfg, "text-A", path, progress=False)
    with pytest.raises(CheckpointMismatch, match="different run"):
        fit_lm(build_lm(CFG, seed=0), NextChar(IDS, 4, 8), cfg, path, {"model": CFG.as_dict(), "data_sha256": "text-B"},
               progress=False)
    run = train_lm(CFG, NextChar(IDS, 4, 8), cfg, "text-B", path, progress=False)  # other text: retrained
    assert run.meta["data_sha256"] == "text-B" and (tmp_path / "run.pt.old").exists()
    assert "moved it to" in capsys.readouterr().out
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    with pytest.raises(CorruptFileError):
        load_lm(path)


def test_same_seed_same_batches():
    a = NextChar(WINDOWS, 5, 8)(build_lm(CFG, seed=1), 3, step_generator(0, 3))
    b = NextChar(WINDOWS, 5, 8)(build_lm(CFG, seed=1), 3, step_generator(0, 3))
    assert torch.equal(a, b)
    assert not torch.equal(a, NextChar(WINDOWS, 5, 8)(build_lm(CFG, seed=1), 4, step_generator(0, 4)))


def test_next_char_is_cross_entropy_and_masks_the_prompt():
    model = build_lm(CFG, seed=2)
    g = step_generator(0, 0)
    rows = WINDOWS[torch.randint(0, 40, (5,), generator=step_generator(0, 0))]
    z = model(rows[:, :-1])
    ce = F.cross_entropy(z.flatten(0, 1), rows[:, 1:].flatten(), reduction="none").view(5, 8)
    torch.testing.assert_close(NextChar(WINDOWS, 5, 8)(model, 0, g), ce.mean())
    torch.testing.assert_close(NextChar(WINDOWS, 5, 8, prompt_len=3)(model, 0, step_generator(0, 0)), ce[:, 2:].mean())


def test_token_kd_objective_uses_the_teacher_on_the_same_windows():
    teacher, student = build_lm(CFG, seed=3), build_lm(CFG, seed=4)
    rows = WINDOWS[torch.randint(0, 40, (6,), generator=step_generator(0, 2))]
    for div in ("forward", "reverse", "jsd"):
        got = TokenKD(teacher, WINDOWS, 6, div, beta=0.3, T=2.0)(student, 2, step_generator(0, 2))
        want = D.token_kd_loss(student(rows[:, :-1]), teacher(rows[:, :-1]).detach(), divergence=div, beta=0.3, T=2.0)
        torch.testing.assert_close(got, want)


def test_on_policy_fraction_and_loss_on_the_students_own_samples():
    teacher, student = build_lm(CFG, seed=5), build_lm(CFG, seed=6)
    never = OnPolicyKD(teacher, WINDOWS, 4, lmbda=0.0, prompt_len=3)
    always = OnPolicyKD(teacher, WINDOWS, 4, lmbda=1.0, prompt_len=3)
    half = OnPolicyKD(teacher, WINDOWS, 4, lmbda=0.5, prompt_len=3)
    for step in range(40):
        never(student, step, step_generator(0, step))
        half(student, step, step_generator(0, step))
    assert never.on_policy_steps == 0 and 10 <= half.on_policy_steps <= 30
    run = fit_lm(build_lm(CFG, seed=6), OnPolicyKD(teacher, WINDOWS, 4, lmbda=0.5, prompt_len=3),
                 LMTrainConfig(steps=12), progress=False)
    flags = [h["on_policy"] for h in run.history]
    assert len(flags) == 12 and 0 < sum(flags) < 12  # each step's kind is in the history
    warm = fit_lm(build_lm(CFG, seed=6), OnPolicyKD(teacher, WINDOWS, 4, lmbda=1.0, prompt_len=3, warm_steps=5),
                  LMTrainConfig(steps=8), progress=False)
    assert [h["on_policy"] for h in warm.history] == [False] * 5 + [True] * 3
    off = TokenKD(teacher, WINDOWS, 4, "jsd", 0.5)(student, 7, step_generator(0, 7))
    torch.testing.assert_close(never(student, 7, step_generator(0, 7)), off)
    on = always(student, 7, step_generator(0, 7))
    assert always.on_policy_steps == 1 and not torch.isclose(on, off)
    with pytest.raises(ValueError, match="lmbda"):
        OnPolicyKD(teacher, WINDOWS, 4, lmbda=1.5)


def test_topk_objective_checks_its_cache_fits_the_windows():
    teacher = build_lm(CFG, seed=7)
    cache = D.topk_from_logits(teacher(WINDOWS[:, :-1]).detach(), 11)
    student = build_lm(CFG, seed=8)
    got = TopKKD(cache, WINDOWS, 5)(student, 1, step_generator(0, 1))
    want = TokenKD(teacher, WINDOWS, 5, "forward")(student, 1, step_generator(0, 1))
    torch.testing.assert_close(got, want)  # k = V: the stored targets give the online loss
    with pytest.raises(ValueError, match="same"):
        TopKKD(cache[:10], WINDOWS, 5)


def test_profiles_have_lm_sizes():
    assert set(LM_SIZES) == {"smoke", "cpu", "gpu"} and lm_sizes("smoke") is LM_SIZES["smoke"]
    for s in LM_SIZES.values():
        t, st = s.teacher, s.student
        assert t[0] * t[2] ** 2 > 4 * st[0] * st[2] ** 2  # the student is much smaller than the teacher
        assert s.prompt_len < s.block and 1 <= s.k <= 65


# --------------------------------------------------------------------------- evaluation
def test_heldout_scores_are_direct_computations_in_bits():
    teacher, student = build_lm(CFG, seed=9).eval(), build_lm(CFG, seed=10).eval()
    scores = E.heldout_scores(student, WINDOWS, teacher, batch_size=7)
    log_q = F.log_softmax(student(WINDOWS[:, :-1]).double(), -1)
    log_p = F.log_softmax(teacher(WINDOWS[:, :-1]).double(), -1)
    ce = F.cross_entropy(log_q.flatten(0, 1), WINDOWS[:, 1:].flatten())
    assert scores["bpc"] == pytest.approx(ce.item() / math.log(2), rel=1e-9)
    kl = F.kl_div(log_q, log_p, reduction="sum", log_target=True).item() / (40 * 8) / math.log(2)
    assert scores["kl_teacher_student"] == pytest.approx(kl, rel=1e-9)
    assert scores["n_chars"] == 320 and E.heldout_scores(teacher, WINDOWS, teacher)["kl_student_teacher"] == 0
    favourite = log_p.argmax(-1)  # the teacher's most likely character at each of the 40 × 8 positions
    want = torch.softmax(student(WINDOWS[:, :-1]).double(), -1).gather(-1, favourite[..., None]).mean().item()
    assert scores["p_teacher_top"] == pytest.approx(want, rel=1e-9)
    own = torch.softmax(teacher(WINDOWS[:, :-1]).double(), -1).max(-1).values.mean().item()
    assert E.heldout_scores(teacher, WINDOWS)["p_teacher_top"] == pytest.approx(own, rel=1e-9)  # no teacher: its own top


def test_window_bits_average_to_the_bpc():
    model = build_lm(CFG, seed=11).eval()
    per = E.window_bits(model, WINDOWS, batch_size=6)
    assert per.shape == (40,) and per.mean().item() == pytest.approx(E.bits_per_char(model, WINDOWS), rel=1e-9)


def test_teacher_bits_on_samples_reads_each_row_in_windows():
    from kdtutor.lm.text import tiled_windows

    teacher = build_lm(CFG, seed=12).eval()
    ids = torch.randint(0, 11, (3, 30), generator=torch.Generator().manual_seed(3))
    want = E.bits_per_char(teacher, torch.cat([tiled_windows(r, 8) for r in ids]))
    assert E.teacher_bits_on(teacher, ids, 8) == pytest.approx(want) and len(tiled_windows(ids[0], 8)) == 3
    got = E.sample_ids(teacher, ids[:, :4], 10, seed=1)
    assert got.shape == (3, 10) and torch.equal(got, E.sample_ids(teacher, ids[:, :4], 10, seed=1))


def test_a_uniform_model_scores_log2_v():
    model = build_lm(CFG, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # all logits 0: uniform over 11 characters
    s = E.heldout_scores(model, WINDOWS)
    assert s["bpc"] == pytest.approx(math.log2(11)) and s["entropy"] == pytest.approx(math.log2(11))
    assert "kl_teacher_student" not in s


def test_distinct_n_and_repetition_on_hand_made_samples():
    texts = ["The cat, the cat!", "a dog"]
    assert E.words(texts[0]) == ["the", "cat", "the", "cat"]  # lower-cased, punctuation dropped
    assert E.distinct_n(texts, 1) == pytest.approx(4 / 6)  # the, cat, a, dog of 6 words
    assert E.distinct_n(texts, 2) == pytest.approx(3 / 4)  # (the cat) ×2, (cat the), (a dog)
    assert E.repetition(texts, 2) == pytest.approx((1 / 3 + 0) / 2)
    assert E.repetition(texts, 1) == pytest.approx((2 / 4 + 0) / 2)  # "the", "cat" again in the first text
    assert math.isnan(E.distinct_n(["one"], 2)) and math.isnan(E.repetition([""], 1))
    with pytest.raises(ValueError):
        E.distinct_n(texts, 0)


def test_words_keep_apostrophes_inside_words_only():
    assert E.words("Ta'en, my LORD!\n'Tis o'er; 3 men--go") == ["ta'en", "my", "lord", "tis", "o'er", "men", "go"]
    assert E.words("") == [] and E.words("?! 12") == []


def _independent_words(text):
    """Words found by walking the characters (not by a regular expression)."""
    out, cur = [], ""
    for i, c in enumerate(text.lower() + " "):
        nxt = text[i + 1:i + 2].lower()
        if c.isascii() and c.isalpha():
            cur += c
        elif c == "'" and cur and nxt.isascii() and nxt.isalpha():
            cur += c
        else:
            if cur:
                out.append(cur)
            cur = ""
    return out


def test_word_measures_agree_with_a_direct_count_on_random_text():
    rng = torch.Generator().manual_seed(4)
    alphabet = "abcde' \n,.ABC"
    texts = ["".join(alphabet[int(i)] for i in torch.randint(0, len(alphabet), (120,), generator=rng))
             for _ in range(6)]
    known = {"ab", "c", "de", "a", "b'c"}
    per_text = [_independent_words(t) for t in texts]
    assert [E.words(t) for t in texts] == per_text
    flat = [w for ws in per_text for w in ws]
    pairs = [(ws[i], ws[i + 1]) for ws in per_text for i in range(len(ws) - 1)]
    got = E.word_measures(texts, known)
    assert got["known_words"] == pytest.approx(sum(w in known for w in flat) / len(flat))
    assert got["distinct_1"] == pytest.approx(len(set(flat)) / len(flat))
    assert got["distinct_2"] == pytest.approx(len(set(pairs)) / len(pairs))
    assert got["repetition_1"] == pytest.approx(sum(1 - len(set(ws)) / len(ws) for ws in per_text) / len(per_text))
    assert got["word_length"] == pytest.approx(sum(len(w) for w in flat) / len(flat))


def test_word_measures_on_a_hand_made_sample_and_bad_input():
    got = E.word_measures(["to be or not to be", "zzq be"], {"to", "be", "or", "not"})
    assert got["known_words"] == pytest.approx(7 / 8) and got["distinct_1"] == pytest.approx(5 / 8)
    assert got["repetition_1"] == pytest.approx((2 / 6 + 0) / 2) and got["word_length"] == pytest.approx(18 / 8)
    assert all(math.isnan(v) for v in E.word_measures(["?!"], {"a"}).values())
    with pytest.raises(ValueError, match="non-empty set"):
        E.word_measures(["a"], ["a"])
    with pytest.raises(ValueError, match="non-empty set"):
        E.word_measures(["a"], set())


def test_side_by_side_labels_each_sample():
    out = E.side_by_side({"teacher": "To be\nor not", "student": "x" * 130}, width=60)
    assert "── teacher" in out and "To be⏎or not" in out and out.count("\n") == 1 + 1 + 3


# --------------------------------------------------------------------------- the lesson's runs, tiny
TINY = LMSizes(n_train=3000, n_val=400, n_test=400, block=8, batch=4, teacher=(1, 2, 16), student=(1, 1, 8),
               teacher_steps=4, student_steps=4, transfer_windows=30, eval_windows=10, k=3, prompt_len=3,
               n_samples=3, sample_len=20)


from benchmarks.lm_speed import lesson_objectives  # noqa: E402  (the notebook's seven objectives, built once)


@pytest.mark.slow
def test_every_method_trains_and_is_loaded_the_second_time(tmp_path, capsys):
    from kdtutor.lm.lesson import LMLesson
    from kdtutor.lm.text import from_text, make_standin_text

    data = from_text(make_standin_text(3800), "stand-in text (generated, NOT Shakespeare)", is_standin=True)
    lesson = LMLesson(data, TINY, "test", torch.device("cpu"), progress=False, folder=tmp_path)
    models = {"teacher": lesson.teacher().model}
    objectives = lesson_objectives(lesson)
    for m, objective in objectives.items():
        for seed in TINY.seeds:
            models[m, seed] = lesson.student(m, objective, seed).model
    assert len(models) == 1 + 7 * 2 and lesson.topk().k == 3
    assert len(lesson.corpus()) == TINY.distill_steps * lesson.seq_batch  # as many windows as it draws
    assert all(len(lesson.student(m, o, s).history) == TINY.distill_steps for m, o in objectives.items() for s in TINY.seeds)
    results = lesson.evaluate({"teacher": models["teacher"], "scratch": models["scratch", 0]})
    assert set(results) == {"teacher", "scratch"} and "kl_teacher_student" not in results["teacher"]
    assert all(len(r["samples"]) == 3 and len(r["samples"][0]) == 20 for r in results.values())
    again = LMLesson(data, TINY, "test", torch.device("cpu"), progress=True, folder=tmp_path)
    for m, objective in lesson_objectives(again).items():
        for seed in TINY.seeds:
            assert torch.equal(again.student(m, objective, seed).model(data.val[None, :8]),
                               models[m, seed](data.val[None, :8]))
    assert capsys.readouterr().out.count("loaded, not retrained") == 2 + 7 * 2  # teacher, warm start, students
    kept = tmp_path / "teacher_corpus.pt"
    stamp = kept.stat().st_mtime_ns
    assert torch.equal(again.corpus(), lesson.corpus()) and kept.stat().st_mtime_ns == stamp  # loaded, not rewritten
    other = LMLesson(data, replace(TINY, seed=5), "test", torch.device("cpu"), progress=False, folder=tmp_path)
    other._memo["teacher"] = lesson.teacher()  # the same teacher; the corpus's seed differs
    other.corpus()
    assert "teacher_corpus.pt was made from other inputs: moved to" in capsys.readouterr().out
    assert set(lesson.reference_diversity()) == {"known_words", "distinct_1", "distinct_2", "repetition_1",
                                                 "word_length", "teacher_bpc_on_samples"}
    assert lesson.known_words == set(E.words(data.vocab.decode(data.train)))
    assert all(r["teacher_bpc_on_samples"] > 0 for r in results.values())
    with pytest.raises(ValueError, match="training seeds"):
        lesson.student("scratch", objectives["scratch"], 7)
    with pytest.raises(ValueError, match="objective must be"):
        lesson.student("scratch", "forward KL", 0)
    # evaluation rows are kept by content (kdtutor.evalcache): loaded again, made again for a changed model
    def rows():
        return list((tmp_path / "evaluations").glob("lm_evaluate-*.pt"))

    scratch = again.student("scratch", objectives["scratch"], 0).model
    assert again.evaluate({"teacher": again.teacher().model, "scratch": scratch}) == results and len(rows()) == 2
    with torch.no_grad():
        next(scratch.parameters()).view(-1)[0] += 1e-2
    assert again.evaluate({"scratch": scratch})["scratch"] != results["scratch"] and len(rows()) == 3
    # the same name with another objective is another run: trained again, never the kept one
    other = again.student("scratch", NextChar(again.transfer, TINY.batch, TINY.block, prompt_len=3, name="scratch"), 0)
    assert other.meta["objective"]["prompt_len"] == 3 and other.model is not scratch
    assert "moved" in capsys.readouterr().out  # the other run's checkpoint is set aside, not overwritten


@pytest.mark.slow
def test_scratch_with_the_first_seed_is_one_uninterrupted_run_and_every_student_starts_there(tmp_path):
    from kdtutor.lm.lesson import LMLesson
    from kdtutor.lm.text import from_text, make_standin_text

    data = from_text(make_standin_text(3800), "stand-in text (generated, NOT Shakespeare)", is_standin=True)
    lesson = LMLesson(data, TINY, "test", torch.device("cpu"), progress=False, folder=tmp_path)
    whole = fit_lm(lesson.student_model(), NextChar(lesson.transfer, TINY.batch, TINY.block, name="scratch"),
                   LMTrainConfig(steps=TINY.student_steps, lr=TINY.lr_student), progress=False)
    objectives = lesson_objectives(lesson)
    scratch = lesson.student("scratch", objectives["scratch"], TINY.seeds[0]).model
    x = data.val[None, :8]
    torch.testing.assert_close(scratch(x), whole.model(x), rtol=0, atol=1e-5)
    start = lesson.warm()
    assert len(start.history) == TINY.midpoint_steps
    for m in ("forward KL", "top-3 KD"):
        assert (lesson.student(m, objectives[m], 1).meta["init_sha256"]
                == lesson.student("scratch", objectives["scratch"], 0).meta["init_sha256"])


def test_sequence_level_kd_gets_as_many_target_positions_per_step_as_the_token_level_students():
    from kdtutor.lm.lesson import LMLesson
    from kdtutor.lm.text import from_text, make_standin_text

    data = from_text(make_standin_text(3800), "stand-in", is_standin=True)
    for sizes in (TINY, LM_SIZES["smoke"], LM_SIZES["cpu"], LM_SIZES["gpu"]):
        lesson = LMLesson(data, sizes, "test", torch.device("cpu"), progress=False, folder="unused")
        counted = sizes.block - sizes.prompt_len + 1  # D.prompt_mask leaves out prompt_len − 1 positions
        assert int(D.prompt_mask(1, sizes.block, sizes.prompt_len).sum()) == counted
        per_step = lesson.seq_batch * counted
        assert sizes.batch * sizes.block <= per_step < sizes.batch * sizes.block + counted


def test_smoke_setup_never_downloads(monkeypatch, capsys):
    from kdtutor.lm import text as tx
    from kdtutor.lm.lesson import setup

    def no_download(*args, **kwargs):
        raise AssertionError("the smoke profile must not download")

    monkeypatch.delenv(tx.TEXT_ENV, raising=False)
    monkeypatch.setattr(tx, "download_text", no_download)
    lesson = setup("smoke", device="cpu", progress=False)
    if not lesson.data.is_standin:  # a copy already in the data folder is fine too
        assert lesson.data.name == tx.NAME
    else:
        assert "STAND-IN" in capsys.readouterr().out
    assert len(lesson.data.train) <= LM_SIZES["smoke"].n_train and lesson.sizes is LM_SIZES["smoke"]
