"""The Falco alert, parsed once at the edge into frozen dataclasses.

Parsing is strict about what the engine relies on (rule, priority, time, output_fields)
and names the field and what was expected when it refuses. The pod to act on is read
from ``output_fields`` only: the ``output`` text changed format across Falco versions
and is never parsed.
"""

from __future__ import annotations

import enum
import re

# isinstance against collections.abc, not typing: typing's check is several times slower.
from collections import abc
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Tuple

from .errors import InvalidAlert


class Priority(enum.IntEnum):
    DEBUG = 0
    INFORMATIONAL = 1
    NOTICE = 2
    WARNING = 3
    ERROR = 4
    CRITICAL = 5
    ALERT = 6
    EMERGENCY = 7

    @classmethod
    def parse(cls, value: object, field: str = "priority") -> Priority:
        if isinstance(value, str):
            found = _PRIORITY_NAMES.get(value.strip().lower())
            if found is not None:
                return found
        names = ", ".join(p.label for p in cls)
        raise InvalidAlert(f"{field}: expected one of {names}, got {value!r:.80}",
                           field=field)

    @property
    def label(self) -> str:
        return self.name.capitalize()


_PRIORITY_NAMES = {p.name.lower(): p for p in Priority}
_PRIORITY_NAMES["info"] = Priority.INFORMATIONAL

# RFC 3339 with up to nine fractional digits; Python < 3.11 reads at most six.
_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_time(value: object, field: str = "time") -> datetime:
    if isinstance(value, str):
        m = _TIME.fullmatch(value.strip())
        if m:
            day, clock, fraction, zone = m.groups()
            micros = (fraction or "").ljust(6, "0")[:6]
            offset = "+00:00" if zone in ("Z", "z") else zone
            try:
                return datetime.fromisoformat(f"{day}T{clock}.{micros}{offset}").astimezone(
                    timezone.utc
                )
            except (ValueError, OverflowError):  # e.g. year 1 with a +23:59 offset
                pass
    raise InvalidAlert(
        f"{field}: expected an RFC 3339 time such as 2024-04-03T11:36:27.670410771Z, "
        f"got {value!r:.80}",
        field=field,
    )


# RFC 1123 label (namespaces) and subdomain (pod names), as the API server checks them.
# Always fullmatch: a "$" would also match before a trailing newline.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def invalid_name_reason(namespace: str, pod: str) -> Optional[str]:
    if not (0 < len(namespace) <= 63 and _DNS_LABEL.fullmatch(namespace)):
        return f"namespace {namespace[:80]!r} is not a valid Kubernetes namespace name"
    if not (0 < len(pod) <= 253 and _DNS_SUBDOMAIN.fullmatch(pod)):
        return f"pod {pod[:80]!r} is not a valid Kubernetes pod name"
    return None


@dataclass(frozen=True)
class Target:
    namespace: str
    pod: str
    uid: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.pod}"


@dataclass(frozen=True)
class Alert:
    rule: str
    priority: Priority
    time: datetime
    source: str
    output: str
    output_fields: Mapping[str, Any]
    tags: Tuple[str, ...] = ()
    hostname: str = ""
    uuid: str = ""
    # The time exactly as sent (nanoseconds included); ``time`` keeps microseconds.
    time_text: str = ""
    target: Optional[Target] = None
    # Why there is no target, when there is none; shown in the decision.
    no_target_reason: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "rule": shown(self.rule),
            "priority": self.priority.label,
            "source": shown(self.source),
            "time": self.time_text or self.time.isoformat().replace("+00:00", "Z"),
            "target": str(self.target) if self.target else None,
        }


def shown(text: str, limit: int = 256) -> str:
    """A value from the alert as the decision and the log line show it: at most ``limit``
    characters, so a huge field is never echoed whole."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


_TARGET_KEYS = (
    ("k8s.ns.name", "k8s.pod.name", "k8s.pod.uid"),
    ("k8smeta.ns.name", "k8smeta.pod.name", "k8smeta.pod.uid"),
)


def find_target(fields: Mapping[str, Any]) -> Tuple[Optional[Target], str]:
    """The pod an alert is about, or why there is none."""
    if fields.get("container.id") == "host":
        return None, "host event (container.id is 'host'): no pod"
    for ns_key, pod_key, uid_key in _TARGET_KEYS:
        namespace, pod = fields.get(ns_key), fields.get(pod_key)
        if namespace is None and pod is None:
            continue
        return _named_target(namespace, pod, fields.get(uid_key), f"{ns_key}/{pod_key}")
    if fields.get("ka.target.resource") == "pods":
        namespace, pod = fields.get("ka.target.namespace"), fields.get("ka.target.name")
        return _named_target(namespace, pod, None, "ka.target.namespace/ka.target.name")
    return None, "no pod in output_fields (k8s.pod.name, k8smeta.pod.name, ka.target.name)"


def _named_target(
    namespace: object, pod: object, uid: object, keys: str
) -> Tuple[Optional[Target], str]:
    if not isinstance(namespace, str) or not isinstance(pod, str):
        return None, f"{keys}: expected two strings, got {namespace!r:.80} and {pod!r:.80}"
    bad = invalid_name_reason(namespace, pod)
    if bad:
        return None, f"{keys}: {bad}"
    # Older Falco writes "<NA>" for a field it could not fill: that is no UID at all.
    known = uid if isinstance(uid, str) and uid not in ("", "<NA>") else None
    return Target(namespace, pod, known), ""


def parse_alert(payload: object) -> Alert:
    """Falco's JSON (as Falco or Falcosidekick sends it) -> Alert, or InvalidAlert."""
    if not isinstance(payload, abc.Mapping):
        raise InvalidAlert(
            f"body: expected a JSON object (a Falco alert), got {type(payload).__name__}",
            field="body",
        )
    rule = _required_str(payload, "rule")
    for key in ("priority", "time"):
        if key not in payload:
            raise InvalidAlert(f"{key}: required field is missing", field=key)
    priority = Priority.parse(payload["priority"])
    time = parse_time(payload["time"])
    fields = payload.get("output_fields")
    if not isinstance(fields, abc.Mapping):
        raise InvalidAlert(
            f"output_fields: expected a JSON object, got {_type(fields)}", field="output_fields"
        )
    tags = payload.get("tags", [])
    if tags is None:
        tags = []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidAlert(f"tags: expected a list of strings, got {tags!r:.80}", field="tags")
    target, why = find_target(fields)
    return Alert(
        rule=rule,
        priority=priority,
        time=time,
        source=_optional_str(payload, "source") or "syscall",
        output=_optional_str(payload, "output"),
        output_fields=dict(fields),
        tags=tuple(tags),
        hostname=_optional_str(payload, "hostname"),
        uuid=_optional_str(payload, "uuid"),
        time_text=payload["time"],
        target=target,
        no_target_reason=why,
    )


def _type(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _required_str(payload: Mapping[str, Any], key: str) -> str:
    if key not in payload:
        raise InvalidAlert(f"{key}: required field is missing", field=key)
    value = payload[key]
    if not isinstance(value, str) or not value:
        raise InvalidAlert(f"{key}: expected a non-empty string, got {value!r:.80}", field=key)
    return value


def _optional_str(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidAlert(f"{key}: expected a string, got {_type(value)}", field=key)
    return value
