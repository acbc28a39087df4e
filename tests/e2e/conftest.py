"""Fixtures of the end-to-end tier: the system of tests/e2e/system.py, deployed once per
session on the test bed's cluster, and the alerts and Falcosidekick that drive it."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator

import pytest

from tests.testbed.cluster import Cluster
from tests.testbed.knative_eventing import Eventing
from tests.testbed.netns import Network

from .system import NAMESPACE, REPO, Responder, deploy_responder, shell_alert


@pytest.fixture(scope="session")
def responder(cluster: Cluster, eventing: Eventing, session_network: Network,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Responder]:
    """The function deployed per the README, with no Trigger yet."""
    deployed = deploy_responder(cluster, eventing, session_network,
                                tmp_path_factory.mktemp("responder"))
    try:
        yield deployed
    finally:
        deployed.process.stop()


@pytest.fixture(scope="session")
def shipped_trigger(responder: Responder, eventing: Eventing) -> Dict[str, Any]:
    """deploy/knative/trigger.yaml, applied as shipped, once Ready."""
    (trigger,) = responder.kube.apply_manifest(REPO / "deploy" / "knative" / "trigger.yaml")
    return eventing.wait_ready("triggers", NAMESPACE, trigger["metadata"]["name"])


@pytest.fixture
def alert() -> Callable[[str, str], Dict[str, Any]]:
    """``alert(namespace, pod)``: Falco's shell alert for that pod, timed now."""
    return shell_alert
