"""Events the registry records itself (the store records the rest: ``mloop.store.protocols.models``).

A promotion or a rollback is one ``model.alias_moved`` event (written by the store in the transaction that
moves the alias) whose payload says why (``reason``: ``promote``, ``rollback``, ...) and, for a promotion,
carries the gate report. A refused promotion changes nothing, so it is an event of its own.
"""

from __future__ import annotations

__all__ = ["MODEL_POLICY_SET", "MODEL_PROMOTION_REFUSED"]

MODEL_PROMOTION_REFUSED = "model.promotion_refused"
MODEL_POLICY_SET = "model.policy_set"
