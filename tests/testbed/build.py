"""Build the peer binaries once per pinned version: ``python -m tests.testbed.build [NAME...]``.

Each binary lands in ``~/.cache/falco-responder/peers/<name>-<version>/<name>``. A build
goes to a temporary sibling folder that is renamed into place only when it succeeded, so an
interrupted build is never reused. A cold kube-apiserver build takes many minutes on two
cores, so progress is printed every 30 seconds. Anything missing (Go itself, a module the
proxy will not serve) fails the run with the exact reason: a test bed that silently skips
would let the suite pass without ever meeting a real peer. Standard library only.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Deque, Iterator, List, Optional, Sequence

from tests.testbed.peers import BUILD_ORDER, PEERS, Peer

HEARTBEAT_SECONDS = 30.0
TAIL_LINES = 60


class BuildError(RuntimeError):
    """A peer could not be built; the message says why."""


def log(message: str) -> None:
    print(f"[build] {message}", flush=True)


def find_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "the Go toolchain is not on PATH; install Go 1.26 or newer "
            "(the peers are built from the Go module proxy)"
        )
    return go


def _format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def failed_log_path(log_file: Path) -> Path:
    """Where the log of a failed build is kept once its staging folder is removed."""
    staging = log_file.parent
    return staging.parent / (staging.name.split(".tmp-")[0] + ".failed-build.log")


def run_go(
    args: Sequence[str], cwd: Path, what: str, log_file: Path, verbose: bool
) -> None:
    """Run one go command, echoing a heartbeat; raise BuildError with its last lines on failure."""
    started = time.monotonic()
    tail: Deque[str] = collections.deque(maxlen=TAIL_LINES)
    count = [0]
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            last = tail[-1] if tail else "-"
            log(
                f"{what}: still running, {_format_elapsed(time.monotonic() - started)} elapsed, "
                f"{count[0]} lines of go output, last: {last}"
            )

    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    with open(log_file, "a", encoding="utf-8") as sink:
        sink.write(f"$ {' '.join(args)}  (in {cwd})\n")
        proc = subprocess.Popen(
            list(args),
            cwd=str(cwd),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            sink.write(line + "\n")
            tail.append(line)
            count[0] += 1
            if verbose:
                print(f"    {line}", flush=True)
        code = proc.wait()
    done.set()
    ticker.join()
    if code != 0:
        raise BuildError(
            f"{what} failed with exit code {code} after "
            f"{_format_elapsed(time.monotonic() - started)}; last lines of go's output "
            f"(full log kept in {failed_log_path(log_file)}):\n"
            + "\n".join(f"    {line}" for line in tail)
        )


@contextlib.contextmanager
def build_lock(peer: Peer) -> Iterator[None]:
    """One build of a peer at a time (two ``make test`` in parallel share the cache)."""
    peer.install_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = peer.install_dir.with_name(f"{peer.install_dir.name}.lock")
    with open(lock_path, "w", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"{peer.name} {peer.version}: another build holds {lock_path}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(peer: Peer, go: str, verbose: bool) -> float:
    """Build ``peer`` into its cache folder (call under ``build_lock``); returns seconds."""
    final_dir = peer.install_dir
    for stale in final_dir.parent.glob(f"{final_dir.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{final_dir.name}.tmp-", dir=final_dir.parent))
    log_file = staging / "build.log"
    started = time.monotonic()
    try:
        workdir = peer.wrapper_dir
        if not (workdir / "go.mod").is_file():
            raise BuildError(f"wrapper module {workdir}/go.mod is missing")
        if peer.resolve_at_build:
            # The version cannot be pinned in go.mod ahead of time: resolve it in a copy of
            # the wrapper so the repository's files stay untouched.
            copy = staging / "module"
            shutil.copytree(workdir, copy)
            workdir = copy
            run_go(
                [go, "get", f"{peer.module}@{peer.module_query}"],
                workdir,
                f"go get {peer.module}@{peer.module_query} (obtaining {peer.name})",
                log_file,
                verbose,
            )
        else:
            # Only the release's own module: a quick, clear answer when the proxy refuses
            # it; go build fetches the packages it needs from the rest of the graph.
            run_go(
                [go, "mod", "download", "-x", peer.module] if verbose
                else [go, "mod", "download", peer.module],
                workdir,
                f"go mod download {peer.module} (obtaining {peer.name} {peer.version})",
                log_file,
                verbose,
            )
        jobs = str(os.cpu_count() or 2)
        ldflags = " ".join(("-s", *peer.ldflags))
        run_go(
            [go, "build", "-v", "-p", jobs, "-trimpath", f"-ldflags={ldflags}",
             "-o", str(staging / peer.name), peer.package],
            workdir,
            f"go build {peer.name} {peer.version}",
            log_file,
            verbose,
        )
        if peer.resolve_at_build:
            shutil.rmtree(staging / "module", ignore_errors=True)
        os.replace(staging, final_dir)
        final_dir.with_name(f"{final_dir.name}.failed-build.log").unlink(missing_ok=True)
    except BaseException:
        if log_file.is_file():
            shutil.copyfile(log_file, failed_log_path(log_file))
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return time.monotonic() - started


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*",
                        help=f"peers to build (default: {' '.join(BUILD_ORDER)})")
    parser.add_argument("-v", "--verbose", action="store_true", help="echo every line go prints")
    options = parser.parse_args(argv)
    names = options.names or list(BUILD_ORDER)
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(BUILD_ORDER)}")

    failures: List[str] = []
    go: Optional[str] = None
    for name in names:
        peer = PEERS[name]
        if os.access(peer.binary_path, os.X_OK):
            log(f"{name} {peer.version}: reusing {peer.binary_path}")
            continue
        try:
            if go is None:
                go = find_go()
                version = subprocess.run(
                    [go, "version"], capture_output=True, text=True, check=False
                ).stdout.strip()
                log(f"using {version} ({go})")
            with build_lock(peer):
                if os.access(peer.binary_path, os.X_OK):
                    log(f"{name} {peer.version}: built meanwhile, reusing {peer.binary_path}")
                    continue
                log(f"{name} {peer.version}: building {peer.package} from {peer.wrapper_dir}")
                seconds = build(peer, go, options.verbose)
            log(f"{name} {peer.version}: built in {_format_elapsed(seconds)} -> {peer.binary_path}")
        except BuildError as error:
            log(f"ERROR: {name} {peer.version}: {error}")
            failures.append(name)

    log("binaries:")
    for name in names:
        peer = PEERS[name]
        state = "ok" if os.access(peer.binary_path, os.X_OK) else "MISSING"
        log(f"  {name:<15} {peer.version:<8} {state:<8} {peer.binary_path}")
    if failures:
        log(f"FAILED: {', '.join(failures)} could not be built (reasons above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
