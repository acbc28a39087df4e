"""Requests by path on the client's pool: the paths, and a start that never loads the
generated API classes (0.4-0.6 s of the cold start)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from function.kube_rest import path
from tests.testbed.apiserver import ApiServer

from .local_server import REPO


def test_paths_quote_every_segment() -> None:
    assert path("namespaces", "default", "pods", "a") == "/api/v1/namespaces/default/pods/a"
    assert path("namespaces", "x/../y", "pods", "a?b") == \
        "/api/v1/namespaces/x%2F..%2Fy/pods/a%3Fb"
    assert path("namespaces", "n", "deployments", "d", group="apps") == \
        "/apis/apps/v1/namespaces/n/deployments/d"


@pytest.mark.cluster
def test_starting_with_a_cluster_loads_no_generated_api_class(apiserver: ApiServer) -> None:
    code = ("import sys; from function import runtime; ok, why = runtime.start(); "
            "assert ok and 'kubeconfig' in why, why; "
            "print(sorted(m for m in sys.modules if m.startswith('kubernetes.client.api.')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent",
                                          "KUBECONFIG": str(apiserver.kubeconfig)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
