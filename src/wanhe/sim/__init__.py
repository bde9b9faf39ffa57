"""Discrete-event simulation of a huge farm that drives the real `wanhe.sched` policy."""

from wanhe.sim.config import ProjectConfig, SimConfig, parse_projects
from wanhe.sim.engine import simulate
from wanhe.sim.metrics import SimReport, SweepPoint
from wanhe.sim.study import SixMonths, six_months_vs_elastic, sweep

__all__ = [
    "ProjectConfig",
    "SimConfig",
    "SimReport",
    "SixMonths",
    "SweepPoint",
    "parse_projects",
    "simulate",
    "six_months_vs_elastic",
    "sweep",
]
