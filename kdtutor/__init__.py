"""kdtutor — the companion package of the knowledge-distillation course.

The tree is the map: one subpackage per part of the course, every name defined in one module
and imported from there. Data flows one way, ``kd → images / lm → figures``; the classroom
tools sit on top and nothing below imports them.

    kd/         the maths every lesson shares: softmax (lesson 01), losses (02), beyond (DKD,
                logit standardisation, FitNets hints: 06)
    images/     lessons 03-06: data (splits, cifar10, image_folder, standin, loader), models,
                airbench, recipes, train (fit and its train_step), predict, history, distill (04),
                metrics, stats, cost, evaluate (05), hints, methods, comparison (06)
    lm/         lesson 07: text, model, train, distill, evaluate, lesson
    figures/    every figure, one module per lesson (figures.lesson04.sweep_heatmap)
    scale/      torchrun / DDP glue (distributed), saved teacher logits (logit_cache)
    classroom/  course runner, grading, instructor copies, delivery, prepare, website
    checks/     exercise checks, one module per lesson; the learner calls checks.<exercise>
    checkpoints, precision, profiles, storage, widgets, __main__   shared by all
"""

__version__ = "0.1.0"
