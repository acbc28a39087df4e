"""Start the real Falcosidekick with the outputs a test needs.

The configuration is written to a file read with ``-c`` (YAML; JSON is valid YAML), using
Falcosidekick's own keys, e.g. ``{"webhook": {"address": url, "customheaders": {...}}}``,
``{"cloudevents": {"address": url}}``, ``{"kubeless": {"function": ..., "namespace": ...,
"port": ...}}``, ``{"openfaas": {"functionname": ..., "functionnamespace": ...,
"gatewayport": ...}}``. Listening address and port are filled in here.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, ContextManager, Mapping, Optional, Union

from tests.testbed import peers, procs
from tests.testbed.netns import Host


class Sidekick:
    """A running Falcosidekick: ``url`` is where it listens (``POST /`` takes alerts),
    inside ``host`` when it runs on a test network."""

    def __init__(self, process: procs.Process, url: str, config_path: Path,
                 host: Optional[Host] = None) -> None:
        self.process = process
        self.url = url
        self.config_path = config_path
        self.host = host

    def _inside(self) -> ContextManager[None]:
        return self.host.entered() if self.host is not None else contextlib.nullcontext()

    def _post(self, path: str, body: bytes, timeout: float = 30.0) -> int:
        request = urllib.request.Request(
            f"{self.url}{path}", data=body, method="POST",
            headers={"Content-Type": "application/json"},
        )
        with self._inside(), urllib.request.urlopen(request, timeout=timeout) as response:
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
            with self._inside(), urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:
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
    host: Optional[Host] = None,
    timeout: float = 30.0,
) -> Sidekick:
    """Start Falcosidekick with ``config`` and wait until ``GET /ping`` answers.

    On a ``host`` it runs inside that namespace (so the network's cluster names resolve)
    and listens on its address, on Falcosidekick's own port 2801; otherwise on a free
    loopback port.
    """
    binary = peers.binary("falcosidekick")
    workdir.mkdir(parents=True, exist_ok=True)
    address, port = (host.ip, 2801) if host is not None else ("127.0.0.1", procs.free_port())
    full = {"listenaddress": address, "listenport": port, "debug": True, **config}
    config_path = workdir / "falcosidekick.yaml"
    config_path.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    argv = [str(binary), "-c", str(config_path)]
    if host is not None:
        argv = host.exec_argv(argv)
    process = procs.start("falcosidekick", argv, workdir / "falcosidekick.log", cwd=workdir)
    sidekick = Sidekick(process, f"http://{address}:{port}", config_path, host)
    try:
        procs.wait_until(sidekick.ready, timeout, "Falcosidekick answering /ping", process)
    except BaseException:
        sidekick.stop()
        raise
    return sidekick
