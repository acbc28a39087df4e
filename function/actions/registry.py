"""The action registry: a class instance with duplicate detection, not a bare dict."""

from __future__ import annotations

from typing import Dict, Iterator, List, Tuple

from .base import ActionDefinition, RbacRule


class ActionRegistry:
    def __init__(self) -> None:
        self._actions: Dict[str, ActionDefinition] = {}

    def register(self, definition: ActionDefinition) -> ActionDefinition:
        if definition.name in self._actions:
            raise ValueError(f"action {definition.name!r} is registered twice")
        self._actions[definition.name] = definition
        return definition

    def get(self, name: str) -> ActionDefinition:
        return self._actions[name]

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def __iter__(self) -> Iterator[ActionDefinition]:
        return iter(self._actions.values())

    def names(self) -> List[str]:
        return sorted(self._actions)

    def clear(self) -> None:
        self._actions.clear()

    def rbac_for(self, names: List[str]) -> Tuple[RbacRule, ...]:
        """The union of RBAC rules the named actions need, merged by (group, resource)."""
        verbs: Dict[Tuple[str, str], set] = {}  # type: ignore[type-arg]
        for name in names:
            for rule in self._actions[name].rbac:
                for resource in rule.resources:
                    verbs.setdefault((rule.api_group, resource), set()).update(rule.verbs)
        return tuple(
            RbacRule(group, (resource,), tuple(sorted(v)))
            for (group, resource), v in sorted(verbs.items())
        )
