from __future__ import annotations

import copy
from typing import Any, Dict

import pytest

from function.alert import parse_alert
from function.policy import parse_policy


def matches(match_yaml: str, alert_doc: Dict[str, Any]) -> bool:
    policy = parse_policy(f"rules: [{{name: r, match: {match_yaml}, "
                          "actions: [{action: terminate}]}]")
    return policy.rules[0].match(parse_alert(alert_doc))


def with_fields(alert: Dict[str, Any], **fields: Any) -> Dict[str, Any]:
    doc = copy.deepcopy(alert)
    doc["output_fields"].update({k.replace("__", "."): v for k, v in fields.items()})
    return doc


@pytest.mark.parametrize("match,expected", [
    ('{rules: ["Terminal shell in container"]}', True),
    ('{rules: ["terminal shell in container"]}', False),  # rule names are exact
    ('{rules: ["Terminal shell*"]}', True),
    ('{rules: ["*shell*", "Other"]}', True),
    ('{rules: ["Terminal shell in container?"]}', False),
    ('{rules: ["Other rule"]}', False),
])
def test_rule_names_match_exactly_or_by_glob(shell_alert: Any, match: str,
                                             expected: bool) -> None:
    assert matches(match, shell_alert) is expected


@pytest.mark.parametrize("comparison,expected", [
    (">=Notice", True), (">=notice", True), (">Notice", False), (">=Warning", False),
    ("<=Notice", True), ("<Notice", False), ("Notice", True), ("==NOTICE", True),
    ("!=Notice", False), (">=Info", True), (">=Informational", True), ("<Info", False),
])
def test_priority_comparisons(shell_alert: Any, comparison: str, expected: bool) -> None:
    assert matches(f'{{priority: "{comparison}"}}', shell_alert) is expected


def test_sources_treat_syscall_and_syscalls_as_one(shell_alert: Any) -> None:
    assert shell_alert["source"] == "syscall"
    assert matches("{sources: [syscalls]}", shell_alert)
    assert matches("{sources: [syscall]}", dict(shell_alert, source="syscalls"))
    assert not matches("{sources: [k8s_audit]}", shell_alert)


@pytest.mark.parametrize("tags,expected", [
    ("{any: [shell, nothing]}", True), ("{any: [nothing]}", False),
    ("{all: [shell, container]}", True), ("{all: [shell, nothing]}", False),
    ("{any: [shell], all: [mitre_execution]}", True),
])
def test_tags_any_and_all(shell_alert: Any, tags: str, expected: bool) -> None:
    assert matches(f"{{tags: {tags}}}", shell_alert) is expected


@pytest.mark.parametrize("condition,expected", [
    ("{field: k8s.ns.name, equals: default}", True),
    ("{field: k8s.ns.name, equals: prod}", False),
    ("{field: k8s.ns.name, not_equals: prod}", True),
    ("{field: k8s.ns.name, in: [prod, default]}", True),
    ("{field: k8s.ns.name, not_in: [prod, default]}", False),
    ("{field: proc.cmdline, glob: 'sh -c *'}", True),
    ("{field: proc.cmdline, regex: '^sh\\s+-c'}", True),
    ("{field: proc.cmdline, regex: '^bash'}", False),
    ("{field: proc.tty, equals: 34816}", True),
    ("{field: proc.tty, equals: '34816'}", True),
    ("{field: user.loginuid, in: [-1, 0]}", True),
    ("{field: k8s.pod.uid, exists: false}", True),
    ("{field: k8s.pod.name, exists: true}", True),
    ("{field: no.such.field, equals: x}", False),
    ("{field: no.such.field, not_equals: x}", True),
    ("{field: no.such.field, regex: '.*'}", False),
])
def test_output_field_operators(shell_alert: Any, condition: str, expected: bool) -> None:
    assert matches(f"{{fields: [{condition}]}}", shell_alert) is expected


def test_values_may_contain_equals_and_commas(shell_alert: Any) -> None:
    alert = with_fields(shell_alert, proc__cmdline="env A=1,B=2 sh")
    assert matches("{fields: [{field: proc.cmdline, equals: 'env A=1,B=2 sh'}]}", alert)
    assert not matches("{fields: [{field: proc.cmdline, equals: 'env A=1'}]}", alert)


def test_bracketed_field_names_and_booleans_and_nulls(shell_alert: Any) -> None:
    alert = with_fields(shell_alert, **{"proc.aname[2]": "runc", "evt.is_open_write": True,
                                        "k8s.pod.labels": None})
    assert matches("{fields: [{field: 'proc.aname[2]', equals: runc}]}", alert)
    assert matches("{fields: [{field: evt.is_open_write, equals: true}]}", alert)
    assert matches("{fields: [{field: k8s.pod.labels, exists: false}]}", alert)
    assert not matches("{fields: [{field: k8s.pod.labels, equals: 'None'}]}", alert)


def test_every_criterion_must_hold(shell_alert: Any) -> None:
    assert matches('{rules: ["Terminal*"], priority: ">=Notice", '
                   "fields: [{field: k8s.ns.name, equals: default}]}", shell_alert)
    assert not matches('{rules: ["Terminal*"], priority: ">=Critical"}', shell_alert)


@pytest.mark.parametrize("namespaces,expected", [
    ("{include: [default]}", True), ("{include: [prod-*]}", False),
    ("{exclude: [default]}", False), ("{exclude: [prod-*]}", True),
    ("{include: ['*'], exclude: [def*]}", False),
])
def test_namespace_include_and_exclude(shell_alert: Any, namespaces: str,
                                       expected: bool) -> None:
    assert matches(f"{{namespaces: {namespaces}}}", shell_alert) is expected


def test_namespace_include_never_matches_an_alert_without_a_pod(shell_alert: Any) -> None:
    host = with_fields(shell_alert, container__id="host")
    assert not matches("{namespaces: {include: ['*']}}", host)


def test_a_rule_name_with_glob_characters_matches_itself(shell_alert: Any) -> None:
    alert = dict(shell_alert, rule="Drop [and] execute new binary in container")
    assert matches('{rules: ["Drop [and] execute new binary in container"]}', alert)
