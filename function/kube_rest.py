"""Kubernetes API requests by path, on the ``kubernetes`` client's own connection pool.

The client's generated API classes cost the start-up of the function: ``CoreV1Api``,
``AppsV1Api`` and ``NetworkingV1Api`` import a few hundred model classes and wrap every
method in argument validation, 0.4-0.6 s before the first alert can be answered (and the
validation runs again on every call). The engine needs a dozen requests whose paths are
fixed, with names already checked at the edge, and reads plain JSON. So requests are made
here, by path, with what the client set up from the kubeconfig or the in-cluster account:
its urllib3 pool (TLS, client certificates, proxy) and its token (refreshed by the
client's own hook). Failures are raised as the client's ``ApiException``, as before.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import quote, urlencode

import urllib3
from kubernetes.client.exceptions import ApiException

JSON = "application/json"
#: What the generated client sends for a patch with an object body.
STRATEGIC_MERGE = "application/strategic-merge-patch+json"

Timeout = Tuple[float, float]


def path(*segments: str, group: str = "", version: str = "v1",
         query: Optional[Mapping[str, str]] = None) -> str:
    """``/api/v1/...`` (core) or ``/apis/<group>/<version>/...``, each segment quoted, then
    the query (e.g. ``{"labelSelector": "a=b"}``) encoded."""
    root = f"/apis/{group}/{version}" if group else f"/api/{version}"
    text = root + "".join("/" + quote(s, safe="") for s in segments)
    return f"{text}?{urlencode(query)}" if query else text


class Rest:
    def __init__(self, api_client: Any) -> None:
        self.configuration = api_client.configuration
        self.pool = api_client.rest_client.pool_manager
        self.host = self.configuration.host.rstrip("/")
        self.user_agent = getattr(api_client, "user_agent", "falco-responder")

    def _headers(self, content_type: Optional[str]) -> Dict[str, str]:
        headers = {"Accept": JSON, "User-Agent": self.user_agent}
        if content_type:
            headers["Content-Type"] = content_type
        # A token (in-cluster account, kubeconfig token or plugin): asked each time, so the
        # client's refresh hook can replace a rotated one. Certificates are in the pool.
        bearer = self.configuration.auth_settings().get("BearerToken")
        if bearer and bearer.get("value"):
            headers[bearer["key"]] = bearer["value"]
        return headers

    def request(self, method: str, url_path: str, body: Any = None,
                content_type: Optional[str] = JSON, *,
                _request_timeout: Timeout = (2.0, 2.0), _preload_content: bool = False
                ) -> Any:
        """The urllib3 response (``.data`` holds the JSON); an error status raises
        ``ApiException`` with ``status``, ``reason`` and ``body`` as the client sets them."""
        connect, read = _request_timeout
        data = None if body is None else json.dumps(body).encode("utf-8")
        response = self.pool.request(
            method, self.host + url_path, body=data,
            headers=self._headers(content_type if data is not None else None),
            timeout=urllib3.Timeout(connect=connect, read=read), retries=False,
            preload_content=True)
        if not 200 <= response.status < 300:
            error = ApiException(status=response.status, reason=response.reason)
            error.body = response.data.decode("utf-8", "replace")
            error.headers = response.headers
            raise error
        return response

    def get(self, url_path: str, **options: Any) -> Any:
        return self.request("GET", url_path, **options)

    def post(self, url_path: str, body: Any, **options: Any) -> Any:
        return self.request("POST", url_path, body, **options)

    def put(self, url_path: str, body: Any, **options: Any) -> Any:
        return self.request("PUT", url_path, body, **options)

    def patch(self, url_path: str, body: Any, **options: Any) -> Any:
        return self.request("PATCH", url_path, body, STRATEGIC_MERGE, **options)

    def delete(self, url_path: str, body: Any = None, **options: Any) -> Any:
        return self.request("DELETE", url_path, body, **options)
