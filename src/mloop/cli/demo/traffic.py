"""The demo's client of the ``sensors`` endpoint: readings in batches to ``POST /predict``, the ground truth of
each batch to ``POST /feedback`` (as a plant's maintenance log would send it later), counting answers by the
version that gave them (``X-Model-Version``), in the foreground or in a background thread."""

from __future__ import annotations

import itertools
import math
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from mloop.errors import MloopError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Background", "Sender"]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON rows; a missing sensor value is ``null`` (the endpoint reads it as missing)."""
    rows = frame.to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows]


class Sender:
    """Sends readings with their labels to an endpoint; thread-safe counters of what answered."""

    def __init__(self, url: str, *, label: str, prefix: str = "demo", timeout: float = 30.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.label = label
        self.prefix = prefix
        self._http = httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.requests = 0
        self.rows = 0
        self.errors = 0
        self.feedback = 0
        self.by_model: Counter[str] = Counter()

    def close(self) -> None:
        self._http.close()

    def send(self, frame: pd.DataFrame, *, batch: int = 25, feedback: bool = True) -> int:
        """Score ``frame`` (with its label column) ``batch`` rows a request, then send the labels; rows sent."""
        sent = 0
        for start in range(0, len(frame), batch):
            part = frame.iloc[start : start + batch]
            sent += self.send_batch(part.drop(columns=[self.label]), part[self.label].tolist(), feedback=feedback)
        return sent

    def send_batch(self, features: pd.DataFrame, labels: list[int], *, feedback: bool = True) -> int:
        import httpx

        with self._lock:
            rid = f"{self.prefix}-{next(self._ids):06d}"
        try:
            answer = self._http.post(f"{self.url}/predict", json=_records(features), headers={"X-Request-ID": rid,
                                     "X-Routing-Key": rid})  # fmt: skip
        except httpx.HTTPError as exc:
            raise MloopError(f"The demo could not reach its endpoint at {self.url} ({exc}). See "
                             "`mloop deploy logs sensors`.") from exc  # fmt: skip
        with self._lock:
            self.requests += 1
            if answer.status_code != 200:
                self.errors += 1
                return 0
            self.rows += len(features)
            self.by_model[answer.headers.get("x-model-version", "?")] += 1
        if feedback:
            reply = self._http.post(f"{self.url}/feedback", json={"request_id": rid, "ground_truth": labels})
            if reply.status_code == 202:
                with self._lock:
                    self.feedback += len(labels)
        return len(features)

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "rows": self.rows, "errors": self.errors, "feedback": self.feedback,
                    "by_model": dict(self.by_model)}  # fmt: skip


class Background:
    """Keeps sending ``frame``'s rows (round and round) in a thread until :meth:`stop`, so a canary gets requests
    while the demo watches the loop; errors are counted, and a failure to connect ends the thread."""

    def __init__(self, sender: Sender, frame: pd.DataFrame, *, batch: int = 10, pause: float = 0.01) -> None:
        self.sender = sender
        self.frame = frame
        self.batch = batch
        self.pause = pause
        self.failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mloop-demo-traffic", daemon=True)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        starts = itertools.cycle(range(0, max(len(self.frame) - self.batch, 1), self.batch))
        while not self._stop.is_set():
            part = self.frame.iloc[(s := next(starts)) : s + self.batch]
            try:
                self.sender.send_batch(part.drop(columns=[self.sender.label]), part[self.sender.label].tolist())
            except MloopError as exc:
                self.failure = str(exc)
                return
            self._stop.wait(self.pause)
