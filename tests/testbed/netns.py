"""Network namespaces in which a peer resolves cluster DNS names to this test's receiver.

Falcosidekick's Kubeless and OpenFaaS outputs call hard-coded names
(``FN.NS.svc.cluster.local:PORT``, ``gateway.openfaas:8080``). A namespace made here gets a
veth pair to the test's own namespace, addresses in a private /30, and an
``/etc/netns/NAME/hosts`` that maps those names to the host-side address, which
``ip netns exec`` bind-mounts over ``/etc/hosts`` for the program it runs. Nothing outside
the two ends of that veth pair is ever addressed. Needs root (CI and developers run as root).
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

NETNS_ETC = Path("/etc/netns")
#: Addresses come from this private block, one /30 per namespace (host .1, namespace .2).
ADDRESS_POOL = ipaddress.IPv4Network("10.213.0.0/16")
NAME_PREFIX = "falco-rt-"

_created: List[NetNamespace] = []
_lock = threading.Lock()
_counter = [0]


class NetnsError(RuntimeError):
    """A namespace could not be made; the message has the failing command's output."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ip = shutil.which("ip")
    if ip is None:
        raise NetnsError("the ip command is missing; run tests/testbed/install-system-deps.sh")
    result = subprocess.run([ip, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed ({result.returncode}): "
                         f"{result.stderr.strip()}")
    return result


def _used_networks() -> List[ipaddress.IPv4Network]:
    output = _ip("-4", "-o", "addr", "show").stdout
    networks = []
    for line in output.splitlines():
        fields = line.split()
        if "inet" in fields:
            networks.append(
                ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network
            )
    return networks


def _free_subnet() -> ipaddress.IPv4Network:
    used = _used_networks()
    start = (os.getpid() * 7) % 16384
    subnets = list(ADDRESS_POOL.subnets(new_prefix=30))
    for offset in range(len(subnets)):
        subnet = subnets[(start + offset) % len(subnets)]
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise NetnsError(f"no free /30 left in {ADDRESS_POOL}")


class NetNamespace:
    """A network namespace ``name`` joined to ours: ``host_ip`` is our end of the veth pair
    (where receivers listen), ``ns_ip`` the namespace's end (where its servers listen)."""

    def __init__(self, name: str, host_ip: str, ns_ip: str, host_link: str) -> None:
        self.name = name
        self.host_ip = host_ip
        self.ns_ip = ns_ip
        self.host_link = host_link
        self.etc_dir = NETNS_ETC / name

    def exec_argv(self, argv: Sequence[str]) -> List[str]:
        """``argv`` run inside the namespace, with its own /etc/hosts."""
        ip = shutil.which("ip") or "ip"
        return [ip, "netns", "exec", self.name, *argv]

    def set_hosts(self, names: Iterable[str], address: Optional[str] = None) -> None:
        """Map ``names`` to ``address`` (default ``host_ip``) in the namespace's /etc/hosts."""
        target = address or self.host_ip
        lines = ["127.0.0.1 localhost", f"{self.ns_ip} {self.name}"]
        lines += [f"{target} {name}" for name in names]
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        (self.etc_dir / "hosts").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def delete(self) -> None:
        """Remove the namespace (its veth pair goes with it) and its /etc/netns folder."""
        _ip("netns", "delete", self.name, check=False)
        _ip("link", "delete", self.host_link, check=False)
        shutil.rmtree(self.etc_dir, ignore_errors=True)
        with _lock:
            if self in _created:
                _created.remove(self)


def create_netns(hosts: Iterable[str] = ()) -> NetNamespace:
    """Make a namespace whose /etc/hosts maps ``hosts`` to our end of its veth pair.

    Processes run in it (``exec_argv``) must be stopped before ``delete()``.
    """
    remove_stale()
    with _lock:
        _counter[0] += 1
        number = _counter[0]
    name = f"{NAME_PREFIX}{os.getpid()}-{number}"
    tag = f"{os.getpid() % 100000:05d}{number % 100:02d}"
    host_link, ns_link = f"frh{tag}", f"frn{tag}"
    subnet = _free_subnet()
    host_ip, ns_ip = (str(address) for address in list(subnet.hosts())[:2])
    netns = NetNamespace(name, host_ip, ns_ip, host_link)
    with _lock:
        _created.append(netns)
    try:
        _ip("netns", "add", name)
        _ip("link", "add", host_link, "type", "veth", "peer", "name", ns_link)
        _ip("link", "set", ns_link, "netns", name)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_link)
        _ip("link", "set", host_link, "up")
        _ip("-n", name, "addr", "add", f"{ns_ip}/30", "dev", ns_link)
        _ip("-n", name, "link", "set", ns_link, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        netns.set_hosts(hosts)
    except BaseException:
        netns.delete()
        raise
    return netns


def remove_stale() -> None:
    """Delete namespaces left by test sessions that were killed (their pid is gone)."""
    listing = _ip("netns", "list", check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(NAME_PREFIX):
            continue
        pid = name[len(NAME_PREFIX):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            _ip("netns", "delete", name, check=False)
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


@atexit.register
def delete_all() -> None:
    """Delete every namespace this process made that a finalizer did not."""
    with _lock:
        left = list(_created)
    for netns in left:
        netns.delete()
