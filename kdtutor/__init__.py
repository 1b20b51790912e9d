"""kdtutor — the companion package of the knowledge-distillation course.

The tree is the map: one subpackage per part of the course, every name defined in one module
and imported from there. Data flows one way, ``kd → images / lm → figures``; the course
tooling (the top-level ``coursetools`` package, not shipped to learners) sits on top, and
nothing here imports it.

    kd/         the maths every lesson shares: softmax (lesson 01), losses (02), beyond (DKD,
                logit standardisation, FitNets hints: 06)
    images/     lessons 03-06: data (splits, cifar10, image_folder, standin, loader), models,
                airbench, recipes, train (fit and its train_step), predict, history, distill (04),
                logit_cache, metrics, stats, cost, evaluate (05), hints, methods, comparison (06)
    lm/         lesson 07: text, model, train, distill, evaluate, lesson
    figures/    every figure, one module per lesson (figures.lesson04.sweep_heatmap)
    scale/      torchrun / DDP glue the training loop runs under (distributed)
    checks/     exercise checks, one module per lesson; the learner calls checks.<exercise>
    checkpoints, evalcache, precision, profiles, storage, widgets   shared by all
    machine, __main__   the learner's set-up (install, prepare, lab) and command line
"""

import os

__version__ = "0.1.0"

# OpenMP threads that wait for work sleep instead of spinning. On a CPU shared with anything else
# (a browser, a second kernel, the grader) spinning threads starve each other: measured on a 2-core
# CPU with one other busy process, a step of lesson 07's student took 1.06 s with PyTorch's default
# and 0.077 s with PASSIVE (benchmarks/threads.py). OpenMP reads it when torch is imported, so the
# course's launchers (python -m kdtutor lab / course, make test) put it in their kernels' environment;
# it is also set here, for scripts that import kdtutor before torch. A value set by the user wins.
CPU_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}


def cpu_environment(environ=None) -> dict:
    """``environ`` (default ``os.environ``) with :data:`CPU_ENVIRONMENT`'s defaults added where unset."""
    environ = dict(os.environ if environ is None else environ)
    return {**CPU_ENVIRONMENT, **environ}


for _name, _value in CPU_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)
