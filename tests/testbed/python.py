"""Which CPython runs a runtime: the one a platform's image has, by ``major.minor``."""

from __future__ import annotations

import shutil
from pathlib import Path

PYENV = Path.home() / ".pyenv" / "versions"


def interpreter(version: str) -> str:
    """A CPython ``major.minor``: pyenv's, else one on PATH; fails naming what is missing."""
    for candidate in sorted(PYENV.glob(f"{version}.*/bin/python{version}"), reverse=True):
        return str(candidate)
    found = shutil.which(f"python{version}")
    if found is None:
        raise RuntimeError(f"Python {version} is needed for this runtime and was not found "
                           f"(looked under {PYENV} and on PATH)")
    return found
