"""Build what Kubeless deploys: ``python -m adapters.kubeless.bundle [--manifest]``.

Kubeless takes one file per function; a ``.zip`` given to ``--from-file`` is stored as
``base64+zip`` and unpacked into the runtime's ``/kubeless`` folder, which is on its import
path. So the zip holds ``handler.py`` at its root beside the core package ``function/``:
the function imports the very core this checkout tests, with no registry in between.
``--manifest`` also writes the ``Function`` object (``function.yaml`` with the zip, its
checksum and ``requirements.txt`` filled in) for ``kubectl apply``.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = REPO / "adapters" / "kubeless"
OUT = REPO / "build" / "kubeless"


def bundle(out: Path = OUT / "falco-responder.zip") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    files = [(HERE / "handler.py", "handler.py")]
    files += [(path, path.relative_to(REPO).as_posix())
              for path in sorted((REPO / "function").rglob("*"))
              if path.is_file() and "__pycache__" not in path.parts]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, name in files:
            # Fixed timestamps: the same sources give the same zip, so the same checksum.
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return out


def manifest(archive: Path, out: Path = OUT / "function.yaml") -> Path:
    document = yaml.safe_load((HERE / "function.yaml").read_text())
    content = archive.read_bytes()
    document["spec"].update({
        "function": base64.b64encode(content).decode(),
        "checksum": "sha256:" + hashlib.sha256(content).hexdigest(),
        "deps": (HERE / "requirements.txt").read_text(),
    })
    out.write_text(yaml.safe_dump(document, sort_keys=False))
    return out


if __name__ == "__main__":
    built = bundle()
    print(built)
    if "--manifest" in sys.argv[1:]:
        print(manifest(built))
