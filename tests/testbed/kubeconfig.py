"""Write kubeconfig files, for the admin and for ServiceAccount tokens.

Code under test reads its credentials the way it would in a cluster it was deployed to; a
kubeconfig file is the one form every Kubernetes client library reads.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict

import yaml


def write_kubeconfig(path: Path, server: str, ca_file: Path, user: Dict[str, str],
                     namespace: str = "default") -> Path:
    """Write a one-context kubeconfig (JSON, which YAML loaders read) and return its path.

    ``user`` is the kubeconfig ``user`` entry, e.g. ``{"token": ...}`` or
    ``{"client-certificate": ..., "client-key": ...}``.
    """
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "testbed",
             "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": "user", "user": user}],
        "contexts": [
            {"name": "testbed",
             "context": {"cluster": "testbed", "user": "user", "namespace": namespace}}
        ],
        "current-context": "testbed",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def self_contained(path: Path, target: Path) -> Path:
    """The kubeconfig at ``path`` with every file it names inlined (``certificate-authority``
    becomes ``certificate-authority-data``, ...), written to ``target`` readable by all, as a
    Secret volume would carry it to a process that cannot reach the test's folders."""
    config: Dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = [*(c["cluster"] for c in config.get("clusters") or ()),
               *(u["user"] for u in config.get("users") or ())]
    for entry in entries:
        for key in ("certificate-authority", "client-certificate", "client-key"):
            if key in entry:
                data = Path(entry.pop(key)).read_bytes()
                entry[f"{key}-data"] = base64.b64encode(data).decode("ascii")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    target.chmod(0o644)
    return target
