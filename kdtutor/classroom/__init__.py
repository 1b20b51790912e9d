"""Tools for teaching, on top of the lessons: course runner, grading, instructor copies, delivery, prepare, website."""
