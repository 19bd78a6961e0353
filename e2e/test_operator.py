"""The operator process against the local control plane: probes and
metrics endpoints, graceful shutdown, and leader election between two
replicas (one leader at a time; takeover after SIGKILL within lease
duration + retry period; after SIGTERM within about one retry period,
because the leader releases its lease)."""

import signal
import time

import pytest
from kubernetes import client

from operator_process import Operator, get, wait_for

# Short election timings keep the test quick; their ratios are the defaults'.
LEASE_S, RENEW_S, RETRY_S = 6, 4, 1


@pytest.fixture
def operators(root, tmp_path, crds):
    started = []

    def start(name, *extra):
        op = Operator(root, tmp_path / f"{name}.log", *extra)
        started.append(op)
        return op

    yield start
    for op in started:
        op.close()


def election_args(lease):
    return ["--leader-elect", "--leader-election-id", lease,
            "--leader-election-lease-duration", f"{LEASE_S}s",
            "--leader-election-renew-deadline", f"{RENEW_S}s",
            "--leader-election-retry-period", f"{RETRY_S}s"]


def test_probes_and_metrics_are_served(operators):
    op = operators("solo")
    assert get(op.probes, "/healthz") == (200, "ok")
    assert wait_for(lambda: get(op.probes, "/readyz") == (200, "ok"), 30)
    status, text = get(op.metrics, "/metrics")
    assert status == 200
    for name in ["process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_open_fds", "process_start_time_seconds"]:
        assert f"\n{name} " in text
    assert get(op.metrics, "/nope")[0] == 404


def test_sigterm_exits_zero_after_a_clean_shutdown(operators):
    op = operators("term")
    assert op.stop(signal.SIGTERM) == 0
    assert "stopped cleanly" in op.output()


def lease_holder(admin_api, name):
    try:
        lease = client.CoordinationV1Api(admin_api).read_namespaced_lease(name, "default")
    except client.exceptions.ApiException:
        return None
    return lease.spec.holder_identity


def elect_one_of_two(operators, lease):
    a = operators("a", *election_args(lease))
    b = operators("b", *election_args(lease))
    leader = wait_for(lambda: (a.leading(lease) and a) or (b.leading(lease) and b), 30)
    assert leader, a.output() + b.output()
    follower = b if leader is a else a
    # One leader at a time: the follower keeps reporting 0 for a while.
    for _ in range(20):
        assert not follower.leading(lease)
        time.sleep(0.1)
    return leader, follower


def test_two_replicas_elect_one_leader_and_take_over_after_sigkill(operators, admin_api):
    lease = "e2e-election-kill"
    leader, follower = elect_one_of_two(operators, lease)
    holder = lease_holder(admin_api, lease)
    killed = time.monotonic()
    leader.stop(signal.SIGKILL)
    assert wait_for(lambda: follower.leading(lease), LEASE_S + RETRY_S * 1.2 + 3)
    took = time.monotonic() - killed
    assert lease_holder(admin_api, lease) not in (None, "", holder)
    # Without a release the follower must wait out the lease it last saw renewed.
    assert took >= LEASE_S - RENEW_S


def test_sigterm_releases_the_lease_so_the_follower_takes_over_at_once(operators, admin_api):
    lease = "e2e-election-term"
    leader, follower = elect_one_of_two(operators, lease)
    stopped = time.monotonic()
    assert leader.stop(signal.SIGTERM) == 0
    assert "released lease" in leader.output()
    assert wait_for(lambda: follower.leading(lease), RETRY_S * 1.2 + 2)
    assert time.monotonic() - stopped < LEASE_S
