"""The pinned peer programs, where their sources come from and where their binaries live.

One table says which release each program comes from, so the build script and the fixtures
can never disagree about what "the kube-apiserver" is. A peer's source is either

- a Go module the proxy serves, pinned by a wrapper module under ``tests/peers/<name>/``
  (etcd, Kubernetes, kwok), or
- an upstream release the proxy refuses (Falcosidekick, Knative Eventing, ...): the source
  archive ``../shared/peers/<archive>.tar.gz`` beside the checkout when it is there, else a
  shallow fetch of the same commit from upstream (a user's own machine).

Some peers are only files (a runtime's server script, a template): they have a source and
no binaries, and ``source_dir(name)`` gives their unpacked tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
#: Folder of the Go wrapper modules (tests/peers/<name>/go.mod).
PEERS_DIR = REPO / "tests" / "peers"
#: Source archives beside the checkout (what every developer and CI has).
SHARED_PEERS = REPO.parent / "shared" / "peers"

BUILD_COMMAND = "python -m tests.testbed.build"


@dataclass(frozen=True)
class Source:
    """An upstream release: its archive under ``../shared/peers/``, else fetched by commit."""

    #: File name without ``.tar.gz`` in ``../shared/peers/``.
    archive: str
    repository: str
    #: The release tag, for people; the commit is what is fetched and checked.
    tag: str
    commit: str

    @property
    def archive_path(self) -> Path:
        return SHARED_PEERS / f"{self.archive}.tar.gz"


@dataclass(frozen=True)
class Peer:
    """A program (or a set of files) the test bed runs, at one pinned version."""

    name: str
    version: str
    #: (binary name, Go package) pairs, built in one ``go build``; empty for file-only peers.
    binaries: Tuple[Tuple[str, str], ...] = ()
    #: Upstream source; None means the wrapper module ``tests/peers/<name>/``.
    source: Optional[Source] = None
    #: The source carries ``vendor/``: built with ``-mod=vendor``, no network needed.
    vendored: bool = False
    #: Extra linker flags, e.g. ``-X`` version variables.
    ldflags: Tuple[str, ...] = ()
    #: Files copied out of a Go module into the install folder: (module, file inside it).
    #: A bare module path is the version the build used (kwok's stage definitions);
    #: ``module@version`` is fetched on its own (Knative Serving's Service CRD).
    module_files: Tuple[Tuple[str, str], ...] = ()
    #: Modules of the wrapper replaced by another peer's unpacked source: (module, peer).
    #: The path is only known once that source is unpacked, so the build adds the replace
    #: (and the source's own replace lines) to a copy of the wrapper, then tidies it.
    replaces: Tuple[Tuple[str, str], ...] = ()
    #: ``module:function`` that assembles the tree to build in, for a release whose module
    #: does not build as published (``tests.testbed.kubernetes_release``).
    assemble: str = ""

    @property
    def wrapper_dir(self) -> Path:
        return PEERS_DIR / self.name

    @property
    def install_dir(self) -> Path:
        return cache_root() / f"{self.name}-{self.version}"

    @property
    def source_cache(self) -> Path:
        """Where the upstream source is unpacked (once; read-only afterwards)."""
        return cache_root() / "sources" / f"{self.name}-{self.version}"

    def binary_path(self, binary: str) -> Path:
        return self.install_dir / binary

    def built(self) -> bool:
        if self.source is not None and not (self.source_cache / ".complete").is_file():
            return False
        return (all(os.access(self.binary_path(b), os.X_OK) for b, _ in self.binaries)
                and all((self.install_dir / f).is_file() for _, f in self.module_files))


def _kube_version_flags(minor: str, packages: Tuple[str, ...] = (
        "k8s.io/component-base/version",)) -> Tuple[str, ...]:
    # Built outside Kubernetes' own scripts they would report v0.0.0-master (hack/lib/
    # version.sh sets these, in every package the release keeps its version in).
    return tuple(
        flag
        for package in packages
        for flag in (
            f"-X {package}.gitVersion=v1.{minor}",
            f"-X {package}.gitMajor=1",
            f"-X {package}.gitMinor={minor.split('.')[0]}",
            f"-X {package}.gitTreeState=clean",
        )
    )


def _github(repo: str) -> str:
    return f"https://github.com/{repo}"


PEERS: Dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer(
            name="etcd",
            version="3.7.3",
            binaries=(("etcd", "go.etcd.io/etcd/server/v3"),),
        ),
        Peer(
            name="kubernetes",
            version="1.37.2",
            binaries=(
                ("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
                ("kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager"),
                ("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"),
            ),
            ldflags=_kube_version_flags("37.2"),
        ),
        Peer(
            # Kubeless's function-controller reads its CRD through apiextensions.k8s.io/v1beta1,
            # which Kubernetes 1.22 removed: the Kubeless tests run on the last release with it.
            name="kubernetes-1.21",
            version="1.21.14",
            binaries=(("kube-apiserver-1.21", "./cmd/kube-apiserver"),
                      # Its garbage collector: Kubeless leaves a Function's Deployment to it.
                      ("kube-controller-manager-1.21", "./cmd/kube-controller-manager")),
            ldflags=_kube_version_flags("21.14", ("k8s.io/client-go/pkg/version",
                                                  "k8s.io/component-base/version")),
            assemble="tests.testbed.kubernetes_release:assemble",
        ),
        Peer(
            name="kwok",
            version="0.8.0",
            binaries=(("kwok", "sigs.k8s.io/kwok/cmd/kwok"),),
            # v0.8.0 has no built-in stages: these are the ones kwokctl concatenates.
            module_files=tuple(
                ("sigs.k8s.io/kwok", f"kustomize/stage/{stage}")
                for stage in (
                    "node/fast/node-initialize.yaml",
                    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
                    "pod/fast/pod-ready.yaml",
                    "pod/fast/pod-complete.yaml",
                    "pod/fast/pod-delete.yaml",
                )
            ),
        ),
        Peer(
            name="falcosidekick",
            version="2.34.1",
            binaries=(("falcosidekick", "."),),
            source=Source("falcosidekick-2.34.1", _github("falcosecurity/falcosidekick"),
                          "2.34.1", "03364bc26b2262439a5ddeb57e1e354742727e11"),
            ldflags=("-X main.GitVersion=2.34.1",),
        ),
        Peer(
            name="knative-eventing",
            version="1.22.2",
            # The multi-tenant channel-based Broker with the InMemoryChannel.
            binaries=(
                ("controller", "./cmd/controller"),
                ("mtchannel_broker", "./cmd/mtchannel_broker"),
                ("ingress", "./cmd/broker/ingress"),
                ("filter", "./cmd/broker/filter"),
                ("channel_controller", "./cmd/in_memory/channel_controller"),
                ("channel_dispatcher", "./cmd/in_memory/channel_dispatcher"),
            ),
            source=Source("knative-eventing-1.22.2", _github("knative/eventing"),
                          "knative-v1.22.2", "532b01f0cb2ce7bed271204697081e4264385531"),
            vendored=True,
        ),
        Peer(
            # Only the CRD of Knative Serving's Service, the kind a Trigger made by
            # `func deploy` points at; Serving itself is not run (docs/testing.md).
            name="knative-serving-crds",
            version="0.49.1",
            module_files=(("knative.dev/serving@v0.49.1",
                           "config/core/300-resources/service.yaml"),),
        ),
        Peer(
            name="of-watchdog",
            version="0.11.6",
            binaries=(("fwatchdog", "."),),
            source=Source("of-watchdog-0.11.6", _github("openfaas/of-watchdog"),
                          "0.11.6", "9bdadb1e8c68ae1016ac1a35906cd2acaa53169a"),
            vendored=True,
        ),
        Peer(
            name="faas-cli",
            version="0.18.12",
            binaries=(("faas-cli", "."),),
            source=Source("faas-cli-0.18.12", _github("openfaas/faas-cli"),
                          "0.18.12", "c8191b71e7edf10be3b660ddcaee52c11de79238"),
            vendored=True,
        ),
        Peer(
            name="kubeless",
            version="1.0.8",
            binaries=(
                ("kubeless", "./cmd/kubeless"),
                ("function-controller", "./cmd/function-controller"),
            ),
            source=Source("kubeless-1.0.8", _github("vmware-archive/kubeless"),
                          "v1.0.8", "579f848592d65eb7b0d069280c489cbfc65d45a3"),
        ),
        Peer(
            name="falco-talon",
            version="0.3.0",
            binaries=(("falco-talon", "."),),
            source=Source("falco-talon-0.3.0", _github("falcosecurity/falco-talon"),
                          "v0.3.0", "215ebba46e4ee00bb44b3c21eeb9724a8dc10548"),
        ),
        Peer(
            name="knative-func",
            version="1.23.1",
            source=Source("knative-func-1.23.1", _github("knative/func"),
                          "knative-v1.23.1", "0f56a5defe8e94cb9a8566478c73bfaf48c07d02"),
        ),
        Peer(
            # func's function loader (pkg/functions), what `func deploy` runs first; the
            # CLI itself does not build here (docs/testing.md).
            name="knative-func-loader",
            version="1.23.1",
            binaries=(("func-loader", "."),),
            replaces=(("knative.dev/func", "knative-func"),),
        ),
        Peer(
            name="kubeless-python-runtime",
            version="325e024",
            source=Source("kubeless-python-runtime-325e024", _github("kubeless/runtimes"),
                          "master@325e024", "325e024c21fd82cae111013409499e6d35d40c75"),
        ),
        Peer(
            name="openfaas-python3-http-template",
            version="e01a882",
            source=Source("openfaas-python3-http-template-e01a882",
                          _github("openfaas/python-flask-template"),
                          "main@e01a882", "e01a8826291d3de65fbe264ea855e98deaa568dd"),
        ),
    )
}

#: What ``make peers`` builds for ``make test``, quick ones first so a failure shows early.
TEST_PEERS: Tuple[str, ...] = (
    "etcd", "knative-func", "knative-serving-crds", "kubeless-python-runtime",
    "openfaas-python3-http-template", "faas-cli", "of-watchdog", "kwok", "knative-func-loader",
    "kubeless", "knative-eventing", "falcosidekick", "kubernetes-1.21", "kubernetes",
)

#: Binary name -> the peer that builds it.
BINARIES: Dict[str, Peer] = {
    binary: peer for peer in PEERS.values() for binary, _ in peer.binaries
}


class PeerNotBuilt(RuntimeError):
    """A fixture asked for a binary or source that the build script has not produced."""


def cache_root() -> Path:
    """Where built binaries are kept: ``$XDG_CACHE_HOME`` or ``~/.cache``, per project."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "falco-responder" / "peers"


def _not_built(peer: Peer, looked_for: Path) -> PeerNotBuilt:
    failed = peer.install_dir.with_name(f"{peer.install_dir.name}.failed-build.log")
    last_attempt = ""
    if failed.is_file():
        lines = failed.read_text(encoding="utf-8", errors="replace").splitlines()
        last_attempt = f"; the last build failed ({failed}):\n" + "\n".join(lines[-4:])
    return PeerNotBuilt(
        f"{peer.name} {peer.version} is not built (looked for {looked_for}); "
        f"run `{BUILD_COMMAND} {peer.name}` from the repository root{last_attempt}"
    )


def binary(name: str) -> Path:
    """Path of the built binary ``name``; raises with the command to run when it is missing."""
    try:
        peer = BINARIES[name]
    except KeyError:
        raise KeyError(f"unknown binary {name!r}; known: {', '.join(sorted(BINARIES))}") from None
    path = peer.binary_path(name)
    if not os.access(path, os.X_OK):
        raise _not_built(peer, path)
    return path


def installed_file(peer_name: str, relative: str) -> Path:
    """A file the build copied out of a module (``Peer.module_files``) into the install dir."""
    peer = PEERS[peer_name]
    path = peer.install_dir / relative
    if not path.is_file():
        raise _not_built(peer, path)
    return path


def source_dir(name: str) -> Path:
    """The unpacked upstream tree of peer ``name`` (its archive's top folder, or the clone)."""
    peer = PEERS[name]
    if not (peer.source_cache / ".complete").is_file():
        raise _not_built(peer, peer.source_cache)
    return peer.source_cache / "tree"
