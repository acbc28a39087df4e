"""`make demo` is the blog, for real: every hop is seen and printed, then the Event."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_make_demo_shows_every_hop_from_falcosidekick_to_the_replacement_pod() -> None:
    done = subprocess.run([sys.executable, "-m", "scripts.demo"], cwd=REPO,
                          capture_output=True, text=True, timeout=400)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    hops = re.findall(r"^\+\s*[\d.]+ ms  (.*)$", out, re.MULTILINE)
    assert len(hops) == 6, out[-3000:]
    assert hops[0].startswith("Falcosidekick accepted the alert (HTTP 200)")
    assert hops[1].startswith("Trigger falco-responder delivered it")
    assert any(h.startswith("the function decided: HTTP 200, terminate done: pod deleted")
               for h in hops)
    assert any(re.match(r"pod/alpine-\S+ deleted", h) for h in hops)
    assert any(re.match(r"the Deployment's replacement pod/alpine-\S+ is Running", h)
               for h in hops)
    assert any(h.startswith("the Broker answered Falcosidekick") for h in hops)
    assert re.search(r"FalcoResponse  pod/alpine-\S+  Falco rule 'Terminal shell in container'",
                     out)


def test_make_demo_fails_naming_the_component_that_cannot_start(tmp_path: Path) -> None:
    # An empty cache: no peer is built there, so the very first component cannot start.
    env = {"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "scripts.demo"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "the demo cannot run: the cluster did not start:" in done.stderr
    assert "is not built" in done.stderr and "python -m tests.testbed.build" in done.stderr
