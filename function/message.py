"""A framework-neutral HTTP message: what every adapter hands to the core.

Header names are lower-cased once here, so no other module worries about case.
"""

from __future__ import annotations

# isinstance against collections.abc, not typing: typing's check is several times slower.
from collections import abc
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Tuple, Union

HeaderSource = Union[Mapping[str, str], Iterable[Tuple[str, str]]]


@dataclass(frozen=True)
class HTTPMessage:
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def of(cls, headers: Optional[HeaderSource], body: Union[bytes, str, None]) -> HTTPMessage:
        items = headers.items() if isinstance(headers, abc.Mapping) else (headers or ())
        lowered = {}
        for name, value in items:
            if isinstance(name, str) and isinstance(value, str):
                lowered[name.lower()] = value
        if body is None:
            raw = b""
        elif isinstance(body, str):
            raw = body.encode("utf-8")
        else:
            raw = bytes(body)
        return cls(headers=lowered, body=raw)

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-cased ('' when absent)."""
        value = self.headers.get("content-type", "")
        return value.split(";", 1)[0].strip().lower()
