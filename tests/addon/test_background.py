"""The add-on's background work: results come back only through pump() (Blender's main
thread), one at a time per name, errors as one line, and a failing callback never breaks the
timer that pumps."""

from __future__ import annotations

import threading

from wanhe.addon.wanhe_farm.background import Runner
from wanhe.addon.wanhe_farm.farm import FarmError


def test_results_arrive_through_pump_on_the_calling_thread() -> None:
    runner = Runner()
    release = threading.Event()
    seen: list[tuple[str, object, str]] = []

    def work(progress: object) -> int:
        progress("halfway", 0.5)  # type: ignore[operator]
        release.wait(10)
        return 42

    assert runner.start("job", work, on_done=lambda r: seen.append(
        ("done", r, threading.current_thread().name)))
    assert not runner.start("job", work)  # one of each name at a time
    assert runner.busy("job") and runner.pump() == 0 and not seen
    release.set()
    assert runner.wait(10)
    assert seen == [("done", 42, threading.current_thread().name)]
    assert not runner.busy()


def test_errors_are_one_line_and_a_failing_callback_is_reported() -> None:
    runner = Runner()
    errors: list[str] = []

    def refused(progress: object) -> None:
        raise FarmError("the farm refused the token — paste a valid one")

    def crash(progress: object) -> None:
        raise KeyError("frames")

    runner.start("a", refused, on_error=errors.append)
    runner.start("b", crash, on_error=errors.append)
    runner.start("c", lambda p: 1, on_done=lambda r: {}["missing"], on_error=errors.append)
    assert runner.wait(10)
    assert sorted(errors) == ["KeyError: 'frames'", "KeyError: 'missing'",
                              "the farm refused the token — paste a valid one"]
