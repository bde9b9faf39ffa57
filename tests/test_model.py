"""The domain types' helpers for people (`wanhe.model`)."""

from __future__ import annotations

import pytest

from wanhe.model import human_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0421, "0.0421 s"),  # a model's step: significant digits, not "0 s"
        (3.0, "3 s"),
        (3.214, "3.21 s"),
        (45.3, "45 s"),
        (119.4, "119 s"),
        (150.0, "2.5 min"),
        (7200.0, "2.0 h"),
        (172800.0, "2.0 days"),
    ],
)
def test_human_duration_picks_the_unit_people_read_best(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
