"""The policy: YAML in, frozen and fully validated rules out.

Loading is strict: an unknown key, a wrong type, a bad regex, an unknown action or an
unknown action parameter is an error naming the file, the rule and the key. The function
refuses to start on an invalid policy rather than run part of it.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple

import yaml

from .actions import BASE_RBAC, REGISTRY, ActionDefinition, RbacRule
from .actions.base import check_key
from .alert import Priority
from .errors import InvalidAlert, PolicyError
from .matching import FieldTest, Match, NameSet, PriorityTest, as_text, normalise_source

DEFAULT_PROTECTED = (
    "kube-system", "kube-public", "kube-node-lease", "falco", "knative-serving",
    "knative-eventing", "kubeless", "openfaas", "openfaas-fn",
)
DEFAULT_OPT_OUT = "falco-responder/exempt"
FIELD_OPERATORS = ("equals", "not_equals", "in", "not_in", "glob", "regex", "exists")


@dataclass(frozen=True)
class ActionSpec:
    definition: ActionDefinition
    params: Any

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True)
class Rule:
    name: str
    match: Match
    actions: Tuple[ActionSpec, ...]
    continue_: bool = False
    dry_run: Optional[bool] = None


@dataclass(frozen=True)
class Guards:
    protected_namespaces: FrozenSet[str] = frozenset(DEFAULT_PROTECTED)
    protect_self: bool = True
    protect_falco: bool = True
    opt_out_key: str = DEFAULT_OPT_OUT
    stale_target: bool = True
    dedup_seconds: float = 60.0
    rate_limit_actions: Optional[int] = 10
    rate_limit_seconds: float = 60.0


@dataclass(frozen=True)
class Policy:
    rules: Tuple[Rule, ...]
    guards: Guards = field(default_factory=Guards)
    dry_run: bool = False
    record_events: bool = True
    source: str = "<embedded default>"

    def action_names(self) -> List[str]:
        return sorted({a.name for r in self.rules for a in r.actions})

    def rbac(self) -> Tuple[RbacRule, ...]:
        """Exactly the permissions the actions of this policy need (and their reads)."""
        rules = list(BASE_RBAC)
        if self.record_events:
            rules.append(RbacRule("", ("events",), ("create",)))
        for spec in (a for r in self.rules for a in r.actions):
            rules.extend(spec.definition.rbac_for(spec.params))
        merged: Dict[Tuple[str, str], set] = {}  # type: ignore[type-arg]
        for rule in rules:
            for resource in rule.resources:
                merged.setdefault((rule.api_group, resource), set()).update(rule.verbs)
        return tuple(RbacRule(g, (r,), tuple(sorted(v))) for (g, r), v in sorted(merged.items()))


# -- loading ----------------------------------------------------------------------------

def default_policy_text() -> str:
    return resources.files("function").joinpath("default_policy.yaml").read_text("utf-8") \
        if hasattr(resources, "files") else \
        resources.read_text("function", "default_policy.yaml")  # Python 3.8


def load_default() -> Policy:
    return parse_policy(default_policy_text(), "<embedded default>")


def load_file(path: str) -> Policy:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise PolicyError(f"cannot read the policy file ({e.strerror})", source=path) from e
    except UnicodeDecodeError as e:
        raise PolicyError(f"not UTF-8 text ({e.reason} at byte {e.start})", source=path) from e
    return parse_policy(text, path)


class _StrictYAML(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice: plain YAML keeps the last one silently."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the schema check will name it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
        return super().construct_mapping(node, deep)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        document = yaml.load(text, Loader=_StrictYAML)  # a SafeLoader subclass: safe
    except yaml.YAMLError as e:
        raise PolicyError(f"not valid YAML: {e}", source=source) from e
    except ValueError as e:  # e.g. an integer past Python's digit limit
        raise PolicyError(f"a value Python cannot read: {e}"[:300], source=source) from e
    return _Loader(source).policy(document)


class _Loader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> PolicyError:
        return PolicyError(message, source=self.source, where=where)

    def mapping(self, value: Any, where: str, known: Tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if key not in known:
                raise self.fail(where, f"unknown key {key!r} (known: {', '.join(known)})")
        return value

    def typed(self, value: Any, kind: type, where: str, what: str) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise self.fail(where, f"expected {what}, got {value!r}")
        if kind is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, kind):
            raise self.fail(where, f"expected {what}, got {_kind(value)} {value!r:.60}")
        return value

    def strings(self, value: Any, where: str) -> Tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(where, "expected a non-empty list of strings")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.fail(f"{where}[{i}]", f"expected a non-empty string, got {item!r}")
        return tuple(value)

    # -- the document --------------------------------------------------------------------

    def policy(self, doc: Any) -> Policy:
        doc = self.mapping(doc, "policy", ("dry_run", "record_events", "guards", "rules"))
        if "rules" not in doc:
            raise self.fail("rules", "required key is missing")
        rules_doc = doc["rules"]
        if not isinstance(rules_doc, list) or not rules_doc:
            raise self.fail("rules", "expected a non-empty list of rules")
        rules = tuple(self.rule(r, i) for i, r in enumerate(rules_doc))
        names = [r.name for r in rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise self.fail("rules", f"rule name {dupes[0]!r} is used twice")
        self.one_selector_per_isolation_policy(rules)
        return Policy(
            rules=rules,
            guards=self.guards(doc.get("guards", {})),
            dry_run=self.typed(doc.get("dry_run", False), bool, "dry_run", "true or false"),
            record_events=self.typed(doc.get("record_events", True), bool, "record_events",
                                     "true or false"),
            source=self.source,
        )

    def one_selector_per_isolation_policy(self, rules: Tuple[Rule, ...]) -> None:
        """Two isolate actions naming one NetworkPolicy must select the same label: each
        would otherwise replace the other's selector and release its pods."""
        seen: Dict[str, Tuple[str, str, str]] = {}
        for rule in rules:
            for spec in rule.actions:
                if spec.name != "isolate":
                    continue
                p = spec.params
                selector = (p.label_key, p.label_value, rule.name)
                first = seen.setdefault(p.network_policy_name, selector)
                if first[:2] != selector[:2]:
                    raise self.fail(
                        f"rules ({rule.name}).isolate",
                        f"NetworkPolicy {p.network_policy_name!r} already selects "
                        f"{first[0]}={first[1]} in rule {first[2]!r}: use another "
                        "network_policy_name or the same label")

    def guards(self, doc: Any) -> Guards:
        where = "guards"
        doc = self.mapping(doc, where, (
            "protected_namespaces", "protect_self", "protect_falco", "opt_out_key",
            "stale_target", "dedup_seconds", "rate_limit"))
        values: Dict[str, Any] = {}
        if "protected_namespaces" in doc:
            raw = doc["protected_namespaces"]
            values["protected_namespaces"] = frozenset(
                () if raw == [] else self.strings(raw, f"{where}.protected_namespaces"))
        for key in ("protect_self", "protect_falco", "stale_target"):
            if key in doc:
                values[key] = self.typed(doc[key], bool, f"{where}.{key}", "true or false")
        if "opt_out_key" in doc:
            key = self.typed(doc["opt_out_key"], str, f"{where}.opt_out_key", "a label key")
            try:
                values["opt_out_key"] = check_key(key)
            except ValueError as e:
                raise self.fail(f"{where}.opt_out_key", str(e)) from e
        if "dedup_seconds" in doc:
            values["dedup_seconds"] = self.non_negative(doc["dedup_seconds"],
                                                        f"{where}.dedup_seconds")
        if "rate_limit" in doc:
            at = f"{where}.rate_limit"
            limit = doc["rate_limit"]
            if limit is None:
                values["rate_limit_actions"] = None
            else:
                limit = self.mapping(limit, at, ("actions", "per_seconds"))
                actions = self.typed(limit.get("actions", 10), int, f"{at}.actions",
                                     "an integer")
                if actions < 0:
                    raise self.fail(f"{at}.actions", f"expected >= 0, got {actions}")
                values["rate_limit_actions"] = actions
                seconds = self.non_negative(limit.get("per_seconds", 60), f"{at}.per_seconds")
                if seconds == 0:
                    raise self.fail(f"{at}.per_seconds", "expected a number > 0")
                values["rate_limit_seconds"] = seconds
        return Guards(**values)

    def non_negative(self, value: Any, where: str) -> float:
        number: float = self.typed(value, float, where, "a number of seconds")
        if not math.isfinite(number):
            raise self.fail(where, f"expected a finite number of seconds, got {number}")
        if number < 0:
            raise self.fail(where, f"expected a number >= 0, got {number}")
        return number

    def rule(self, doc: Any, index: int) -> Rule:
        where = f"rules[{index}]"
        doc = self.mapping(doc, where, ("name", "match", "actions", "continue", "dry_run"))
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail(f"{where}.name", "expected a non-empty rule name")
        where = f"rules[{index}] ({name})"
        for key in ("match", "actions"):
            if key not in doc:
                raise self.fail(f"{where}.{key}", "required key is missing")
        actions_doc = doc["actions"]
        if not isinstance(actions_doc, list) or not actions_doc:
            raise self.fail(f"{where}.actions", "expected a non-empty list of actions")
        dry_run = doc.get("dry_run")
        return Rule(
            name=name,
            match=self.match(doc["match"], f"{where}.match"),
            actions=tuple(self.action(a, f"{where}.actions[{i}]")
                          for i, a in enumerate(actions_doc)),
            continue_=self.typed(doc.get("continue", False), bool, f"{where}.continue",
                                 "true or false"),
            dry_run=None if dry_run is None else self.typed(dry_run, bool, f"{where}.dry_run",
                                                            "true or false"),
        )

    def action(self, doc: Any, where: str) -> ActionSpec:
        doc = self.mapping(doc, where, ("action", "parameters"))
        name = doc.get("action")
        if name not in REGISTRY:
            raise self.fail(f"{where}.action",
                            f"unknown action {name!r} (known: {', '.join(REGISTRY.names())})")
        definition = REGISTRY.get(name)
        params = definition.parse_params(doc.get("parameters"), f"{where}.parameters",
                                         self.source)
        return ActionSpec(definition, params)

    def match(self, doc: Any, where: str) -> Match:
        doc = self.mapping(doc, where, ("rules", "priority", "sources", "tags", "fields",
                                        "namespaces"))
        if not doc:
            raise self.fail(where, "expected at least one criterion "
                                   "(use rules: ['*'] to match every alert)")
        values: Dict[str, Any] = {}
        if "rules" in doc:
            values["rules"] = NameSet.of(self.strings(doc["rules"], f"{where}.rules"))
        if "priority" in doc:
            values["priority"] = self.priority(doc["priority"], f"{where}.priority")
        if "sources" in doc:
            values["sources"] = frozenset(
                normalise_source(s) for s in self.strings(doc["sources"], f"{where}.sources"))
        if "tags" in doc:
            tags = self.mapping(doc["tags"], f"{where}.tags", ("any", "all"))
            if not tags:
                raise self.fail(f"{where}.tags", "expected 'any' and/or 'all'")
            for key in ("any", "all"):
                if key in tags:
                    values[f"tags_{key}"] = frozenset(self.strings(tags[key],
                                                                   f"{where}.tags.{key}"))
        if "fields" in doc:
            items = doc["fields"]
            if not isinstance(items, list) or not items:
                raise self.fail(f"{where}.fields", "expected a non-empty list of conditions")
            values["fields"] = tuple(self.field_test(c, f"{where}.fields[{i}]")
                                     for i, c in enumerate(items))
        if "namespaces" in doc:
            at = f"{where}.namespaces"
            spaces = self.mapping(doc["namespaces"], at, ("include", "exclude"))
            if not spaces:
                raise self.fail(at, "expected 'include' and/or 'exclude'")
            for key in ("include", "exclude"):
                if key in spaces:
                    values[f"namespaces_{key}"] = NameSet.of(self.strings(spaces[key],
                                                                          f"{at}.{key}"))
        return Match(**values)

    def priority(self, value: Any, where: str) -> PriorityTest:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a comparison such as '>=Warning', got {value!r}")
        m = re.match(r"^\s*(>=|<=|==|!=|>|<|=)?\s*([A-Za-z]+)\s*$", value)
        try:
            if not m:
                raise InvalidAlert("bad form")
            priority = Priority.parse(m.group(2))
        except InvalidAlert as e:
            names = ", ".join(p.label for p in Priority)
            raise self.fail(where, f"expected an operator (>=, >, <=, <, ==, !=) and one of "
                                   f"{names}, got {value!r}") from e
        return PriorityTest(m.group(1) or "==", priority)

    def field_test(self, doc: Any, where: str) -> FieldTest:
        doc = self.mapping(doc, where, ("field", *FIELD_OPERATORS))
        name = doc.get("field")
        if not isinstance(name, str) or not name:
            raise self.fail(f"{where}.field", "expected the name of an output field")
        ops = [k for k in doc if k != "field"]
        if len(ops) != 1:
            raise self.fail(where, f"expected exactly one operator of "
                                   f"{', '.join(FIELD_OPERATORS)}, got {len(ops)}")
        op = ops[0]
        value = doc[op]
        at = f"{where}.{op}"
        if op == "exists":
            return FieldTest(name, op, self.typed(value, bool, at, "true or false"))
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise self.fail(at, "expected a non-empty list of values")
            texts = frozenset(self.scalar(v, f"{at}[{i}]") for i, v in enumerate(value))
            return FieldTest(name, op, tuple(sorted(texts)), texts)
        text = self.scalar(value, at)
        if op == "regex":
            try:
                return FieldTest(name, op, text, re.compile(text))
            except re.error as e:
                raise self.fail(at, f"invalid regular expression {text!r}: {e}") from e
        if op == "glob":
            return FieldTest(name, op, text, re.compile(fnmatch.translate(text)))
        return FieldTest(name, op, text)

    def scalar(self, value: Any, where: str) -> str:
        if isinstance(value, (dict, list)) or value is None:
            raise self.fail(where, f"expected a string, number or boolean, got {_kind(value)}")
        return as_text(value) or ""


def _kind(value: Any) -> str:
    return {type(None): "nothing", dict: "a mapping", list: "a list"}.get(
        type(value), type(value).__name__)
