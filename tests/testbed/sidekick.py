"""Start the real Falcosidekick with the outputs a test needs.

The configuration is written to a file read with ``-c`` (YAML; JSON is valid YAML), using
Falcosidekick's own keys, e.g. ``{"webhook": {"address": url, "customheaders": {...}}}``,
``{"cloudevents": {"address": url}}``, ``{"kubeless": {"function": ..., "namespace": ...,
"port": ...}}``, ``{"openfaas": {"functionname": ..., "functionnamespace": ...,
"gatewayport": ...}}``. Listening address and port are filled in here.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from tests.testbed import peers, procs
from tests.testbed.netns import NetNamespace


class Sidekick:
    """A running Falcosidekick: ``url`` is where it listens (``POST /`` takes alerts)."""

    def __init__(self, process: procs.Process, url: str, config_path: Path) -> None:
        self.process = process
        self.url = url
        self.config_path = config_path

    def _post(self, path: str, body: bytes) -> int:
        request = urllib.request.Request(
            f"{self.url}{path}", data=body, method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)

    def post_test(self) -> int:
        """``POST /test``: Falcosidekick sends its test event to every enabled output."""
        return self._post("/test", b"")

    def post_alert(self, alert: Union[Mapping[str, Any], bytes]) -> int:
        """``POST /`` with a Falco alert (a dict, or the raw JSON bytes)."""
        body = alert if isinstance(alert, bytes) else json.dumps(alert).encode()
        return self._post("/", body)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines)

    def stop(self) -> None:
        self.process.stop()


def start_falcosidekick(
    workdir: Path,
    config: Mapping[str, Any],
    netns: Optional[NetNamespace] = None,
    timeout: float = 30.0,
) -> Sidekick:
    """Start Falcosidekick with ``config`` and wait until ``GET /ping`` answers.

    With ``netns`` it runs inside that namespace (so its /etc/hosts applies) and listens on
    the namespace's address; otherwise on 127.0.0.1. A free port is chosen in both cases.
    """
    binary = peers.binary("falcosidekick")
    workdir.mkdir(parents=True, exist_ok=True)
    host = netns.ns_ip if netns is not None else "127.0.0.1"
    port = procs.free_port()  # free here; a fresh namespace has no listeners at all
    full = {"listenaddress": host, "listenport": port, "debug": True, **config}
    config_path = workdir / "falcosidekick.yaml"
    config_path.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    argv = [str(binary), "-c", str(config_path)]
    if netns is not None:
        argv = netns.exec_argv(argv)
    process = procs.start("falcosidekick", argv, workdir / "falcosidekick.log", cwd=workdir)
    sidekick = Sidekick(process, f"http://{host}:{port}", config_path)
    try:
        procs.wait_until(sidekick.ready, timeout, "Falcosidekick answering /ping", process)
    except BaseException:
        sidekick.stop()
        raise
    return sidekick
