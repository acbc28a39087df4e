"""Property-based: no input makes the core raise, answer 500, or reach the API when bad."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from function import Engine
from function.kube import Retry

from .conftest import TERMINAL_SHELL
from .test_kube import FaultServer, engine_for
from .wire import load_json

SHELL = load_json("forwarded", TERMINAL_SHELL)
HANDLED = {200, 400, 401, 413}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
header_names = st.sampled_from([
    "Content-Type", "ce-specversion", "ce-type", "ce-source", "ce-id", "Authorization",
    "X-Falco-Token", "ce-falcotoken", "Content-Length", "X-Anything"]) | st.text(max_size=20)
header_values = st.sampled_from([
    "application/json", "application/cloudevents+json", "1.0", "falco.rule.output.v1",
    "https://falco.org", "falco.org", "Bearer x", ""]) | st.text(max_size=40)


@st.composite
def mutated_alerts(draw: Any) -> Dict[str, Any]:
    """The shell alert with keys dropped or replaced by arbitrary JSON."""
    alert = json.loads(json.dumps(SHELL))
    for key in draw(st.lists(st.sampled_from(sorted(alert)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del alert[key]
        else:
            alert[key] = draw(json_values)
    return alert


@pytest.fixture(scope="module")
def tripwire() -> Iterator[FaultServer]:
    """An API endpoint that only records: bad input must never reach it."""
    server = FaultServer([])
    yield server
    server.close()


@pytest.fixture(scope="module")
def engine(tripwire: FaultServer) -> Engine:
    return engine_for(tripwire.url, Retry(1, 1.0, 0.5, 0.01))


def check(engine: Engine, tripwire: FaultServer, headers: Any, body: bytes) -> None:
    before = len(tripwire.requests)
    response = engine.handle_http(headers, body)
    assert response.status in HANDLED, response.body
    json.dumps(response.body)
    if response.status != 200:
        assert "error" in response.body and response.body["error"]["message"]
        assert len(tripwire.requests) == before


FAST = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(headers=st.dictionaries(header_names, header_values, max_size=6),
       body=st.binary(max_size=512))
def test_arbitrary_headers_and_bytes(engine: Engine, tripwire: FaultServer,
                                     headers: Dict[str, str], body: bytes) -> None:
    check(engine, tripwire, headers, body)


@FAST
@given(headers=st.dictionaries(header_names, header_values, max_size=6), doc=json_values)
def test_arbitrary_json_documents(engine: Engine, tripwire: FaultServer,
                                  headers: Dict[str, str], doc: Any) -> None:
    check(engine, tripwire, headers, json.dumps(doc).encode())


@FAST
@given(alert=mutated_alerts(), structured=st.booleans())
def test_mutated_alerts_in_every_envelope(engine: Engine, tripwire: FaultServer,
                                          alert: Dict[str, Any], structured: bool) -> None:
    if structured:
        event = {"specversion": "1.0", "id": "1", "source": "https://falco.org",
                 "type": "falco.rule.output.v1", "data": alert}
        check(engine, tripwire, {"Content-Type": "application/cloudevents+json"},
              json.dumps(event).encode())
    else:
        check(engine, tripwire, {"Content-Type": "application/json"}, json.dumps(alert).encode())


@FAST
@given(attributes=st.dictionaries(st.text(max_size=12), json_values, max_size=6),
       data=json_values | st.binary(max_size=64))
def test_arbitrary_parsed_cloudevents(engine: Engine, tripwire: FaultServer,
                                      attributes: Dict[str, Any], data: Any) -> None:
    before = len(tripwire.requests)
    response = engine.handle_cloudevent(attributes, data)
    assert response.status in HANDLED
    if response.status != 200:
        assert len(tripwire.requests) == before
