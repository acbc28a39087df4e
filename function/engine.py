"""alert -> matching rules -> guards -> actions -> Decision.

The engine is built once per process (policy, settings, one Kubernetes client) and is
safe to call from many threads. Its three entry points take plain data, so every
runtime adapter is a few lines of translation. Every request ends as a
:class:`Response`: the HTTP status mapping is :func:`respond`, and nowhere else.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple

from .actions import ActionContext
from .actions.record import event_key, event_message
from .alert import Alert
from .auth import TokenCheck
from .bounded import fit
from .deadline import scope
from .decision import Decision, Outcome, Status
from .decision_log import DECISIONS
from .errors import (
    ActionFailed,
    KubeError,
    OutcomeUnknown,
    ResponderError,
    TransientKubeError,
)
from .guards import Dedup, RateLimit, opted_out, pod_guard, protected_namespace, stale_target
from .ingest import Inbound, check_size, from_cloudevent, from_http, from_payload
from .message import HeaderSource, HTTPMessage
from .metrics import METRICS
from .permissions import PermissionCheck
from .policy import ActionSpec, Policy, Rule, load_default, load_file
from .settings import Settings
from .state import Slot, guard_state

log = logging.getLogger("function")

_CLEANUP_SECONDS = 0.5

if TYPE_CHECKING:  # kubernetes is imported at connect time only: its import is large
    from .kube import Kube


@dataclass(frozen=True)
class Response:
    status: int
    body: Dict[str, Any]
    headers: Dict[str, str] = field(default_factory=lambda: {
        "Content-Type": "application/json"})

    def body_bytes(self) -> bytes:
        """The body as JSON, encoded once (the log line reuses it)."""
        cached: Optional[bytes] = self.__dict__.get("_bytes")
        if cached is None:
            cached = json.dumps(self.body, separators=(",", ":")).encode("utf-8")
            object.__setattr__(self, "_bytes", cached)
        return cached


def respond(work: Callable[[], Decision]) -> Response:
    """Run one request; map its outcome or its error to a status. The only such mapping."""
    try:
        decision = work()
    except ResponderError as e:
        body = e.to_json()
        partial = getattr(e, "decision", None)
        if partial is not None:  # what was and was not done before it failed
            body = fit({**body, "decision": partial.to_json()})
        return Response(e.status, body)
    except Exception:  # a bug: say so without leaking details, never blame the input
        log.exception("internal error while handling an alert")
        return Response(500, {"error": {"type": "internal", "message": "internal error"}})
    return Response(200, decision.to_json())


def not_attempted(alert: Alert, rule: Rule, spec: ActionSpec, why: ResponderError) -> Outcome:
    target = alert.target
    return Outcome(spec.name, str(target) if target else None, Status.FAILED,
                   f"not attempted: {why.message}", rule.name)


def observe(response: Response, seconds: float) -> None:
    """Count one answered request in the metrics."""
    METRICS.decision.observe(seconds)
    body = response.body
    if response.status != 200:
        METRICS.errors.labels(body["error"]["type"]).inc()
        body = body.get("decision") or {}
    METRICS.alerts.labels(outcome_of(response.status, body)).inc()
    for action in body.get("actions", ()):
        METRICS.actions.labels(action["action"], action["status"]).inc()


def outcome_of(status: int, body: Mapping[str, Any]) -> str:
    if status == 503:
        return "unavailable"
    if status >= 400 and status != 500:
        return "rejected"
    return str(body.get("outcome") or "error")


class _PodState:
    """Reads the pod and its namespace at most once per alert, only when needed, or ahead
    of need (``prefetch``) while the dedup claim is being made."""

    def __init__(self, kube: Kube, namespace: str, name: str) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self._pod: Optional[Future[Optional[Dict[str, Any]]]] = None
        self._ns: Optional[Future[Optional[Dict[str, Any]]]] = None

    def prefetch(self, pool: ThreadPoolExecutor) -> None:
        """Read the pod and its namespace in ``pool``: the claim's round trip to the guard
        state and these two then overlap instead of adding up. Each read runs in this
        alert's context, so its deadline applies there too."""
        self._pod = pool.submit(contextvars.copy_context().run, self.kube.get_pod,
                                self.namespace, self.name)
        self._ns = pool.submit(contextvars.copy_context().run, self.kube.get_namespace,
                               self.namespace)

    def pod(self) -> Optional[Dict[str, Any]]:
        if self._pod is None:
            self._pod = _done(self.kube.get_pod(self.namespace, self.name))
        return self._pod.result()

    def forget_pod(self) -> None:
        self._pod = None

    def namespace_meta(self) -> Dict[str, Any]:
        if self._ns is None:
            self._ns = _done(self.kube.get_namespace(self.namespace))
        metadata: Dict[str, Any] = (self._ns.result() or {}).get("metadata", {})
        return metadata


def _done(value: Optional[Dict[str, Any]]) -> Future[Optional[Dict[str, Any]]]:
    future: Future[Optional[Dict[str, Any]]] = Future()
    future.set_result(value)
    return future


class Engine:
    def __init__(self, policy: Policy, settings: Optional[Settings] = None,
                 kube: Optional[Kube] = None, cluster: str = "no cluster configured") -> None:
        self.policy = policy
        self.settings = settings or Settings()
        self.kube = kube
        self.cluster = cluster
        self.tokens = TokenCheck(self.settings.shared_token(), self.settings.token_header,
                                 self.settings.token_extension)
        guards = policy.guards
        self.state = guard_state(self.settings, kube)
        self.dedup = Dedup(guards.dedup_seconds, state=self.state,
                           stale_after=self.settings.alert_deadline + 5.0)
        self.rate = RateLimit(guards.rate_limit_actions, guards.rate_limit_seconds,
                              state=self.state)
        METRICS.guards.source = lambda: (self.rate.remaining(), self.rate.limit)
        s = self.settings
        self.own_pod = (s.pod_namespace, s.pod_name) if s.pod_namespace and s.pod_name else None
        self.permissions = PermissionCheck(policy, kube, self.state.kind)
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()

    def _readers(self) -> ThreadPoolExecutor:
        """Threads for reads made ahead of need; made once per process (a forked child,
        as under Kubeless, has none of its parent's threads)."""
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(8, thread_name_prefix="kube-read")
                self._pool_pid = os.getpid()
            return self._pool

    @classmethod
    def from_settings(cls, settings: Optional[Settings] = None, *, cluster: bool = True
                      ) -> Engine:
        """Load the policy and connect; raises PolicyError/SettingsError rather than start
        half-configured."""
        settings = settings or Settings.from_env()
        # The runtime may have configured the root logger already; ours follows our setting.
        log.setLevel(settings.log_level)
        policy = load_file(settings.policy_file) if settings.policy_file else load_default()
        kube, where = None, "no cluster configured"
        if cluster:
            from .kube import connect  # the kubernetes import is large; only when needed

            kube, where = connect(settings)
        engine = cls(policy, settings, kube, where)
        engine.permissions.start()  # in the background: start-up does not wait on it
        return engine

    # -- entry points --------------------------------------------------------------------

    def handle_http(self, headers: Optional[HeaderSource], body: Optional[bytes]) -> Response:
        """A raw HTTP request: CloudEvent (binary or structured) or plain Falco JSON."""
        def work() -> Decision:
            msg = HTTPMessage.of(headers, body)
            check_size(len(msg.body), self.settings.max_body_bytes)
            self.tokens.verify(msg, self._structured_attributes(msg))
            return self.decide(from_http(msg, self.settings.max_body_bytes))
        return self._timed(work)

    def handle_cloudevent(self, attributes: Mapping[str, Any], data: Any,
                          headers: Optional[HeaderSource] = None) -> Response:
        """A CloudEvent a runtime already parsed: its attributes (extensions included)."""
        def work() -> Decision:
            self._check_data_size(data)
            self.tokens.verify(HTTPMessage.of(headers, b""), attributes)
            return self.decide(from_cloudevent(attributes, data))
        return self._timed(work)

    def handle_payload(self, headers: Optional[HeaderSource], data: Any) -> Response:
        """A plain-JSON body a runtime already decoded (or left as bytes), e.g. Kubeless."""
        def work() -> Decision:
            self._check_data_size(data)
            self.tokens.verify(HTTPMessage.of(headers, b""))
            return self.decide(from_payload(data))
        return self._timed(work)

    def _check_data_size(self, data: Any) -> None:
        if isinstance(data, (bytes, bytearray, str)):
            check_size(len(data), self.settings.max_body_bytes)

    def _structured_attributes(self, msg: HTTPMessage) -> Optional[Mapping[str, Any]]:
        if not self.tokens.enabled or msg.media_type != "application/cloudevents+json":
            return None
        try:
            document = json.loads(msg.body)
        except (ValueError, RecursionError):
            return None
        return document if isinstance(document, dict) else None

    def _timed(self, work: Callable[[], Decision]) -> Response:
        started = time.perf_counter()
        holder: List[Decision] = []

        def run() -> Decision:
            with scope(self.settings.alert_deadline):
                decision = work()
            holder.append(decision)
            return decision

        response = respond(run)
        seconds = time.perf_counter() - started
        observe(response, seconds)
        elapsed = seconds * 1000
        if holder:
            holder[0].duration_ms = elapsed
        response.body["duration_ms"] = round(elapsed, 3)
        if "decision" in response.body:  # a 503's partial decision took that long too
            response.body["decision"]["duration_ms"] = round(elapsed, 3)
        self._log(response)
        return response

    # -- deciding ------------------------------------------------------------------------

    def decide(self, inbound: Inbound) -> Decision:
        decision = Decision(transport=inbound.transport, cluster=self.cluster,
                            dry_run=self.settings.dry_run or self.policy.dry_run
                            or self.kube is None)
        alert = inbound.alert
        if alert is None:
            decision.message = inbound.ignored
            return decision
        decision.alert = alert.summary()
        rules = self.matching_rules(alert)
        decision.matched_rules = [r.name for r in rules]
        if not rules:
            decision.message = "no policy rule matched"
            return decision
        state = (_PodState(self.kube, alert.target.namespace, alert.target.pod)
                 if self.kube is not None and alert.target is not None else None)
        planned = [(rule, spec) for rule in rules for spec in rule.actions]
        for done, (rule, spec) in enumerate(planned):
            dry = decision.dry_run or bool(rule.dry_run)
            try:
                decision.actions.append(self._act(alert, rule, spec, dry, state))
            except TransientKubeError as e:
                failed = getattr(e, "outcome", None)
                if failed is not None:
                    decision.actions.append(failed)  # say which action the retry is for
                decision.actions.extend(  # and which were never tried
                    not_attempted(alert, r, a, e) for r, a in planned[done + 1:])
                e.decision = decision  # type: ignore[attr-defined]
                # The details are in the error beside it and in the failed action.
                decision.message = "a Kubernetes call failed; retry"
                raise
        failures = [o for o in decision.actions if o.status is Status.FAILED]
        if failures:
            decision.message = "failed: " + "; ".join(
                f"{o.action} on {o.target}: {o.reason}" for o in failures)
            error = ActionFailed(decision.message)
            error.decision = decision  # type: ignore[attr-defined]
            raise error
        decision.message = "handled"
        return decision

    def matching_rules(self, alert: Alert) -> List[Rule]:
        matched = []
        for rule in self.policy.rules:
            if rule.match(alert):
                matched.append(rule)
                if not rule.continue_:
                    break
        return matched

    def _act(self, alert: Alert, rule: Rule, spec: ActionSpec, dry: bool,
             state: Optional[_PodState]) -> Outcome:
        definition = spec.definition
        target = alert.target

        def outcome(status: Status, reason: str) -> Outcome:
            return Outcome(spec.name, str(target) if target else None, status, reason, rule.name)

        if target is None:
            return outcome(Status.SKIPPED, alert.no_target_reason)
        guards = self.policy.guards
        reason = protected_namespace(guards, target, self.settings.pod_namespace)
        if reason:
            return outcome(Status.SKIPPED, reason)
        # With the pod's UID in the key, a same-named replacement is not a duplicate.
        key = (alert.rule, target.namespace, target.pod, target.uid or "", spec.name)
        if state is not None and self.state.remote and not self.dedup.settled(key):
            state.prefetch(self._readers())
        try:
            reason = self.dedup.claim(key)
        except TransientKubeError as e:
            e.outcome = outcome(Status.FAILED, str(e))  # type: ignore[attr-defined]
            raise
        except KubeError as e:
            log.error("dedup state for %s on %s unusable: %s", spec.name, target, e)
            return outcome(Status.FAILED, f"guard state: {e}")
        if reason:
            return outcome(Status.SKIPPED, reason)
        acted = False
        slot: Optional[Slot] = None
        try:
            if state is None:
                return outcome(Status.WOULD, f"would {definition.describe(spec.params)} "
                                             f"({self.cluster}; checks that read the API "
                                             "were not run)")
            pod = state.pod()
            if pod is None:
                if definition.gone_is_done and not dry:
                    return outcome(Status.DONE, "already gone")
                return outcome(Status.SKIPPED, "pod not found")
            ctx = ActionContext(alert, target, rule.name, pod, self.kube, dry, self.state)
            reason = (pod_guard(guards, pod, target, self.own_pod)
                      or stale_target(guards, pod, alert)
                      or opted_out(guards, state.namespace_meta(), f"namespace "
                                   f"{target.namespace}")
                      or definition.check(ctx, spec.params))
            if reason:
                return outcome(Status.SKIPPED, reason)
            if definition.destructive:
                reason, slot = self.rate.take(consume=not dry)
                if reason:
                    log.warning("skipped %s on %s: %s", spec.name, target, reason)
                    return outcome(Status.SKIPPED, reason)
            if dry:
                return outcome(Status.WOULD, f"would {definition.describe(spec.params)}")
            status, reason = definition.run(ctx, spec.params)
            if status is not Status.DONE:
                return outcome(status, reason)
            acted = True
            if definition.destructive:
                state.forget_pod()
            if self.policy.record_events and spec.name != "record":
                reason += self._record(ctx, spec.name, reason)
            return outcome(Status.DONE, reason)
        except OutcomeUnknown as e:
            # It may have happened: the slot stays counted (the claim goes, so a retry
            # re-reads the pod and finds out).
            slot = None
            e.outcome = outcome(Status.FAILED, str(e))  # type: ignore[attr-defined]
            raise
        except TransientKubeError as e:
            e.outcome = outcome(Status.FAILED, str(e))  # type: ignore[attr-defined]
            raise
        except KubeError as e:
            log.error("%s on %s failed: %s", spec.name, target, e)
            return outcome(Status.FAILED, str(e))
        finally:
            # Past the alert's deadline too: a claim left in place would make a retry
            # within its lifetime "in progress", and the alert would be lost.
            with scope(_CLEANUP_SECONDS):
                self._end(key, acted, slot)

    def _end(self, key: Tuple[str, ...], acted: bool, slot: Optional[Slot]) -> None:
        """Release the claim and, unless it acted, the slot; a failure to write the shared
        state here must not turn a decision already made into an error."""
        try:
            self.dedup.release(key, acted)
            if slot is not None and not acted:
                # Skipped, failed or to be retried: the blast radius did not grow.
                self.rate.give_back(slot)
        except (KubeError, TransientKubeError) as e:
            log.warning("guard state not updated after %s: %s", key[-1], e)

    def _record(self, ctx: ActionContext, action: str, what: str) -> str:
        try:
            ctx.api().create_event(ctx.target.namespace, {"name": ctx.target.pod,
                                                          "uid": ctx.uid},
                                   "FalcoResponse", event_message(ctx, f"{action}: {what}"),
                                   action, event_key(ctx, f"response:{action}"))
            return ""
        except (KubeError, TransientKubeError) as e:
            log.warning("event for %s not recorded: %s", ctx.target, e)
            return f" (event not recorded: {e.message})"

    # -- logging -------------------------------------------------------------------------

    def _log(self, response: Response) -> None:
        """One JSON line per alert on stderr: the status and the whole decision (or error).

        Not through a logging handler: a LogRecord costs about as much as the decision
        itself, and the line is written by the decision log's own thread. The
        ``function`` logger's level still decides whether it is written.
        """
        level = logging.INFO if response.status < 500 else logging.WARNING
        if log.isEnabledFor(level):
            body = response.body_bytes().decode("utf-8")
            line = f'{{"status":{response.status},{body[1:]}\n'
            DECISIONS.emit(line)
