"""The AI cost model's arithmetic: the warm fit of fixed and per-step cost, the cold load paid
once, history preferred to the probe, and a voice's rate per character."""

from __future__ import annotations

import pytest

from wanhe.estimate.ai import GenHistory, GenProbe, fit_line_rate, fit_steps, shot_cost


def test_fixed_and_per_step_come_from_two_step_counts() -> None:
    assert fit_steps([(1, 0.5), (3, 1.1)]) == pytest.approx((0.2, 0.3))
    # one step count: all of it is per step; noise never makes a part negative
    assert fit_steps([(2, 1.0), (2, 1.2)]) == pytest.approx((0.0, 0.55))
    assert fit_steps([(1, 1.0), (3, 0.8)]) == (1.0, 0.0)
    assert fit_steps([(1, 0.1), (3, 0.9)]) == pytest.approx((0.0, 0.4))


def probe(**changes: float) -> GenProbe:
    values = {"load_s": 3.0, "first_s": 1.5, "fixed_s": 0.2, "per_step_s": 0.3}
    values.update(changes)
    return GenProbe(device="cpu", threads=1, probe_s=9.0, steps_probed=(1, 3), **values)


def test_a_shot_pays_the_cold_load_once_and_each_candidate_its_steps() -> None:
    p = probe()
    # cold: the load, plus the first call's extra over a warm 1-step call (1.5 - 0.5)
    assert p.cold_s == pytest.approx(4.0)
    cost = shot_cost(4, 10, probe=p)
    assert cost.per_candidate_s == pytest.approx(3.2)
    assert cost.seconds == pytest.approx(4.0 + 4 * 3.2)
    assert cost.source == "probe"
    warm = shot_cost(4, 10, probe=p, cold=False)  # an earlier shot loaded the model
    assert warm.seconds == pytest.approx(4 * 3.2) and warm.cold_s == 0
    assert shot_cost(8, 10, probe=p).seconds - cost.seconds == pytest.approx(4 * 3.2)


def test_history_wins_over_the_probe_and_says_how_many_runs() -> None:
    history = GenHistory(runs=3, candidates=12, candidate_steps=240, seconds=60.0)
    cost = shot_cost(5, 30, probe=probe(), history=history)
    assert (cost.source, cost.history_runs) == ("history", 3)
    assert cost.per_candidate_s == pytest.approx(60.0 / 240 * 30)
    assert cost.seconds == pytest.approx(5 * 7.5)
    with pytest.raises(ValueError, match="needs its probe"):
        shot_cost(1, 1)


def test_a_voice_rate_fits_fixed_and_per_character() -> None:
    rate = fit_line_rate([(10, 0.5, 1.0), (50, 1.3, 4.0)])
    assert rate.per_char_s == pytest.approx(0.02)
    assert rate.fixed_s == pytest.approx(0.3)
    assert rate.compute_s(100) == pytest.approx(2.3)
    assert rate.audio_s(60) == pytest.approx(5.0 / 60 * 60)
    assert rate.compute_per_audio_s == pytest.approx(1.8 / 5.0)
    one = fit_line_rate([(20, 0.4, 2.0)])  # one line: through the origin
    assert (one.fixed_s, one.compute_s(40), one.lines_probed) == (0.0, pytest.approx(0.8), 1)
