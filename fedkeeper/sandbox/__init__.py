"""The embedded sandbox: emulated AWS, fake Kubernetes API servers, scenarios, the demo."""

from __future__ import annotations

from fedkeeper.sandbox import event_factory
from fedkeeper.sandbox.world import EmulatorWrites, Sandbox

__all__ = ["EmulatorWrites", "Sandbox", "event_factory"]
