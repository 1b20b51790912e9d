"""nbgrader's configuration for a kdtutor course directory: copy it there, beside ``source/``.

It applies the grading policy ``python -m coursetools grade`` applies (see coursetools/grading.py):

* the same per-cell time limit, ``Execute.timeout`` = ``coursetools.grading.CELL_TIME_LIMIT`` (180 s,
  fitted to the smoke profile's measured cell times, see there; tests/test_nbgrader.py checks the two
  agree); a cell past it is interrupted and the next cells run, so an endless loop costs its own
  exercise and 3 minutes;
* feedback without the hidden tests (nbgrader's ``ClearHiddenTests`` in ``generate_feedback``);
* each submission its own scratch ``KDTUTOR_DATA`` and ``KDTUTOR_RESULTS``: the instructor copies'
  setup cell makes them under ``NBGRADER_EXECUTION=autograde`` (coursetools/instructor.py), so no
  submission can overwrite a checkpoint or a cache another one reads.

Run autograde with ``KDTUTOR_PROFILE=smoke`` in the environment, as the README shows.
"""

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821 (nbgrader's config loader provides it)
c.CourseDirectory.course_id = "kd-course"
c.Execute.timeout = 180  # seconds per cell: coursetools.grading.CELL_TIME_LIMIT
c.Execute.interrupt_on_timeout = True
c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, ClearHiddenTests]
