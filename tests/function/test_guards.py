from __future__ import annotations

from typing import Any, Dict, List

from function.alert import Target, parse_alert
from function.guards import Dedup, RateLimit, opted_out, pod_guard, stale_target
from function.policy import Guards


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


KEY = ("Terminal shell in container", "default", "alpine", "terminate")


def test_dedup_acts_once_per_window_and_only_after_acting() -> None:
    clock = Clock()
    dedup = Dedup(60, clock)
    assert dedup.claim(KEY) is None
    assert dedup.claim(KEY) == "duplicate: the same action on this pod is in progress"
    dedup.release(KEY, acted=False)  # it failed: a retry must be able to act
    assert dedup.claim(KEY) is None
    dedup.release(KEY, acted=True)
    assert dedup.claim(KEY) == "duplicate: already acted within the last 60s"
    clock.now += 60.1
    assert dedup.claim(KEY) is None


def test_dedup_keys_differ_by_rule_namespace_pod_and_action() -> None:
    dedup = Dedup(60, Clock())
    for key in [KEY, ("Other", *KEY[1:]), (KEY[0], "prod", *KEY[2:]),
                (*KEY[:2], "other", KEY[3]), (*KEY[:3], "label")]:
        assert dedup.claim(key) is None


def test_dedup_window_zero_disables_it() -> None:
    dedup = Dedup(0, Clock())
    assert dedup.claim(KEY) is None and dedup.claim(KEY) is None


def test_rate_limit_is_a_sliding_window() -> None:
    clock = Clock()
    limit = RateLimit(2, 60, clock)
    assert limit.take()[0] is None
    clock.now += 30
    assert limit.take()[0] is None
    assert limit.take() == ("rate limit: 2 destructive actions per 60s reached", None)
    clock.now += 30.5  # the first slot has left the window
    assert limit.take()[0] is None
    assert limit.take()[0] is not None


def test_a_dry_run_looks_at_the_rate_limit_without_using_it() -> None:
    limit = RateLimit(1, 60, Clock())
    assert limit.take(consume=False) == (None, None)
    assert limit.take()[0] is None
    assert limit.take(consume=False)[0] is not None


def test_a_slot_given_back_can_be_used_again() -> None:
    limit = RateLimit(1, 60, Clock())
    reason, slot = limit.take()
    assert reason is None and slot is not None
    limit.give_back(slot)
    assert limit.take()[0] is None


def test_giving_back_frees_that_slot_not_the_newest() -> None:
    clock = Clock()
    limit = RateLimit(2, 60, clock)
    _, old = limit.take()
    clock.now += 59
    assert limit.take()[0] is None
    assert old is not None
    limit.give_back(old)  # the long action that took the old slot did not act
    clock.now += 2  # the old slot would have left the window anyway; the new one stays
    assert limit.take()[0] is None
    assert limit.take()[0] is not None


def test_no_rate_limit_when_disabled() -> None:
    limit = RateLimit(None, 60, Clock())
    assert all(limit.take() == (None, None) for _ in range(1000))


def pod(labels: Dict[str, str] = {}, annotations: Dict[str, str] = {},  # noqa: B006
        **meta: Any) -> Dict[str, Any]:
    return {"metadata": {"name": "alpine", "namespace": "default", "labels": labels,
                         "annotations": annotations, **meta}}


TARGET = Target("default", "alpine")


def test_never_its_own_pod() -> None:
    reason = pod_guard(Guards(), pod(), TARGET, own_pod=("default", "alpine"))
    assert reason == "the function's own pod"
    assert pod_guard(Guards(protect_self=False), pod(), TARGET, ("default", "alpine")) is None


def test_never_falco_or_falcosidekick_pods() -> None:
    for labels in ({"app.kubernetes.io/name": "falco"}, {"app": "falcosidekick"}):
        assert "falco" in (pod_guard(Guards(), pod(labels), TARGET, None) or "")


def test_opt_out_by_label_or_annotation() -> None:
    key = "falco-responder/exempt"
    assert opted_out(Guards(), pod({key: "true"})["metadata"], "pod") == (
        "pod opted out (label falco-responder/exempt=true)")
    assert "annotation" in (opted_out(Guards(), pod(annotations={key: "True"})["metadata"],
                                      "namespace x") or "")
    assert opted_out(Guards(), pod({key: "false"})["metadata"], "pod") is None
    custom = Guards(opt_out_key="example.com/keep")
    assert opted_out(custom, pod({"example.com/keep": "true"})["metadata"], "pod")


def shell(uid: str = "") -> Any:
    fields: Dict[str, Any] = {"k8s.ns.name": "default", "k8s.pod.name": "alpine"}
    if uid:
        fields["k8s.pod.uid"] = uid
    return parse_alert({"rule": "r", "priority": "Notice", "time": "2024-04-03T11:36:27.67Z",
                        "output_fields": fields})


def test_stale_target_by_uid_when_the_alert_has_one() -> None:
    assert stale_target(Guards(), pod(uid="u-1"), shell("u-1")) is None
    assert "UID differs" in (stale_target(Guards(), pod(uid="u-2"), shell("u-1")) or "")


def test_stale_target_by_creation_time_otherwise() -> None:
    older: List[Any] = [pod(creationTimestamp="2024-04-03T11:36:20Z")]
    newer = pod(creationTimestamp="2024-04-03T11:37:00Z")
    assert stale_target(Guards(), older[0], shell()) is None
    assert "created at 2024-04-03T11:37:00Z, after the alert" in (
        stale_target(Guards(), newer, shell()) or "")
    assert stale_target(Guards(stale_target=False), newer, shell()) is None


def test_a_pod_created_in_the_alerts_own_second_is_ambiguous_without_a_uid() -> None:
    same = pod(creationTimestamp="2024-04-03T11:36:27Z")  # the alert is at 11:36:27.67
    assert "the alert's own second" in (stale_target(Guards(), same, shell()) or "")
    assert stale_target(Guards(), pod(creationTimestamp="2024-04-03T11:36:27Z", uid="u-1"),
                        shell("u-1")) is None


def test_a_pod_without_a_readable_creation_time_is_not_acted_on() -> None:
    for meta in ({}, {"creationTimestamp": "yesterday"}):
        assert "no readable creationTimestamp" in (stale_target(Guards(), pod(**meta),
                                                                shell()) or "")


def test_counts_in_a_state_file_are_shared_between_processes(tmp_path: Any) -> None:
    """Kubeless forks a child per request: each child must see the others' counts."""
    import multiprocessing

    from function.state import FileState

    path = str(tmp_path / "guards.json")

    def child(queue: Any) -> None:
        dedup = Dedup(60, state=FileState(path))
        limit = RateLimit(1, 60, state=FileState(path))
        reason = dedup.claim(KEY)
        dedup.release(KEY, acted=True)
        queue.put((reason, limit.take()[0]))

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    for _ in range(2):
        process = context.Process(target=child, args=(queue,))
        process.start()
        process.join(10)
    first, second = queue.get(timeout=5), queue.get(timeout=5)
    assert first == (None, None)
    assert second[0] == "duplicate: already acted within the last 60s"
    assert second[1] == "rate limit: 1 destructive actions per 60s reached"


def test_a_torn_state_file_restarts_the_counts(tmp_path: Any) -> None:
    from function.state import FileState

    path = tmp_path / "guards.json"
    path.write_text("{not json")
    assert Dedup(60, state=FileState(str(path))).claim(KEY) is None


def test_a_claim_left_by_a_dead_request_expires() -> None:
    clock = Clock()
    dedup = Dedup(60, clock)
    assert dedup.claim(KEY) is None  # never released: the child was killed
    clock.now += dedup.stale_after + 1
    assert dedup.claim(KEY) is None
