"""The NATS JetStream transport of streaming scoring: a durable pull consumer in, acknowledged publishes out.

Setup (:meth:`NatsTransport.open`): the input subject must be captured by a stream; when none captures it, a
file stream named ``?stream=`` (default: the subject with ``.`` as ``_``) is created for it. The output subject
must be captured by a stream too, so that every publish is confirmed; when none captures it, one is created
the same way. The durable consumer ``?group=`` is created on the input stream when missing (explicit acks,
``ack_wait`` from the URL, deliver all or new); an existing one is used as it is, so a restarted consumer
resumes from its acknowledged position, and JetStream delivers what was pending again after ``ack_wait``.

Speed (the hot path is pure Python in nats-py): events are pulled with one ``CONSUMER.MSG.NEXT`` request per
batch (``no_wait``: what is there now, up to the batch) into a plain subscription whose callback appends to a
list, instead of nats-py's per-message ``fetch`` machinery; when nothing is there, a lingering request for one
event waits up to the fetch timeout. Predictions are published with one reply subject per batch, and the
publish acknowledgements are counted as they come back (an error or "no responders" fails the batch). Each
event is then acknowledged with a ``+ACK`` (core publish; one ack per event keeps several consumers of one
group safe, which ``AckAll`` would not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import orjson

from mloop.deployments.eventscoring import Event
from mloop.errors import InvalidInput, StoreUnavailable

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.aio.msg import Msg

    from mloop.deployments.streaming import StreamSpec

__all__ = ["NatsTransport", "stream_name"]

_log = logging.getLogger("mloop.deployments.stream")
_END = {"404", "408", "409"}  # status messages that end a pull request (no messages, expired, limits)
_PUBLISH_TIMEOUT = 10.0


def stream_name(subject: str) -> str:
    """The name of a stream created for ``subject`` (stream names cannot hold ``.``, ``*``, ``>``)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in subject)


class _Pull:
    """The pull request in flight: its reply token, how many buffered events end the wait, whether it ended."""

    def __init__(self, token: str = "", want: int = 0) -> None:
        self.token = token
        self.want = want
        self.ended = False
        self.status = ""
        self.wake = asyncio.Event()


class NatsTransport:
    """JetStream consumption for one :class:`~mloop.deployments.streaming.StreamSpec` (see the module doc)."""

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec
        self.nc: NATS | None = None
        self.stream = ""
        self._inbox = ""
        self._buffer: list[Msg] = []
        self._pull = _Pull()
        self._seq = 0
        self._acks = 0
        self._ack_errors: list[str] = []
        self._acks_done = asyncio.Event()
        self._acks_wanted = 0
        self._ack_token = ""

    async def open(self) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        spec = self.spec
        try:
            self.nc = nc = await nats.connect(spec.server, connect_timeout=5, max_reconnect_attempts=1,
                                              reconnect_time_wait=1)  # fmt: skip
            nc.options["max_reconnect_attempts"] = -1  # connected: from now on reconnect for ever
        except Exception as exc:
            raise StoreUnavailable(f"Cannot reach NATS at {spec.describe()}: {exc}. Is nats-server running "
                                   "with JetStream (-js) there?") from exc  # fmt: skip
        js = nc.jetstream()
        try:
            self.stream = await js.find_stream_name_by_subject(spec.input)
        except NotFoundError:
            self.stream = spec.options.get("stream") or stream_name(spec.input)
            await js.add_stream(name=self.stream, subjects=[spec.input])
            _log.info("stream: created JetStream stream %s for %s", self.stream, spec.input)
        try:
            out_stream = await js.find_stream_name_by_subject(spec.out)
        except NotFoundError:
            out_stream = stream_name(spec.out)
            await js.add_stream(name=out_stream, subjects=[spec.out])
            _log.info("stream: created JetStream stream %s for %s", out_stream, spec.out)
        if out_stream == self.stream:
            from mloop.deployments.streaming import subject_matches

            if subject_matches(spec.input, spec.out):
                raise InvalidInput(f"Stream {self.stream!r} captures both {spec.input!r} and the output "
                                   f"{spec.out!r}; predictions would be consumed. Choose another ?out=.")  # fmt: skip
        try:
            await js.consumer_info(self.stream, spec.group)
        except NotFoundError:
            config = ConsumerConfig(
                durable_name=spec.group, ack_policy=AckPolicy.EXPLICIT, ack_wait=spec.ack_wait,
                deliver_policy=DeliverPolicy.NEW if spec.start == "new" else DeliverPolicy.ALL,
                filter_subject=spec.input, max_ack_pending=max(20_000, 4 * spec.batch),
            )  # fmt: skip
            await js.add_consumer(self.stream, config)
            _log.info("stream: created durable consumer %s on %s", spec.group, self.stream)
        self._inbox = nc.new_inbox()
        await nc.subscribe(f"{self._inbox}.*", cb=self._on_event, pending_msgs_limit=1_000_000,
                           pending_bytes_limit=1 << 30)  # fmt: skip
        await nc.subscribe(f"{self._inbox}.ack.*", cb=self._on_ack, pending_msgs_limit=1_000_000,
                           pending_bytes_limit=1 << 30)  # fmt: skip
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{spec.group}"

    async def _on_event(self, msg: Msg) -> None:
        headers = msg.headers
        pull = self._pull
        if headers and "Status" in headers:
            status = headers.get("Status")
            if status not in _END and status != "100":
                _log.warning("stream: JetStream status %s %s", status, headers.get("Description"))
            if msg.subject.endswith(pull.token):
                pull.ended, pull.status = True, str(status)
                pull.wake.set()
            return
        self._buffer.append(msg)  # a late event of an earlier request is kept too (it is delivered)
        if len(self._buffer) >= pull.want:
            pull.wake.set()

    async def _on_ack(self, msg: Msg) -> None:
        if not msg.subject.endswith(self._ack_token):
            return  # an acknowledgement of a batch that already failed or was given up
        data = msg.data
        if not data or b'"error"' in data:
            status = msg.headers.get("Status", "") if msg.headers else ""
            self._ack_errors.append(data.decode("utf-8", "replace") or f"status {status} (no stream?)")
        self._acks += 1
        if self._acks >= self._acks_wanted:
            self._acks_done.set()

    async def _request(self, batch: int, wait: float | None) -> None:
        assert self.nc is not None
        self._seq += 1
        pull = self._pull = _Pull(f".{self._seq}", len(self._buffer) + batch)
        body: dict[str, Any] = {"batch": batch}
        if wait is None:
            body["no_wait"] = True
        else:
            body["expires"] = int(wait * 1e9)
        await self.nc.publish(self._next, orjson.dumps(body), reply=f"{self._inbox}{pull.token}")

    async def _collect(self, timeout: float) -> None:
        """Wait until the request in flight ends, has filled the buffer to what it asked, or times out."""
        pull = self._pull
        if len(self._buffer) >= pull.want or pull.ended:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pull.wake.wait(), timeout)

    async def fetch(self, max_events: int, timeout: float) -> list[Event]:
        if len(self._buffer) < max_events:
            await self._request(max_events - len(self._buffer), None)  # what is there now
            await self._collect(5.0)
            if not self._buffer:  # nothing now: wait up to ``timeout`` for one, then take what is there
                if self._pull.status == "409":  # e.g. too many pending acks (other consumers): not a spin
                    await asyncio.sleep(timeout)
                await self._request(1, timeout)
                await self._collect(timeout + 0.5)
                if self._buffer and max_events > 1:
                    await self._request(max_events - len(self._buffer), None)
                    await self._collect(5.0)
        taken, self._buffer = self._buffer[:max_events], self._buffer[max_events:]
        return [Event(_sequence(m.reply), m.data, m.reply) for m in taken]

    async def commit(self, messages: list[bytes], events: list[Event]) -> None:
        await self.publish(messages)
        await self._reply_all(events, b"+ACK")

    async def publish(self, messages: list[bytes]) -> None:
        nc = self.nc
        assert nc is not None
        self._seq += 1
        self._ack_token = f".{self._seq}"
        self._acks, self._acks_wanted, self._ack_errors = 0, len(messages), []
        self._acks_done = asyncio.Event()
        reply = f"{self._inbox}.ack{self._ack_token}"
        out = self.spec.out
        pub = nc.publish
        for data in messages:
            await pub(out, data, reply=reply)
        try:
            await asyncio.wait_for(self._acks_done.wait(), _PUBLISH_TIMEOUT)
        except TimeoutError:
            raise StoreUnavailable(f"JetStream confirmed {self._acks} of {len(messages)} predictions published to "
                                   f"{out!r} within {_PUBLISH_TIMEOUT:g} s.") from None  # fmt: skip
        finally:
            self._ack_token = "-"
        if self._ack_errors:
            raise StoreUnavailable(f"JetStream refused {len(self._ack_errors)} of {len(messages)} predictions "
                                   f"published to {out!r}: {self._ack_errors[0]}")  # fmt: skip

    async def _reply_all(self, events: list[Event], body: bytes) -> None:
        assert self.nc is not None
        pub = self.nc.publish
        for event in events:
            if event.handle:
                await pub(event.handle, body)
        await self.nc.flush()

    async def nack(self, events: list[Event]) -> None:
        await self._reply_all(events, b"-NAK")

    async def close(self) -> None:
        if self.nc is None:
            return
        try:
            if self._buffer:  # delivered and never scored: give them back now rather than after ack_wait
                await self.nack([Event("", b"", m.reply) for m in self._buffer])
                self._buffer = []
            await self.nc.drain()
        except Exception:
            _log.debug("stream: closing the NATS connection failed", exc_info=True)
            await self.nc.close()
        self.nc = None


def _sequence(reply: str) -> str:
    """The stream sequence of a JetStream message from its ack subject (``$JS.ACK.<stream>.<consumer>.
    <delivered>.<stream seq>...``; 2.9 has 9 tokens, later servers add domain and account hash)."""
    tokens = reply.split(".")
    if len(tokens) == 9:
        return tokens[5]
    return tokens[7] if len(tokens) >= 12 else reply
