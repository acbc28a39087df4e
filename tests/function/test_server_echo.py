"""A huge value is never echoed whole: not in the reply, not in the log line."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict

import pytest

from .local_server import LocalServer
from .raw_http import exchange, post_bytes
from .wire import load_json

HUGE = "x" * 900_000
#: Far above any legitimate reply or log line, far below the value.
BOUND = 8 * 1024


def alert() -> Dict[str, Any]:
    return load_json("forwarded", "terminal_shell_in_container.falco-0.37-ovh-k8s"
                                  ".forwarded.json")


def with_field(path: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    def put(document: Dict[str, Any]) -> None:
        *parents, last = path.split("/")
        for key in parents:
            document = document[key]
        document[last] = value
    return put


PLACES = {
    "rule": with_field("rule", HUGE),
    "priority": with_field("priority", HUGE),
    "time": with_field("time", HUGE),
    "source": with_field("source", HUGE),
    "pod name": with_field("output_fields/k8s.pod.name", HUGE),
    "namespace": with_field("output_fields/k8s.ns.name", HUGE),
    "pod name of another type": with_field("output_fields/k8s.pod.name", [HUGE]),
    "tags": with_field("tags", [HUGE, 1]),
    "a field's name": with_field(f"output_fields/{HUGE}", 1),
    "hostname": with_field("hostname", [HUGE]),
}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_900_kb_value_is_cut_in_the_reply_and_the_log_line(server: LocalServer,
                                                            place: str) -> None:
    document = alert()
    PLACES[place](document)
    reply = exchange(server.port, post_bytes(json.dumps(document).encode()))
    assert reply is not None and reply.status in (200, 400)
    assert len(reply.body) < BOUND, reply.body[:300]
    if reply.status == 200:  # decided: nothing to act on in a dry run, and no pod named
        assert all(a["status"] != "done" for a in reply.json()["actions"])
    [logged] = server.decisions()
    assert logged["status"] == reply.status
    assert len(json.dumps(logged)) < BOUND


def test_a_huge_cloudevent_attribute_is_cut_too(server: LocalServer) -> None:
    headers = ["ce-specversion: 1.0", "ce-id: 1", "ce-source: falco.org",
               f"ce-type: {HUGE[:60_000]}"]
    reply = exchange(server.port, post_bytes(json.dumps(alert()).encode(), headers))
    assert reply is not None and reply.status == 200
    assert len(reply.body) < BOUND
    [logged] = server.decisions()
    assert len(json.dumps(logged)) < BOUND
