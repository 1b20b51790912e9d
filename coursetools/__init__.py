"""kdtutor's course tooling, on top of the learners' package and never imported by it: the course
runner, grading, stored outputs, instructor copies, delivery (badges, setup cells), pace (time lines),
release, the website and workshop preparation. Not shipped to learners (``python -m coursetools release``
leaves it out). Its command line: ``python -m coursetools --help``."""
