"""Pure scheduling policy: priority, weighted fair share, budgets, resources, blocklists.

The dispatcher (`wanhe.engine`) and the simulator (`wanhe.sim`) drive the same
`SchedulingPolicy`; see `wanhe.sched.policy` for the rules.

The policy's names load on first use, so `wanhe.sched.devices` (which the command line's
`--device` option needs) does not import the policy.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wanhe.sched.policy import PolicyStats, ProjectState, QueuedTask, SchedulingPolicy

__all__ = ["PolicyStats", "ProjectState", "QueuedTask", "SchedulingPolicy"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from wanhe.sched import policy

        return getattr(policy, name)
    raise AttributeError(f"module 'wanhe.sched' has no attribute {name!r}")
