"""Fixtures for adapter tests: the function's identity exactly as deploy/ ships it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest

from tests.adapters.runtimes import Server
from tests.testbed.kube import Kube

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def deployed_env(kube: Kube) -> Dict[str, str]:
    """Environment for a runtime server that logs in as deploy/rbac's ServiceAccount
    (falco-responder/falco-responder, bound to the committed ClusterRole)."""
    for manifest in sorted((REPO / "deploy" / "rbac").glob("*.yaml")):
        kube.apply_manifest(manifest)
    kubeconfig = kube.token_kubeconfig("falco-responder", "falco-responder")
    return {"KUBECONFIG": str(kubeconfig), "FALCO_RESPONDER_CLUSTER": "auto",
            "POD_NAMESPACE": "falco-responder"}


@pytest.fixture
def alert_time() -> Callable[[], str]:
    """Now, as Falco writes times (the stale-target guard skips pods newer than the alert)."""
    def now() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(time.time() + 1))
    return now


@pytest.fixture
def servers() -> Iterator[List[Server]]:
    """Runtime servers a test started: every one is stopped when the test ends."""
    started: List[Server] = []
    yield started
    for server in started:
        server.stop()
