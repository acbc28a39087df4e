from __future__ import annotations

from typing import Dict

import pytest

from function.errors import SettingsError
from function.settings import Settings, describe


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.policy_file is None and s.dry_run is False and s.cluster == "auto"
    assert s.max_body_bytes == 1024 * 1024 and s.kube_attempts == 3
    assert s.kube_retry_budget == 5.0 and s.token_header == "X-Falco-Token"


def test_values_are_read_from_their_variables() -> None:
    s = Settings.from_env({"FALCO_RESPONDER_DRY_RUN": "true", "FALCO_RESPONDER_MAX_BODY_BYTES":
                           "2048", "POD_NAMESPACE": "responder", "FALCO_RESPONDER_CLUSTER": "off"})
    assert s.dry_run and s.max_body_bytes == 2048 and s.pod_namespace == "responder"


@pytest.mark.parametrize("env,text", [
    ({"FALCO_RESPONDER_DRY_RUN": "maybe"}, "FALCO_RESPONDER_DRY_RUN='maybe': expected true"),
    ({"FALCO_RESPONDER_MAX_BODY_BYTES": "-1"}, "FALCO_RESPONDER_MAX_BODY_BYTES='-1'"),
    ({"FALCO_RESPONDER_KUBE_TIMEOUT": "soon"}, "FALCO_RESPONDER_KUBE_TIMEOUT='soon'"),
    ({"FALCO_RESPONDER_CLUSTER": "maybe"}, "expected auto or off"),
    ({"FALCO_RESPONDER_LOG_LEVEL": "loud"}, "FALCO_RESPONDER_LOG_LEVEL='loud': expected DEBUG"),
])
def test_bad_settings_name_the_variable(env: dict, text: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SettingsError, match=text.replace("(", r"\(")):
        Settings.from_env(env)


def test_token_file_wins_and_must_be_readable_and_non_empty(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "token"
    path.write_text("from-file\n")
    assert Settings(token="from-env", token_file=str(path)).shared_token() == "from-file"
    path.write_text("")
    with pytest.raises(SettingsError, match="file is empty"):
        Settings(token_file=str(path)).shared_token()
    with pytest.raises(SettingsError, match="cannot read it"):
        Settings(token_file=str(path) + ".missing").shared_token()


def test_every_setting_is_documented() -> None:
    for env, about in describe().items():
        assert about["doc"], env


@pytest.mark.parametrize("env,text", [
    ({"FALCO_RESPONDER_GUARD_STATE": "redis"},
     "FALCO_RESPONDER_GUARD_STATE='redis': expected one of auto, kubernetes, file, memory"),
    ({"FALCO_RESPONDER_GUARD_STATE": "file"},
     "FALCO_RESPONDER_GUARD_STATE=file needs FALCO_RESPONDER_STATE_FILE"),
])
def test_a_bad_guard_state_is_refused_by_name(env: Dict[str, str], text: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert raised.value.message == text


def test_the_guard_state_follows_the_setting(tmp_path: object) -> None:
    from function.state import FileState, MemoryState, guard_state

    path = f"{tmp_path}/guards.json"
    assert isinstance(guard_state(Settings(), None), MemoryState)
    assert isinstance(guard_state(Settings(state_file=path), None), FileState)
    assert isinstance(guard_state(Settings(guard_state="memory", state_file=path), None),
                      MemoryState)
    with pytest.raises(SettingsError, match="GUARD_STATE=kubernetes needs a cluster"):
        guard_state(Settings(guard_state="kubernetes"), None)
