"""posepipe.progress: throttled progress lines, rate and time left, the end reported once."""

import logging
import math
import time

from posepipe.progress import Progress, format_duration


def test_format_duration():
    assert format_duration(12.3) == "0m12s"
    assert format_duration(4000) == "1h06m"
    assert format_duration(math.inf) == "?"


def test_progress_lines_are_throttled_and_the_last_is_shown(caplog):
    logger = logging.getLogger("test.progress")
    meter = Progress(100, label="clip", logger=logger, every=3600)
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for done in range(1, 101):
            meter.update(done)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1  # throttled: only the line at the end
    assert lines[0].startswith("clip: 100/100 frames (100%)") and lines[0].endswith("0m00s left")


def test_total_given_later_and_the_end_reported_once(caplog):
    logger = logging.getLogger("test.progress.late")
    meter = Progress(0, label="lift", logger=logger, every=3600)
    time.sleep(0.05)  # work before the first report counts towards the rate
    with caplog.at_level(logging.INFO, logger="test.progress.late"):
        meter.update(10, total=10)
        meter.update(10, force=True)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    rate = float(lines[0].split(", ")[1].split()[0])
    assert rate < 10 / 0.05 + 1
