"""What an action is: its parameters, the RBAC it needs, its checks and its run.

Each action module builds one :class:`ActionDefinition` and registers it; the policy
loader validates parameters through it, the engine runs it, and the CLI prints RBAC and
docs from it. Three phases, as in Falco Talon: parameters are checked when the policy
loads, :attr:`check` runs at event time (a reason to skip, or None), then :attr:`run`.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Mapping,
    Optional,
    Tuple,
)

from ..decision import Status
from ..errors import PolicyError

if TYPE_CHECKING:
    from ..alert import Alert, Target
    from ..kube import Kube
    from ..state import GuardState


@dataclass(frozen=True)
class RbacRule:
    api_group: str
    resources: Tuple[str, ...]
    verbs: Tuple[str, ...]


@dataclass
class ActionContext:
    """Everything an action sees at event time. ``pod`` is the pod as read from the API."""

    alert: Alert
    target: Target
    rule_name: str
    pod: Optional[Dict[str, Any]]
    kube: Optional[Kube]
    dry_run: bool
    #: Where this function's replicas share claims (None: no sharing needed, e.g. the CLI).
    state: Optional[GuardState] = None

    @property
    def uid(self) -> Optional[str]:
        """The UID every write is conditioned on: the alert's, else the one we read."""
        if self.target.uid:
            return self.target.uid
        if self.pod is not None:
            uid = self.pod.get("metadata", {}).get("uid")
            return uid if isinstance(uid, str) else None
        return None

    def api(self) -> Kube:
        assert self.kube is not None, "run() is only called with a cluster"
        return self.kube


Check = Callable[[ActionContext, Any], Optional[str]]
Run = Callable[[ActionContext, Any], Tuple[Status, str]]
Describe = Callable[[Any], str]


def _no_check(ctx: ActionContext, params: Any) -> Optional[str]:
    return None


@dataclass(frozen=True)
class ActionDefinition:
    name: str
    description: str
    params: type
    rbac: Tuple[RbacRule, ...]
    run: Run
    describe: Describe
    check: Check = _no_check
    # Destructive actions count against the blast-radius limit.
    destructive: bool = False
    # What a pod that no longer exists means for this action: done ("already gone") or not.
    gone_is_done: bool = False
    example: str = ""
    # Permissions only some parameter values need (e.g. reading owners for a replica check).
    rbac_if: Callable[[Any], Tuple[RbacRule, ...]] = lambda params: ()

    def rbac_for(self, params: Any) -> Tuple[RbacRule, ...]:
        return self.rbac + self.rbac_if(params)

    def parse_params(self, raw: Any, where: str, source: str) -> Any:
        return parse_params(self.params, raw, where, source)

    def parameter_docs(self) -> Tuple[Tuple[str, str, Any, str], ...]:
        """(name, type, default, doc) for every parameter."""
        hints = typing.get_type_hints(self.params)
        rows = []
        for f in dataclasses.fields(self.params):
            default = None if f.default is dataclasses.MISSING else f.default
            kind = f.metadata.get("type") or _type_name(hints[f.name])
            rows.append((f.name, kind, default, f.metadata.get("doc", "")))
        return tuple(rows)


def param(default: Any, doc: str, *, type: str = "", check: Optional[Callable[[Any], Any]] = None
          ) -> Any:
    """A parameter field: its default, what it means, and an optional extra check."""
    return dataclasses.field(default=default, metadata={"doc": doc, "type": type,
                                                        "check": check})


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint) if hasattr(typing, "get_origin") else None
    if origin is typing.Union:
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _type_name(inner[0]) + " or null"
    if origin in (dict, Mapping):
        return "mapping of strings"
    if origin is tuple:
        return "list of strings"
    return getattr(hint, "__name__", str(hint))


def parse_params(cls: type, raw: Any, where: str, source: str) -> Any:
    """Strictly validate a ``parameters`` mapping against a frozen params dataclass."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise PolicyError(f"expected a mapping, got {type(raw).__name__}", source=source,
                          where=where)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known), key=str)
    if unknown:
        raise PolicyError(
            f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(known)) or 'none'})",
            source=source, where=where)
    missing = [n for n, f in known.items() if f.metadata.get("required") and n not in raw]
    if missing:
        raise PolicyError(f"parameter {missing[0]!r} is required", source=source, where=where)
    hints = typing.get_type_hints(cls)
    values: Dict[str, Any] = {}
    for name, value in raw.items():
        at = f"{where}.{name}"
        values[name] = _coerce(value, hints[name], at, source)
        check = known[name].metadata.get("check")
        if check is not None:
            try:
                values[name] = check(values[name])
            except ValueError as e:
                raise PolicyError(str(e), source=source, where=at) from e
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(value, option, where, source)
            except PolicyError as e:
                errors.append(e)
        raise errors[-1]
    if hint is Any:
        return value
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _wrong(value, "a mapping of string keys", where, source)
        value_hint = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, value_hint, f"{where}.{k}", source) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise _wrong(value, "a list", where, source)
        return tuple(_coerce(v, args[0], f"{where}[{i}]", source) for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise _wrong(value, "true or false", where, source)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(value, "an integer", where, source)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong(value, "a number", where, source)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _wrong(value, "a string", where, source)
        return value
    if hint is type(None):
        if value is not None:
            raise _wrong(value, "null", where, source)
        return None
    raise TypeError(f"unsupported parameter type {hint!r}")  # a bug in an action module


def _wrong(value: Any, expected: str, where: str, source: str) -> PolicyError:
    return PolicyError(f"expected {expected}, got {value!r:.60}", source=source, where=where)


# Kubernetes qualified names, for label and annotation keys.
_QUALIFIED = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def check_key(key: str) -> str:
    prefix = key.split("/", 1)[0] if "/" in key else ""
    if not _QUALIFIED.fullmatch(key) or len(prefix) > 253:
        raise ValueError(f"{key!r} is not a valid Kubernetes label or annotation key")
    return key


def check_labels(labels: Mapping[str, Optional[str]]) -> Mapping[str, Optional[str]]:
    if not labels:
        raise ValueError("expected at least one label")
    for key, value in labels.items():
        check_key(key)
        if value is not None and (len(value) > 63 or not _LABEL_VALUE.fullmatch(value)):
            raise ValueError(f"label {key}: {value!r} is not a valid label value")
    return labels


def check_annotations(annotations: Mapping[str, Optional[str]]) -> Mapping[str, Optional[str]]:
    if not annotations:
        raise ValueError("expected at least one annotation")
    for key in annotations:
        check_key(key)
    return annotations
