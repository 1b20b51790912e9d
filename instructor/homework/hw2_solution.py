# Model answers of homework 2. INSTRUCTORS ONLY: never shipped to learners.
#
# Each section replaces the notebook cell whose metadata says {"kdtutor": {"homework_answer": <name>}}
# (coursetools.homework.solved_notebook does it); the code uses the notebook's V, torch, math and run.
# Marking notes: topk_agreement 2 points (fraction, not %; the learner's k), CI 2 (both ends ± 0.01
# points), VERDICT 1 (follows from the interval), AGREE 1 and AGREE_GAIN 1 (± 0.005).

# %% [answer topk_agreement]
def topk_agreement(student_logits, teacher_logits):
    k = V["k"]
    top_k = student_logits.topk(k, dim=1).indices  # (N, k)
    hit = (top_k == teacher_logits.argmax(dim=1, keepdim=True)).any(dim=1)  # (N,)
    return hit.double().mean().item()

# %% [answer CI]
from scipy import stats

diffs = [k - s for k, s in zip(V["kd"], V["scratch"])]
n = len(diffs)
mean = sum(diffs) / n
sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
CI_LOW, CI_HIGH = mean - half, mean + half
VERDICT = "gain" if CI_LOW > 0 else "loss" if CI_HIGH < 0 else "no difference"

# %% [answer AGREE]
AGREE = topk_agreement(run["kd_logits"], run["teacher_logits"])
AGREE_GAIN = AGREE - topk_agreement(run["scratch_logits"], run["teacher_logits"])
