"""The optional shared token: bearer, a configured header, or a CloudEvent extension.

Compared in constant time. Kubeless, OpenFaaS and Fission outputs of Falcosidekick
cannot carry any header of ours: for those, authenticity rests on the network path.
"""

from __future__ import annotations

import hmac
from typing import Any, Mapping, Optional

from .errors import Unauthorized
from .message import HTTPMessage


class TokenCheck:
    def __init__(self, token: Optional[str], header: str, extension: str) -> None:
        self._token = token.encode("utf-8") if token else None
        self.header = header.lower()
        self.extension = extension.lower()

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def presented(self, msg: HTTPMessage, attributes: Optional[Mapping[str, Any]] = None
                  ) -> Optional[str]:
        authorization = msg.header("authorization") or ""
        if authorization[:7].lower() == "bearer ":
            return authorization[7:].strip()
        for value in (msg.header(self.header), msg.header("ce-" + self.extension),
                      (attributes or {}).get(self.extension)):
            if isinstance(value, str):
                return value
        return None

    def verify(self, msg: HTTPMessage, attributes: Optional[Mapping[str, Any]] = None) -> None:
        if self._token is None:
            return
        given = self.presented(msg, attributes)
        if given is None:
            raise Unauthorized(
                f"missing token: expected 'Authorization: Bearer', header {self.header!r} "
                f"or CloudEvent extension {self.extension!r}")
        if not hmac.compare_digest(given.encode("utf-8"), self._token):
            raise Unauthorized("wrong token")
