"""The network-namespace plumbing on its own: a program inside resolves cluster names from
the namespace's /etc/hosts to our receiver, and we reach a server inside by ``ns_ip``."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Callable

from tests.testbed import procs
from tests.testbed.netns import NetNamespace
from tests.testbed.receiver import Receiver

CLIENT = (
    "import sys, urllib.request as u; "
    "r = u.Request(sys.argv[1], data=b'{}', headers={'Content-Type': 'application/json'}); "
    "print(u.urlopen(r, timeout=5).status)"
)


def test_name_in_namespace_hosts_reaches_receiver(
    netns: Callable[..., NetNamespace], receiver: Callable[..., Receiver]
) -> None:
    namespace = netns(hosts=["fn.ns.svc.cluster.local", "gateway.openfaas"])
    function = receiver(namespace.host_ip)

    for name in ("fn.ns.svc.cluster.local", "gateway.openfaas"):
        result = subprocess.run(
            namespace.exec_argv([sys.executable, "-c", CLIENT,
                                 f"http://{name}:{function.port}/{name}"]),
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "200"

    paths = [(r.path, r.header("Host")) for r in function.wait_for(2)]
    assert paths == [("/fn.ns.svc.cluster.local",
                      f"fn.ns.svc.cluster.local:{function.port}"),
                     ("/gateway.openfaas", f"gateway.openfaas:{function.port}")]


def test_server_inside_namespace_is_reached_at_ns_ip(
    netns: Callable[..., NetNamespace], tmp_path: Path
) -> None:
    namespace = netns()
    port = procs.free_port()
    server = procs.start(
        "http.server",
        namespace.exec_argv([sys.executable, "-m", "http.server", "--bind", namespace.ns_ip,
                             str(port)]),
        tmp_path / "server.log",
    )
    try:
        url = f"http://{namespace.ns_ip}:{port}/"

        def answers() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        procs.wait_until(answers, 15, "http.server answering inside the namespace", server)
    finally:
        server.stop()
