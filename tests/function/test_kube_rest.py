"""Requests by path on the client's pool: the paths, and a start that never loads the
generated API classes (0.4-0.6 s of the cold start)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from function.kube_rest import Rest, path
from tests.testbed.apiserver import ApiServer
from tests.testbed.kube import Kube

from .local_server import REPO


def test_paths_quote_every_segment() -> None:
    assert path("namespaces", "default", "pods", "a") == "/api/v1/namespaces/default/pods/a"
    assert path("namespaces", "x/../y", "pods", "a?b") == \
        "/api/v1/namespaces/x%2F..%2Fy/pods/a%3Fb"
    assert path("namespaces", "n", "deployments", "d", group="apps") == \
        "/apis/apps/v1/namespaces/n/deployments/d"
    assert path("namespaces", "n", "leases", group="coordination.k8s.io",
                query={"labelSelector": "app=x,tier in (a b)"}) == \
        "/apis/coordination.k8s.io/v1/namespaces/n/leases?labelSelector=app%3Dx%2Ctier+in+%28a+b%29"


@pytest.mark.cluster
def test_starting_with_a_cluster_loads_no_generated_api_class(apiserver: ApiServer) -> None:
    # After the start-up permission check (background requests) is done too; and so the
    # process never exits while that thread still logs.
    code = ("import sys; from function import runtime; ok, why = runtime.start(); "
            "assert ok and 'kubeconfig' in why, why; "
            "assert runtime.engine().permissions.wait(30), 'permission check unfinished'; "
            "print(sorted(m for m in sys.modules if m.startswith('kubernetes.client.api.')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent",
                                          "KUBECONFIG": str(apiserver.kubeconfig)})
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert done.stdout.strip() == "[]", (done.stdout, done.stderr)


@pytest.mark.cluster
def test_requests_by_path_against_the_api_server(kube: Kube, apiserver: ApiServer) -> None:
    from kubernetes.client.exceptions import ApiException

    kube.create_standalone_pod("picked", labels={"app": "x"})
    kube.create_standalone_pod("other", labels={"app": "y"})
    rest = Rest(apiserver.api_client)
    listed = json.loads(rest.get(path("namespaces", kube.namespace, "pods",
                                      query={"labelSelector": "app=x"})).data)
    assert [p["metadata"]["name"] for p in listed["items"]] == ["picked"]
    with pytest.raises(ApiException) as missing:
        rest.get(path("namespaces", kube.namespace, "pods", "nope"))
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["reason"] == "NotFound"
