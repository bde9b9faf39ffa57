"""Session hosts forked by one spawner (`wanhe.openjd.hostspawn`): each is its own process
group with its own pipes, speaks the host protocol, and its exit status reaches
this process through the spawner; hosts given up before they were forked never run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.openjd._util import step, template
from wanhe.openjd.hostspawn import _WARM_UP_JOB, ForkedHost, Spawner
from wanhe.openjd.template import TemplateError, load_job, plan

pytestmark = pytest.mark.timeout(60)


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _ask(host: ForkedHost, **cmd: object) -> dict[str, object]:
    assert host.stdin is not None and host.stdout is not None
    host.stdin.write(json.dumps(cmd) + "\n")
    host.stdin.flush()
    answer: dict[str, object] = json.loads(host.stdout.readline())
    return answer


def test_one_spawner_forks_every_host_and_reports_how_each_ended() -> None:
    spawner, hosts = Spawner.start(2, {**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert all(host.started(30) for host in hosts)
        first, second = hosts
        assert first.pid != second.pid
        for host in hosts:  # the spawner's children, each its own process group at once
            assert _parent(host.pid) == spawner.proc.pid
            assert os.getpgid(host.pid) == host.pid and host.poll() is None
            assert os.getsid(host.pid) == spawner.proc.pid  # apart from this terminal's
        # a host with nothing open closes cleanly, as one started on its own does
        assert _ask(first, op="close") == {"ev": "done", "op": "close", "ok": True}
        assert first.wait(10) == 0
        second.kill()
        assert second.wait(10) == -9
        spawner.close_requests()
        spawner.proc.wait(10)  # its last host gone and nothing more to plan: it ends too
    finally:
        for host in hosts:
            host.kill()
            host.close_pipes()


def test_the_spawner_plans_the_job_as_this_process_would(tmp_path: Path) -> None:
    doc = template(steps=[step("S", "echo {{Task.Param.F}}",
                               params=[{"name": "F", "type": "INT", "range": "1-3"}])])
    arguments = {"template": doc, "values": {}, "template_dir": tmp_path, "cwd": tmp_path,
                 "environments": []}
    spawner, hosts = Spawner.start(1, dict(os.environ))
    try:
        assert spawner.ask(arguments)
        assert spawner.answer_to(30) == plan(**arguments)
        assert not spawner.ask(arguments)  # one plan a spawner: then this process
    finally:
        spawner.close_requests()
        hosts[0].kill()
        hosts[0].close_pipes()
    spawner, hosts = Spawner.start(1, dict(os.environ))
    try:  # the template's mistake is the same one-line error, raised here
        with pytest.raises(TemplateError) as refused:
            assert spawner.ask({**arguments, "values": {"Nope": "1"}})
            spawner.answer_to(30)
        with pytest.raises(TemplateError) as here:
            plan(**{**arguments, "values": {"Nope": "1"}})
        assert (refused.value.field, refused.value.message) == (here.value.field,
                                                                here.value.message)
    finally:
        spawner.close_requests()
        hosts[0].kill()
        hosts[0].close_pipes()


def test_the_warm_up_job_is_a_job_openjd_reads() -> None:
    """The spawner reads it before forking (so each host's first `open` is quick): a job that
    no longer parses would make that silently useless."""
    job, values, _symtabs, _revision = load_job(_WARM_UP_JOB)
    assert job.name == "warm-up" and [s.name for s in job.steps] == ["S"] and values


def test_hosts_given_up_before_they_are_forked_never_run() -> None:
    spawner, hosts = Spawner.start(2, dict(os.environ))
    spawner.kill()  # at once: it is still importing openjd
    assert spawner.ended and spawner.pids is None
    for host in hosts:
        assert not host.started(0)
        assert host.poll() == -9
        with pytest.raises(subprocess.TimeoutExpired):
            ForkedHost.wait(_never_ending(), 0.05)
        host.close_pipes()


class _NeverEnding(ForkedHost):
    def poll(self) -> int | None:
        return None


def _never_ending() -> ForkedHost:
    """A host whose poll never ends (to see `wait` give up at its timeout)."""
    host = _NeverEnding.__new__(_NeverEnding)
    host.spawner = Spawner.__new__(Spawner)
    import threading

    host.spawner.changed = threading.Condition()
    return host
