"""The learner's command line: set up, train a teacher, distil a student — the code the lessons use.

    python -m kdtutor install [--extras dev,book]   only what the lessons need (make lab runs it);
                                                    CPU-only PyTorch on Linux without an NVIDIA GPU
    python -m kdtutor lab                           JupyterLab on your copies of the lessons (make lab)
    python -m kdtutor prepare [--profile cpu]       fetch the data, check this machine
    python -m kdtutor train-teacher --profile gpu
    python -m kdtutor distill --profile gpu --student cnn_small --T 4 --alpha 0.9

train-teacher writes, and distill reads, the teacher where lessons 03–05 keep it
(data/checkpoints/teacher_<profile>_<arch>.pt); --out and --teacher choose another file.

On several GPUs (or CPU processes, or nodes) the same commands run data-parallel under
PyTorch's launcher; the batch size (--batch-size, default the profile's) is then the global
batch, split over the processes:
    torchrun --nproc_per_node 4 -m kdtutor train-teacher --profile gpu
distill --teacher-logits FILE computes the teacher's logits once (all processes together)
and saves them; later runs with the same teacher, data and seed load them.
Your own images and models (a folder train/<class>/*.jpg, test/<class>/…; a function seed → nn.Module):
    python -m kdtutor distill --data DIR --size 64 --crop --student mypkg.models:student
        --teacher-arch mypkg.models:teacher --teacher teacher_state_dict.pt --epochs 10
(--teacher-arch also takes a torchvision name such as resnet18; train-teacher takes --data and --arch too.)

Running the whole course headless, grading, releases and the website are course tooling:
python -m coursetools --help (in a checkout of the course).
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

    p = sub.add_parser("install", help="install the course into this Python: what the lessons need (make lab)")
    p.add_argument("--extras", default="", help="comma-separated extras as well: dev (test tools), book (website tools)")
    torch_arg(p)
    p.add_argument("--constraints", metavar="FILE", help="pin every version (a workshop: requirements/workshop.txt)")
    p.add_argument("--wheelhouse", metavar="DIR", help="install offline from DIR (made by coursetools wheelhouse)")
    p.add_argument("--dry-run", action="store_true", help="print the pip commands, run nothing")

    p = sub.add_parser("lab", help="open your working copies of the lessons (my-lessons/) in JupyterLab (make lab)")
    p.add_argument("--notebooks", help="open this folder as it is instead (no working copies)")
    p.add_argument("--reset", nargs="+", default=(), metavar="NN",
                   help="take these lessons afresh from the course (yours are kept beside them)")

    p = sub.add_parser("prepare", help="fetch the data and check this machine")
    p.add_argument("--profile", help="smoke, cpu or gpu (default: $KDTUTOR_PROFILE, else gpu with CUDA, else cpu)")
    p.add_argument("--data-only", action="store_true", help="only fetch data (the notebooks' setup cell)")
    p.add_argument("--need", action="append", choices=["images", "text"],
                   help="data to fetch (default: all; repeatable)")

    p = sub.add_parser("train-teacher", help="train (or resume) a teacher and save its checkpoint")
    _run_args(p)
    p.add_argument("--arch", help="model name, or your constructor as package.module:function or file.py:function "
                                  "(default: the profile's teacher)")

    p = sub.add_parser("distill", help="distil a student from a teacher checkpoint")
    _run_args(p)
    p.add_argument("--teacher", help="teacher checkpoint (default: the profile's, as train-teacher and the lessons "
                                     "save it); with --teacher-arch, a state_dict file of that architecture")
    p.add_argument("--teacher-arch", metavar="ARCH",
                   help="the teacher's architecture, for a --teacher file of weights: package.module:function "
                        "or file.py:function (seed → nn.Module), or a torchvision name such as resnet18")
    p.add_argument("--student", help="student model name, or your constructor as package.module:function or "
                                     "file.py:function (default: the profile's student)")
    p.add_argument("--T", type=float, default=4.0, help="temperature (default 4)")
    p.add_argument("--alpha", type=float, default=0.9, help="weight of the distillation term (default 0.9)")
    p.add_argument("--mode", choices=["online", "cached", "fixed"], help="where teacher logits come from (default online)")
    p.add_argument("--teacher-logits", metavar="FILE",
                   help="cached teacher logits: loaded from FILE if it exists (same teacher, data and views), "
                        "else computed once and saved there (implies --mode cached)")

    args = parser.parse_args(argv)
    refuse_unknown_profile(parser, args)
    if args.command == "install":
        from kdtutor.machine import install

        return install([e for e in args.extras.split(",") if e], torch=args.torch, constraints=args.constraints,
                       wheelhouse=args.wheelhouse, dry_run=args.dry_run)
    if args.command == "lab":
        return lab(args.notebooks, reset=args.reset)
    if args.command == "prepare":
        from kdtutor.machine import prepare

        return prepare(args.profile, data_only=args.data_only, needs=args.need)
    if args.command == "train-teacher":
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


def lab(notebooks=None, run=None, reset=(), work=None) -> int:
    """``lab``: start JupyterLab (until it is stopped) on the learner's working copies of the lessons
    (``my-lessons/``, made from ``notebooks/`` where missing: :func:`kdtutor.machine.working_copies`), or on
    the folder ``notebooks`` as it is; ``reset``: lesson numbers to take afresh from the course. Its exit status."""
    from kdtutor.machine import ROOT, WORK_DIR, reset_lesson, shown, working_copies

    if notebooks:
        folder = Path(notebooks)
    else:
        source, folder = ROOT / "notebooks", Path(work or WORK_DIR)
        if not source.is_dir():
            raise SystemExit(f"no lessons at {source}: run from a checkout of the course, or pass --notebooks DIR")
        for lesson in reset:
            kept = reset_lesson(lesson, source, folder)
            print(f"{lesson}: the course's lesson is back in {folder}" + (f"; yours is kept as {kept.name}" if kept else ""))
        copied = working_copies(source, folder)
        if copied:
            print(f"copied {len(copied)} lessons into {folder}: run and save them there; the course's own, with "
                  f"its stored reference run, stay untouched in {source}")
    if not folder.is_dir():
        raise SystemExit(f"no lessons at {folder}: run from a checkout of the course, or pass --notebooks DIR")
    from kdtutor import cpu_environment

    command = lab_command(folder)
    print(f"$ {shown(command)}")
    return (run or subprocess.run)(command, env=cpu_environment()).returncode


def torch_arg(p: argparse.ArgumentParser) -> None:
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
    if (args.size or args.crop) and not args.data:
        raise SystemExit("--size and --crop apply to --data DIR (your own images); the profiles' data are one size")
    if args.crop and not args.size:
        raise SystemExit("--crop needs --size: e.g. --size 64 --crop")
    for flag, check in (("T", check_temperature), ("alpha", check_alpha)):
        if getattr(args, flag, None) is not None:
            try:
                check(getattr(args, flag))
            except ValueError as e:
                raise SystemExit(f"--{flag} {getattr(args, flag)}: {e}") from None
    inputs = {"--teacher": getattr(args, "teacher_path", None), "--data": args.data}
    _check_out(args.out, {**inputs, "--teacher-logits": getattr(args, "teacher_logits", None)})
    if getattr(args, "teacher_logits", None):
        from kdtutor.images.logit_cache import KIND

        _check_out(args.teacher_logits, inputs, kind=KIND)


def _setup(args, role: str):
    from kdtutor.scale import distributed
    from kdtutor.images.data import load_dataset
    from kdtutor.profiles import get_profile
    from kdtutor.images.train import default_device

    args.device = distributed.local_device(args.device or default_device())  # cuda → cuda:LOCAL_RANK under torchrun
    world = distributed.init_from_env(args.device)
    profile = get_profile(args.profile)
    data = _load_folder(args) if args.data else load_dataset(profile, role=role)
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


def _load_folder(args):
    """``--data DIR`` (with ``--size``/``--crop``) as a Dataset, or SystemExit saying what is wrong."""
    from kdtutor.images.image_folder import load_image_folder

    try:
        return load_image_folder(args.data, size=args.size, crop=args.crop)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"--data {args.data}: {e}") from None


def _check_model_name(arch, flag: str) -> None:
    """A model name given to ``flag`` must be one of kdtutor's (your own: package.module:function)."""
    from kdtutor.images.models import MODELS

    if isinstance(arch, str) and arch not in MODELS:
        raise SystemExit(f"{flag} {arch}: not a kdtutor model ({', '.join(MODELS)}); give your own as "
                         "package.module:function or path/to/file.py:function (a function seed → nn.Module)")


def _check_student(arch, flag_value: str, data, device) -> None:
    """Your ``--student`` built once and run on a few training images, before anything trains."""
    import torch

    from kdtutor.images.models import check_output, make_model
    from kdtutor.images.train import eval_loader

    loader = eval_loader(data, "train", device)
    c, h, _ = data.image_shape
    try:
        model = make_model(arch, 0, data.num_classes, c, h).to(loader.device)
        check_output(model, loader.clean_images(torch.arange(min(8, loader.num_examples), device=loader.device)),
                     data.num_classes, f"--student {flag_value}")
    except ValueError as e:
        raise SystemExit(str(e)) from None


def import_model(text: str, flag: str):
    """``package.module:function`` or ``path/file.py:function`` → that function (a model constructor
    ``seed → nn.Module``); a plain name is returned as it is (a kdtutor or torchvision model name).
    SystemExit naming ``flag`` if it cannot be imported or is not callable."""
    import importlib
    import importlib.util

    if ":" not in text:
        return text
    where, _, attr = text.rpartition(":")
    try:
        if where.endswith(".py"):
            path = Path(where).expanduser().resolve()
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or not path.is_file():
                raise FileNotFoundError(f"no file {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
        fn = module
        for part in attr.split("."):
            fn = getattr(fn, part)
    except (ImportError, FileNotFoundError, AttributeError, SyntaxError) as e:
        raise SystemExit(f"{flag} {text}: cannot import it ({type(e).__name__}: {e}); give package.module:function "
                         "(importable from here) or path/to/file.py:function") from None
    if not callable(fn):
        raise SystemExit(f"{flag} {text}: {type(fn).__name__} is not callable; give a function seed → nn.Module")
    return fn


def train_teacher(args) -> None:
    """``train-teacher``: the profile's teacher (or ``--arch``) on the profile's data (or ``--data``)."""
    from kdtutor.images.models import model_label
    from kdtutor.images.recipes import config_for
    from kdtutor.images.train import recovering, teacher_path, train_model

    _check_run_args(args)
    arch = import_model(args.arch, "--arch") if args.arch else None
    _check_model_name(arch, "--arch")
    if args.data and not args.out:
        raise SystemExit("--data: pass --out FILE as well (the profile's teacher path is for the profile's data)")
    profile, data = _setup(args, "teacher")
    arch = arch or profile.teacher
    epochs = profile.teacher_epochs if args.epochs is None else args.epochs
    cfg = config_for(arch, epochs, args.batch_size or profile.batch_size, args.seed)
    out = args.out or teacher_path(profile, model_label(arch), args.seed)
    result = recovering(out, lambda: train_model(arch, data, cfg, checkpoint=out, profile_name=profile.name,
                                                 device=args.device))  # another run's file: moved aside, as the lessons do
    _say(f"checkpoint: {out}")
    _report(result, data, args.device)


def distill(args) -> None:
    """``distill``: a student from a teacher checkpoint (or ``--teacher-arch`` + weights), with the combined KD loss."""
    from kdtutor.images.distill import distill_student, load_teacher
    from kdtutor.images.recipes import config_for
    from kdtutor.images.train import recovering, teacher_path

    if args.teacher_logits and args.mode not in (None, "cached"):
        raise SystemExit(f"--teacher-logits serves cached teacher logits; it cannot be used with --mode {args.mode}")
    if (args.data or args.teacher_arch) and not args.teacher:
        raise SystemExit(f"{'--data' if args.data else '--teacher-arch'}: pass --teacher FILE as well (the "
                         "profile's teacher was trained on the profile's data)")
    from kdtutor.profiles import get_profile

    args.teacher_path = args.teacher or teacher_path(get_profile(args.profile))
    _check_run_args(args)
    student = import_model(args.student, "--student") if args.student else None
    _check_model_name(student, "--student")
    if args.teacher_arch:  # your architecture + a file of weights: checked against the data once they are loaded
        teacher_arch = import_model(args.teacher_arch, "--teacher-arch")
        if not Path(args.teacher_path).expanduser().is_file():
            raise SystemExit(f"--teacher {args.teacher_path}: no such file")
        meta = None
    else:
        teacher, meta = _load_teacher(args.teacher_path, args.profile)
    profile, data = _setup(args, "student")
    if meta is None:
        try:
            teacher = load_teacher(teacher_arch, args.teacher_path, data, device=args.device)
        except ValueError as e:
            raise SystemExit(f"--teacher {args.teacher_path} (--teacher-arch {args.teacher_arch}): {e}") from None
    elif meta["dataset"] != data.name:
        where = f"--data {args.data} holds" if args.data else f"profile {profile.name} uses"
        raise SystemExit(f"the teacher was trained on {meta['dataset']!r}, but {where} {data.name!r}")
    arch = student or profile.student
    if not isinstance(arch, str):
        _check_student(arch, args.student, data, args.device)
    epochs = profile.student_epochs if args.epochs is None else args.epochs
    cfg = config_for(arch, epochs, args.batch_size or profile.batch_size, args.seed)
    shared = None
    if args.teacher_logits:
        from kdtutor.images.distill import CachedLogitsMismatch
        from kdtutor.images.logit_cache import cached_teacher_logits
        from kdtutor.images.train import default_augment, make_train_loader

        loader = make_train_loader(data, cfg, args.device, default_augment(data))
        try:
            shared = cached_teacher_logits(args.teacher_logits, teacher, loader, cfg.epochs)
        except CachedLogitsMismatch as e:
            raise SystemExit(str(e)) from None
    result = recovering(args.out, lambda: distill_student(  # another run's file: moved aside, as the lessons do
        teacher, arch, data, cfg, T=args.T, alpha=args.alpha, mode=args.mode or "online", teacher_logits=shared,
        checkpoint=args.out, profile_name=profile.name, device=args.device))
    if args.out:
        _say(f"checkpoint: {args.out}")
    _report(result, data, args.device)


def _load_teacher(path, profile_name):
    """The teacher checkpoint the user named (or the profile's), checked before any data are loaded.
    It is an input: a damaged or foreign file is refused, never deleted nor advised to be."""
    from kdtutor.checkpoints import CheckpointMismatch
    from kdtutor.images.train import load_checkpoint
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
    except CheckpointMismatch as e:
        raise SystemExit(f"--teacher {e.args[0].split(': train it again')[0]}: train the teacher again into a new "
                         f"file ({hint.replace(f'--out {path}', '--out <new file>')}) or pass another --teacher") from None
    except (ValueError, KeyError) as e:
        raise SystemExit(f"--teacher {path} cannot be rebuilt as a model ({e}): pass the file train-teacher "
                         f"wrote, or name its architecture with --teacher-arch package.module:function") from None
    if not meta.get("dataset"):
        raise SystemExit(f"--teacher {path} does not record which data set it was trained on (no 'dataset' in "
                         f"its metadata), so kdtutor cannot check it matches the students' data: save it with "
                         f"meta['dataset'] = <the Dataset's name>, or train it with train-teacher")
    return teacher, meta


def refuse_unknown_profile(parser: argparse.ArgumentParser, args) -> None:
    """Before a command runs: exit with one line (status 2) if the profile it was given (``--profile``, else a
    set ``$KDTUTOR_PROFILE``) is unknown, instead of a traceback from deep inside the command."""
    if not hasattr(args, "profile"):
        return  # install and lab take no profile, and run before PyTorch is installed: import nothing here
    from kdtutor.profiles import ENV_VAR, get_profile

    if args.profile is None and not os.environ.get(ENV_VAR, "").strip():
        return  # the default profile (always known)
    try:
        get_profile(args.profile)
    except ValueError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    """A seed NumPy and PyTorch both take: a whole number from 0 to 2**32 − 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be from 0 to {2**32 - 1}, got {value}")
    return value


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", help="smoke, cpu or gpu (sizes, data set, epochs)")
    p.add_argument("--out", help="checkpoint path to write (resumed if it exists)")
    p.add_argument("--epochs", type=positive_int, help="override the profile's number of epochs (≥ 1)")
    p.add_argument("--batch-size", type=positive_int,
                   help="global batch: images per step over all processes (default: the profile's); the recipes "
                        "scale the learning rate with it (linear scaling rule, with warm-up)")
    p.add_argument("--seed", type=_seed, default=0, help="the run's seed: a whole number from 0 to 2**32 − 1")
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--data", metavar="DIR", help="your images instead of the profile's: a folder (or .tar.gz/.zip) "
                   "laid out train/<class>/*.jpg, test/<class>/… (val/ optional); the profile still sets epochs "
                   "and batch size")
    p.add_argument("--size", type=positive_int, help="with --data: resize every image to SIZE×SIZE pixels "
                   "(needed when they differ in size)")
    p.add_argument("--crop", action="store_true", help="with --size: keep the aspect ratio and cut the central square")


if __name__ == "__main__":
    sys.exit(main())
