"""Task life and death, defined once: the legal state changes of jobs and tasks, the typed
outcome of an attempt, and every rule that decides what follows what.

Pure: no database, no Ray, no clock. Here, and nowhere else:
- the legal changes (`check_job` / `check_task`, `sources_of`): the store writes every state
  through `wanhe.store.transitions`, whose UPDATEs only touch rows in a legal source state;
- the cascades: a task given up on fails its job (`job_after_verdict`), a job that ends
  cancels its unfinished tasks (`tasks_when_job_ends`), a task whose dependencies are done
  is ready (`task_is_ready`), a job with every task done is done (`job_is_done`), a job
  waiting on a cancelled or failed job fails (`dependents_fail`);
- whether a user may cancel, pause, resume, retry or reprioritize a job (`may_*`), and how
  a job runs again (`retry_plan`, `resume_plan`);
- what follows an attempt: retry or give up (`after_attempt`), blocklisting its node for
  the job (`blocklists_node`); and whether a task no slot may run fails its job or waits
  (`unplaceable_fails_job`).
The store, the API routes, the local runs and the dispatcher apply these verdicts.
Executors raise the typed `AttemptError`s below; their class, never the words of their
message, says how an attempt ended.

    task:   waiting ─► ready ─► running ─► done
                ▲         ▲        │  └──► failed      (out of attempts, or nowhere to run)
                └─────────┴────────┘       cancelled   (its job was cancelled or failed)
            (retry, reset: failed/cancelled/done ─► waiting)

    job:    queued ─► running ─► done | failed | cancelled;  queued/running ⇄ paused;
            a final job goes back to queued only by retry (or resume finding files missing)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
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


def may_retry(
    state: JobState, *, files_missing: bool = False,
    dead_dependencies: Sequence[tuple[int, JobState]] = (),
) -> Ruling:
    """Retry: a failed or cancelled job's unfinished tasks run again (the job is queued); a
    done job's too when files its tasks made are gone (`files_missing`). Not while a job it
    depends on is cancelled or failed (`dead_dependencies`: (id, state)): it would wait on
    that job forever."""
    if state is _J.DONE and not files_missing:
        return _refused(state, "retried (it is done and every file it made is there)")
    if state not in (_J.FAILED, _J.CANCELLED, _J.DONE):
        return _refused(state, "retried (only failed or cancelled jobs can)")
    for dep, dep_state in dead_dependencies:
        return Ruling(False, reason=f"waits on job {dep}, which is {dep_state.value}: retry "
                                    f"job {dep} first")
    return Ruling(True, _J.QUEUED)


@dataclass(frozen=True, slots=True)
class Restart:
    """How a job runs again: `redo`, ids of done tasks to run again (their files went
    missing); `requeue_failed`, whether its failed and cancelled tasks are queued again; both
    queue the job. `target`: the state it goes to when nothing is queued again (None: it
    stays)."""

    redo: tuple[int, ...] = ()
    requeue_failed: bool = False
    target: JobState | None = None


def retry_plan(state: JobState, stale_done: Sequence[int]) -> Restart:
    """A user's retry that `may_retry` allowed: the missing files made again, and a failed or
    cancelled job's unfinished tasks queued again."""
    return Restart(tuple(stale_done), requeue_failed=state is not _J.DONE)


def resume_plan(state: JobState, stale_done: Sequence[int]) -> Restart:
    """A local run finding its job again (`wanhe render`, `wanhe run`, … run a second time):
    missing files made again, a failed or cancelled job retried, a paused one queued. Its
    interrupted attempts are recovered first, as after any crash."""
    return Restart(
        tuple(stale_done), requeue_failed=state in (_J.FAILED, _J.CANCELLED),
        target=_J.QUEUED if state is _J.PAUSED else None,
    )


def may_reprioritize(state: JobState) -> Ruling:
    """A new priority: any unfinished job (its state stays)."""
    if state.is_final:
        return _refused(state, "given a new priority (it is finished)")
    return Ruling(True, state)


# ---------------------------------------------------------------------- cascades

UNFINISHED_TASKS = frozenset({_T.WAITING, _T.READY, _T.RUNNING})
"""Task states that a job's end (cancelled or failed) stops."""

RETRIED_TASKS = frozenset({_T.FAILED, _T.CANCELLED})
"""Task states a retry (or a resumed failed or cancelled job) queues again."""

DEAD_END_JOBS = frozenset({_J.CANCELLED, _J.FAILED})
"""Job states that a job waiting on them would wait on forever: it fails with them."""


def tasks_when_job_ends(job_state: JobState) -> TaskState | None:
    """What a job's unfinished tasks become when the job enters `job_state`: cancelled when
    it is cancelled or failed (nothing of it runs on); None: they stay as they are."""
    return _T.CANCELLED if job_state in DEAD_END_JOBS else None


def job_after_verdict(verdict: Verdict) -> JobState | None:
    """A task given up on fails its job; any other verdict leaves the job as it is."""
    return _J.FAILED if verdict is Verdict.GIVE_UP else None


def task_is_ready(deps_left: int, *, job_waits_on_jobs: bool) -> bool:
    """A waiting task is ready once every task it depends on is done, unless its job still
    waits on other jobs (then they free it when the last one is done)."""
    return deps_left == 0 and not job_waits_on_jobs


def first_state(deps: int, *, job_waits_on_jobs: bool) -> TaskState:
    """The state a new task is stored in."""
    return _T.READY if task_is_ready(deps, job_waits_on_jobs=job_waits_on_jobs) else _T.WAITING


def job_is_done(tasks_not_done: int) -> bool:
    """A job whose every task is done is done (a paused one too: nothing is left to hold)."""
    return tasks_not_done == 0


def dependencies_done(wanted: Iterable[int], states: Mapping[int, JobState]) -> bool:
    """Whether every job in `wanted` (a job's dependencies on other jobs) exists (is in
    `states`) and is done: the one test of it, for a new job, a finished task and a
    finished job alike."""
    return all(states.get(job_id) is _J.DONE for job_id in set(wanted))


def dependents_fail(dependency: JobState) -> bool:
    """Whether jobs that have not started and wait on a job that entered `dependency` fail
    (as Deadline does: a cancelled or failed dependency never finishes)."""
    return dependency in DEAD_END_JOBS


def waiting_on_reason(dependency_id: int, dependency: JobState) -> str:
    return f"waiting on job {dependency_id} ({dependency.value})"


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


def counts_toward_blocklist(outcome: AttemptOutcome, verdict: Verdict) -> bool:
    """Whether an attempt's end may blocklist its node: an own-fault failure whose task is
    retried (a lost or cancelled attempt is not the node's doing; a given-up task fails its
    job, so there is nothing left to keep off the node)."""
    return verdict is Verdict.RETRY and outcome in OWN_FAULT


def blocklists_node(
    outcome: AttemptOutcome, verdict: Verdict, own_fault_failures_on_node: int,
    rules: RetryRules,
) -> bool:
    """Whether the node an attempt ended on is blocklisted for its job now;
    `own_fault_failures_on_node` counts this attempt (since the job was last retried)."""
    return (counts_toward_blocklist(outcome, verdict)
            and should_blocklist(own_fault_failures_on_node, rules))


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


def unplaceable_fails_job(*, blocklisted: bool, elastic: bool) -> bool:
    """A task that no slot of the farm may run: its job fails when every node that could run
    it is blocklisted for the job (nothing will change that), or when the farm is fixed (no
    worker that fits will come); on an elastic farm it waits for one."""
    return blocklisted or not elastic


def stranded_reason(label: str, blocklisted: list[str], why: str = "") -> str:
    """One line for a job whose task has no node left that may run it."""
    nodes = ", ".join(sorted(blocklisted)) or "none"
    tail = f"; last error: {why.strip().splitlines()[0]}" if why.strip() else ""
    return (f"{label} cannot run anywhere: every node that could run it is blocklisted for "
            f"this job after repeated failures ({nodes}){tail}")
