"""Every setting the function reads from its environment, declared once.

Each field's docstring-comment names its environment variable and default; the README
and docs are written from this list. Behaviour (what to match, what to do, guards) lives
in the policy file instead: settings only say where things are and how much to allow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Mapping, Optional

from .errors import SettingsError

PREFIX = "FALCO_RESPONDER_"


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected a positive integer")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("expected a positive number")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("expected a port from 1 to 65535, or 0 for none")
    return value


GUARD_STATES = ("auto", "kubernetes", "file", "memory")


def _guard_state(raw: str) -> str:
    value = raw.strip().lower()
    if value not in GUARD_STATES:
        raise ValueError(f"expected one of {', '.join(GUARD_STATES)}")
    return value


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _setting(env: str, default: Any, parse: Callable[[str], Any] = str, doc: str = "") -> Any:
    return field(default=default, metadata={"env": env, "parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    policy_file: Optional[str] = _setting(
        PREFIX + "POLICY", None, doc="Path of the policy YAML; the embedded default when unset.")
    dry_run: bool = _setting(
        PREFIX + "DRY_RUN", False, _bool,
        doc="Force dry run for every rule, whatever the policy says.")
    cluster: str = _setting(
        PREFIX + "CLUSTER", "auto",
        doc="'auto': in-cluster account, else KUBECONFIG/~/.kube/config; 'off': no cluster.")
    token: Optional[str] = _setting(
        PREFIX + "TOKEN", None, doc="Shared token every request must carry (unset: none).")
    token_file: Optional[str] = _setting(
        PREFIX + "TOKEN_FILE", None,
        doc="File holding the shared token (a mounted Secret); read at start.")
    token_header: str = _setting(
        PREFIX + "TOKEN_HEADER", "X-Falco-Token",
        doc="Header carrying the token (Falcosidekick webhook.customheaders).")
    token_extension: str = _setting(
        PREFIX + "TOKEN_EXTENSION", "falcotoken",
        doc="CloudEvent extension carrying the token (Falcosidekick cloudevents.extensions).")
    max_body_bytes: int = _setting(
        PREFIX + "MAX_BODY_BYTES", 1024 * 1024, _positive_int,
        doc="Bodies over this many bytes get 413.")
    kube_timeout: float = _setting(
        PREFIX + "KUBE_TIMEOUT", 2.0, _positive_float,
        doc="Seconds allowed for one Kubernetes call.")
    kube_attempts: int = _setting(
        PREFIX + "KUBE_ATTEMPTS", 3, _positive_int,
        doc="Attempts for a Kubernetes call that fails in a way a retry could fix.")
    kube_retry_budget: float = _setting(
        PREFIX + "KUBE_RETRY_BUDGET", 5.0, _positive_float,
        doc="Seconds all attempts of one call may take together.")
    alert_deadline: float = _setting(
        PREFIX + "ALERT_DEADLINE", 5.0, _positive_float,
        doc="Seconds one alert may take, all its Kubernetes calls and retries together; "
            "past it the answer is 503 with what was and was not done.")
    guard_state: str = _setting(
        PREFIX + "GUARD_STATE", "auto", _guard_state,
        doc="Where dedup and rate-limit counts live: 'kubernetes' (Leases in the function's "
            "own namespace, shared by every replica), 'file' (STATE_FILE, shared by one "
            "pod's processes), 'memory' (this process); 'auto': kubernetes when a cluster "
            "is configured, else file when STATE_FILE is set, else memory.")
    state_file: Optional[str] = _setting(
        PREFIX + "STATE_FILE", None,
        doc="File shared by the pod's processes for dedup and rate-limit counts, under "
            "flock (guard state 'file').")
    metrics_port: int = _setting(
        PREFIX + "METRICS_PORT", 0, _port,
        doc="Side port serving Prometheus metrics at any path, for runtimes without a "
            "/metrics route of their own; 0: none.")
    pod_name: Optional[str] = _setting(
        "POD_NAME", None, doc="This function's own pod (downward API); never acted on.")
    pod_namespace: Optional[str] = _setting(
        "POD_NAMESPACE", None,
        doc="This function's own namespace (downward API); protected by default.")
    log_level: str = _setting(PREFIX + "LOG_LEVEL", "INFO", _log_level,
                              doc="Level of the function's logs; INFO writes a line per alert.")

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> Settings:
        source = os.environ if env is None else env
        values: Dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = source.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as e:
                raise SettingsError(f"{name}={raw!r}: {e}", field=name) from e
        settings = cls(**values)
        if settings.guard_state == "file" and not settings.state_file:
            raise SettingsError(f"{PREFIX}GUARD_STATE=file needs {PREFIX}STATE_FILE",
                                field=PREFIX + "STATE_FILE")
        if settings.cluster not in ("auto", "off"):
            raise SettingsError(
                f"{PREFIX}CLUSTER={settings.cluster!r}: expected auto or off",
                field=PREFIX + "CLUSTER")
        return settings

    def shared_token(self) -> Optional[str]:
        """The configured token; the file wins over the variable, as a Secret should."""
        if self.token_file:
            try:
                with open(self.token_file, encoding="utf-8") as f:
                    value = f.read().strip()
            except OSError as e:
                raise SettingsError(
                    f"{PREFIX}TOKEN_FILE={self.token_file!r}: cannot read it ({e.strerror})",
                    field=PREFIX + "TOKEN_FILE") from e
            if not value:
                raise SettingsError(f"{PREFIX}TOKEN_FILE={self.token_file!r}: file is empty",
                                    field=PREFIX + "TOKEN_FILE")
            return value
        return (self.token or "").strip() or None


def describe() -> Dict[str, Dict[str, Any]]:
    """Env var -> default and meaning, for docs and `--help`."""
    return {
        f.metadata["env"]: {"default": f.default, "doc": f.metadata["doc"]}
        for f in fields(Settings)
    }
