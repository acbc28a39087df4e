"""Pure matching of an alert against a rule's ``match`` block.

Everything here is compiled when the policy loads (globs become regexes, lists become
sets), so matching an alert is a handful of dictionary and set look-ups. No I/O.
Semantics: every criterion given must hold; a list inside a criterion matches when any
element does (``tags.all`` excepted). Empty lists are refused at load time, so a
criterion can never silently match everything.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable, FrozenSet, Mapping, Optional, Pattern, Tuple

from .alert import Alert, Priority

_GLOB_CHARS = frozenset("*?[")


def is_glob(text: str) -> bool:
    return any(c in _GLOB_CHARS for c in text)


@dataclass(frozen=True)
class NameSet:
    """Exact names plus globs, compiled into one set and one regex."""

    exact: FrozenSet[str]
    pattern: Optional[Pattern[str]]

    @classmethod
    def of(cls, names: Tuple[str, ...]) -> NameSet:
        globs = [n for n in names if is_glob(n)]
        # Every name also matches itself, so a Falco rule whose name contains "[...]" or
        # "*" is still matched when written out exactly.
        exact = frozenset(names)
        pattern = re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None
        return cls(exact, pattern)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in self.exact:
            return True
        return self.pattern is not None and self.pattern.match(name) is not None


_COMPARATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
    "==": operator.eq, "=": operator.eq, "!=": operator.ne,
}


@dataclass(frozen=True)
class PriorityTest:
    op: str
    priority: Priority

    def __call__(self, value: Priority) -> bool:
        return _COMPARATORS[self.op](value, self.priority)


def normalise_source(source: str) -> str:
    # Falcosidekick says "syscalls" where Falco says "syscall": they are the same source.
    return "syscall" if source == "syscalls" else source


def as_text(value: Any) -> Optional[str]:
    """How an output_fields value compares with a policy string (JSON spelling)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


MISSING = object()


@dataclass(frozen=True)
class FieldTest:
    """One structured condition on one output field."""

    field: str
    op: str
    value: Any
    compiled: Any = None

    def __call__(self, fields: Mapping[str, Any]) -> bool:
        raw = fields.get(self.field, MISSING)
        op = self.op
        if op == "exists":
            return (raw is not MISSING and raw is not None) is bool(self.value)
        text = None if raw is MISSING else as_text(raw)
        if op == "equals":
            return text is not None and bool(text == self.value)
        if op == "not_equals":
            return bool(text != self.value)
        if op == "in":
            return text is not None and text in self.compiled
        if op == "not_in":
            return text not in self.compiled
        if text is None:
            return False
        # glob and regex
        found = self.compiled.search(text) if op == "regex" else self.compiled.match(text)
        return found is not None


@dataclass(frozen=True)
class Match:
    rules: Optional[NameSet] = None
    priority: Optional[PriorityTest] = None
    sources: Optional[FrozenSet[str]] = None
    tags_any: Optional[FrozenSet[str]] = None
    tags_all: Optional[FrozenSet[str]] = None
    fields: Tuple[FieldTest, ...] = ()
    namespaces_include: Optional[NameSet] = None
    namespaces_exclude: Optional[NameSet] = None

    def __call__(self, alert: Alert) -> bool:
        if self.rules is not None and alert.rule not in self.rules:
            return False
        if self.priority is not None and not self.priority(alert.priority):
            return False
        if self.sources is not None and normalise_source(alert.source) not in self.sources:
            return False
        if self.tags_any is not None and self.tags_any.isdisjoint(alert.tags):
            return False
        if self.tags_all is not None and not self.tags_all.issubset(alert.tags):
            return False
        for test in self.fields:
            if not test(alert.output_fields):
                return False
        namespace = alert.target.namespace if alert.target else None
        if self.namespaces_include is not None and namespace not in self.namespaces_include:
            return False
        return not (self.namespaces_exclude is not None
                    and namespace in self.namespaces_exclude)
