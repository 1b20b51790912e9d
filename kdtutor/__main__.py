"""Command line for batch runs: the same code the lessons use.

    python -m kdtutor course [--profile cpu]
    python -m kdtutor train-teacher --profile gpu
    python -m kdtutor distill --profile gpu --student cnn_small --T 4 --alpha 0.9

train-teacher writes, and distill reads, the teacher where lessons 03–05 keep it
(data/checkpoints/teacher_<profile>_<arch>.pt); --out and --teacher choose another file.

On several GPUs (or CPU processes, or nodes) the same commands run data-parallel under
PyTorch's launcher; the batch size (--batch-size, default the profile's) is then the global
batch, split over the processes:
    torchrun --nproc_per_node 4 -m kdtutor train-teacher --profile gpu
    srun torchrun --nnodes $SLURM_NNODES --nproc_per_node 4 --rdzv_backend c10d \
         --rdzv_endpoint $MASTER_ADDR:29500 -m kdtutor distill --profile gpu
distill --teacher-logits FILE computes the teacher's logits once (all processes together)
and saves them; later runs with the same teacher, data and seed load them.
    python -m kdtutor refresh-notebooks [03 ...]              (maintainers: re-store the outputs nbval compares)
    python -m kdtutor refresh-notebooks --profile cpu [03 ...] (... and the reference run's, from results/cpu/)

Learners, with or without make (Windows):
    python -m kdtutor install [--extras dev,book]   only what the lessons need (make lab runs it);
                                                    CPU-only PyTorch on Linux without an NVIDIA GPU
    python -m kdtutor lab                      JupyterLab on notebooks/ (make lab)

Classrooms and workshops:
    python -m kdtutor prepare [--profile cpu] [--pretrain]   data, environment check, optional checkpoints
    python -m kdtutor prepare --wheelhouse DIR  download the room's wheels once (pinned versions);
    python -m kdtutor install --wheelhouse DIR --constraints requirements/workshop.txt   each laptop, offline
    python -m kdtutor grade subs/*.ipynb --out grades.csv [--jobs 2] [--force]   sandboxed, see kdtutor.classroom.grading
    python -m kdtutor release DIR [--force]    what learners get for graded use: no solutions/, no answers
    python -m kdtutor generate                 (maintainers: badges, setup cells, time lines, instructor/ versions)
    python -m kdtutor pace results/cpu/timings.json --machine "2-core CPU"   (maintainers: record a course
                                               run's lesson times for the time lines; then generate)
    python -m kdtutor book [--profile smoke]   the course website (make book)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdtutor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("course", help="run every lesson headless and write results/")
    p.add_argument("--profile", help="smoke, cpu or gpu (default: $KDTUTOR_PROFILE, else gpu with CUDA, else cpu)")

    p = sub.add_parser("refresh-notebooks", help="re-run notebooks (smoke) and store the checked outputs; with "
                       "--profile cpu also store the reference run's outputs in every other cell")
    p.add_argument("paths", nargs="*", help="notebooks or lesson numbers, e.g. 03 (default: all lessons)")
    p.add_argument("--profile", help="also store this profile's run (the reference run is cpu): from the finished "
                   "run in results/<profile>/ where it is current, else by running the lesson (checkpoints reused)")

    p = sub.add_parser("generate", help="badges, setup cells and instructor/ notebooks from notebooks/ + solutions/")
    p.add_argument("paths", nargs="*", help="lesson notebooks (default: all in notebooks/)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of date")

    p = sub.add_parser("pace", help="record a finished course run's lesson times (timings.json) for the lessons' time lines")
    p.add_argument("timings", help="results/<profile>/timings.json of a finished `make course`")
    p.add_argument("--machine", required=True, help='what ran it, e.g. "2-core CPU, no GPU"')

    p = sub.add_parser("grade", help="run submitted notebooks headless, grade every exercise, list the written answers")
    p.add_argument("submissions", nargs="+", help="submitted lesson notebooks (.ipynb)")
    p.add_argument("--out", default="grades.csv", help="CSV to write (default grades.csv; never a notebook)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--time-limit", type=_seconds, default=600, help="seconds per notebook (default 600)")
    p.add_argument("--jobs", type=_positive_int, default=1, help="submissions graded at once (default 1)")
    p.add_argument("--profile", default="smoke", help="profile the submissions run in (default smoke)")

    p = sub.add_parser("install", help="install the course into this Python: what the lessons need (make lab)")
    p.add_argument("--extras", default="", help="comma-separated extras as well: dev (test tools), book (website tools)")
    _torch_arg(p)
    p.add_argument("--constraints", metavar="FILE", help="pin every version (a workshop: requirements/workshop.txt)")
    p.add_argument("--wheelhouse", metavar="DIR", help="install offline from DIR (made by prepare --wheelhouse)")
    p.add_argument("--dry-run", action="store_true", help="print the pip commands, run nothing")

    p = sub.add_parser("lab", help="open the lessons in JupyterLab (make lab)")
    p.add_argument("--notebooks", help="folder to open (default: the checkout's notebooks/)")

    p = sub.add_parser("release", help="write a student release for graded use: notebooks and package, "
                                       "no solutions/ or instructor/, full answers disabled")
    p.add_argument("dir", help="folder to write (must not exist)")
    p.add_argument("--force", action="store_true", help="replace a previous release in DIR")

    p = sub.add_parser("prepare", help="fetch the data, check this machine, optionally pre-train checkpoints")
    p.add_argument("--profile", help="smoke, cpu or gpu (default: $KDTUTOR_PROFILE, else gpu with CUDA, else cpu)")
    p.add_argument("--pretrain", action="store_true", help="also run every lesson once, so each starts from checkpoints")
    p.add_argument("--data-only", action="store_true", help="only fetch data (the notebooks' setup cell)")
    p.add_argument("--need", action="append", choices=["images", "text"],
                   help="data to fetch (default: all; repeatable)")
    p.add_argument("--wheelhouse", metavar="DIR",
                   help="instead: download every wheel a room of laptops like this one needs, at the pinned "
                        "versions, into DIR (then each laptop: install --wheelhouse DIR)")
    p.add_argument("--add", action="store_true", help="with --wheelhouse: download into a DIR that already holds files")
    p.add_argument("--pins", metavar="FILE", help="with --wheelhouse: pinned versions (default requirements/workshop.txt)")
    _torch_arg(p)
    p.add_argument("--dry-run", action="store_true", help="with --wheelhouse: print the pip commands, run nothing")

    p = sub.add_parser("book", help="build the course website (build/book/html) from the lessons' stored outputs "
                       "(the reference run: no training), or from a course run")
    p.add_argument("--profile", help="instead run the course in this profile and build from that run")
    p.add_argument("--reuse", action="store_true", help="with --profile: use the existing results/<profile>/ run as it is")
    p.add_argument("--lessons", nargs="*", help="only these lessons (e.g. 00 01)")

    p = sub.add_parser("train-teacher", help="train (or resume) a teacher and save its checkpoint")
    _run_args(p)
    p.add_argument("--arch", help="model name (default: the profile's teacher)")

    p = sub.add_parser("distill", help="distil a student from a teacher checkpoint")
    _run_args(p)
    p.add_argument("--teacher", help="teacher checkpoint (default: the profile's, as train-teacher and the lessons save it)")
    p.add_argument("--student", help="student model name (default: the profile's student)")
    p.add_argument("--T", type=float, default=4.0, help="temperature (default 4)")
    p.add_argument("--alpha", type=float, default=0.9, help="weight of the distillation term (default 0.9)")
    p.add_argument("--mode", choices=["online", "cached", "fixed"], help="where teacher logits come from (default online)")
    p.add_argument("--teacher-logits", metavar="FILE",
                   help="cached teacher logits: loaded from FILE if it exists (same teacher, data and views), "
                        "else computed once and saved there (implies --mode cached)")

    args = parser.parse_args(argv)
    if args.command == "course":
        from kdtutor.classroom.course import run_course

        run_course(args.profile)
    elif args.command == "refresh-notebooks":
        from kdtutor.classroom.course import lesson_paths, refresh_notebooks

        paths = lesson_paths(args.paths)
        refresh_notebooks(paths)
        if args.profile:
            from kdtutor.classroom.stored import store_reference

            store_reference(paths, args.profile)
    elif args.command == "generate":
        from kdtutor.classroom.instructor import write_instructor_copies

        changed = write_instructor_copies(args.paths or None, check=args.check)
        for path in changed:
            print(f"{'out of date' if args.check else 'wrote'}: {path}")
        if args.check and changed:
            print("run: python -m kdtutor generate")
            return 1
    elif args.command == "pace":
        import time

        from kdtutor.classroom.pace import record_run

        record_run(Path(args.timings), args.machine, time.strftime("%Y-%m-%d"))
        print("recorded; now run: python -m kdtutor generate")
    elif args.command == "grade":
        from kdtutor.classroom.grading import check_out, grade, learner_ids

        try:  # before anything runs: a bad --out or a submission given twice would lose every grade
            out = check_out(args.out, args.submissions, force=args.force)
            learner_ids(args.submissions)
        except ValueError as e:
            parser.error(str(e))
        grade(args.submissions, time_limit=args.time_limit, profile_name=args.profile, jobs=args.jobs, out=out,
              force=args.force)  # the CSV is written as submissions finish
        print(f"wrote {out}")
    elif args.command == "install":
        from kdtutor.classroom.prepare import install

        return install([e for e in args.extras.split(",") if e], torch=args.torch, constraints=args.constraints,
                       wheelhouse=args.wheelhouse, dry_run=args.dry_run)
    elif args.command == "lab":
        return lab(args.notebooks)
    elif args.command == "prepare" and args.wheelhouse:
        from kdtutor.classroom.prepare import WORKSHOP_PINS, make_wheelhouse

        return make_wheelhouse(args.wheelhouse, args.pins or WORKSHOP_PINS, add=args.add, torch=args.torch,
                               dry_run=args.dry_run)
    elif args.command == "release":
        from kdtutor.classroom.release import release, summary

        try:
            print(summary(release(args.dir, force=args.force)))
        except ValueError as e:
            print(f"release: {e}", file=sys.stderr)
            return 2
    elif args.command == "prepare":
        unused = [f"--{name.replace('_', '-')}" for name in ("add", "pins", "dry_run") if getattr(args, name)]
        unused += ["--torch"] if args.torch != "auto" else []
        if unused:
            parser.error(f"{', '.join(unused)} only apply with --wheelhouse DIR")
        from kdtutor.classroom.prepare import prepare

        return prepare(args.profile, pretrain=args.pretrain, data_only=args.data_only, needs=args.need)
    elif args.command == "book":
        from kdtutor.classroom.book import build

        build(args.profile, reuse=args.reuse, lessons=args.lessons)
    elif args.command == "train-teacher":
        train_teacher(args)
    else:
        distill(args)
    return 0


def lab_command(notebooks, python: str = sys.executable, as_root: bool | None = None) -> list[str]:
    """JupyterLab on ``notebooks``, with ``--allow-root`` when run as root on POSIX (containers,
    cloud machines), where JupyterLab otherwise refuses to start. No ``id``, no shell: runs on Windows."""
    if as_root is None:
        as_root = os.name == "posix" and os.geteuid() == 0
    return [python, "-m", "jupyterlab", str(notebooks)] + (["--allow-root"] if as_root else [])


def lab(notebooks=None, run=None) -> int:
    """``lab``: start JupyterLab on the lessons (until it is stopped); its exit status."""
    from kdtutor.classroom.prepare import ROOT, shown

    folder = Path(notebooks) if notebooks else ROOT / "notebooks"
    if not folder.is_dir():
        raise SystemExit(f"no lessons at {folder}: run from a checkout of the course, or pass --notebooks DIR")
    from kdtutor import cpu_environment

    command = lab_command(folder)
    print(f"$ {shown(command)}")
    return (run or subprocess.run)(command, env=cpu_environment()).returncode


def _torch_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--torch", choices=["auto", "cpu", "default"], default="auto",
                   help="PyTorch wheels: auto (CPU-only on Linux without an NVIDIA GPU, where PyTorch's CPU index "
                        "answers, else the default ones), cpu (insist) or default")


def _say(*text) -> None:
    """Print from one process only (rank 0) in a data-parallel run."""
    from kdtutor.scale.distributed import is_main

    if is_main():
        print(*text)


def _check_device(text: str | None):
    """The ``--device`` as a torch device, or SystemExit: only cpu and cuda (with a GPU) are accepted."""
    import torch

    if not text:
        return None
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise SystemExit(f"--device {text}: not a device name PyTorch knows; use --device cpu or cuda "
                         "(or leave --device out)") from None
    if device.type not in ("cpu", "cuda"):
        raise SystemExit(f"--device {text}: kdtutor trains on cpu or cuda only ({device.type} is not supported: "
                         "its mixed precision and determinism are untested); use --device cpu or leave --device out")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {text}: PyTorch sees no CUDA GPU here (torch {torch.__version__}, "
                         f"torch.cuda.is_available() is False); use --device cpu or leave --device out")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SystemExit(f"--device {text}: there are only {torch.cuda.device_count()} CUDA GPU(s) here "
                         f"(cuda:0 … cuda:{torch.cuda.device_count() - 1})")
    return device


def _same_file(a, b) -> bool:
    from pathlib import Path

    return bool(a) and bool(b) and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _check_out(out, inputs: dict, kind: str = "checkpoint") -> None:
    """Refuse an output path (``--out``, ``--teacher-logits``) that is one of ``inputs`` ({flag: path}),
    a folder, or an existing file kdtutor did not write as a ``kind``: nothing the user gave is overwritten."""
    import os
    from pathlib import Path

    from kdtutor.storage import written_by_kdtutor

    if not out:
        return
    for flag, path in inputs.items():
        if _same_file(out, path):
            raise SystemExit(f"{out} is both the output and {flag}: writing it would overwrite that input; "
                             f"choose another output path")
    for env in ("KDTUTOR_CIFAR10", "KDTUTOR_TEXT"):
        if _same_file(out, os.environ.get(env, "").strip()):
            raise SystemExit(f"{out} is the data set ${env} points at: choose another output path")
    p = Path(out).expanduser()
    if p.is_dir():
        raise SystemExit(f"{out} is a folder: give a file path (e.g. {p / 'model.pt'})")
    if p.exists() and not written_by_kdtutor(p, kind):
        raise SystemExit(f"{out} exists and is not a kdtutor {kind.replace('_', ' ')} (kdtutor did not write it), "
                         f"so it is neither resumed from nor overwritten: choose another path")


def _check_run_args(args) -> None:
    """Every argument checked before any data are loaded: device, T, α, the output paths."""
    from kdtutor.kd.losses import check_alpha
    from kdtutor.kd.softmax import check_temperature

    _check_device(args.device)
    for flag, check in (("T", check_temperature), ("alpha", check_alpha)):
        if getattr(args, flag, None) is not None:
            try:
                check(getattr(args, flag))
            except ValueError as e:
                raise SystemExit(f"--{flag} {getattr(args, flag)}: {e}") from None
    inputs = {"--teacher": getattr(args, "teacher_path", None)}
    _check_out(args.out, {**inputs, "--teacher-logits": getattr(args, "teacher_logits", None)})
    if getattr(args, "teacher_logits", None):
        from kdtutor.scale.logit_cache import KIND

        _check_out(args.teacher_logits, inputs, kind=KIND)


def _setup(args, role: str):
    from kdtutor.scale import distributed
    from kdtutor.images.data import load_dataset
    from kdtutor.profiles import get_profile
    from kdtutor.images.train import default_device

    args.device = distributed.local_device(args.device or default_device())  # cuda → cuda:LOCAL_RANK under torchrun
    world = distributed.init_from_env(args.device)
    profile = get_profile(args.profile)
    data = load_dataset(profile, role=role)
    batch = args.batch_size or profile.batch_size
    _say(f"profile {profile.name}: {data}" + (f" — {world} processes, global batch {batch}" if world > 1 else ""))
    return profile, data


def _report(result, data, device) -> None:
    from kdtutor.images.train import eval_loader
    from kdtutor.images.predict import split_metrics

    test_loader = eval_loader(data, "test", device)
    _, acc = split_metrics(result.model.to(test_loader.device), test_loader)  # all-reduced in a multi-process run
    _say(result.history.summary())
    _say(f"test accuracy on {data.name}: {acc:.2%}")


def train_teacher(args) -> None:
    """``train-teacher``: the profile's teacher (or ``--arch``) on the profile's data."""
    from kdtutor.images.recipes import config_for
    from kdtutor.images.train import teacher_path, train_model

    _check_run_args(args)
    profile, data = _setup(args, "teacher")
    arch = args.arch or profile.teacher
    epochs = profile.teacher_epochs if args.epochs is None else args.epochs
    cfg = config_for(arch, epochs, args.batch_size or profile.batch_size, args.seed)
    out = args.out or teacher_path(profile, arch, args.seed)
    result = train_model(arch, data, cfg, checkpoint=out, profile_name=profile.name, device=args.device)
    _say(f"checkpoint: {out}")
    _report(result, data, args.device)


def distill(args) -> None:
    """``distill``: a student from a teacher checkpoint, with the combined KD loss."""
    from kdtutor.images.distill import distill_student
    from kdtutor.images.recipes import config_for
    from kdtutor.images.train import teacher_path

    if args.teacher_logits and args.mode not in (None, "cached"):
        raise SystemExit(f"--teacher-logits serves cached teacher logits; it cannot be used with --mode {args.mode}")
    from kdtutor.profiles import get_profile

    args.teacher_path = args.teacher or teacher_path(get_profile(args.profile))
    _check_run_args(args)
    teacher, meta = _load_teacher(args.teacher_path, args.profile)
    profile, data = _setup(args, "student")
    if meta["dataset"] != data.name:
        raise SystemExit(f"the teacher was trained on {meta['dataset']!r}, but profile {profile.name} uses {data.name!r}")
    arch = args.student or profile.student
    epochs = profile.student_epochs if args.epochs is None else args.epochs
    cfg = config_for(arch, epochs, args.batch_size or profile.batch_size, args.seed)
    shared = None
    if args.teacher_logits:
        from kdtutor.images.distill import CachedLogitsMismatch
        from kdtutor.scale.logit_cache import cached_teacher_logits
        from kdtutor.images.train import default_augment, make_train_loader

        loader = make_train_loader(data, cfg, args.device, default_augment(data))
        try:
            shared = cached_teacher_logits(args.teacher_logits, teacher, loader, cfg.epochs)
        except CachedLogitsMismatch as e:
            raise SystemExit(str(e)) from None
    result = distill_student(teacher, arch, data, cfg, T=args.T, alpha=args.alpha, mode=args.mode or "online",
                             teacher_logits=shared, checkpoint=args.out, profile_name=profile.name, device=args.device)
    if args.out:
        _say(f"checkpoint: {args.out}")
    _report(result, data, args.device)


def _seconds(text: str) -> float:
    """A finite number of seconds > 0 (argparse type)."""
    from kdtutor.classroom.grading import check_time_limit

    try:
        return check_time_limit(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _load_teacher(path, profile_name):
    """The teacher checkpoint the user named (or the profile's), checked before any data are loaded.
    It is an input: a damaged or foreign file is refused, never deleted nor advised to be."""
    from kdtutor.checkpoints import load_checkpoint
    from kdtutor.storage import CorruptFileError, written_by_kdtutor

    hint = f"python -m kdtutor train-teacher --profile {profile_name or '<profile>'} --out {path}"
    try:
        teacher, meta = load_checkpoint(path)
    except FileNotFoundError:
        raise SystemExit(f"no teacher at {path}: train one first ({hint}) or pass --teacher") from None
    except CorruptFileError as e:
        if not written_by_kdtutor(path, "checkpoint"):
            raise SystemExit(f"--teacher {path} is not a kdtutor checkpoint (kdtutor did not write it): pass the "
                             f"file train-teacher wrote") from None
        raise SystemExit(f"--teacher {path} is a kdtutor checkpoint but cannot be used ({e.args[0].split(';')[0]}): "
                         f"train the teacher again into a new file (python -m kdtutor train-teacher --profile "
                         f"{profile_name or '<profile>'} --out <new file>) or pass another --teacher") from None
    except (ValueError, KeyError) as e:
        raise SystemExit(f"--teacher {path} cannot be rebuilt as a model ({e}): pass the file train-teacher "
                         f"wrote") from None
    if not meta.get("dataset"):
        raise SystemExit(f"--teacher {path} does not record which data set it was trained on (no 'dataset' in "
                         f"its metadata), so kdtutor cannot check it matches the students' data: save it with "
                         f"meta['dataset'] = <the Dataset's name>, or train it with train-teacher")
    return teacher, meta


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", help="smoke, cpu or gpu (sizes, data set, epochs)")
    p.add_argument("--out", help="checkpoint path to write (resumed if it exists)")
    p.add_argument("--epochs", type=_positive_int, help="override the profile's number of epochs (≥ 1)")
    p.add_argument("--batch-size", type=_positive_int,
                   help="global batch: images per step over all processes (default: the profile's); the recipes "
                        "scale the learning rate with it (linear scaling rule, with warm-up)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")


if __name__ == "__main__":
    sys.exit(main())
