"""The only module that talks to the Kubernetes API.

Reads return plain dicts (the pod's JSON), parsed with ``_preload_content=False``:
the client's model classes cost milliseconds per pod and the engine needs a handful of
fields. Every call has a timeout and bounded retries for failures a retry could fix
(connection errors, timeouts, 429, 5xx); API status codes become the typed errors of
:mod:`function.errors` here and nowhere else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import urllib3
from kubernetes import client, config

from .errors import (
    Conflict,
    KubeError,
    NotFound,
    SettingsError,
    TransientKubeError,
    kube_error,
)
from .kube_rest import Rest, path
from .settings import Settings

log = logging.getLogger(__name__)

RETRYABLE = frozenset({429, 500, 502, 503, 504})
_WORKLOADS = {
    "ReplicaSet": "replicasets",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
}


@dataclass(frozen=True)
class Retry:
    attempts: int = 3
    budget: float = 5.0
    timeout: float = 2.0
    first_delay: float = 0.1


def connect(settings: Settings) -> Tuple[Optional[Kube], str]:
    """One client per process: the in-cluster account, else a kubeconfig, else none."""
    if settings.cluster == "off":
        return None, "no cluster configured: FALCO_RESPONDER_CLUSTER=off"
    cfg = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        where = "in-cluster service account"
        load = lambda: config.load_incluster_config(client_configuration=cfg)  # noqa: E731
    else:
        path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        path = path.split(os.pathsep)[0]
        if not os.path.isfile(path):
            return None, "no cluster configured: no in-cluster account, no kubeconfig"
        where = f"kubeconfig {path}"
        load = lambda: config.load_kube_config(  # noqa: E731
            config_file=path, client_configuration=cfg)
    try:
        load()
    except Exception as e:  # the client raises ConfigException, OSError, ValueError, ...
        raise SettingsError(f"cannot use the {where}: {e}") from e
    # Our own retry loop is bounded in time; urllib3's would add unbounded waits to it.
    cfg.retries = False
    cfg.connection_pool_maxsize = 16
    retry = Retry(settings.kube_attempts, settings.kube_retry_budget, settings.kube_timeout)
    return Kube(client.ApiClient(cfg), retry), where


class Kube:
    def __init__(self, api_client: Any, retry: Retry = Retry()) -> None:
        self.api_client = api_client
        self.retry = retry
        # Requests by path: the generated API classes cost 0.4-0.6 s of start-up.
        self.rest = Rest(api_client)

    # -- the retry loop ----------------------------------------------------------------

    def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.retry.budget
        delay = self.retry.first_delay
        attempt = 0
        while True:
            attempt += 1
            timeout = max(0.05, min(self.retry.timeout, deadline - time.monotonic()))
            try:
                # A (connect, read) pair: older clients silently ignore a bare float.
                response = method(*args, _request_timeout=(timeout, timeout),
                                  _preload_content=False, **kwargs)
                return json.loads(response.data) if response.data else None
            except client.ApiException as e:
                if e.status not in RETRYABLE:
                    raise kube_error(e.status, f"{what}: {_reason(e)}") from e
                failure: Exception = e
                detail = f"{e.status} {_reason(e)}"
            except (urllib3.exceptions.HTTPError, OSError) as e:
                failure, detail = e, f"{type(e).__name__}: {e}"
            if attempt >= self.retry.attempts or time.monotonic() + delay >= deadline:
                raise TransientKubeError(
                    f"{what}: failed after {attempt} attempt(s): {detail}") from failure
            log.info("retrying %s after %s (attempt %d)", what, detail, attempt)
            time.sleep(delay)
            delay *= 3

    # -- reads -------------------------------------------------------------------------

    def get_pod(self, namespace: str, name: str) -> Optional[Dict[str, Any]]:
        return self._get(f"get pod {namespace}/{name}", self.rest.get,
                         path("namespaces", namespace, "pods", name))

    def get_namespace(self, name: str) -> Optional[Dict[str, Any]]:
        return self._get(f"get namespace {name}", self.rest.get, path("namespaces", name))

    def get_workload(self, kind: str, namespace: str, name: str) -> Optional[Dict[str, Any]]:
        return self._get(f"get {kind} {namespace}/{name}", self.rest.get,
                         path("namespaces", namespace, _WORKLOADS[kind], name, group="apps"))

    def _get(self, what: str, method: Callable[..., Any], *args: Any) -> Optional[Dict[str, Any]]:
        try:
            result: Dict[str, Any] = self._call(what, method, *args)
            return result
        except NotFound:
            return None

    # -- writes ------------------------------------------------------------------------

    def delete_pod(self, namespace: str, name: str, uid: Optional[str],
                   grace_period_seconds: Optional[int]) -> bool:
        """Delete; False when the pod was already gone. A UID mismatch raises Conflict."""
        body: Dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid:
            body["preconditions"] = {"uid": uid}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        try:
            self._call(f"delete pod {namespace}/{name}", self.rest.delete,
                       path("namespaces", namespace, "pods", name), body=body)
            return True
        except NotFound:
            return False

    def evict_pod(self, namespace: str, name: str, uid: Optional[str],
                  grace_period_seconds: Optional[int]) -> Tuple[str, str]:
        """('evicted'|'gone'|'blocked', detail). A PDB refusal is an answer, not an error."""
        options: Dict[str, Any] = {}
        if uid:
            options["preconditions"] = {"uid": uid}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        body: Any = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": name, "namespace": namespace}, "deleteOptions": options}
        try:
            # Not through _call: for evictions 429 means "a PodDisruptionBudget says no".
            self.rest.post(path("namespaces", namespace, "pods", name, "eviction"), body,
                           _request_timeout=(self.retry.timeout, self.retry.timeout))
            return "evicted", ""
        except client.ApiException as e:
            if e.status == 429 and _is_disruption_budget(e):
                return "blocked", _reason(e)
            if e.status == 404:
                return "gone", ""
            if e.status in RETRYABLE:
                raise TransientKubeError(f"evict pod {namespace}/{name}: {e.status} "
                                         f"{_reason(e)}") from e
            raise kube_error(e.status, f"evict pod {namespace}/{name}: {_reason(e)}") from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise TransientKubeError(f"evict pod {namespace}/{name}: {e}") from e

    def patch_pod_metadata(self, namespace: str, name: str, uid: Optional[str],
                           labels: Optional[Mapping[str, Optional[str]]] = None,
                           annotations: Optional[Mapping[str, Optional[str]]] = None) -> bool:
        """Merge-patch labels/annotations (None removes a key); False when the pod is gone."""
        metadata: Dict[str, Any] = {}
        if uid:
            # A UID in the patch is checked by the API server: a replacement pod is refused.
            metadata["uid"] = uid
        if labels:
            metadata["labels"] = dict(labels)
        if annotations:
            metadata["annotations"] = dict(annotations)
        try:
            self._call(f"patch pod {namespace}/{name}", self.rest.patch,
                       path("namespaces", namespace, "pods", name), {"metadata": metadata})
            return True
        except NotFound:
            return False
        except KubeError as e:
            # The API server refuses a UID change as 422 "field is immutable": another pod.
            if e.code == 422 and "metadata.uid" in e.message:
                raise Conflict(e.message, code=409) from e
            raise

    def apply_network_policy(self, namespace: str, body: Dict[str, Any]) -> str:
        name = body["metadata"]["name"]
        what = f"networkpolicy {namespace}/{name}"
        policies = ("namespaces", namespace, "networkpolicies")
        group = "networking.k8s.io"
        try:
            self._call(f"create {what}", self.rest.post, path(*policies, group=group), body)
            return "created"
        except Conflict:
            # Replace, never patch: a patch would merge matchLabels and narrow the selector,
            # releasing the pods isolated under the old one.
            current = self._call(f"get {what}", self.rest.get,
                                 path(*policies, name, group=group))
            replacement = dict(body, metadata=dict(
                body["metadata"], resourceVersion=current["metadata"]["resourceVersion"]))
            self._call(f"replace {what}", self.rest.put, path(*policies, name, group=group),
                       replacement)
            return "updated"

    def create_event(self, namespace: str, pod: Mapping[str, Any], reason: str, message: str,
                     action: str, key: str) -> None:
        """One Event per ``key``: its name derives from it, so a retried create (after a
        timeout that did reach the server) finds it there instead of adding a second."""
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{pod['name'][:200]}.falco-responder.{digest}",
                         "namespace": namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": namespace,
                               "name": pod["name"], "uid": pod.get("uid") or ""},
            "reason": reason, "message": message[:1024], "type": "Warning",
            "action": action,
            "source": {"component": "falco-responder"},
            "reportingComponent": "falco-responder",
            "reportingInstance": os.environ.get("POD_NAME") or "falco-responder",
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        # A Conflict means recorded already, by an attempt whose answer was lost.
        with contextlib.suppress(Conflict):
            self._call(f"create event for pod {namespace}/{pod['name']}",
                       self.rest.post, path("namespaces", namespace, "events"), body)


def _is_disruption_budget(e: Any) -> bool:
    """A 429 from the Eviction API is a PDB refusal only when it says so; API throttling
    answers 429 too, and that one a retry can fix."""
    try:
        status = json.loads(e.body)
    except (TypeError, ValueError):
        return False
    causes = (status.get("details") or {}).get("causes") or []
    if any(c.get("type") == "DisruptionBudget" for c in causes if isinstance(c, dict)):
        return True
    return "disruption budget" in str(status.get("message", "")).lower()


def _reason(e: Any) -> str:
    try:
        status = json.loads(e.body)
        return str(status.get("message") or e.reason)
    except (TypeError, ValueError, AttributeError):
        return str(getattr(e, "reason", "") or e)


__all__ = ["Kube", "KubeError", "Retry", "connect"]
