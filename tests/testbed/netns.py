"""Network namespaces standing in for a cluster's pod network and its DNS.

Peers call each other by cluster DNS names (``broker-ingress.knative-eventing.svc.cluster.local``,
``FN.NS.svc.cluster.local:8080``, ``gateway.openfaas:8080``) and several insist on fixed
ports (8080, 8008, 80). A :class:`Network` gives each such peer a *host*: a namespace of its
own, with one veth into a bridge that lives in a further namespace, an address from
``10.244.0.0/16`` (a pod's own IP, for a pod's host), and an ``/etc/netns/<host>/hosts``
that ``ip netns exec`` mounts over ``/etc/hosts`` and that maps every name registered on the
network to its host's address.

The machine's own namespace gets no address and no interface: everything non-loopback lives
inside namespaces made here. The test process reaches into a host with :meth:`Host.entered`
(sockets made inside it belong to that namespace), and a host reaches a loopback port of the
machine (the kube-apiserver) through :meth:`Host.reach_loopback`: a ``socat`` pair joined by
a Unix socket, which no network namespace separates. Every relay sets TCP_NODELAY: without
it, Nagle's algorithm meets the peer's delayed ACK and holds each small request for up to
40 ms. Needs root, ``ip`` and ``socat``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

from tests.testbed import procs

NETNS_ETC = Path("/etc/netns")
NETNS_RUN = Path("/var/run/netns")
#: Every network uses the same block, kwok's pod CIDR, so a pod's host can take the pod's IP;
#: networks are isolated from each other and from the machine. Hosts that are not pods take
#: addresses from the top of the block down, away from those kwok hands out.
ADDRESSES = ipaddress.IPv4Network("10.244.0.0/16")
NAME_PREFIX = "falco-rt-"
_CLONE_NEWNET = 0x40000000

_networks: List[Network] = []
_lock = threading.Lock()
_counter = [0]


class NetnsError(RuntimeError):
    """A namespace could not be made; the message has the failing command's output."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise NetnsError(f"the {name} command is missing; run tests/testbed/install-system-deps.sh")
    return path


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([_tool("ip"), *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed ({result.returncode}): "
                         f"{result.stderr.strip()}")
    return result


def _new_name() -> str:
    with _lock:
        _counter[0] += 1
        return f"{NAME_PREFIX}{os.getpid()}-{_counter[0]}"


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


class Host:
    """One namespace on a network: ``ip`` is its address; programs run in it with
    ``exec_argv`` see the network's names in their ``/etc/hosts``."""

    def __init__(self, network: Network, name: str, label: str, ip: str) -> None:
        self.network = network
        self.name = name
        self.label = label
        self.ip = ip
        self.etc_dir = NETNS_ETC / name
        self._relays: Dict[str, procs.Process] = {}

    def exec_argv(self, argv: Sequence[str]) -> List[str]:
        """``argv`` run inside the namespace, with the network's /etc/hosts.

        Go programs resolve through libc there: Go's own resolver caches /etc/hosts for up
        to 5 s, so a name registered meanwhile (a Broker's channel, a new subscriber) would
        fail to resolve for that long, where cluster DNS would answer at once.
        """
        return [_tool("ip"), "netns", "exec", self.name, "env", "GODEBUG=netdns=cgo", *argv]

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Sockets this thread makes meanwhile are made inside the namespace (and stay
        there): for connecting to a server in it, or listening in it."""
        with open("/proc/thread-self/ns/net", "rb") as own, \
                open(NETNS_RUN / self.name, "rb") as target:
            _setns(target.fileno())
            try:
                yield
            finally:
                _setns(own.fileno())

    def connectable(self, port: int, address: str = "127.0.0.1") -> bool:
        """Whether something in the namespace accepts connections on ``address:port``."""
        with self.entered():
            return accepts(address, port)

    def reach_loopback(self, port: int, timeout: float = 10.0) -> None:
        """Make the machine's ``127.0.0.1:port`` answer at ``127.0.0.1:port`` in here too,
        so a kubeconfig naming ``https://127.0.0.1:port`` works unchanged inside."""
        if f"loopback:{port}" in self._relays:
            return
        unix = self.network.loopback_socket(port)
        relay = procs.start(
            f"relay-{self.label}-{port}",
            self.exec_argv([_tool("socat"),
                            f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,nodelay",
                            f"UNIX-CONNECT:{unix}"]),
            self.network.workdir / f"relay-{self.label}-{port}.log",
        )
        self._relays[f"loopback:{port}"] = relay
        procs.wait_until(lambda: self.connectable(port), timeout,
                         f"127.0.0.1:{port} reachable in {self.label}", relay, interval=0.05)

    def stop_reaching(self, port: int) -> None:
        """Undo ``reach_loopback(port)``: the machine's port is unreachable from here again
        (a network partition between this host and, say, the kube-apiserver)."""
        relay = self._relays.pop(f"loopback:{port}", None)
        if relay is not None:
            relay.stop(timeout=2.0)

    def forward(self, port: int, to_port: int, timeout: float = 10.0) -> None:
        """Accept on ``port`` of this host and pass each connection to ``to_port`` on its
        address: a Service's port mapped to its target port, as kube-proxy would."""
        relay = procs.start(
            f"forward-{self.label}-{port}",
            self.exec_argv([_tool("socat"), f"TCP-LISTEN:{port},fork,reuseaddr,nodelay",
                            f"TCP:{self.ip}:{to_port},nodelay"]),
            self.network.workdir / f"forward-{self.label}-{port}.log",
        )
        self._relays[f"forward:{port}"] = relay
        procs.wait_until(lambda: self.connectable(port, self.ip), timeout,
                         f"{self.label}:{port} forwarding", relay, interval=0.05)

    def write_hosts(self, names: Dict[str, str]) -> None:
        lines = ["127.0.0.1 localhost", f"{self.ip} {self.label}"]
        lines += [f"{address} {name}" for name, address in sorted(names.items())]
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        # Rewritten in place: ``ip netns exec`` bind-mounted this very file.
        with open(self.etc_dir / "hosts", "w", encoding="utf-8") as hosts:
            hosts.write("\n".join(lines) + "\n")

    def stop_relays(self) -> None:
        for relay in self._relays.values():
            relay.stop(timeout=2.0)
        self._relays.clear()


class Network:
    """A bridge in a namespace of its own, and the hosts joined to it."""

    def __init__(self, bridge_ns: str, workdir: Path) -> None:
        self.bridge_ns = bridge_ns
        self.workdir = workdir
        self.hosts: List[Host] = []
        self.names: Dict[str, str] = {}
        self._loopback: Dict[int, procs.Process] = {}
        self._free = (ADDRESSES.broadcast_address - n for n in range(1, 1 << 15))
        self._lock = threading.Lock()

    def host(self, label: str, names: Iterable[str] = (), ip: Optional[str] = None) -> Host:
        """A new namespace on this network; ``names`` resolve to its address everywhere.
        ``ip``: a pod's IP (from kwok), else the next free one from the top of the block."""
        with self._lock:
            number = len(self.hosts)
            address = ip or str(next(self._free))
            if ipaddress.IPv4Address(address) not in ADDRESSES:
                raise NetnsError(f"{address} is outside the network's {ADDRESSES}")
            if any(h.ip == address for h in self.hosts):
                raise NetnsError(f"{address} is already taken on this network")
            host = Host(self, _new_name(), label, address)
            self.hosts.append(host)
        _ip("netns", "add", host.name)
        link = f"v{number}"
        _ip("-n", self.bridge_ns, "link", "add", link, "type", "veth",
            "peer", "name", "eth0", "netns", host.name)
        _ip("-n", self.bridge_ns, "link", "set", link, "master", "br0", "up")
        _ip("-n", host.name, "addr", "add", f"{host.ip}/{ADDRESSES.prefixlen}", "dev", "eth0")
        _ip("-n", host.name, "link", "set", "eth0", "up")
        _ip("-n", host.name, "link", "set", "lo", "up")
        self.add_names(host.ip, names)
        return host

    def add_names(self, address: str, names: Iterable[str]) -> None:
        """Resolve ``names`` to ``address`` in every host (hosts made later included)."""
        with self._lock:
            self.names.update({name: address for name in names})
            for host in self.hosts:
                host.write_hosts(self.names)

    def resolve(self, name: str) -> str:
        """The address ``name`` has on this network (the test process's own resolver does
        not see the hosts' /etc/hosts)."""
        try:
            return self.names[name]
        except KeyError:
            raise NetnsError(f"{name} is not registered on this network") from None

    def loopback_socket(self, port: int) -> Path:
        """A Unix socket that leads to the machine's ``127.0.0.1:port`` (started once)."""
        path = self.workdir / f"loopback-{port}.sock"
        if port not in self._loopback:
            self._loopback[port] = procs.start(
                f"relay-loopback-{port}",
                [_tool("socat"), f"UNIX-LISTEN:{path},fork,mode=600",
                 f"TCP:127.0.0.1:{port},nodelay"],
                self.workdir / f"relay-loopback-{port}.log",
            )
            procs.wait_until(path.exists, 10.0, f"relay socket for port {port}",
                             self._loopback[port], interval=0.02)
        return path

    def delete(self) -> None:
        """Stop the relays and remove every namespace (stop the hosts' programs first)."""
        for host in self.hosts:
            host.stop_relays()
            _ip("netns", "delete", host.name, check=False)
            shutil.rmtree(host.etc_dir, ignore_errors=True)
        for relay in self._loopback.values():
            relay.stop(timeout=2.0)
        _ip("netns", "delete", self.bridge_ns, check=False)
        with _lock:
            if self in _networks:
                _networks.remove(self)


def create_network(workdir: Optional[Path] = None) -> Network:
    """A new, empty network: its bridge namespace and nothing else."""
    remove_stale()
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="falco-rt-net-"))
    workdir.mkdir(parents=True, exist_ok=True)
    network = Network(_new_name(), workdir)
    with _lock:
        _networks.append(network)
    try:
        _ip("netns", "add", network.bridge_ns)
        _ip("-n", network.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", network.bridge_ns, "link", "set", "br0", "up")
    except BaseException:
        network.delete()
        raise
    return network


def accepts(address: str, port: int) -> bool:
    """Whether something accepts connections on ``address:port`` (from this thread's
    network namespace)."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((address, port)) == 0


def wait_connectable(host: Host, port: int, timeout: float, what: str,
                     process: Optional[procs.Process] = None) -> None:
    """Wait until ``host.ip:port`` accepts connections (a server inside has started)."""
    procs.wait_until(lambda: host.connectable(port, host.ip), timeout, what, process,
                     interval=0.05)


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
    """Delete every network this process made that a finalizer did not."""
    with _lock:
        left = list(_networks)
    for network in left:
        network.delete()
    # Give the kernel a moment to tear the veths down before the next session counts them.
    if left:
        time.sleep(0.1)
