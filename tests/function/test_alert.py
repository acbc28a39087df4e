from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, Dict

import pytest

from function.alert import Priority, Target, find_target, parse_alert, parse_time
from function.errors import InvalidAlert

from .wire import fixture_paths, load_json

# Target of every fixture alert, read from output_fields only.
EXPECTED_TARGETS = {
    "falco_internal_syscall_event_drop": None,
    "falcosidekick_test_event": None,
    "k8saudit_attach_exec_pod": "default/kubecon",
    "k8saudit_serviceaccount_created": None,
    "launch_privileged_container": None,
    "read_sensitive_file_untrusted": "default/hellofalco",
    "terminal_shell_in_container.falco-0.26": "default/alpine",
    "terminal_shell_in_container.falco-0.35": "default/kubecon",
    "terminal_shell_in_container.falco-0.37": "default/alpine",
    "write_below_binary_dir": None,
    "write_below_etc": None,
}


def expected_target(name: str) -> Any:
    matches = [v for k, v in EXPECTED_TARGETS.items() if name.startswith(k)]
    assert len(matches) == 1, name
    return matches[0]


@pytest.mark.parametrize("path", fixture_paths("falco") + fixture_paths("forwarded"),
                         ids=lambda p: p.name)
def test_every_fixture_alert_parses_with_its_target(path: Any) -> None:
    import json

    alert = parse_alert(json.loads(path.read_text()))
    assert alert.rule
    target = str(alert.target) if alert.target else None
    assert target == expected_target(path.name)
    if alert.target is None:
        assert alert.no_target_reason


def test_host_events_have_no_target_even_with_pod_fields() -> None:
    target, why = find_target({"container.id": "host", "k8s.ns.name": "default",
                               "k8s.pod.name": "x"})
    assert target is None and "host" in why


def test_k8smeta_fields_are_used_when_k8s_fields_are_absent() -> None:
    target, _ = find_target({"k8smeta.ns.name": "shop", "k8smeta.pod.name": "web-1",
                             "k8smeta.pod.uid": "u-1"})
    assert target == Target("shop", "web-1", "u-1")


def test_audit_alerts_target_pods_only() -> None:
    pods = {"ka.target.resource": "pods", "ka.target.namespace": "ns", "ka.target.name": "p"}
    assert find_target(pods)[0] == Target("ns", "p")
    secrets = dict(pods, **{"ka.target.resource": "secrets"})
    assert find_target(secrets)[0] is None


def test_pod_uid_is_carried_when_present() -> None:
    target, _ = find_target({"k8s.ns.name": "a", "k8s.pod.name": "b", "k8s.pod.uid": "1234"})
    assert target is not None and target.uid == "1234"


@pytest.mark.parametrize("namespace,pod", [
    ("..", "x"), ("default", "../x"), ("Default", "x"), ("default", "X"),
    ("a" * 64, "x"), ("default", "a" * 300), ("", "x"), ("default", ""),
    ("default", "a/b"), ("kube system", "x"),
])
def test_invalid_kubernetes_names_give_no_target_with_reason(namespace: str, pod: str) -> None:
    target, why = find_target({"k8s.ns.name": namespace, "k8s.pod.name": pod})
    assert target is None
    assert "not a valid Kubernetes" in why


def test_non_string_names_give_no_target() -> None:
    target, why = find_target({"k8s.ns.name": 7, "k8s.pod.name": None})
    assert target is None and "expected two strings" in why


@pytest.mark.parametrize("text,expected", [
    ("2024-04-03T11:36:27.670410771Z", datetime(2024, 4, 3, 11, 36, 27, 670410, timezone.utc)),
    ("2024-04-03T11:36:27Z", datetime(2024, 4, 3, 11, 36, 27, tzinfo=timezone.utc)),
    ("2024-04-03T13:36:27.5+02:00", datetime(2024, 4, 3, 11, 36, 27, 500000, timezone.utc)),
])
def test_rfc3339_times_with_up_to_nine_digits(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-03T11:36:27Z", "2024-04-03", 12,
                                  "2024-04-03T11:36:27.1234567890Z", None])
def test_bad_times_are_refused_naming_the_field(text: Any) -> None:
    with pytest.raises(InvalidAlert, match=r"^time: expected an RFC 3339 time"):
        parse_time(text)


@pytest.mark.parametrize("name,expected", [
    ("Info", Priority.INFORMATIONAL), ("informational", Priority.INFORMATIONAL),
    ("WARNING", Priority.WARNING), ("Emergency", Priority.EMERGENCY), ("debug", Priority.DEBUG),
])
def test_priorities_are_case_insensitive_and_info_is_informational(
        name: str, expected: Priority) -> None:
    assert Priority.parse(name) is expected


def _broken(change: Dict[str, Any]) -> Dict[str, Any]:
    alert = copy.deepcopy(load_json("forwarded",
                                    "terminal_shell_in_container.falco-0.37-ovh-k8s"
                                    ".forwarded.json"))
    for key, value in change.items():
        if value is KeyError:
            del alert[key]
        else:
            alert[key] = value
    return alert


@pytest.mark.parametrize("change,field,text", [
    ({"rule": KeyError}, "rule", "rule: required field is missing"),
    ({"rule": ""}, "rule", "rule: expected a non-empty string"),
    ({"rule": 5}, "rule", "rule: expected a non-empty string"),
    ({"priority": KeyError}, "priority", "priority: required field is missing"),
    ({"priority": "Severe"}, "priority", "priority: expected one of Debug"),
    ({"priority": 3}, "priority", "priority: expected one of"),
    ({"time": KeyError}, "time", "time: required field is missing"),
    ({"time": "noon"}, "time", "time: expected an RFC 3339 time"),
    ({"output_fields": KeyError}, "output_fields", "output_fields: expected a JSON object, "
                                                   "got nothing"),
    ({"output_fields": "k8s.ns.name=default"}, "output_fields",
     "output_fields: expected a JSON object, got str"),
    ({"output_fields": ["a"]}, "output_fields", "output_fields: expected a JSON object"),
    ({"tags": "shell"}, "tags", "tags: expected a list of strings"),
    ({"tags": [1]}, "tags", "tags: expected a list of strings"),
    ({"source": 3}, "source", "source: expected a string"),
])
def test_bad_alerts_name_the_field_and_what_was_expected(
        change: Dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(InvalidAlert) as caught:
        parse_alert(_broken(change))
    assert caught.value.field == field
    assert caught.value.message.startswith(text)
    assert caught.value.status == 400


@pytest.mark.parametrize("payload", [[], "alert", 3, None])
def test_a_body_that_is_not_an_object_is_refused(payload: Any) -> None:
    with pytest.raises(InvalidAlert, match="body: expected a JSON object"):
        parse_alert(payload)


@pytest.mark.parametrize("namespace,pod", [("kube-system\n", "coredns"), ("default", "x\n")])
def test_a_trailing_newline_is_not_a_valid_name(namespace: str, pod: str) -> None:
    target, why = find_target({"k8s.ns.name": namespace, "k8s.pod.name": pod})
    assert target is None and "not a valid Kubernetes" in why


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
def test_a_time_out_of_range_is_a_bad_time_not_a_crash(text: str) -> None:
    with pytest.raises(InvalidAlert, match=r"^time: expected an RFC 3339 time"):
        parse_time(text)


def test_an_unknown_uid_is_no_uid() -> None:
    target, _ = find_target({"k8s.ns.name": "a", "k8s.pod.name": "b", "k8s.pod.uid": "<NA>"})
    assert target == Target("a", "b", None)
