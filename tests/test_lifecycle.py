"""The state machine (wanhe.lifecycle): legal changes, typed outcomes, what follows an attempt,
the cascades, the user actions' rulings and how a job runs again."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wanhe.lifecycle import (
    DEAD_END_JOBS,
    ERROR_FOR_OUTCOME,
    JOB_TRANSITIONS,
    OWN_FAULT,
    RETRIED_TASKS,
    TASK_TRANSITIONS,
    UNFINISHED_TASKS,
    AttemptHistory,
    IllegalTransition,
    Restart,
    RetryRules,
    Ruling,
    TaskCancelled,
    TaskSilent,
    TaskTimedOut,
    Verdict,
    after_attempt,
    blocklists_node,
    check_job,
    check_task,
    dependencies_done,
    dependents_fail,
    first_state,
    give_up_reason,
    job_after_verdict,
    job_is_done,
    job_may,
    may_cancel,
    may_pause,
    may_reprioritize,
    may_resume,
    may_retry,
    resume_plan,
    retry_plan,
    should_blocklist,
    sources_of,
    stranded_reason,
    task_is_ready,
    task_may,
    tasks_when_job_ends,
    unplaceable_fails_job,
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


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a loaded machine
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


def test_a_job_that_waits_on_a_dead_job_may_not_be_retried() -> None:
    ruling = may_retry(JobState.FAILED, dead_dependencies=[(44, JobState.CANCELLED)])
    assert ruling == Ruling(False, reason="waits on job 44, which is cancelled: retry job 44 "
                                          "first")
    assert may_retry(JobState.FAILED, dead_dependencies=[]).allowed


# ---------------------------------------------------------------------- cascades


@pytest.mark.parametrize("job_state", list(JobState))
def test_a_job_that_ends_cancels_its_unfinished_tasks_legally(job_state: JobState) -> None:
    becomes = tasks_when_job_ends(job_state)
    assert (becomes is TaskState.CANCELLED) is (job_state in DEAD_END_JOBS)
    if becomes is not None:
        assert all(task_may(task, becomes) for task in UNFINISHED_TASKS)
    assert dependents_fail(job_state) is (job_state in (JobState.CANCELLED, JobState.FAILED))


def test_a_task_given_up_on_fails_its_job_and_nothing_else_does() -> None:
    assert {v: job_after_verdict(v) for v in Verdict} == {
        Verdict.DONE: None, Verdict.RETRY: None, Verdict.GIVE_UP: JobState.FAILED,
        Verdict.STOPPED: None}
    for job_state in (JobState.QUEUED, JobState.RUNNING, JobState.PAUSED):
        assert job_may(job_state, JobState.FAILED)


def test_a_task_is_ready_when_its_dependencies_are_done_and_its_job_waits_on_none() -> None:
    assert task_is_ready(0, job_waits_on_jobs=False)
    assert not task_is_ready(1, job_waits_on_jobs=False)
    assert not task_is_ready(0, job_waits_on_jobs=True)
    assert first_state(0, job_waits_on_jobs=False) is TaskState.READY
    assert first_state(2, job_waits_on_jobs=False) is TaskState.WAITING
    assert first_state(0, job_waits_on_jobs=True) is TaskState.WAITING


def test_a_job_is_done_when_no_task_is_left() -> None:
    assert job_is_done(0) and not job_is_done(1)


def test_dependencies_are_done_only_when_each_exists_and_is_done() -> None:
    assert dependencies_done([], {})
    assert dependencies_done([1, 2, 2], {1: JobState.DONE, 2: JobState.DONE})
    assert not dependencies_done([1, 2], {1: JobState.DONE})  # 2 does not exist
    assert not dependencies_done([1], {1: JobState.RUNNING})


@pytest.mark.parametrize(("outcome", "verdict", "failures", "blocked"), [
    (AttemptOutcome.FAILED, Verdict.RETRY, 3, True),
    (AttemptOutcome.TIMEOUT, Verdict.RETRY, 2, False),  # not yet
    (AttemptOutcome.LOST, Verdict.RETRY, 9, False),  # the node died: not the job's doing
    (AttemptOutcome.FAILED, Verdict.GIVE_UP, 9, False),  # the job failed: nothing to keep off
    (AttemptOutcome.CANCELLED, Verdict.STOPPED, 9, False),
])
def test_a_node_is_blocklisted_after_the_jobs_repeated_own_failures_on_it(
    outcome: AttemptOutcome, verdict: Verdict, failures: int, blocked: bool
) -> None:
    assert blocklists_node(outcome, verdict, failures, RetryRules(blocklist_after=3)) is blocked


# ---------------------------------------------------------------------- running again


def test_a_retry_redoes_missing_files_and_requeues_a_failed_jobs_tasks() -> None:
    assert retry_plan(JobState.FAILED, [4]) == Restart((4,), requeue_failed=True)
    assert retry_plan(JobState.DONE, [4, 5]) == Restart((4, 5), requeue_failed=False)
    assert {TaskState.FAILED, TaskState.CANCELLED} == RETRIED_TASKS
    assert all(task_may(task, TaskState.WAITING) for task in RETRIED_TASKS)


@pytest.mark.parametrize(("state", "plan"), [
    (JobState.FAILED, Restart((), requeue_failed=True)),
    (JobState.CANCELLED, Restart((), requeue_failed=True)),
    (JobState.PAUSED, Restart((), target=JobState.QUEUED)),
    (JobState.RUNNING, Restart()),  # interrupted: its lost attempts were recovered
    (JobState.DONE, Restart()),
])
def test_a_local_run_resumes_every_kind_of_stopped_job(state: JobState, plan: Restart) -> None:
    assert resume_plan(state, []) == plan
    if plan.target is not None:
        assert job_may(state, plan.target)


def test_a_task_no_slot_may_run_fails_its_job_unless_an_elastic_farm_may_grow() -> None:
    assert unplaceable_fails_job(blocklisted=True, elastic=True)  # nothing will change
    assert unplaceable_fails_job(blocklisted=False, elastic=False)  # no worker will come
    assert not unplaceable_fails_job(blocklisted=False, elastic=True)  # one may start
