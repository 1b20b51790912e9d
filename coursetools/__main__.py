"""The course tooling's command line: for maintainers, instructors and workshop hosts (not shipped to learners).

    python -m coursetools course [--profile cpu]        every lesson headless, results/<profile>/ (make course)
    python -m coursetools pretrain [--profile cpu]      the learner's prepare, then every lesson once (make prepare PRETRAIN=1)
    python -m coursetools wheelhouse DIR                a room's wheels once, at the pinned versions;
                                                        each laptop: python -m kdtutor install --wheelhouse DIR
    python -m coursetools grade subs/*.ipynb --out grades.csv [--jobs 2]   sandboxed, see coursetools.grading;
                                                        also grades-summary.csv, one row per learner (an LMS's)
    python -m coursetools summary graded-by-ta.csv --out grades-summary.csv   the summary with the TA's scores
    python -m coursetools release DIR                   what learners get for graded use: no solutions/, no answers
    python -m coursetools book [--profile smoke]        the course website (make book)
    python -m coursetools refresh-notebooks [--profile cpu] [03 ...]   re-store the outputs nbval compares
                                                        (and the reference run's)
    python -m coursetools tidy-outputs [03 ...]        stored outputs' text brought up to date in place (paths,
                                                        labels, figure alt text), nothing run
    python -m coursetools generate [--check]            badges, setup cells, time lines, instructor/ versions
    python -m coursetools pace results/cpu/timings.json --machine "2-core CPU"   record a run's lesson times
    python -m coursetools slides [01 02 ...]             one reveal.js deck per lesson in build/slides/ (nbconvert)

The learner's own commands (install, lab, prepare, train-teacher, distill): python -m kdtutor --help.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kdtutor.__main__ import positive_int, refuse_unknown_profile, torch_arg

PROFILE_HELP = "smoke, cpu or gpu (default: $KDTUTOR_PROFILE, else gpu with CUDA, else cpu)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursetools", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("course", help="run every lesson headless and write results/")
    p.add_argument("--profile", help=PROFILE_HELP)
    p.add_argument("--lessons", nargs="*", help="only these lessons (e.g. 03 04; default: all)")

    p = sub.add_parser("pretrain", help="check this machine and fetch the data (kdtutor prepare), then run every "
                       "lesson once so each starts from checkpoints")
    p.add_argument("--profile", help=PROFILE_HELP)

    p = sub.add_parser("wheelhouse", help="download every wheel a room of laptops like this one needs, at the pinned "
                       "versions, into DIR (then each laptop: python -m kdtutor install --wheelhouse DIR)")
    p.add_argument("dir", help="folder to fill")
    p.add_argument("--add", action="store_true", help="download into a DIR that already holds files")
    p.add_argument("--pins", metavar="FILE", help="pinned versions (default requirements/workshop.txt)")
    torch_arg(p)
    p.add_argument("--dry-run", action="store_true", help="print the pip commands, run nothing")

    p = sub.add_parser("grade", help="run submitted notebooks headless, grade every exercise, list the written answers")
    p.add_argument("submissions", nargs="+", help="submitted lesson notebooks (.ipynb)")
    p.add_argument("--out", default="grades.csv", help="CSV to write (default grades.csv; never a notebook)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--time-limit", type=_seconds, default=600, help="seconds per notebook (default 600)")
    p.add_argument("--cell-time-limit", type=_seconds, default=None, help="seconds per cell, as nbgrader's "
                   "Execute.timeout (default: coursetools.grading.CELL_TIME_LIMIT, 180, fitted to the smoke profile)")
    p.add_argument("--jobs", type=positive_int, default=1, help="submissions graded at once (default 1)")
    p.add_argument("--profile", default="smoke", help="profile the submissions run in (default smoke)")
    p.add_argument("--summary", help="per-learner summary CSV to write (default: --out's name + -summary.csv)")
    p.add_argument("--ta-scores", metavar="FILE", help="a copy of a grades CSV in which a TA scored the written "
                   "questions: their scores go into the summary's totals")

    p = sub.add_parser("summary", help="the per-learner summary (total, per lesson, written questions) of a grades "
                       "CSV, e.g. a copy in which a TA scored the written questions")
    p.add_argument("grades", help="a grades CSV written by grade (the TA's copy)")
    p.add_argument("--out", required=True, help="summary CSV to write")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")

    p = sub.add_parser("release", help="write a student release for graded use: notebooks and package, "
                                       "no solutions/, instructor/ or course tooling, full answers disabled")
    p.add_argument("dir", help="folder to write (must not exist)")
    p.add_argument("--force", action="store_true", help="replace a previous release in DIR")

    p = sub.add_parser("book", help="build the course website (build/book/html) from the lessons' stored outputs "
                       "(the reference run: no training), or from a course run")
    p.add_argument("--profile", help="instead run the course in this profile and build from that run")
    p.add_argument("--reuse", action="store_true", help="with --profile: use the existing results/<profile>/ run as it is")
    p.add_argument("--lessons", nargs="*", help="only these lessons (e.g. 00 01)")

    p = sub.add_parser("refresh-notebooks", help="re-run notebooks (smoke) and store the checked outputs; with "
                       "--profile cpu also store the reference run's outputs in every other cell")
    p.add_argument("paths", nargs="*", help="notebooks or lesson numbers, e.g. 03 (default: all lessons)")
    p.add_argument("--profile", help="also store this profile's run (the reference run is cpu): from the finished "
                   "run in results/<profile>/ where it is current, else by running the lesson (checkpoints reused)")

    p = sub.add_parser("tidy-outputs", help="rewrite the stored outputs' text in place where only it is out of date "
                       "(this machine's folders and $KDTUTOR_CIFAR10/$KDTUTOR_TEXT written short, label lines, "
                       "figure alt text, no widget line for a progress bar); runs nothing, stamps stay valid")
    p.add_argument("paths", nargs="*", help="notebooks or lesson numbers, e.g. 03 (default: all lessons)")

    p = sub.add_parser("generate", help="badges, setup cells and instructor/ notebooks from notebooks/ + solutions/")
    p.add_argument("paths", nargs="*", help="lesson notebooks (default: all in notebooks/)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of date")

    p = sub.add_parser("pace", help="record a finished course run's lesson times (timings.json) for the lessons' time lines")
    p.add_argument("timings", help="results/<profile>/timings.json of a finished `make course`")
    p.add_argument("--machine", required=True, help='what ran it, e.g. "2-core CPU, no GPU"')
    p.add_argument("--environment", help="the --json file of benchmarks/course_time.py for the same run (torch build, "
                                         "threads, load average, empty data folder)")

    p = sub.add_parser("slides", help="one slide deck per lesson (jupyter nbconvert --to slides) in build/slides/")
    p.add_argument("lessons", nargs="*", help="lesson numbers or notebooks (default: all)")
    p.add_argument("--out", default=None, help="folder to write (default build/slides)")

    args = parser.parse_args(argv)
    refuse_unknown_profile(parser, args)
    return COMMANDS[args.command](args, parser) or 0


def course(args, parser):
    from coursetools.course import run_course

    run_course(args.profile, lessons=args.lessons or None)


def pretrain(args, parser):
    from coursetools.prepare import pretrain as run

    return run(args.profile)


def wheelhouse(args, parser):
    from coursetools.prepare import WORKSHOP_PINS, make_wheelhouse

    return make_wheelhouse(args.dir, args.pins or WORKSHOP_PINS, add=args.add, torch=args.torch, dry_run=args.dry_run)


def grade(args, parser):
    from coursetools.grading import check_out, grade as grade_all, learner_ids

    from coursetools.summary import read_ta_scores, summary_path, write_summary

    try:  # before anything runs: a bad --out or a submission given twice would lose every grade
        out = check_out(args.out, args.submissions, force=args.force)
        summary = check_out(args.summary or summary_path(out), [*args.submissions, out], force=args.force)
        scores = read_ta_scores(args.ta_scores) if args.ta_scores else {}
        learner_ids(args.submissions)
    except (ValueError, OSError) as e:
        parser.error(str(e))
    from coursetools.grading import CELL_TIME_LIMIT

    grades = grade_all(args.submissions, time_limit=args.time_limit, profile_name=args.profile, jobs=args.jobs,
                       out=out, force=args.force, cell_time_limit=args.cell_time_limit or CELL_TIME_LIMIT)  # the CSV is written as submissions finish
    write_summary(grades, summary, scores, force=args.force)
    print(f"wrote {out} and {summary}")


def summary(args, parser):
    from coursetools.grading import check_out
    from coursetools.summary import read_grades, read_ta_scores, write_summary

    try:
        out = check_out(args.out, [args.grades], force=args.force)
        grades, scores = read_grades(args.grades), read_ta_scores(args.grades)
    except (ValueError, OSError) as e:
        parser.error(str(e))
    print(f"wrote {write_summary(grades, out, scores, force=args.force)}")


def release(args, parser):
    from coursetools.release import release as write_release, summary

    try:
        print(summary(write_release(args.dir, force=args.force)))
    except ValueError as e:
        print(f"release: {e}", file=sys.stderr)
        return 2


def book(args, parser):
    from coursetools.book import build

    build(args.profile, reuse=args.reuse, lessons=args.lessons)


def refresh_notebooks(args, parser):
    from coursetools.course import lesson_paths, refresh_notebooks as refresh

    paths = lesson_paths(args.paths)
    refresh(paths)
    if args.profile:
        from coursetools.stored import store_reference

        store_reference(paths, args.profile)


def tidy_outputs(args, parser):
    import nbformat

    from coursetools.course import lesson_paths, notebooks, write_notebook
    from coursetools.stored import machine_paths, tidy_stored

    for path in lesson_paths(args.paths) or notebooks():
        nb = nbformat.read(path, as_version=4)
        if tidy_stored(nb, machine_paths()):
            write_notebook(nb, path)
            print(f"tidied: {path}")


def generate(args, parser):
    from coursetools.instructor import write_instructor_copies

    changed = write_instructor_copies(args.paths or None, check=args.check)
    for path in changed:
        print(f"{'out of date' if args.check else 'wrote'}: {path}")
    if args.check and changed:
        print("run: python -m coursetools generate")
        return 1


def pace(args, parser):
    import time

    from coursetools.pace import record_run

    env = json.loads(Path(args.environment).read_text()) if args.environment else None
    record_run(Path(args.timings), args.machine, time.strftime("%Y-%m-%d"), environment=env)
    print("recorded; now run: python -m coursetools generate")


def slides(args, parser):
    from coursetools.course import lesson_paths
    from coursetools.slides import OUT_DIR, build_slides

    try:
        lessons = lesson_paths(args.lessons)
    except ValueError as e:
        parser.error(str(e))
    for path in build_slides(lessons, Path(args.out) if args.out else OUT_DIR):
        print(f"wrote {path}")


COMMANDS = {"course": course, "pretrain": pretrain, "wheelhouse": wheelhouse, "grade": grade, "summary": summary,
            "release": release, "book": book, "refresh-notebooks": refresh_notebooks, "tidy-outputs": tidy_outputs,
            "generate": generate, "pace": pace,
            "slides": slides}


def _seconds(text: str) -> float:
    """A finite number of seconds > 0 (argparse type)."""
    from coursetools.grading import check_time_limit

    try:
        return check_time_limit(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


if __name__ == "__main__":
    sys.exit(main())
