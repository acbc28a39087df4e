"""The pinned peer programs and where their built binaries live.

One table says which Go module and version each binary comes from, so the build script and
the fixtures can never disagree about what "the kube-apiserver" is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

#: Folder of the Go wrapper modules (tests/peers/<name>/go.mod).
PEERS_DIR = Path(__file__).resolve().parent.parent / "peers"

BUILD_COMMAND = "python -m tests.testbed.build"


@dataclass(frozen=True)
class Peer:
    """A binary built with ``go build`` from a wrapper module under tests/peers/."""

    name: str
    #: Version of the upstream release, part of the cache folder name.
    version: str
    #: Go package path of the main package.
    package: str
    #: Module that carries the release, with the version query the proxy is asked for.
    module: str
    module_query: str
    #: Extra ``go get`` run before building when the wrapper cannot pin the module in go.mod
    #: (Falcosidekick's tags have no ``v``, so the proxy turns them into a pseudo-version).
    resolve_at_build: bool = False
    #: Extra ``-X`` linker flags, e.g. the version the binary reports.
    ldflags: Tuple[str, ...] = ()

    @property
    def wrapper_dir(self) -> Path:
        return PEERS_DIR / self.name

    @property
    def install_dir(self) -> Path:
        return cache_root() / f"{self.name}-{self.version}"

    @property
    def binary_path(self) -> Path:
        return self.install_dir / self.name


PEERS: Dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer(
            name="etcd",
            version="3.7.3",
            package="go.etcd.io/etcd/server/v3",
            module="go.etcd.io/etcd/server/v3",
            module_query="v3.7.3",
        ),
        Peer(
            name="kube-apiserver",
            version="1.37.2",
            package="k8s.io/kubernetes/cmd/kube-apiserver",
            module="k8s.io/kubernetes",
            module_query="v1.37.2",
            # Built outside Kubernetes' own scripts it would report v0.0.0-master on /version.
            ldflags=(
                "-X k8s.io/component-base/version.gitVersion=v1.37.2",
                "-X k8s.io/component-base/version.gitMajor=1",
                "-X k8s.io/component-base/version.gitMinor=37",
                "-X k8s.io/component-base/version.gitTreeState=clean",
            ),
        ),
        Peer(
            name="falcosidekick",
            version="2.34.0",
            package="github.com/falcosecurity/falcosidekick",
            module="github.com/falcosecurity/falcosidekick",
            module_query="2.34.0",
            resolve_at_build=True,
        ),
    )
}

#: Build order: the quick ones first, so a failure in one shows before the long wait.
BUILD_ORDER: Tuple[str, ...] = ("etcd", "falcosidekick", "kube-apiserver")


class PeerNotBuilt(RuntimeError):
    """A fixture asked for a binary that the build script has not produced."""


def cache_root() -> Path:
    """Where built binaries are kept: ``$XDG_CACHE_HOME`` or ``~/.cache``, per project."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "falco-responder" / "peers"


def binary(name: str) -> Path:
    """Path of the built binary ``name``; raises with the command to run when it is missing."""
    try:
        peer = PEERS[name]
    except KeyError:
        raise KeyError(f"unknown peer {name!r}; known: {', '.join(sorted(PEERS))}") from None
    path = peer.binary_path
    if not os.access(path, os.X_OK):
        failed = peer.install_dir.with_name(f"{peer.install_dir.name}.failed-build.log")
        last_attempt = ""
        if failed.is_file():
            lines = failed.read_text(encoding="utf-8", errors="replace").splitlines()
            last_attempt = f"; the last build failed ({failed}):\n" + "\n".join(lines[-4:])
        raise PeerNotBuilt(
            f"{name} {peer.version} is not built (looked for {path}); "
            f"run `{BUILD_COMMAND} {name}` from the repository root{last_attempt}"
        )
    return path
