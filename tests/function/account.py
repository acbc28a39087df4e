"""The function's login with exactly the RBAC ``check-policy --rbac`` generates for a policy:
its ClusterRole, and the Role for its guard state in a home namespace of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import yaml

from function.cli import cluster_role, guard_role
from function.policy import load_default, parse_policy
from tests.testbed.kube import Kube

ACCOUNT = "falco-responder"


def grant_guard_state(kube: Kube, home: str, account: str = ACCOUNT) -> None:
    """The generated Role for the shared guard state (Leases in ``home``), bound."""
    kube.create_role("falco-responder-guards", guard_role(home)["rules"], home)
    kube.bind_role("falco-responder-guards", account, home)


def generated_account(kube: Kube, policy_text: str, role: str) -> Tuple[str, Path]:
    """(home namespace, kubeconfig) of a ServiceAccount bound to the ClusterRole generated
    for ``policy_text`` (the embedded default when empty) and to the guard-state Role."""
    policy = parse_policy(policy_text, role) if policy_text else load_default()
    kube.create_cluster_role(role, yaml.safe_load(cluster_role(policy, role))["rules"])
    home = kube.create_namespace(prefix="responder")
    kube.create_service_account(ACCOUNT, home)
    kube.bind_cluster_role(role, ACCOUNT, account_namespace=home)
    grant_guard_state(kube, home)
    return home, kube.token_kubeconfig(ACCOUNT, home)
