"""Write kubeconfig files, for the admin and for ServiceAccount tokens.

Code under test reads its credentials the way it would in a cluster it was deployed to; a
kubeconfig file is the one form every Kubernetes client library reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict


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
