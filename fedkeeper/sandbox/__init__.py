"""The embedded sandbox: emulated AWS, fake Kubernetes API servers, scenarios, the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fedkeeper.sandbox import event_factory

if TYPE_CHECKING:
    from fedkeeper.sandbox.world import EmulatorWrites, Sandbox

__all__ = ["EmulatorWrites", "Sandbox", "event_factory"]


def __getattr__(name: str) -> Any:
    # The emulators (moto, the API servers) load on first use, so that the CLI can check
    # its arguments against the scenario list without paying for them.
    if name in ("EmulatorWrites", "Sandbox"):
        from fedkeeper.sandbox import world

        return getattr(world, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
