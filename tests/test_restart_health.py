"""Restart policies with Docker's semantics, health checks, and auto-heal."""

from __future__ import annotations

import time

import pytest

from pyjail import errors

MS = 1_000_000


def wait_for(predicate, timeout=20.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_on_failure_2_restarts_exactly_twice(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["sh", "-c", "exit 1"],
                                  "HostConfig": {"RestartPolicy": {"Name": "on-failure",
                                                                   "MaximumRetryCount": 2}}})
    try:
        engine.containers.start(c.id)
        assert wait_for(lambda: c.state["restart_count"] == 2 and not c.running
                        and not c.state["Restarting"])
        time.sleep(1.0)  # a third restart would have happened by now (back-off 400 ms)
        assert c.state["restart_count"] == 2
        assert c.status == "exited" and c.state["ExitCode"] == 1
        actions = [e["Action"] for e in engine.events.since(0) if e["Actor"]["ID"] == c.id]
        assert actions.count("start") == 3
    finally:
        engine.containers.remove(c.id, force=True)


def test_on_failure_does_not_restart_success(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["true"],
                                  "HostConfig": {"RestartPolicy": {"Name": "on-failure"}}})
    try:
        engine.containers.start(c.id)
        engine.containers.wait(c.id, timeout=10)
        time.sleep(0.5)
        assert c.state["restart_count"] == 0 and c.status == "exited"
    finally:
        engine.containers.remove(c.id, force=True)


def test_always_restarts_until_stopped_by_the_user(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["sh", "-c", "sleep 0.1"],
                                  "HostConfig": {"RestartPolicy": {"Name": "always"}}})
    try:
        engine.containers.start(c.id)
        assert wait_for(lambda: c.state["restart_count"] >= 2)
        engine.containers.stop(c.id, timeout=1)
        count = c.state["restart_count"]
        time.sleep(1.0)
        assert c.state["restart_count"] == count and not c.running
    finally:
        engine.containers.remove(c.id, force=True)


def test_health_check_turns_unhealthy_after_retries(engine):
    c = engine.containers.create({
        "Image": "busybox", "Cmd": ["sh", "-c", "touch /tmp/ok; sleep 1000"],
        "Healthcheck": {"Test": ["CMD-SHELL", "test -e /tmp/ok"], "Interval": 200 * MS,
                        "Timeout": 2000 * MS, "Retries": 2}})
    try:
        engine.containers.start(c.id)
        assert wait_for(lambda: c.health and c.health["Status"] == "healthy")
        exec_id = engine.execs.create(c.id, {"Cmd": ["rm", "/tmp/ok"]})
        engine.execs.start(exec_id, detach=True)
        assert wait_for(lambda: c.health["Status"] == "unhealthy")
        assert c.health["FailingStreak"] >= 2
        assert c.health["Log"][-1]["ExitCode"] == 1
        listed = engine.list_containers(filters={"health": ["unhealthy"]})
        assert [x["Id"] for x in listed] == [c.id]
        actions = [e["Action"] for e in engine.events.since(0) if e["Actor"]["ID"] == c.id]
        assert "health_status: healthy" in actions and "health_status: unhealthy" in actions
    finally:
        engine.containers.remove(c.id, force=True)


def test_autoheal_restarts_an_unhealthy_container(engine):
    c = engine.containers.create({
        "Image": "busybox", "Labels": {"pyjail.autoheal": "true"},
        "Cmd": ["sh", "-c", "if [ -e /tmp/once ]; then sleep 1000; fi; touch /tmp/once; sleep 1000"],
        "Healthcheck": {"Test": ["CMD-SHELL", "test -e /tmp/healthy"], "Interval": 200 * MS,
                        "Timeout": 2000 * MS, "Retries": 2}})
    try:
        engine.containers.start(c.id)
        first_pid = c.state["Pid"]
        assert wait_for(lambda: any(e["Action"] == "autoheal" and e["Actor"]["ID"] == c.id
                                    for e in engine.events.since(0)))
        assert wait_for(lambda: c.running and c.state["Pid"] != first_pid)
        heal = [e for e in engine.events.since(0)
                if e["Action"] == "autoheal" and e["Actor"]["ID"] == c.id][0]
        assert "unhealthy" in heal["Actor"]["Attributes"]["reason"]
    finally:
        engine.containers.remove(c.id, force=True)


def test_no_healthcheck_means_no_health_state(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["sleep", "5"]})
    try:
        engine.containers.start(c.id)
        assert "Health" not in engine.inspect_container(c.id)["State"]
    finally:
        engine.containers.remove(c.id, force=True)


def test_invalid_restart_policy_rejected(engine):
    with pytest.raises(errors.InvalidArgument):
        engine.containers.create({"Image": "busybox", "HostConfig": {
            "RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}})
