from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.cluster
def test_make_demo_kills_the_pod_and_shows_the_decision_and_the_event() -> None:
    done = subprocess.run([sys.executable, "-m", "scripts.demo"], cwd=REPO,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert 'pods "alpine" not found' in done.stdout
    assert '"status": "done"' in done.stdout and '"reason": "pod deleted"' in done.stdout
    assert "FalcoResponse  pod/alpine  Falco rule 'Terminal shell in container'" in done.stdout
