"""Where a peer's source comes from: the archive beside the checkout, else the same commit
fetched from upstream (a local repository stands in for GitHub, which is out of reach)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.testbed import build, peers


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=str(cwd), check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A repository with two commits: the pinned one and a later one."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    git("config", "user.email", "t@example.invalid", cwd=repo)
    git("config", "user.name", "t", cwd=repo)
    (repo / "main.go").write_text("package main\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "pinned", cwd=repo)
    (repo / "later.txt").write_text("not in the release\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "later", cwd=repo)
    return repo


def peer_from(repo: Path, commit: str) -> peers.Peer:
    return peers.Peer(name="example", version="1.0.0", source=peers.Source(
        archive="no-such-archive-1.0.0", repository=str(repo), tag="v1.0.0", commit=commit))


def test_without_the_archive_the_pinned_commit_is_fetched(
    upstream: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pinned = git("rev-parse", "HEAD~1", cwd=upstream)
    peer = peer_from(upstream, pinned)
    assert not peer.source.archive_path.exists()  # type: ignore[union-attr]

    tree = build.fetch_source(peer, tmp_path / "build.log")

    assert (tree / "main.go").is_file() and not (tree / "later.txt").exists()
    assert git("rev-parse", "HEAD", cwd=tree) == pinned
    assert peer.built()


def test_an_unknown_commit_fails_naming_the_repository(
    upstream: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    peer = peer_from(upstream, "0" * 40)

    with pytest.raises(build.BuildError, match=str(upstream)):
        build.fetch_source(peer, tmp_path / "build.log")
    assert not peer.built()


def assemble_hello(peer: peers.Peer, go: str, staging: Path, log_file: Path,
                   verbose: bool) -> Path:
    """An ``assemble`` hook: a tree made in the build's staging folder."""
    tree = staging / "tree"
    tree.mkdir()
    (tree / "go.mod").write_text("module example.invalid/hello\n\ngo 1.21\n")
    (tree / "main.go").write_text('package main\n\nfunc main() { println("hello") }\n')
    return tree


def test_an_assembled_tree_is_built_and_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    peer = peers.Peer(name="hello", version="1.0.0", binaries=(("hello", "."),),
                      assemble=f"{__name__}:assemble_hello")

    build.build(peer, build.find_go(), verbose=False)

    assert peer.built()
    assert sorted(p.name for p in peer.install_dir.iterdir()) == ["build.log", "hello"]
    ran = subprocess.run([str(peer.binary_path("hello"))], capture_output=True, text=True)
    assert ran.stderr.strip() == "hello"
