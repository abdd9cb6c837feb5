"""Readiness of one carebroker process: which of its parts are up right now."""

from __future__ import annotations


class Readiness:
    """Track named components (``postgresql``, ``kafka``, ``mllp`` ...) as ready or not."""

    def __init__(self, *components: str) -> None:
        self._state: dict[str, bool] = dict.fromkeys(components, False)

    def expect(self, component: str) -> None:
        """Add a component that must be ready before the process is."""
        self._state.setdefault(component, False)

    def set(self, component: str, ready: bool) -> None:
        """Mark a component ready or not."""
        self._state[component] = ready

    def not_ready(self) -> list[str]:
        """Return the components that are not ready, sorted."""
        return sorted(name for name, ok in self._state.items() if not ok)

    def snapshot(self) -> dict[str, bool]:
        """Return every component's state."""
        return dict(self._state)
