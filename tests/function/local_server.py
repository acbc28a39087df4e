"""`python -m function serve` started as `make run` starts it, and its decision log read back."""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from tests.testbed import procs

from .raw_http import exchange, post_bytes
from .wire import load_json

REPO = Path(__file__).resolve().parents[2]
_sentinels = itertools.count()


class LocalServer:
    def __init__(self, workdir: Path, env: Optional[Dict[str, str]] = None) -> None:
        self.port = procs.free_port()
        self.log_path = workdir / f"serve-{self.port}.log"
        base = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent",
                "FALCO_RESPONDER_LOG_LEVEL": "INFO"}
        self.process = procs.start(
            "function-serve", [sys.executable, "-m", "function", "serve", "--port",
                               str(self.port)],
            self.log_path, {**base, **(env or {})}, REPO)
        procs.wait_until(self._listening, 30, "the local server listening", self.process)
        self._seen = 0

    def _listening(self) -> bool:
        return '"listening"' in self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.process.stop()

    def log_lines(self) -> List[str]:
        """The lines written whole so far (the last may still be being written)."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text[:text.rfind("\n") + 1].splitlines()

    def decisions(self) -> List[Dict[str, Any]]:
        """Every decision (or error) logged since the last call, up to a sentinel alert sent
        now: the log is written by its own thread, so lines before the sentinel's are all
        there."""
        rule = f"sentinel {os.getpid()}-{next(_sentinels)}"
        alert = load_json("forwarded", "terminal_shell_in_container.falco-0.37-ovh-k8s"
                                       ".forwarded.json")
        alert["rule"] = rule
        reply = exchange(self.port, post_bytes(json.dumps(alert).encode()))
        assert reply is not None and reply.status == 200, reply
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [json.loads(line) for line in self.log_lines()
                     if line.startswith('{"status":')]
            rules = [(d.get("alert") or {}).get("rule") for d in found]
            if rule in rules:
                new, self._seen = found[self._seen:], len(found)
                return [d for d in new if not str(
                    (d.get("alert") or {}).get("rule", "")).startswith("sentinel ")]
            time.sleep(0.02)
        raise AssertionError(f"the sentinel alert was not logged: {self.log_lines()[-5:]}")
