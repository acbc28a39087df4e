"""Acceptance tests of the test bed itself (issue 2): each peer is real and reachable."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.testbed.apiserver import ApiServer
from tests.testbed.kube import Kube

pytestmark = pytest.mark.cluster


def test_service_account_deletes_pod_and_is_denied_secrets(
    apiserver: ApiServer, kube: Kube
) -> None:
    kube.create_pod("alpine", "default")
    account = f"deleter-{kube.namespace}"
    kubeconfig = kube.service_account_with_role(
        account, [{"resources": ["pods"], "verbs": ["get", "delete"]}], namespace="default"
    )
    with apiserver.new_client(kubeconfig) as as_account:
        core = client.CoreV1Api(as_account)
        seen: Any = core.read_namespaced_pod("alpine", "default")
        assert seen.metadata.name == "alpine"

        core.delete_namespaced_pod("alpine", "default")

        assert kube.read_pod("alpine", "default") is None
        with pytest.raises(ApiException) as denied:
            core.list_namespaced_secret("default")
        assert denied.value.status == 403
        with pytest.raises(ApiException) as denied_one:
            core.read_namespaced_secret("anything", "default")
        assert denied_one.value.status == 403
