"""The Redis Streams transport of streaming scoring: a consumer group in; ``XADD`` out and ``XACK`` in one script.

Setup (:meth:`RedisTransport.open`): the group ``?group=`` is created on the input stream when missing
(``MKSTREAM``; from the stream's first entry, or only new entries with ``?start=new``). Each entry holds its
JSON event in one field (``?field=``, default ``data``); the prediction is added to the output stream under
the same field name.

Delivery: a batch is ``XREADGROUP ... COUNT batch BLOCK`` (what is there, up to the batch); its predictions go
out and the batch is acknowledged in one atomic Lua script (``XADD`` of every prediction, then one ``XACK`` of
all the events' ids: an ``XADD`` that fails aborts the script before the ``XACK``), so there is no window
between publish and acknowledgement at all, and one reply per batch instead of one per prediction.
A consumer starts by re-reading its own pending entries (``XREADGROUP`` from id 0: delivered to it before and
never acknowledged, e.g. after a kill -9 while scoring), so a restarted consumer of the same name loses
nothing; and every ``ack_wait`` seconds it claims entries another consumer of the group left pending for longer
than that (``XAUTOCLAIM``), so a consumer that never comes back loses nothing either. After a failed publish
the consumer goes back to its pending entries the same way.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from mloop.deployments.eventscoring import Event
from mloop.errors import StoreUnavailable

if TYPE_CHECKING:
    from mloop.deployments.streaming import StreamSpec

__all__ = ["RedisTransport"]

_log = logging.getLogger("mloop.deployments.stream")

# XREADGROUP (without BLOCK) returning a flat reply: entry id, then the event field's value (or the entry's field
# names when it lacks the field, or 0 for an entry deleted while pending). redis-py parses the nested reply of a
# plain XREADGROUP in Python at about 3x the cost. KEYS: input. ARGV: group, consumer, count, id, field.
_READ = """
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], ARGV[4])
if not r or not r[1] then return {} end
local out = {}
for _, e in ipairs(r[1][2]) do
  out[#out + 1] = e[1]
  local f, v = e[2], 0
  if f then
    v = {}
    for i = 1, #f, 2 do
      if f[i] == ARGV[5] then v = f[i + 1] break end
      v[#v + 1] = f[i]
    end
  end
  out[#out + 1] = v
end
return out
"""

# XADD every prediction, then XACK every event, in one atomic script: an error in any XADD aborts the script
# before the XACK, so an event is never acknowledged without its prediction (and one reply for the batch).
# KEYS: output, input. ARGV: field, group, n, [maxlen], n predictions, the events' ids.
_COMMIT = """
local field, group, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 4, n + 3 do redis.call('XADD', KEYS[1], '*', field, ARGV[i]) end
local ids = {}
for i = n + 4, #ARGV do ids[#ids + 1] = ARGV[i] end
for i = 1, #ids, 4000 do redis.call('XACK', KEYS[2], group, unpack(ids, i, math.min(i + 3999, #ids))) end
return n
"""
_COMMIT_TRIMMED = """
local field, group, n, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
for i = 5, n + 4 do redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', field, ARGV[i]) end
local ids = {}
for i = n + 5, #ARGV do ids[#ids + 1] = ARGV[i] end
for i = 1, #ids, 4000 do redis.call('XACK', KEYS[2], group, unpack(ids, i, math.min(i + 3999, #ids))) end
return n
"""


class RedisTransport:
    """Redis Streams consumption for one :class:`~mloop.deployments.streaming.StreamSpec` (see the module doc)."""

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec
        self.field = spec.options.get("field", "data").encode()
        self.consumer = spec.options.get("consumer", "consumer-1")
        self.maxlen = int(spec.options["maxlen"]) if "maxlen" in spec.options else None
        self.redis: Any = None
        self._cursor = "0"  # an id: re-reading this consumer's pending entries after it; ">": new entries
        self._claim_at = 0.0
        self._claim_from = "0-0"

    async def open(self) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import ResponseError

        spec = self.spec
        self.redis = aioredis.Redis.from_url(spec.server, db=int(spec.options.get("db", "0")),
                                             socket_connect_timeout=5)  # fmt: skip
        try:
            await self.redis.xgroup_create(spec.input, spec.group, id="$" if spec.start == "new" else "0",
                                           mkstream=True)  # fmt: skip
            _log.info("stream: created consumer group %s on %s", spec.group, spec.input)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StoreUnavailable(f"Redis refused to create group {spec.group!r} on {spec.input!r}: {exc}. "
                                       "Is the key a stream?") from exc  # fmt: skip
        except Exception as exc:
            await self.redis.aclose()
            raise StoreUnavailable(f"Cannot reach Redis at {spec.describe()}: {exc}. Is redis-server running "
                                   "there?") from exc  # fmt: skip
        self._claim_at = time.monotonic() + spec.ack_wait
        self._read = self.redis.register_script(_READ)
        self._commit = self.redis.register_script(_COMMIT_TRIMMED if self.maxlen is not None else _COMMIT)

    def _missing(self, entry_id: bytes, names: list[bytes]) -> Event:
        """An entry without the event field: answered with an error message naming its fields, not dropped."""
        listed = ", ".join(sorted(repr(k.decode("utf-8", "replace")) for k in names))
        name = self.field.decode()
        return Event(entry_id.decode(), b"", entry_id, f"The entry has no field {name!r} (it has {listed}); put "
                     f"the JSON event in {name!r} or name its field with ?field=.")  # fmt: skip

    def _events(self, entries: list[Any], skipped: list[Any]) -> list[Event]:
        """Events from ``XREADGROUP`` / ``XAUTOCLAIM`` entries (``(id, {field: value})``)."""
        out: list[Event] = []
        field = self.field
        for entry_id, fields in entries:
            if fields is None:  # trimmed or deleted while pending: nothing to score, acknowledge it
                skipped.append(entry_id)
                continue
            data = fields.get(field)
            out.append(
                self._missing(entry_id, list(fields)) if data is None else Event(entry_id.decode(), data, entry_id)
            )
        return out

    def _flat_events(self, flat: list[Any], skipped: list[Any]) -> list[Event]:
        """Events from the read script's flat reply: ``id, value`` pairs (value: the field's bytes, the entry's
        field names when it lacks the field, or 0 for an entry deleted while pending)."""
        out: list[Event] = []
        for i in range(0, len(flat), 2):
            entry_id, value = flat[i], flat[i + 1]
            if type(value) is bytes:
                out.append(Event(entry_id.decode(), value, entry_id))
            elif isinstance(value, list):
                out.append(self._missing(entry_id, value))
            else:
                skipped.append(entry_id)
        return out

    async def fetch(self, max_events: int, timeout: float) -> list[Event]:
        spec = self.spec
        skipped: list[Any] = []
        if time.monotonic() >= self._claim_at:  # entries left pending by a consumer that went away
            self._claim_at = time.monotonic() + spec.ack_wait
            reply = await self.redis.xautoclaim(spec.input, spec.group, self.consumer, int(spec.ack_wait * 1000),
                                                start_id=self._claim_from, count=max_events)  # fmt: skip
            self._claim_from = reply[0]
            events = self._events(reply[1], skipped)
            if skipped:
                await self.redis.xack(spec.input, spec.group, *skipped)
            if events:
                _log.info("stream: claimed %d events left pending in group %s", len(events), spec.group)
                return events
        history = self._cursor != ">"
        flat = await self._read(keys=[spec.input], args=[spec.group, self.consumer, max_events, self._cursor,
                                                         self.field])  # fmt: skip
        events = self._flat_events(flat, skipped)
        if history:
            if not flat:
                self._cursor = ">"  # every pending entry was re-read: now the new ones
                return []
            self._cursor = flat[-2].decode()  # the pending entries after it, next time
        elif not flat:  # nothing new now: block for up to ``timeout`` (a script cannot block)
            reply = await self.redis.xreadgroup(spec.group, self.consumer, {spec.input: ">"}, count=max_events,
                                                block=max(1, int(timeout * 1000)))  # fmt: skip
            events = self._events(reply[0][1] if reply else [], skipped)
        if skipped:
            await self.redis.xack(spec.input, spec.group, *skipped)
        return events

    async def commit(self, messages: list[bytes], events: list[Event]) -> None:
        spec = self.spec
        ids = [e.handle for e in events]
        maxlen = [] if self.maxlen is None else [self.maxlen]
        try:
            args = [self.field, spec.group, len(messages), *maxlen, *messages, *ids]
            added = await self._commit(keys=[spec.out, spec.input], args=args)
        except Exception as exc:
            raise StoreUnavailable(f"Redis did not add {len(messages)} predictions to {spec.out!r}: {exc}") from exc
        if int(added) != len(messages):
            raise StoreUnavailable(f"Redis added {added} of {len(messages)} predictions to {spec.out!r}.")

    async def nack(self, events: list[Event]) -> None:
        self._cursor = "0"  # they stay pending for this consumer: read them again next

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
