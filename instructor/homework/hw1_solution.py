# Model answers of homework 1. INSTRUCTORS ONLY: never shipped to learners.
#
# Each section replaces the notebook cell whose metadata says {"kdtutor": {"homework_answer": <name>}}
# (coursetools.homework.solved_notebook does it); the code uses the notebook's V, torch, F and run.
# Marking notes: kd_loss_weighted 3 points (value in float32 and float64, gradient), skew_kl 2,
# GAIN 1 (± 0.5 accuracy points), KD_NLL 2 (± 0.002 nats); all against the learner's own variant.

# %% [answer kd_loss_weighted]
def kd_loss_weighted(student_logits, teacher_logits, labels):
    T, alpha, eps = V["T"], V["alpha"], V["eps"]
    hard = F.cross_entropy(student_logits, labels, label_smoothing=eps, reduction="none")  # (N,)
    log_ps = F.log_softmax(student_logits / T, dim=1)
    log_pt = F.log_softmax(teacher_logits / T, dim=1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1)  # (N,): KL(p_t^T || p_s^T) per example
    trust = F.softmax(teacher_logits, dim=1).gather(1, labels[:, None]).squeeze(1)  # teacher's p(y_i) at T = 1
    return ((1 - alpha) * hard + alpha * trust * T**2 * kl).mean()

# %% [answer skew_kl]
def skew_kl(student_logits, teacher_logits):
    T, lam = V["T"], V["lam"]
    pt = F.softmax(teacher_logits / T, dim=1)
    mix = lam * pt + (1 - lam) * F.softmax(student_logits / T, dim=1)
    return T**2 * (torch.xlogy(pt, pt) - pt * torch.log(mix)).sum(dim=1).mean()  # 0·log 0 = 0

# %% [answer GAIN]
GAIN = run["kd_acc"] - run["scratch_acc"]  # accuracy points, distilled − scratch
KD_NLL = run["kd_nll"]  # nats
