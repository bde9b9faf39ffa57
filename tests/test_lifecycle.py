"""The state machine (wanhe.lifecycle): legal changes, typed outcomes, what follows an attempt."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanhe.lifecycle import (
    ERROR_FOR_OUTCOME,
    JOB_TRANSITIONS,
    OWN_FAULT,
    TASK_TRANSITIONS,
    AttemptHistory,
    IllegalTransition,
    RetryRules,
    Ruling,
    TaskCancelled,
    TaskSilent,
    TaskTimedOut,
    Verdict,
    after_attempt,
    check_job,
    check_task,
    give_up_reason,
    job_may,
    may_cancel,
    may_pause,
    may_reprioritize,
    may_resume,
    may_retry,
    should_blocklist,
    sources_of,
    stranded_reason,
)
from wanhe.model import AttemptOutcome, JobState, TaskState


def test_every_state_has_its_transitions_and_final_ones_only_go_back_to_the_queue() -> None:
    assert set(JOB_TRANSITIONS) == set(JobState)
    assert set(TASK_TRANSITIONS) == set(TaskState)
    for state in JobState:
        if state.is_final:
            assert JOB_TRANSITIONS[state] == {JobState.QUEUED}
    for task_state in TaskState:
        if task_state.is_final:
            assert TASK_TRANSITIONS[task_state] == {TaskState.WAITING}


@pytest.mark.parametrize(("current", "new"), [
    (TaskState.DONE, TaskState.RUNNING),  # a finished task never runs again
    (TaskState.DONE, TaskState.READY),
    (TaskState.FAILED, TaskState.RUNNING),
    (TaskState.WAITING, TaskState.RUNNING),  # not before its dependencies
    (TaskState.CANCELLED, TaskState.DONE),
])
def test_illegal_task_changes_raise(current: TaskState, new: TaskState) -> None:
    with pytest.raises(IllegalTransition, match=f"{current.value} -> {new.value}"):
        check_task(current, new, task_id=7)


@pytest.mark.parametrize(("current", "new"), [
    (JobState.DONE, JobState.FAILED),  # one final state, never two
    (JobState.CANCELLED, JobState.FAILED),
    (JobState.FAILED, JobState.CANCELLED),
    (JobState.FAILED, JobState.RUNNING),
    (JobState.DONE, JobState.PAUSED),
])
def test_illegal_job_changes_raise(current: JobState, new: JobState) -> None:
    with pytest.raises(IllegalTransition):
        check_job(current, new, job_id=3)


def test_legal_changes_pass() -> None:
    check_job(JobState.QUEUED, JobState.RUNNING)
    check_job(JobState.RUNNING, JobState.PAUSED)
    check_job(JobState.PAUSED, JobState.QUEUED)
    check_job(JobState.FAILED, JobState.QUEUED)
    check_task(TaskState.RUNNING, TaskState.READY)  # retried
    check_task(TaskState.DONE, TaskState.WAITING)  # reset: outputs went missing


def test_sources_are_what_the_table_says() -> None:
    assert sources_of(TaskState.RUNNING) == ["ready"]
    assert sources_of(TaskState.WAITING) == ["cancelled", "done", "failed", "ready"]


def test_each_outcome_has_one_error_class() -> None:
    for outcome, cls in ERROR_FOR_OUTCOME.items():
        assert cls.outcome is outcome
    assert TaskTimedOut("x").outcome is AttemptOutcome.TIMEOUT
    assert TaskSilent("x").outcome is AttemptOutcome.SILENT
    error = TaskCancelled("stopped", cpu_s=1.5, peak_rss=10)
    assert (error.cpu_s, error.peak_rss) == (1.5, 10)  # a killed attempt keeps its usage


def test_max_attempts_one_means_one_attempt() -> None:
    rules = RetryRules(max_attempts=1)
    assert after_attempt(AttemptOutcome.FAILED, AttemptHistory(), rules) is Verdict.GIVE_UP


def test_three_timeouts_give_up_and_a_lost_attempt_does_not_count() -> None:
    rules = RetryRules(max_attempts=3, max_lost=6)
    history = AttemptHistory()
    verdicts = []
    for outcome in (AttemptOutcome.TIMEOUT, AttemptOutcome.LOST, AttemptOutcome.SILENT,
                    AttemptOutcome.OUT_OF_MEMORY):
        verdicts.append(after_attempt(outcome, history, rules))
        history = history.plus(outcome)
    assert verdicts == [Verdict.RETRY, Verdict.RETRY, Verdict.RETRY, Verdict.GIVE_UP]
    assert history == AttemptHistory(own_fault=3, lost=1)


def test_ok_and_cancel_verdicts() -> None:
    rules = RetryRules()
    assert after_attempt(AttemptOutcome.OK, AttemptHistory(9, 9), rules) is Verdict.DONE
    assert after_attempt(AttemptOutcome.CANCELLED, AttemptHistory(), rules) is Verdict.STOPPED


@given(st.lists(st.sampled_from(list(AttemptOutcome)), max_size=30),
       st.integers(1, 5), st.integers(1, 5))
def test_a_task_never_exceeds_its_attempts(
    outcomes: list[AttemptOutcome], max_attempts: int, max_lost: int
) -> None:
    """Run attempts until the rules stop them: own-fault ones never exceed max_attempts,
    lost ones never exceed max_lost, and the last verdict is the one that stopped it."""
    rules = RetryRules(max_attempts=max_attempts, max_lost=max_lost)
    history = AttemptHistory()
    for outcome in outcomes:
        verdict = after_attempt(outcome, history, rules)
        history = history.plus(outcome)
        assert history.own_fault <= max_attempts and history.lost <= max_lost
        if verdict in (Verdict.DONE, Verdict.GIVE_UP):
            break
    assert sum(o in OWN_FAULT for o in outcomes) >= history.own_fault


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryRules(max_attempts=0)
    assert not should_blocklist(2, RetryRules(blocklist_after=3))
    assert should_blocklist(3, RetryRules(blocklist_after=3))


def test_reasons_are_one_line_that_say_what_where_and_how_often() -> None:
    reason = give_up_reason(
        "frame 1", AttemptOutcome.TIMEOUT, AttemptHistory(3, 0), "vm:local",
        "Blender render task passed its wall-clock limit timeout_s=2 s\nlog tail…",
    )
    assert reason == ("frame 1 timed out 3 time(s), last on vm:local: Blender render task "
                      "passed its wall-clock limit timeout_s=2 s")
    stranded = stranded_reason("frame 2", ["b", "a"], "boom\nmore")
    assert "\n" not in stranded and "(a, b)" in stranded and "last error: boom" in stranded


# ---------------------------------------------------------------------- user actions


@pytest.mark.parametrize(("state", "ruling"), [
    (JobState.QUEUED, Ruling(True, JobState.PAUSED)),
    (JobState.RUNNING, Ruling(True, JobState.PAUSED)),
    (JobState.PAUSED, Ruling(False, reason="is paused; it cannot be paused")),
    (JobState.DONE, Ruling(False, reason="is done; it cannot be paused")),
])
def test_only_a_queued_or_running_job_may_be_paused(state: JobState, ruling: Ruling) -> None:
    assert may_pause(state) == ruling


def test_resume_goes_back_to_running_only_if_a_task_ever_started() -> None:
    assert may_resume(JobState.PAUSED, started=True) == Ruling(True, JobState.RUNNING)
    assert may_resume(JobState.PAUSED, started=False) == Ruling(True, JobState.QUEUED)
    refused = may_resume(JobState.RUNNING, started=True)
    assert not refused.allowed and refused.reason == \
        "is running; it cannot be resumed (only paused jobs can)"


def test_a_done_job_is_retried_only_when_files_it_made_are_gone() -> None:
    assert may_retry(JobState.DONE, files_missing=True) == Ruling(True, JobState.QUEUED)
    kept = may_retry(JobState.DONE)
    assert not kept.allowed and "every file it made is there" in kept.reason
    assert not may_retry(JobState.RUNNING, files_missing=True).allowed


@pytest.mark.parametrize("state", list(JobState))
def test_retry_cancel_and_priority_follow_whether_the_job_is_finished(state: JobState) -> None:
    retry = may_retry(state)
    assert retry.allowed is (state in (JobState.FAILED, JobState.CANCELLED))
    assert may_cancel(state).allowed is not state.is_final
    assert may_reprioritize(state).allowed is not state.is_final
    for ruling in (retry, may_cancel(state), may_reprioritize(state),
                   may_pause(state), may_resume(state, started=False)):
        # an allowed action leads to a legal state change; a refused one says why
        if ruling.allowed:
            assert ruling.target is not None and job_may(state, ruling.target)
        else:
            assert ruling.target is None and ruling.reason.startswith(f"is {state.value};")
