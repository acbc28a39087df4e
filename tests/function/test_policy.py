from __future__ import annotations

from pathlib import Path

import pytest

from function.actions.owners import MinHealthy
from function.errors import PolicyError
from function.policy import DEFAULT_PROTECTED, load_default, load_file, parse_policy

REPO = Path(__file__).resolve().parents[2]


def test_the_embedded_default_terminates_terminal_shells_with_every_guard_on() -> None:
    policy = load_default()
    assert [r.name for r in policy.rules] == ["terminate-terminal-shells"]
    (action,) = policy.rules[0].actions
    assert action.name == "terminate"
    assert action.params.skip_daemonsets and action.params.skip_static
    guards = policy.guards
    assert guards.protected_namespaces == frozenset(DEFAULT_PROTECTED)
    assert guards.protect_self and guards.protect_falco and guards.stale_target
    assert guards.dedup_seconds == 60 and guards.rate_limit_actions == 10
    assert not policy.dry_run and policy.record_events


@pytest.mark.parametrize("path", sorted((REPO / "deploy" / "policies").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_example_policy_is_valid(path: Path) -> None:
    assert load_file(str(path)).rules


def test_actions_parameters_are_validated_into_typed_values() -> None:
    policy = parse_policy("""
rules:
  - name: r
    match: {rules: ["*shell*"]}
    actions:
      - action: terminate
        parameters: {grace_period_seconds: 0, min_healthy_replicas: "50%"}
      - action: label
        parameters: {labels: {quarantine: "true", stale: null}}
""")
    terminate, label = policy.rules[0].actions
    assert terminate.params.grace_period_seconds == 0
    assert terminate.params.min_healthy_replicas == MinHealthy(percent=50)
    assert label.params.labels == {"quarantine": "true", "stale": None}


BAD = [
    ("rules: []", "policy.yaml: rules: expected a non-empty list of rules"),
    ("rulez: []", "policy.yaml: policy: unknown key 'rulez'"),
    ("- a", "policy.yaml: policy: expected a mapping, got a list"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: terminate}], extra: 1}]",
     "rules[0]: unknown key 'extra'"),
    ("rules: [{match: {rules: [x]}, actions: [{action: terminate}]}]",
     "rules[0].name: expected a non-empty rule name"),
    ("rules: [{name: r, actions: [{action: terminate}]}]", "rules[0] (r).match: required key"),
    ("rules: [{name: r, match: {rules: [x]}, actions: []}]",
     "rules[0] (r).actions: expected a non-empty list of actions"),
    ("rules: [{name: r, match: {}, actions: [{action: terminate}]}]",
     "rules[0] (r).match: expected at least one criterion"),
    ("rules: [{name: r, match: {rules: []}, actions: [{action: terminate}]}]",
     "rules[0] (r).match.rules: expected a non-empty list of strings"),
    ("rules: [{name: r, match: {rule: [x]}, actions: [{action: terminate}]}]",
     "rules[0] (r).match: unknown key 'rule'"),
    ("rules: [{name: r, match: {priority: '>=Severe'}, actions: [{action: terminate}]}]",
     "rules[0] (r).match.priority: expected an operator"),
    ("rules: [{name: r, match: {priority: 3}, actions: [{action: terminate}]}]",
     "rules[0] (r).match.priority: expected a comparison"),
    ("rules: [{name: r, match: {tags: {}}, actions: [{action: terminate}]}]",
     "rules[0] (r).match.tags: expected 'any' and/or 'all'"),
    ("rules: [{name: r, match: {tags: [a]}, actions: [{action: terminate}]}]",
     "rules[0] (r).match.tags: expected a mapping, got a list"),
    ("rules: [{name: r, match: {fields: [{field: a, regex: '('}]}, "
     "actions: [{action: terminate}]}]",
     "rules[0] (r).match.fields[0].regex: invalid regular expression '('"),
    ("rules: [{name: r, match: {fields: [{field: a, equals: x, glob: y}]}, "
     "actions: [{action: terminate}]}]",
     "rules[0] (r).match.fields[0]: expected exactly one operator"),
    ("rules: [{name: r, match: {fields: [{field: a, like: x}]}, "
     "actions: [{action: terminate}]}]",
     "rules[0] (r).match.fields[0]: unknown key 'like'"),
    ("rules: [{name: r, match: {fields: [{field: a, in: []}]}, "
     "actions: [{action: terminate}]}]",
     "rules[0] (r).match.fields[0].in: expected a non-empty list of values"),
    ("rules: [{name: r, match: {fields: [{field: a, exists: maybe}]}, "
     "actions: [{action: terminate}]}]",
     "rules[0] (r).match.fields[0].exists: expected true or false"),
    ("rules: [{name: r, match: {namespaces: {only: [a]}}, actions: [{action: terminate}]}]",
     "rules[0] (r).match.namespaces: unknown key 'only'"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: kill}]}]",
     "rules[0] (r).actions[0].action: unknown action 'kill' (known: annotate, evict,"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: terminate, "
     "parameters: {grace: 0}}]}]",
     "rules[0] (r).actions[0].parameters: unknown parameter 'grace'"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: terminate, "
     "parameters: {grace_period_seconds: soon}}]}]",
     "rules[0] (r).actions[0].parameters.grace_period_seconds: expected an integer"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: terminate, "
     "parameters: {grace_period_seconds: -1}}]}]",
     "parameters.grace_period_seconds: expected a number of seconds >= 0"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: terminate, "
     "parameters: {min_healthy_replicas: 150%}}]}]",
     "parameters.min_healthy_replicas: expected a count >= 0 or a percent from 0% to 100%"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: terminate, "
     "parameters: {skip_daemonsets: 'no'}}]}]",
     "parameters.skip_daemonsets: expected true or false"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: label}]}]",
     "rules[0] (r).actions[0].parameters: parameter 'labels' is required"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: label, "
     "parameters: {labels: {'bad key!': x}}}]}]",
     "parameters.labels: 'bad key!' is not a valid Kubernetes label or annotation key"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: label, "
     "parameters: {labels: {a: 'not valid'}}}]}]",
     "parameters.labels: label a: 'not valid' is not a valid label value"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: terminate}]},"
     " {name: r, match: {rules: [y]}, actions: [{action: terminate}]}]",
     "rules: rule name 'r' is used twice"),
    ("guards: {protected: [a]}\nrules: [{name: r, match: {rules: [x]}, "
     "actions: [{action: terminate}]}]", "guards: unknown key 'protected'"),
    ("guards: {rate_limit: {actions: -1}}\nrules: [{name: r, match: {rules: [x]}, "
     "actions: [{action: terminate}]}]", "guards.rate_limit.actions: expected >= 0"),
    ("guards: {dedup_seconds: -5}\nrules: [{name: r, match: {rules: [x]}, "
     "actions: [{action: terminate}]}]", "guards.dedup_seconds: expected a number >= 0"),
    ("dry_run: yes please\nrules: [{name: r, match: {rules: [x]}, "
     "actions: [{action: terminate}]}]", "dry_run: expected true or false"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: terminate}]", "not valid YAML"),
    ("rules: [{name: a, match: {rules: [x]}, actions: [{action: isolate}]}, {name: b, "
     "match: {rules: [y]}, actions: [{action: isolate, parameters: {label_value: other}}]}]",
     "NetworkPolicy 'falco-responder-isolate' already selects falco-responder/isolated=true"),
    ("rules: [{name: r, match: {rules: [A], rules: ['*']}, actions: [{action: terminate}]}]",
     "key 'rules' is given twice"),
    ("guards: {protected_namespaces: [a]}\nguards: {}\nrules: []", "key 'guards' is given twice"),
    ("guards: {dedup_seconds: .nan}\nrules: [{name: r, match: {rules: [x]}, "
     "actions: [{action: terminate}]}]", "guards.dedup_seconds: expected a finite number"),
    ("guards: {rate_limit: {actions: 1, per_seconds: .inf}}\nrules: [{name: r, "
     "match: {rules: [x]}, actions: [{action: terminate}]}]",
     "guards.rate_limit.per_seconds: expected a finite number"),
    ("guards: {opt_out_key: \"exempt\\n\"}\nrules: [{name: r, match: {rules: [x]}, "
     "actions: [{action: terminate}]}]", "is not a valid Kubernetes label or annotation key"),
    ("rules: [{name: r, match: {rules: [x]}, actions: [{action: label, "
     "parameters: {labels: {a: \"b\\n\"}}}]}]", "is not a valid label value"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[m for _, m in BAD])
def test_invalid_policies_are_refused_naming_file_rule_and_key(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    assert caught.value.message.startswith("policy.yaml: ")
    assert message in caught.value.message


def test_a_policy_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"rules: [{name: caf\xe9}]")
    with pytest.raises(PolicyError, match=r"latin1\.yaml: not UTF-8 text"):
        load_file(str(bad))


def test_an_unreadable_policy_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope\.yaml: cannot read the policy file"):
        load_file(str(tmp_path / "nope.yaml"))


def test_rbac_is_exactly_what_the_actions_need() -> None:
    policy = parse_policy("""
rules:
  - name: r
    match: {rules: [x]}
    actions: [{action: evict}]
""")
    rules = {(r.api_group, r.resources[0]): r.verbs for r in policy.rbac()}
    assert rules == {
        ("", "pods"): ("get",),
        ("", "namespaces"): ("get",),
        ("", "pods/eviction"): ("create",),
        ("", "events"): ("create",),
    }
