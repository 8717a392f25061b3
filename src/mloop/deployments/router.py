"""The traffic split of an endpoint: which model version answers a request, and which one shadows it (pure).

A :class:`Router` holds the live versions with their weights (in the endpoint's order) and an optional shadow
version with the share of requests mirrored to it. Each request gets a point in ``[0, 1)``: from the hash of its
routing key (a header such as ``X-Routing-Key``, or an event's key field) when it has one, so the same key
always reaches the same version, or from the router's own random generator otherwise. The version whose
cumulative range holds the point answers. Ranges are laid out in the endpoint's order, so growing the first
version's weight (a canary going 10% → 50%) keeps every key it already had: sticky routing survives a rollout
step for the keys that were on the canary. The shadow decision uses an independent point (a salted hash, or the
generator), so mirroring is not correlated with the live choice.

Nothing here does I/O or keeps global state; a router is rebuilt when the endpoint's traffic changes.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Mapping, Sequence

from mloop.errors import InvalidInput

__all__ = ["Router", "key_point"]

_SCALE = float(1 << 64)


def key_point(key: bytes, salt: bytes = b"") -> float:
    """A stable point in ``[0, 1)`` for ``key`` (BLAKE2b, so it is the same in every process and release)."""
    digest = hashlib.blake2b(key, digest_size=8, person=salt[:16]).digest()
    return int.from_bytes(digest, "big") / _SCALE


class Router:
    """Choose a live version by weight (sticky by key) and decide whether to mirror a request to the shadow.

    ``weights`` maps version refs to non-negative weights (any scale; at least one positive), in the order
    their ranges are laid out. ``shadow`` is a version ref that never answers; ``shadow_percent`` (0-100) of
    requests are mirrored to it. ``seed`` fixes the generator for keyless requests (tests).
    """

    def __init__(
        self, weights: Mapping[str, float] | Sequence[tuple[str, float]], *, shadow: str | None = None,
        shadow_percent: float = 0.0, seed: int | None = None,
    ) -> None:  # fmt: skip
        pairs = list(weights.items()) if isinstance(weights, Mapping) else list(weights)
        if not pairs:
            raise InvalidInput("An endpoint needs at least one model version to route to; add one with --model.")
        total = 0.0
        for ref, weight in pairs:
            if not isinstance(weight, (int, float)) or math.isnan(weight) or weight < 0:
                raise InvalidInput(f"Traffic weight of {ref} must be a number >= 0, got {weight!r}.")
            total += float(weight)
        if total <= 0:
            raise InvalidInput(f"Traffic weights {dict(pairs)} add up to 0; give at least one version a weight.")
        if not 0.0 <= shadow_percent <= 100.0:
            raise InvalidInput(f"Shadow percent must be between 0 and 100, got {shadow_percent!r}.")
        self.versions = tuple(ref for ref, weight in pairs if weight > 0)
        self.shares = {ref: float(weight) / total for ref, weight in pairs}
        bounds, acc = [], 0.0
        for ref in self.versions:
            acc += self.shares[ref]
            bounds.append(acc)
        bounds[-1] = 1.0  # no gap at the top from rounding
        self._bounds = bounds
        self.shadow = shadow if shadow_percent > 0 else None
        self.shadow_share = shadow_percent / 100.0 if shadow else 0.0
        self._random = random.Random(seed).random
        self._only = self.versions[0] if len(self.versions) == 1 else None

    def choose(self, key: bytes | None = None) -> str:
        """The version that answers a request with routing ``key`` (``None``: a random draw)."""
        if self._only is not None:
            return self._only
        point = key_point(key) if key else self._random()
        return self.versions[bisect.bisect_right(self._bounds, point)]

    def mirror(self, key: bytes | None = None) -> str | None:
        """The shadow version if this request is mirrored to it, else ``None``."""
        if self.shadow is None:
            return None
        if self.shadow_share >= 1.0:
            return self.shadow
        point = key_point(key, b"shadow") if key else self._random()
        return self.shadow if point < self.shadow_share else None
