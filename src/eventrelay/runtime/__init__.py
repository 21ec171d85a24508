"""The composition root: what ``serve`` runs and tests start in-process (``Runtime``), and the
factories that turn a Config into a queue, a delivery log and destinations (``build``)."""

from eventrelay.runtime.runtime import Role, Runtime

__all__ = ["Role", "Runtime"]
