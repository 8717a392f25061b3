"""A page of a listing with an opaque cursor for the next one, and :func:`iter_pages` to walk them all."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mloop.errors import InvalidInput

__all__ = ["Page", "decode_cursor", "encode_cursor", "iter_pages"]

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """Items of one page; ``next_cursor`` is ``None`` on the last page."""

    items: Sequence[T]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def iter_pages(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a paged listing, page after page: ``fetch(cursor)`` returns one page (``None``: the first).

    ``iter_pages(lambda cursor: store.list_datasets(cursor=cursor))``. Pages are fetched as the items are
    consumed; a listing that changes meanwhile is read as its cursors see it.
    """
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if (cursor := page.next_cursor) is None:
            return


def encode_cursor(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"Invalid page cursor {cursor!r}. Pass back the next_cursor of a previous page, unchanged."
        ) from exc
