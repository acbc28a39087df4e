"""Whether the function's own account may do what its policy needs, checked at start.

A missing permission would otherwise show only when the first alert fails with 403. At
start the engine asks the API server (one SelfSubjectAccessReview per verb, resource and
namespace scope, all at once from a few threads, in the background so start-up does not
wait on the network) and readiness and the log then name what is missing. A rule limited
to exact namespaces (``match.namespaces.include`` without globs) is checked in those
namespaces, every other rule in every namespace; the shared guard state in the function's
own namespace.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Set, Tuple

from .actions import BASE_RBAC, RbacRule
from .errors import ResponderError
from .policy import Policy, Rule

if TYPE_CHECKING:
    from .kube import Kube

log = logging.getLogger("function")

# What the Lease-backed guard state does (function.lease_state).
LEASE_RBAC = RbacRule("coordination.k8s.io", ("leases",),
                      ("create", "delete", "get", "list", "update"))


@dataclass(frozen=True)
class Need:
    verb: str
    group: str
    resource: str
    namespace: str  # "" is every namespace

    def __str__(self) -> str:
        group = f".{self.group}" if self.group else ""
        where = f"namespace {self.namespace}" if self.namespace else "every namespace"
        return f"{self.verb} {self.resource}{group} in {where}"


def _scopes(rule: Rule) -> Tuple[str, ...]:
    include = rule.match.namespaces_include
    if include is None or include.pattern is not None:
        return ("",)
    return tuple(sorted(include.exact))


def needs(policy: Policy, own_namespace: str, shared_state: bool) -> List[Need]:
    found: Set[Need] = set()
    for rule in policy.rules:
        grants = list(BASE_RBAC)
        if policy.record_events:
            grants.append(RbacRule("", ("events",), ("create",)))
        for spec in rule.actions:
            grants.extend(spec.definition.rbac_for(spec.params))
        for namespace in _scopes(rule):
            found.update(Need(v, g.api_group, r, namespace)
                         for g in grants for r in g.resources for v in g.verbs)
    if shared_state:
        found.update(Need(v, LEASE_RBAC.api_group, r, own_namespace)
                     for r in LEASE_RBAC.resources for v in LEASE_RBAC.verbs)
    return sorted(found, key=lambda n: (n.namespace, n.group, n.resource, n.verb))


class PermissionCheck:
    """The start-up check, run once in the background; :meth:`problem` says what is
    missing (or None: all there, not checked yet, or not checkable)."""

    def __init__(self, policy: Policy, kube: Optional[Kube], state_kind: str) -> None:
        self.kube = kube
        self.needs = needs(policy, kube.namespace if kube else "",
                           state_kind == "kubernetes") if kube else []
        self.missing: Optional[List[Need]] = None
        self.seconds: Optional[float] = None
        self.error: Optional[str] = None
        self._done = threading.Event()

    def start(self) -> None:
        if self.kube is None:
            self._done.set()
            return
        threading.Thread(target=self.run, name="permission-check", daemon=True).start()

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self._done.wait(timeout)

    def run(self) -> None:
        kube = self.kube
        assert kube is not None
        started = time.perf_counter()
        try:
            with ThreadPoolExecutor(min(8, max(1, len(self.needs)))) as pool:
                allowed = list(pool.map(lambda n: kube.may(
                    n.verb, n.group, n.resource, n.namespace), self.needs))
            self.missing = [n for n, ok in zip(self.needs, allowed) if not ok]
        except ResponderError as e:
            self.error = e.message
        self.seconds = time.perf_counter() - started
        line = {"message": "permissions checked", "checked": len(self.needs),
                "missing": [str(n) for n in self.missing or ()],
                "ms": round(self.seconds * 1000, 1)}
        if self.error:
            line.update(message="permissions not checked", error=self.error)
        log.log(logging.ERROR if self.missing else logging.INFO, json.dumps(line))
        self._done.set()

    def problem(self) -> Optional[str]:
        if not self.missing:
            return None
        return "missing permissions: " + "; ".join(str(n) for n in self.missing)
