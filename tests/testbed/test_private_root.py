"""Files at fixed paths for one program, and never on the machine."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

import pytest

from tests.testbed import private_root


def run(argv: Sequence[str], workdir: Path, files: Mapping[str, Path]
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(private_root.wrap(argv, workdir, files), capture_output=True,
                          text=True, timeout=30)


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
