"""coursetools.speedprobe: the machine's speed measured beside a course time, and recorded times scaled by it."""

import math

import pytest

from coursetools import course, speedprobe

RECORDED = {"cnn_tiny_images_per_s": 2000.0, "lm_teacher_steps_per_s": 5.0}


def test_each_lesson_is_scaled_by_the_speed_of_its_own_kind_of_work():
    now = {"cnn_tiny_images_per_s": 1000.0, "lm_teacher_steps_per_s": 10.0}  # convolutions 2× slower, LM 2× faster
    out = speedprobe.predicted_seconds({"03_teacher_training": 100.0, "07_distilling_a_language_model": 100.0},
                                       RECORDED, now)
    assert out == {"03_teacher_training": 200.0, "07_distilling_a_language_model": 50.0}
    assert "0.50×" in speedprobe.describe(RECORDED, now) and "2.00×" in speedprobe.describe(RECORDED, now)
    with pytest.raises(ValueError, match="cnn_tiny_images_per_s"):
        speedprobe.predicted_seconds({"04_x": 1.0}, {"cnn_tiny_images_per_s": 0.0}, now)


def test_the_probe_times_both_kinds_of_work_in_a_fresh_process():
    out = speedprobe.probe(steps=2)
    assert set(out) == set(speedprobe.KEYS) and all(math.isfinite(v) and v > 0 for v in out.values())


def test_the_course_header_scales_the_recorded_time_to_this_machines_speed(monkeypatch, tmp_path):
    from coursetools import pace

    run = {"lessons": {"03_teacher_training": 300.0}, "machine": "2-core CPU", "date": "2026-12-07",
           "environment": {"probe_before": RECORDED}}
    monkeypatch.setattr(pace, "load_pace", lambda path=None: {"runs": {"cpu": run}})
    monkeypatch.setattr(course, "data_lines", lambda profile, lessons: [])
    lessons = [p for p in course.notebooks() if p.name.startswith("03")]
    assert course.recorded_probe("cpu") == RECORDED
    now = {"cnn_tiny_images_per_s": 1500.0, "lm_teacher_steps_per_s": 5.0}
    text = "\n".join(course.header_lines("cpu", lessons, tmp_path, course.expected_seconds("cpu", lessons), now))
    assert "expected ≈ 5.0 min for 1 of the 1 lessons" in text and "so ≈ 6.7 min here" in text
    assert "so ≈" not in "\n".join(course.header_lines("cpu", lessons, tmp_path, {"03_teacher_training": 300.0}))
