"""The action registry: a class instance with duplicate detection, not a bare dict."""

from __future__ import annotations

from typing import Dict, Iterator, List

from .base import ActionDefinition


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
