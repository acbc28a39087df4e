"""Files at fixed paths for one program, and never on the machine."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Mapping, Optional, Sequence

import pytest

from tests.testbed import private_root


def run(argv: Sequence[str], workdir: Path, files: Mapping[str, Path],
        user: Optional[private_root.User] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(private_root.wrap(argv, workdir, files, user=user),
                          capture_output=True, text=True, timeout=30)


def test_the_program_sees_the_files_at_their_paths_and_the_machine_never_does(
        tmp_path: Path) -> None:
    tag = secrets.token_hex(4)
    folder, secret = tmp_path / "function", tmp_path / "token"
    folder.mkdir()
    (folder / "handler.py").write_text("print('hi')\n")
    secret.write_text("s3cret\n")
    top, nested = f"/kubeless-{tag}", f"/var/lib/openfaas-{tag}/secrets/token"
    done = run(["/bin/sh", "-c", f"cat {top}/handler.py {nested}; echo made > {top}/out; "
                f"touch /var/lib/stray-{tag}; cat /etc/hostname"],
               tmp_path / "run", {top: folder, nested: secret})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["print('hi')", "s3cret"]
    assert lines[2:] == Path("/etc/hostname").read_text().splitlines()  # the machine, as is
    assert (folder / "out").read_text() == "made\n"  # a write to a fixed path is the test's
    for path in (top, f"/var/lib/openfaas-{tag}", f"/var/lib/stray-{tag}"):
        assert not os.path.lexists(path), path


@pytest.mark.parametrize("path", ["kubeless", "/", "/var/.."])
def test_a_fixed_path_that_is_relative_or_the_root_is_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(ValueError, match="must be absolute and not / itself"):
        private_root.wrap(["true"], tmp_path, {path: tmp_path})


def test_the_program_runs_as_the_user_and_reaches_only_what_it_is_told_to(
        tmp_path: Path) -> None:
    """As a pod's ``runAsUser: 1000`` with ``fsGroup: 1000``; a program in a folder closed to
    others (as the interpreters under ``/root`` are) runs only where the user may reach it."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    tool = closed / "cat"
    shutil.copy2(str(shutil.which("cat")), tool)
    (closed / "note").write_text("reached\n")
    read = [str(tool), str(closed / "note")]
    opened = private_root.User(1000, 0, (1000,), reachable=(str(tool),))
    done = run(["/bin/sh", "-c", 'id -u; id -G; exec "$@"', "sh", *read],
               tmp_path / "opened", {}, opened)
    assert done.stdout.splitlines() == ["1000", "0 1000", "reached"], done.stderr
    refused = run(read, tmp_path / "refused", {}, private_root.User(1000, 0, (1000,)))
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    assert closed.stat().st_mode & 0o777 == 0o700  # the machine's folder is unchanged
