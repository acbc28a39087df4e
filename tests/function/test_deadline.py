"""Lost answers and the one deadline per alert, on the real API server.

The API server cannot be made to answer late on demand, so these tests put a small
delaying proxy (tests/function/delaying_proxy.py) between the function and the real API
server: every request still reaches the real server and is carried out there; only the
answers of the chosen methods are held back. Nothing answers in the server's place.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from function import Engine, Settings
from function.cli import cluster_role
from function.policy import parse_policy
from tests.testbed.apiserver import ApiServer
from tests.testbed.kube import Kube
from tests.testbed.kubeconfig import write_kubeconfig

from .account import grant_guard_state
from .actions.conftest import events_for, post, shell_alert_for
from .delaying_proxy import DelayingProxy
from .replicas import terminate_only

pytestmark = pytest.mark.cluster

ONE_PER_MINUTE = terminate_only(1)


@pytest.fixture
def proxy(apiserver: ApiServer) -> Iterator[DelayingProxy]:
    server = DelayingProxy(apiserver.host, apiserver.ca_file, apiserver.certs.serving_cert,
                           apiserver.certs.serving_key)
    yield server
    server.close()


def engine_behind(proxy: DelayingProxy, kube: Kube, tmp_path: Path, policy_text: str,
                  monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Engine:
    """The function as the generated RBAC's ServiceAccount, talking through ``proxy``."""
    policy = parse_policy(policy_text, "test")
    kube.create_cluster_role(f"responder-{kube.namespace}",
                             yaml.safe_load(cluster_role(policy))["rules"])
    home = kube.create_namespace(prefix="responder")
    kube.create_service_account("falco-responder", home)
    kube.bind_cluster_role(f"responder-{kube.namespace}", "falco-responder",
                           account_namespace=home)
    grant_guard_state(kube, home)
    kubeconfig = write_kubeconfig(tmp_path / "proxy.kubeconfig", proxy.url,
                                  kube.server.ca_file,
                                  {"token": kube.token("falco-responder", home)}, home)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(policy_text)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return Engine.from_settings(Settings(policy_file=str(policy_file), pod_namespace=home,
                                         **settings))


def test_a_delete_whose_answer_is_lost_is_found_out_and_counted(
        kube: Kube, proxy: DelayingProxy, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """DELETE answers held 3 s, calls time out after 1 s: the pod is re-read, found gone,
    and the deletion is reported, recorded and counted; a retry says it is done already,
    and the limit of 1 a minute holds."""
    engine = engine_behind(proxy, kube, tmp_path, ONE_PER_MINUTE, monkeypatch,
                           kube_timeout=1.0)
    for name in ("first", "second"):
        kube.create_standalone_pod(name)
    proxy.hold(3.0, methods={"DELETE"})
    alert = shell_alert_for(kube.namespace, "first")
    response = post(engine, alert)
    assert response.status == 200, response.body
    (action,) = response.body["actions"]
    assert (action["status"], action["reason"]) == (
        "done", "pod deleted (its answer was lost; the pod, read again, is gone)")
    assert kube.read_pod("first") is None
    deletes = [p for m, p in proxy.seen if m == "DELETE" and "/pods/" in p]
    assert len(deletes) == 1  # sent once, not again blindly
    (event,) = events_for(kube, "first")
    assert "terminate: pod deleted" in event.message

    (again,) = post(engine, alert).body["actions"]
    assert (again["status"], again["reason"]) == (
        "skipped", "duplicate: already acted within the last 60s")
    (other,) = post(engine, shell_alert_for(kube.namespace, "second")).body["actions"]
    assert (other["status"], other["reason"]) == (
        "skipped", "rate limit: 1 destructive actions per 60s reached")
    assert kube.read_pod("second") is not None


def test_every_call_of_an_alert_shares_one_deadline(
        kube: Kube, proxy: DelayingProxy, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer held 1.8 s: the three rounds of calls before the DELETE (the reads
    alongside the dedup claim, then the rate-limit slot's read and its write) need 5.4 s,
    more than the alert's 5 s although each is within its own budget, so the alert ends
    with 503 at the deadline, saying what happened, and the DELETE is never sent. (At
    1.6 s the rounds took 4.8 s, and whether the DELETE went out with 0.2 s left, its
    answer then lost, was a race.)"""
    engine = engine_behind(proxy, kube, tmp_path, ONE_PER_MINUTE, monkeypatch)
    kube.create_standalone_pod("slow")
    proxy.hold(1.8)
    started = time.monotonic()
    response = post(engine, shell_alert_for(kube.namespace, "slow"))
    elapsed = time.monotonic() - started
    assert response.status == 503, response.body
    assert elapsed < 5.0 + 0.5 + 0.3, elapsed  # the deadline, the cleanup's grace, slack
    assert response.body["error"]["type"] in ("deadline_exceeded", "kubernetes_unavailable")
    decision = response.body["decision"]
    (action,) = decision["actions"]
    assert action["status"] == "failed" and action["reason"], action
    assert decision["message"].endswith("; retry")
    assert not [p for m, p in proxy.seen if m == "DELETE" and "/pods/" in p]
    proxy.hold(0.0)
    assert kube.read_pod("slow") is not None


def test_the_deadline_is_a_setting_with_a_clear_error() -> None:
    from function.errors import SettingsError

    assert Settings.from_env({"FALCO_RESPONDER_ALERT_DEADLINE": "2.5"}).alert_deadline == 2.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SettingsError, match="FALCO_RESPONDER_ALERT_DEADLINE"):
            Settings.from_env({"FALCO_RESPONDER_ALERT_DEADLINE": bad})
