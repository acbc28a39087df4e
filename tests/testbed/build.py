"""Build the peer binaries once per pinned version: ``python -m tests.testbed.build [NAME...]``.

Each peer's binaries land in ``~/.cache/falco-responder/peers/<name>-<version>/``; a peer
built from an upstream release is first unpacked from ``../shared/peers/`` (or fetched from
upstream) into ``.../peers/sources/``. A build
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
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Deque, Dict, Iterator, List, Optional, Sequence

from tests.testbed.peers import PEERS, TEST_PEERS, Peer

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


def _run(args: Sequence[str], cwd: Path, what: str, log_file: Path) -> None:
    """A short non-Go command (tar, git); raise BuildError with its output on failure."""
    with open(log_file, "a", encoding="utf-8") as sink:
        sink.write(f"$ {' '.join(args)}  (in {cwd})\n")
        result = subprocess.run(list(args), cwd=str(cwd), capture_output=True, text=True,
                                errors="replace", check=False)
        sink.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise BuildError(f"{what} failed with exit code {result.returncode}: "
                         f"{(result.stderr or result.stdout).strip()[-2000:]}")


def fetch_source(peer: Peer, log_file: Path) -> Path:
    """Unpack the peer's source once: the archive beside the checkout, else upstream.

    Returns the tree. Like the binaries, it is unpacked into a temporary sibling and renamed
    into place when complete, so an interrupted unpack is never used.
    """
    source = peer.source
    assert source is not None
    final = peer.source_cache
    if (final / ".complete").is_file():
        return final / "tree"
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(final, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{final.name}.tmp-", dir=final.parent))
    try:
        if source.archive_path.is_file():
            log(f"{peer.name}: unpacking {source.archive_path}")
            unpacked = staging / "unpacked"
            unpacked.mkdir()
            _run(["tar", "-xzf", str(source.archive_path), "-C", str(unpacked)], staging,
                 f"unpacking {source.archive_path}", log_file)
            (top,) = list(unpacked.iterdir())  # git archive --prefix: one top folder
            top.rename(staging / "tree")
            unpacked.rmdir()
        else:
            git = shutil.which("git")
            if git is None:
                raise BuildError(f"{source.archive_path} is absent and git is not installed "
                                 f"to fetch {source.repository} {source.tag}")
            log(f"{peer.name}: {source.archive_path} absent; fetching {source.repository} "
                f"{source.tag} ({source.commit[:12]})")
            tree = staging / "tree"
            tree.mkdir()
            for args in (["init", "-q"],
                         ["fetch", "-q", "--depth", "1", source.repository, source.commit],
                         ["checkout", "-q", "FETCH_HEAD"]):
                _run([git, *args], tree, f"git {args[0]} ({source.repository})", log_file)
        (staging / ".complete").write_text(source.commit + "\n", encoding="utf-8")
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final / "tree"


def _go_build(peer: Peer, go: str, workdir: Path, out: Path, log_file: Path,
              verbose: bool) -> None:
    """One ``go build`` for every binary of the peer (they share most packages)."""
    jobs = str(os.cpu_count() or 2)
    ldflags = " ".join(("-s", "-w", *peer.ldflags))
    flags = ["-v", "-p", jobs, "-trimpath", "-buildvcs=false", f"-ldflags={ldflags}"]
    if peer.vendored:
        flags.append("-mod=vendor")
    names = [name for name, _ in peer.binaries]
    packages = [package for _, package in peer.binaries]
    # With several packages go names each binary after its folder; they are renamed after.
    folders = [Path(package).name for package in packages]
    if len(set(folders)) != len(folders):
        raise BuildError(f"{peer.name}: packages {packages} share a folder name: go build "
                         "would write their binaries to one path")
    built = out / ".go-build"
    target = str(out / names[0]) if len(packages) == 1 else f"{built}/"
    run_go([go, "build", *flags, "-o", target, *packages], workdir,
           f"go build {peer.name} {peer.version} ({', '.join(names)})", log_file, verbose)
    if len(packages) > 1:
        for name, package in peer.binaries:
            os.replace(built / Path(package).name, out / name)
        built.rmdir()


def download_modules(go: str, specs: Sequence[str], cwd: Path,
                     log_file: Path) -> Dict[str, Any]:
    """``go mod download -json`` of each ``module@version``: module -> its JSON (``Dir`` or
    ``Error``); the command fails as a whole when any one fails, so its answer is read."""
    args = [go, "mod", "download", "-json", *specs]
    found = subprocess.run(args, cwd=str(cwd), capture_output=True, text=True, check=False)
    with open(log_file, "a", encoding="utf-8") as sink:
        sink.write(f"$ {' '.join(args)}  (in {cwd})\n{found.stdout}{found.stderr}")
    decoder, text, answers = json.JSONDecoder(), found.stdout.strip(), {}
    while text:
        answer, end = decoder.raw_decode(text)
        answers[answer["Path"]] = answer
        text = text[end:].lstrip()
    if not answers:
        raise BuildError(f"go mod download failed: {found.stderr.strip()[-2000:]}")
    return answers


def downloaded_dir(go: str, spec: str, cwd: Path, log_file: Path) -> Path:
    """Where ``module@version``'s files are, downloaded if need be."""
    (answer,) = download_modules(go, [spec], cwd, log_file).values()
    if "Dir" not in answer:
        raise BuildError(f"go mod download {spec}: {answer.get('Error', 'no answer')}")
    return Path(answer["Dir"])


def _module_dir(go: str, module: str, workdir: Path, log_file: Path) -> Path:
    """Where a module's files are: ``module@version`` is downloaded on its own; a bare
    module path is the version the build in ``workdir`` used."""
    if "@" in module:
        return downloaded_dir(go, module, workdir, log_file)
    args = [go, "list", "-m", "-f", "{{.Dir}}", module]
    found = subprocess.run(args, cwd=str(workdir), capture_output=True, text=True, check=False)
    if found.returncode != 0:
        raise BuildError(f"{' '.join(args[1:])} failed: {(found.stderr or found.stdout).strip()}")
    return Path(found.stdout.strip())


def _copy_module_files(peer: Peer, go: str, workdir: Path, out: Path, log_file: Path) -> None:
    for module, relative in peer.module_files:
        source = _module_dir(go, module, workdir, log_file) / relative
        if not source.is_file():
            raise BuildError(f"{peer.name}: {relative} is not in {module} ({source})")
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / relative)


def _replaced_wrapper(peer: Peer, go: str, staging: Path, log_file: Path) -> Path:
    """A copy of the wrapper module whose ``replaces`` point at the unpacked sources, with
    those sources' own replace lines, tidied: the folder to build in."""
    workdir = staging / "module"
    shutil.copytree(peer.wrapper_dir, workdir)
    edits: List[str] = []
    for module, source_peer in peer.replaces:
        with build_lock(PEERS[source_peer]):
            tree = fetch_source(PEERS[source_peer], log_file)
        edits.append(f"-replace={module}={tree}")
        found = subprocess.run([go, "mod", "edit", "-json", str(tree / "go.mod")],
                               capture_output=True, text=True, check=False)
        if found.returncode != 0:
            raise BuildError(f"go mod edit -json {tree}/go.mod failed: {found.stderr.strip()}")
        for replace in json.loads(found.stdout).get("Replace") or ():
            old, new = replace["Old"], replace["New"]
            old_spec = old["Path"] + (f"@{old['Version']}" if old.get("Version") else "")
            # A replace by a folder is relative to that go.mod, not to the wrapper.
            new_spec = (f"{new['Path']}@{new['Version']}" if new.get("Version")
                        else str((tree / new["Path"]).resolve()))
            edits.append(f"-replace={old_spec}={new_spec}")
    _run([go, "mod", "edit", *edits], workdir, f"go mod edit ({peer.name})", log_file)
    run_go([go, "mod", "tidy", "-e"], workdir, f"go mod tidy {peer.name}", log_file, False)
    return workdir


def build(peer: Peer, go: Optional[str], verbose: bool) -> float:
    """Build ``peer`` into its cache folder (call under ``build_lock``); returns seconds."""
    started = time.monotonic()
    final_dir = peer.install_dir
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in final_dir.parent.glob(f"{final_dir.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{final_dir.name}.tmp-", dir=final_dir.parent))
    log_file = staging / "build.log"
    try:
        if peer.source is not None:
            workdir = fetch_source(peer, log_file)
        elif peer.assemble:
            assert go is not None
            module, function = peer.assemble.split(":")
            workdir = getattr(importlib.import_module(module), function)(
                peer, go, staging, log_file, verbose)
        elif peer.replaces:
            assert go is not None
            workdir = _replaced_wrapper(peer, go, staging, log_file)
        elif peer.binaries:
            workdir = peer.wrapper_dir
            if not (workdir / "go.mod").is_file():
                raise BuildError(f"wrapper module {workdir}/go.mod is missing")
        else:
            workdir = staging
        if peer.binaries or peer.module_files:
            assert go is not None
            if peer.binaries:
                _go_build(peer, go, workdir, staging, log_file, verbose)
            _copy_module_files(peer, go, workdir, staging, log_file)
            if staging in workdir.parents:
                shutil.rmtree(workdir)  # a copy to build in: not part of the install
            shutil.rmtree(final_dir, ignore_errors=True)
            os.replace(staging, final_dir)
        else:
            shutil.rmtree(staging)
        final_dir.with_name(f"{final_dir.name}.failed-build.log").unlink(missing_ok=True)
    except BaseException:
        if log_file.is_file():
            shutil.copyfile(log_file, failed_log_path(log_file))
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return time.monotonic() - started


def _location(peer: Peer) -> Path:
    return peer.install_dir if peer.binaries or peer.module_files else peer.source_cache


def _describe(peer: Peer) -> str:
    origin = (f"{peer.source.archive_path.name} or {peer.source.repository} {peer.source.tag}"
              if peer.source is not None else
              f"the release's tree, assembled by {peer.assemble}" if peer.assemble else
              f"wrapper module {peer.wrapper_dir}" if peer.binaries else "the Go module proxy")
    what = ", ".join(name for name, _ in peer.binaries) or ", ".join(
        f"{module}: {path}" for module, path in peer.module_files) or "files only"
    return f"{what} from {origin}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*",
                        help=f"peers to build (default, what the tests need: "
                             f"{' '.join(TEST_PEERS)}; known: {' '.join(PEERS)})")
    parser.add_argument("-v", "--verbose", action="store_true", help="echo every line go prints")
    options = parser.parse_args(argv)
    names = options.names or list(TEST_PEERS)
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(PEERS)}")

    failures: List[str] = []
    go: Optional[str] = None
    all_started = time.monotonic()
    for number, name in enumerate(names, 1):
        peer = PEERS[name]
        step = f"[{number}/{len(names)}] {name} {peer.version}"
        if peer.built():
            log(f"{step}: reusing {_location(peer)}")
            continue
        try:
            if go is None and (peer.binaries or peer.module_files):
                go = find_go()
                version = subprocess.run(
                    [go, "version"], capture_output=True, text=True, check=False
                ).stdout.strip()
                log(f"using {version} ({go})")
            with build_lock(peer):
                if peer.built():
                    log(f"{step}: built meanwhile, reusing {peer.install_dir}")
                    continue
                log(f"{step}: building {_describe(peer)}")
                seconds = build(peer, go, options.verbose)
            log(f"{step}: built in {_format_elapsed(seconds)} "
                f"(all so far: {_format_elapsed(time.monotonic() - all_started)})")
        except BuildError as error:
            log(f"ERROR: {step}: {error}")
            failures.append(name)

    log("peers:")
    for name in names:
        peer = PEERS[name]
        state = "ok" if peer.built() else "MISSING"
        log(f"  {name:<31} {peer.version:<8} {state:<8} {_location(peer)}")
    if failures:
        log(f"FAILED: {', '.join(failures)} could not be built (reasons above)")
        return 1
    return 0


if __name__ == "__main__":
    # Run as the module itself, not as __main__: an assemble hook imports it, and a second
    # copy would have a BuildError of its own that main() does not catch.
    sys.exit(importlib.import_module("tests.testbed.build").main())
