"""Pure scheduling policy: priority, weighted fair share, budgets, resources, blocklists.

The dispatcher (`wanhe.engine`) and the simulator (`wanhe.sim`) drive the same
`SchedulingPolicy`; see `wanhe.sched.policy` for the rules.
"""

from wanhe.sched.policy import PolicyStats, ProjectState, QueuedTask, SchedulingPolicy

__all__ = ["PolicyStats", "ProjectState", "QueuedTask", "SchedulingPolicy"]
