"""The function may scale out: nothing pins it to one replica any more."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_func_yaml_does_not_pin_one_replica() -> None:
    """Dedup and the blast radius are shared through the cluster (tests/function/
    test_replicas.py), so Knative may run as many replicas as the load asks for."""
    func = yaml.safe_load((REPO / "func.yaml").read_text())
    annotations = func["deploy"].get("annotations") or {}
    assert "autoscaling.knative.dev/max-scale" not in annotations
