"""The Lease-backed guard state on the real API server: one winner under contention, and
a dead replica's claim taken over by exactly one other."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

import pytest

from function.kube import connect
from function.lease_state import LeaseState, dedup_lease_name, rate_lease_name
from function.settings import Settings
from function.state import Claim
from tests.testbed.kube import Kube

from .account import grant_guard_state

pytestmark = pytest.mark.cluster


@pytest.fixture
def states(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], List[LeaseState]]:
    """``states(n)``: n replicas' guard states (each its own client), as an account with
    only the generated guard Role in its own namespace."""
    home = kube.create_namespace(prefix="responder")
    kube.create_service_account("falco-responder", home)
    grant_guard_state(kube, home)
    monkeypatch.setenv("KUBECONFIG", str(kube.token_kubeconfig("falco-responder", home)))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    def make(count: int) -> List[LeaseState]:
        made = []
        for _ in range(count):
            client, _where = connect(Settings(pod_namespace=home))
            assert client is not None
            made.append(LeaseState(client))
        return made

    return make


def race(calls: List[Callable[[], Any]]) -> List[Any]:
    results: List[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_thirty_takers_on_three_replicas_get_exactly_the_limit(states: Any) -> None:
    replicas = states(3)
    now = time.time()
    taken: List[Tuple[bool, Optional[str]]] = race(
        [lambda r=replicas[i % 3]: r.take(now, 10, 60.0, True) for i in range(30)])
    assert sum(ok for ok, _ in taken) == 10
    slots = [s for ok, s in taken if ok]
    assert len(set(slots)) == 10
    lease = replicas[0].kube.get_lease(rate_lease_name(10, 60.0))
    assert lease is not None
    assert sorted(json.loads(lease["metadata"]["annotations"]["falco-responder/slots"])) \
        == sorted(slots)
    replicas[2].give_back(slots[0])
    assert replicas[0].take(now, 10, 60.0, True)[0] is True  # the freed slot, seen fresh


def test_one_claim_wins_and_the_others_see_it_in_progress_then_done(states: Any) -> None:
    replicas = states(3)
    now = time.time()
    claims = race([lambda r=r: r.claim("k", now, 60.0, 10.0) for r in replicas])
    assert sorted(c.value for c in claims) == ["claimed", "in progress", "in progress"]
    winner = replicas[claims.index(Claim.CLAIMED)]
    winner.release("k", now, True, 60.0)
    winner.flush()
    assert {r.claim("k", now + 1, 60.0, 10.0) for r in replicas} == {Claim.DONE}


def test_a_claim_given_back_without_acting_can_be_claimed_again(states: Any) -> None:
    first, second = states(2)
    now = time.time()
    assert first.claim("k", now, 60.0, 10.0) is Claim.CLAIMED
    first.release("k", now, False, 60.0)
    assert first.kube.get_lease(dedup_lease_name("k")) is None
    assert second.claim("k", now, 60.0, 10.0) is Claim.CLAIMED


def test_a_dead_replicas_claim_expires_and_exactly_one_takes_it_over(states: Any) -> None:
    dead, *alive = states(4)
    now = time.time()
    assert dead.claim("k", now, 60.0, 1.0) is Claim.CLAIMED  # and then it was killed
    assert alive[0].claim("k", now + 0.5, 60.0, 1.0) is Claim.IN_PROGRESS
    later = now + 1.5
    claims = race([lambda r=r: r.claim("k", later, 60.0, 1.0) for r in alive])
    assert sorted(c.value for c in claims) == ["claimed", "in progress", "in progress"]


def test_expired_markers_are_swept(states: Any) -> None:
    (state,) = states(1)
    now = time.time() - 120
    assert state.claim("old", now, 60.0, 10.0) is Claim.CLAIMED
    state.release("old", now, True, 60.0)
    state.flush()
    assert state.claim("fresh", time.time(), 60.0, 10.0) is Claim.CLAIMED
    assert state.sweep() == 1
    assert state.kube.get_lease(dedup_lease_name("old")) is None
    assert state.kube.get_lease(dedup_lease_name("fresh")) is not None
