"""Shared fixtures of the project: ../shared/fixtures, read as files, and a raw-HTTP parser."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def fixture_paths(kind: str, pattern: str = "*") -> List[Path]:
    paths = sorted((SHARED / kind).glob(pattern))
    assert paths, f"no fixtures under {SHARED / kind}: is ../shared beside the checkout?"
    return paths


def load_json(kind: str, name: str) -> Dict[str, Any]:
    data: Dict[str, Any] = json.loads((SHARED / kind / name).read_text("utf-8"))
    return data


@dataclass(frozen=True)
class WireRequest:
    method: str
    path: str
    headers: List[Tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        return next(v for k, v in self.headers if k.lower() == name.lower())


def parse_wire(path: Path) -> WireRequest:
    """A raw HTTP/1.1 request, byte for byte: request line, CRLF headers, body."""
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return WireRequest(method, target, headers, body)
