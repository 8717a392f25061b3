"""Reading an endpoint's collected requests back: the library behind ``mloop deploy data ENDPOINT --since 1h
[--with-feedback]`` (the reader itself is :mod:`mloop.artifacts.collected_read`, shared with monitoring)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from mloop.artifacts.collected_read import parse_since
from mloop.artifacts.collected_read import read_collected as read_root

if TYPE_CHECKING:
    import pyarrow as pa

    from mloop.context import Context

__all__ = ["parse_since", "read_collected"]


def read_collected(
    context: Context, endpoint: str, *, since: str | datetime | None = None, until: str | datetime | None = None,
    with_feedback: bool = False, role: str | None = None,
) -> pa.Table:  # fmt: skip
    """The rows ``endpoint`` collected with ``since <= ts < until`` (either open; a duration like ``1h`` or an
    ISO time), of one ``role`` (``live`` or ``shadow``) or all, oldest first; ``with_feedback`` joins the latest
    ground truth per (request_id, row) as ``ground_truth`` (see :mod:`mloop.artifacts.collected_read`)."""
    return read_root(context.artifacts.uri, endpoint, since=since, until=until, with_feedback=with_feedback,
                     role=role)  # fmt: skip
