"""Hostile HTTP framing against `make run`'s server, over raw sockets: every request that
is not one whole, well-framed message gets a clear status (or is closed unanswered) and
is never decided (no decision in the log)."""

from __future__ import annotations

import json
from typing import List

import pytest

from .local_server import LocalServer
from .raw_http import Reader, connect, exchange, post_bytes
from .wire import load_json

ALERT = json.dumps(load_json(
    "forwarded", "terminal_shell_in_container.falco-0.37-ovh-k8s.forwarded.json")).encode()


def head(lines: List[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def assert_not_decided(server: LocalServer) -> None:
    assert server.decisions() == []


def test_a_well_formed_alert_is_decided(server: LocalServer) -> None:
    reply = exchange(server.port, post_bytes(ALERT))
    assert reply is not None and reply.status == 200
    assert reply.json()["actions"][0]["status"] == "would"
    assert [d["alert"]["rule"] for d in server.decisions()] == ["Terminal shell in container"]


@pytest.mark.parametrize("lengths", [["10", "10"], ["10", "2000"], ["10,10"]])
def test_a_duplicate_content_length_is_400(server: LocalServer, lengths: List[str]) -> None:
    body = ALERT
    raw = head(["POST / HTTP/1.1", "Host: x", "Content-Type: application/json",
                *(f"Content-Length: {n}" for n in lengths)]) + body
    reply = exchange(server.port, raw)
    assert reply is not None and reply.status == 400
    assert_not_decided(server)


@pytest.mark.parametrize("length", ["1_0_9_7", "+1097", "-1", "0x449", " 1097x", "1e3",
                                    "\u0661\u0660"])  # int() reads Arabic-Indic digits
def test_a_content_length_that_is_not_digits_is_400(server: LocalServer, length: str) -> None:
    raw = head(["POST / HTTP/1.1", "Host: x", f"Content-Length: {length}"]) + ALERT
    reply = exchange(server.port, raw)
    assert reply is not None and reply.status == 400
    assert_not_decided(server)


def chunked(body: bytes, size: int = 100) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
             for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def test_a_chunked_body_is_accepted_and_decided(server: LocalServer) -> None:
    raw = head(["POST / HTTP/1.1", "Host: x", "Content-Type: application/json",
                "Transfer-Encoding: chunked"]) + chunked(ALERT)
    reply = exchange(server.port, raw)
    assert reply is not None and reply.status == 200, reply
    assert reply.json()["alert"]["target"] == "default/alpine"
    assert len(server.decisions()) == 1


def test_chunked_wins_over_a_content_length_and_smuggles_nothing(server: LocalServer) -> None:
    # A proxy reading Content-Length would see a second request inside this body.
    smuggled = post_bytes(ALERT)
    body = chunked(ALERT) + smuggled
    raw = head(["POST / HTTP/1.1", "Host: x", "Content-Type: application/json",
                f"Content-Length: {len(chunked(ALERT))}", "Transfer-Encoding: chunked"]) + body
    with connect(server.port) as sock:
        sock.sendall(raw)
        reader = Reader(sock)
        first = reader.reply()
        assert first is not None and first.status == 200
        second = reader.reply()  # the bytes after the chunked body are a request of their own
        assert second is not None and second.status == 200
    assert len(server.decisions()) == 2


@pytest.mark.parametrize("bad", [b"zz\r\n" + ALERT[:10] + b"\r\n0\r\n\r\n",
                                 b"10\r\n" + ALERT[:5] + b"\r\n0\r\n\r\n",
                                 b"-5\r\n" + ALERT[:5] + b"\r\n0\r\n\r\n",
                                 b"1_0\r\n" + ALERT[:16] + b"\r\n0\r\n\r\n"])
def test_a_malformed_chunked_body_is_400(server: LocalServer, bad: bytes) -> None:
    raw = head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"]) + bad
    reply = exchange(server.port, raw, timeout=15)
    assert reply is None or reply.status == 400
    assert_not_decided(server)


def test_an_unknown_transfer_encoding_is_501(server: LocalServer) -> None:
    raw = head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: gzip, chunked, gzip"])
    reply = exchange(server.port, raw + chunked(ALERT))
    assert reply is not None and reply.status == 501
    assert_not_decided(server)


def test_expect_100_continue_with_a_huge_length_is_refused_at_once(server: LocalServer) -> None:
    raw = head(["POST / HTTP/1.1", "Host: x", "Content-Type: application/json",
                "Expect: 100-continue", f"Content-Length: {1024 ** 3}"])
    with connect(server.port) as sock:
        sock.sendall(raw)
        reply = Reader(sock).reply()
    assert reply is not None and reply.status == 413, reply
    assert_not_decided(server)


def test_expect_100_continue_within_the_limit_is_invited_then_decided(
        server: LocalServer) -> None:
    raw = head(["POST / HTTP/1.1", "Host: x", "Content-Type: application/json",
                "Expect: 100-continue", f"Content-Length: {len(ALERT)}"])
    with connect(server.port) as sock:
        sock.sendall(raw)
        reader = Reader(sock)
        invited = reader.reply()
        assert invited is not None and invited.status == 100
        sock.sendall(ALERT)
        reply = reader.reply()
    assert reply is not None and reply.status == 200
    assert len(server.decisions()) == 1


@pytest.mark.parametrize("chunks", [False, True])
def test_a_body_over_the_limit_is_413(server: LocalServer, chunks: bool) -> None:
    body = b" " * (1024 * 1024 + 10)
    if chunks:
        raw = head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"]) + chunked(
            body, 64 * 1024)
    else:
        raw = post_bytes(body)
    reply = exchange(server.port, raw)
    assert reply is not None and reply.status == 413
    assert_not_decided(server)


def test_a_body_one_byte_over_the_limit_gets_the_functions_413(server: LocalServer) -> None:
    reply = exchange(server.port, post_bytes(b" " * (1024 * 1024 + 1)))
    assert reply is not None and reply.status == 413
    assert reply.json()["error"]["type"] == "payload_too_large"
    [logged] = server.decisions()
    assert logged["status"] == 413 and "actions" not in logged


@pytest.mark.parametrize("lines", [
    ["POST / HTTP/1.1", "Host: x", "X-Big: " + "a" * 100_000],
    ["POST / HTTP/1.1", "Host: x", *(f"X-H{i}: {'b' * 100}" for i in range(1000))],
])
def test_huge_headers_are_431(server: LocalServer, lines: List[str]) -> None:
    reply = exchange(server.port, head([*lines, "Content-Length: 2"]) + b"{}")
    assert reply is not None and reply.status == 431
    assert_not_decided(server)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"])
def test_other_methods_are_405_naming_post(server: LocalServer, method: str) -> None:
    raw = head([f"{method} / HTTP/1.1", "Host: x", f"Content-Length: {len(ALERT)}"]) + ALERT
    reply = exchange(server.port, raw)
    assert reply is not None and reply.status == 405
    assert reply.headers["allow"] == "POST, GET, HEAD"
    assert "POST" in reply.json()["error"]["message"]
    assert_not_decided(server)


@pytest.mark.parametrize("line", [b"GARBAGE\r\n\r\n", b"POST\r\n\r\n",
                                  b"POST / HTTP/1.1\nHost: x\n\n",
                                  b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                                  b"POST / HTTP/1.1\r\nHost x\r\n\r\n",
                                  b"POST / HTTP/1.1\r\nHo\x00st: x\r\n\r\n"])
def test_a_malformed_request_head_is_400(server: LocalServer, line: bytes) -> None:
    reply = exchange(server.port, line)
    assert reply is None or reply.status in (400, 405, 505), reply
    assert reply is None or reply.status != 200
    assert_not_decided(server)


def test_pipelined_requests_are_answered_in_order(server: LocalServer) -> None:
    alerts = []
    for name in ("first", "second", "third"):
        alert = json.loads(ALERT)
        alert["output_fields"]["k8s.pod.name"] = name
        alerts.append(post_bytes(json.dumps(alert).encode()))
    with connect(server.port) as sock:
        sock.sendall(b"".join(alerts))
        reader = Reader(sock)
        targets = [reader.reply() for _ in alerts]
    assert [r.json()["alert"]["target"] for r in targets if r] == [
        "default/first", "default/second", "default/third"]
    assert len(server.decisions()) == 3


def test_health_and_unknown_paths(server: LocalServer) -> None:
    for path, status in (("/health/readiness", 200), ("/health/liveness", 200),
                         ("/nope", 404)):
        reply = exchange(server.port, head([f"GET {path} HTTP/1.1", "Host: x"]))
        assert reply is not None and reply.status == status, path
