"""kdtutor — the companion package of the knowledge-distillation course.

One module per lesson step; data flows one way:
``data → models → train → distill → evaluate → plots``.

    softmax    temperature softmax, log-softmax, entropy          (lesson 01)
    losses     CE, soft CE, KL·T², MSE on logits, the KD loss     (lesson 02)
    data       CIFAR-10, stand-in, digits, device-resident loader (lesson 03)
    models     teacher and students, built by name                (lesson 03)
    train      the training loop, seeds; re-exports the three below (lesson 03)
      recipes      TrainConfig and the recipes per architecture
      checkpoints  atomic, checksummed checkpoints
      precision    training precision per device, fp32 evaluation, determinism, clocks
      airbench     airbench94's extras: Lookahead/EMA, six-view TTA, identity init
    distill    frozen teacher, consistent views, logit caching    (lesson 04)
    evaluate   the report card                                    (lesson 05)
    distributed  torchrun / DistributedDataParallel glue: process group from the environment,
                 rank 0 writes, all-reduced metrics (scaling out, README)
    logit_cache  a sweep's teacher logits computed once, in a checksummed file
    beyond     DKD, logit standardisation, FitNets hint losses     (lesson 06)
    hints      forward hooks at named layers, the 1×1 hint projector (lesson 06)
    beyond_runs, beyond_lesson
               one run per method (mixup views, teacher cache), the fair
               comparison and published-style gains              (lesson 06)
    text, lm, lm_distill, lm_train, lm_eval, lm_lesson
               tiny Shakespeare, a char transformer, token-level / on-policy /
               top-k KD, training, scores, the lesson's runs      (lesson 07)
    plots      every figure of the course
    widgets    thin ipywidgets wrappers around tested functions
    checks     exercise checks with hints, one module per lesson (checks.lesson00 …)
    profiles   smoke / cpu / gpu run sizes (KDTUTOR_PROFILE)
"""

__version__ = "0.1.0"
