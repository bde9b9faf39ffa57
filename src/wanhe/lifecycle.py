"""Task life and death, defined once: the legal state changes of jobs and tasks, the typed
outcome of an attempt, and the rules that decide what follows an attempt.

Pure: no database, no Ray, no clock. The store applies every state change through
`check_job` / `check_task` (an illegal one raises `IllegalTransition`); whether a user may
cancel, pause, resume or retry a job is ruled here too (`may_*`), and the API applies the
ruling. The dispatcher, the API and the local runs' resume reach the database only through
the store. Executors raise the typed `AttemptError`s below; their class, never the words of
their message, says how an attempt ended.

    task:   waiting ─► ready ─► running ─► done
                ▲         ▲        │  └──► failed      (out of attempts, or nowhere to run)
                └─────────┴────────┘       cancelled   (its job was cancelled or failed)
            (retry, reset: failed/cancelled/done ─► waiting)

    job:    queued ─► running ─► done | failed | cancelled;  queued/running ⇄ paused;
            a final job goes back to queued only by retry (or resume finding files missing)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from wanhe.model import AttemptOutcome, JobState, TaskState


class IllegalTransition(RuntimeError):
    """A state change the state machine forbids: a bug in the caller, never a user error."""


_J = JobState
JOB_TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    _J.QUEUED: frozenset({_J.RUNNING, _J.PAUSED, _J.DONE, _J.FAILED, _J.CANCELLED}),
    _J.RUNNING: frozenset({_J.QUEUED, _J.PAUSED, _J.DONE, _J.FAILED, _J.CANCELLED}),
    _J.PAUSED: frozenset({_J.QUEUED, _J.RUNNING, _J.DONE, _J.FAILED, _J.CANCELLED}),
    _J.DONE: frozenset({_J.QUEUED}),  # outputs went missing: render them again
    _J.FAILED: frozenset({_J.QUEUED}),  # retry
    _J.CANCELLED: frozenset({_J.QUEUED}),  # retry
}

_T = TaskState
TASK_TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    _T.WAITING: frozenset({_T.READY, _T.CANCELLED, _T.FAILED}),
    _T.READY: frozenset({_T.RUNNING, _T.WAITING, _T.CANCELLED, _T.FAILED}),
    _T.RUNNING: frozenset({_T.DONE, _T.READY, _T.FAILED, _T.CANCELLED}),
    _T.DONE: frozenset({_T.WAITING}),  # reset: its outputs went missing
    _T.FAILED: frozenset({_T.WAITING}),  # retry
    _T.CANCELLED: frozenset({_T.WAITING}),  # retry
}


def job_may(current: JobState, new: JobState) -> bool:
    return new == current or new in JOB_TRANSITIONS[current]


def task_may(current: TaskState, new: TaskState) -> bool:
    return new == current or new in TASK_TRANSITIONS[current]


def check_job(current: JobState, new: JobState, *, job_id: int | None = None) -> None:
    if not job_may(current, new):
        raise IllegalTransition(f"job {job_id if job_id is not None else ''}: "
                                f"{current.value} -> {new.value} is not a legal change")


def check_task(current: TaskState, new: TaskState, *, task_id: int | None = None) -> None:
    if not task_may(current, new):
        raise IllegalTransition(f"task {task_id if task_id is not None else ''}: "
                                f"{current.value} -> {new.value} is not a legal change")


def sources_of(new: TaskState) -> list[str]:
    """The task states from which `new` may be entered (as stored values), for set-based
    updates (`UPDATE … WHERE state IN (…)`) that cannot check row by row."""
    return sorted(s.value for s, targets in TASK_TRANSITIONS.items() if new in targets)


def job_sources_of(new: JobState) -> list[str]:
    return sorted(s.value for s, targets in JOB_TRANSITIONS.items() if new in targets)


# ---------------------------------------------------------------------- user actions


@dataclass(frozen=True, slots=True)
class Ruling:
    """Whether a user's action on a job may happen; if so, the state it leads to, else why
    not (`reason` completes "job N …")."""

    allowed: bool
    target: JobState | None = None
    reason: str = ""


def _refused(state: JobState, verb: str) -> Ruling:
    return Ruling(False, reason=f"is {state.value}; it cannot be {verb}")


def may_cancel(state: JobState) -> Ruling:
    """Cancel: any unfinished job (running tasks stop, nothing new starts)."""
    return _refused(state, "cancelled") if state.is_final else Ruling(True, _J.CANCELLED)


def may_pause(state: JobState) -> Ruling:
    """Pause: a queued or running job (running tasks finish, nothing new starts)."""
    if state not in (_J.QUEUED, _J.RUNNING):
        return _refused(state, "paused")
    return Ruling(True, _J.PAUSED)


def may_resume(state: JobState, *, started: bool) -> Ruling:
    """Resume: a paused job only, back to running if a task of it ever started, else queued."""
    if state is not _J.PAUSED:
        return _refused(state, "resumed (only paused jobs can)")
    return Ruling(True, _J.RUNNING if started else _J.QUEUED)


def may_retry(state: JobState, *, files_missing: bool = False) -> Ruling:
    """Retry: a failed or cancelled job's unfinished tasks run again (the job is queued); a
    done job's too when files its tasks made are gone (`files_missing`)."""
    if state is _J.DONE and files_missing:
        return Ruling(True, _J.QUEUED)
    if state is _J.DONE:
        return _refused(state, "retried (it is done and every file it made is there)")
    if state not in (_J.FAILED, _J.CANCELLED):
        return _refused(state, "retried (only failed or cancelled jobs can)")
    return Ruling(True, _J.QUEUED)


def may_reprioritize(state: JobState) -> Ruling:
    """A new priority: any unfinished job (its state stays)."""
    if state.is_final:
        return _refused(state, "given a new priority (it is finished)")
    return Ruling(True, state)


# ---------------------------------------------------------------------- attempt outcomes

OWN_FAULT = frozenset({
    AttemptOutcome.FAILED, AttemptOutcome.TIMEOUT, AttemptOutcome.SILENT,
    AttemptOutcome.OUT_OF_MEMORY,
})
"""Outcomes that are the task's own doing: they count against its attempts and the node's
blocklist. A lost attempt (node or service died) or a cancelled one does not."""


class AttemptError(Exception):
    """Raised by an executor when an attempt did not succeed; the class is the outcome.

    `cpu_s` / `peak_rss` / `gpu_s` carry what the attempt used before it ended (a killed
    process is metered too); None when it could not be measured.
    """

    outcome = AttemptOutcome.FAILED

    def __init__(
        self, message: str, *, cpu_s: float | None = None, peak_rss: int | None = None,
        wall_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.cpu_s = cpu_s
        self.peak_rss = peak_rss
        self.wall_s = wall_s


class TaskFailed(AttemptError):
    """The task could not do its work (bad input, a crash, a non-zero exit); the message
    says why and is shown to the user."""

    outcome = AttemptOutcome.FAILED


class TaskTimedOut(AttemptError):
    """The attempt passed its wall-clock limit and was killed."""

    outcome = AttemptOutcome.TIMEOUT


class TaskSilent(AttemptError):
    """The attempt printed nothing for longer than its log-silence limit and was killed."""

    outcome = AttemptOutcome.SILENT


class TaskOutOfMemory(AttemptError):
    """The attempt ran out of memory (or was killed the way the kernel's OOM killer kills)."""

    outcome = AttemptOutcome.OUT_OF_MEMORY


class TaskCancelled(AttemptError):
    """The attempt was stopped because its job was cancelled (or the worker shut down)."""

    outcome = AttemptOutcome.CANCELLED


ERROR_FOR_OUTCOME: Mapping[AttemptOutcome, type[AttemptError]] = {
    cls.outcome: cls
    for cls in (TaskFailed, TaskTimedOut, TaskSilent, TaskOutOfMemory, TaskCancelled)
}


# ---------------------------------------------------------------------- what follows an attempt


DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class RetryRules:
    """How many times a task may fail of its own fault, be lost, and how many of a job's
    own-fault failures on one node blocklist that node for the job."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_lost: int = 6
    blocklist_after: int = 3

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_lost < 1 or self.blocklist_after < 1:
            raise ValueError(f"retry rules must all be ≥ 1: {self}")


class Verdict(enum.StrEnum):
    DONE = "done"  # the task is done
    RETRY = "retry"  # the task is ready again
    GIVE_UP = "give_up"  # the task failed for good, and so does its job
    STOPPED = "stopped"  # cancelled: the task stays as its job's cancel left it


@dataclass(frozen=True, slots=True)
class AttemptHistory:
    """A task's previous attempts, counted by kind (not including the one just ended)."""

    own_fault: int = 0
    lost: int = 0

    def plus(self, outcome: AttemptOutcome) -> AttemptHistory:
        if outcome in OWN_FAULT:
            return AttemptHistory(self.own_fault + 1, self.lost)
        if outcome is AttemptOutcome.LOST:
            return AttemptHistory(self.own_fault, self.lost + 1)
        return self


def after_attempt(outcome: AttemptOutcome, before: AttemptHistory, rules: RetryRules) -> Verdict:
    """What happens to a task whose attempt just ended with `outcome`."""
    if outcome is AttemptOutcome.OK:
        return Verdict.DONE
    if outcome is AttemptOutcome.CANCELLED:
        return Verdict.STOPPED
    now = before.plus(outcome)
    if outcome is AttemptOutcome.LOST:
        return Verdict.RETRY if now.lost < rules.max_lost else Verdict.GIVE_UP
    return Verdict.RETRY if now.own_fault < rules.max_attempts else Verdict.GIVE_UP


def should_blocklist(own_fault_failures_on_node: int, rules: RetryRules) -> bool:
    """Whether a job's own-fault failures on one node are enough to keep its tasks off it."""
    return own_fault_failures_on_node >= rules.blocklist_after


_OUTCOME_WORDS: Mapping[AttemptOutcome, str] = {
    AttemptOutcome.FAILED: "failed",
    AttemptOutcome.TIMEOUT: "timed out",
    AttemptOutcome.SILENT: "went silent",
    AttemptOutcome.OUT_OF_MEMORY: "ran out of memory",
    AttemptOutcome.LOST: "was lost",
    AttemptOutcome.CANCELLED: "was cancelled",
}


def give_up_reason(
    label: str, outcome: AttemptOutcome, history: AttemptHistory, node: str, message: str
) -> str:
    """One line for a job that failed because a task ran out of attempts."""
    times = history.lost if outcome is AttemptOutcome.LOST else history.own_fault
    first = message.strip().splitlines()[0] if message.strip() else "no message"
    return (f"{label} {_OUTCOME_WORDS.get(outcome, outcome.value)} {times} time(s), "
            f"last on {node}: {first}")


def stranded_reason(label: str, blocklisted: list[str], why: str = "") -> str:
    """One line for a job whose task has no node left that may run it."""
    nodes = ", ".join(sorted(blocklisted)) or "none"
    tail = f"; last error: {why.strip().splitlines()[0]}" if why.strip() else ""
    return (f"{label} cannot run anywhere: every node that could run it is blocklisted for "
            f"this job after repeated failures ({nodes}){tail}")
