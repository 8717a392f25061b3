"""``Run``: the handle of a run in progress. Logging goes through it; it ends the run exactly once.

Metrics are buffered (:class:`~mloop.tracking.buffer.MetricBuffer`); params, tags and artifacts are written at
once so a conflicting param or a bad artifact path fails at the line that caused it. Used as a context manager
the run ends FINISHED, FAILED on an exception, or KILLED on Ctrl-C / SIGTERM, after flushing every value.
"""

from __future__ import annotations

import atexit
import io
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from mloop.entities import (
    ArtifactEntry,
    DatasetVersion,
    Metric,
    ModelVersion,
    RunRecord,
    RunStatus,
    now_ms,
)
from mloop.errors import AccessDenied, Conflict, InvalidInput
from mloop.guard import READ_DENIED, HoldoutEvents
from mloop.tracking.buffer import MetricBuffer

if TYPE_CHECKING:
    from mloop.tracking.client import Client

__all__ = ["Run"]


def _number(kind: str, key: object, value: object) -> float:
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{kind} keys must be non-empty strings, got {key!r}.")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{kind} {key!r} must be a number, got {value!r}. Log text as a tag or param instead."
        ) from None


def _key(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > 250:
        raise InvalidInput(f"{kind} keys must be strings of 1 to 250 characters, got {key!r}.")
    return key


def _text(value: object) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return repr(value)
    return value if isinstance(value, str) else str(value)


class Terminated(SystemExit):
    """Raised in the main thread when the process receives SIGTERM while a run is active."""


class Run:
    """A run in progress. Create one with :func:`mloop.start_run` or :meth:`mloop.Client.start_run`."""

    def __init__(self, client: Client, record: RunRecord, *, on_end: Callable[[Run], None] | None = None) -> None:
        self._client = client
        self.record = record
        self.id = record.id
        self.experiment_id = record.experiment_id
        self.name = record.name
        self.parent_id = record.parent_id
        self.status = RunStatus.RUNNING
        self._on_end = on_end
        store = client.store
        self._params: dict[str, str] = dict(record.params)  # what this run logged, for immediate conflict checks

        def write(metrics: Sequence[Metric], params: Mapping[str, str], tags: Mapping[str, str]) -> None:
            store.log_batch(self.id, metrics=metrics, params=params, tags=tags)

        self._buffer = MetricBuffer(write, flusher=client.flusher)
        self._previous_sigterm: Any = None
        self._killed = False
        atexit.register(self._at_exit)
        self._install_sigterm()

    def __repr__(self) -> str:
        return f"<Run {self.name!r} run:{self.id} {self.status.value}>"

    @property
    def ref(self) -> str:
        return f"run:{self.id}"

    @property
    def client(self) -> Client:
        return self._client

    # logging --------------------------------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        """Buffer one value (cheap); it reaches the store with the next batch."""
        v = _number("Metric", key, value)
        self._buffer.add(Metric(key, v, step, timestamp if timestamp is not None else time.time_ns() // 1_000_000))

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
        ts = timestamp if timestamp is not None else now_ms()
        self._buffer.extend([Metric(k, _number("Metric", k, v), step, ts) for k, v in metrics.items()])

    def log_param(self, key: str, value: object) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, object]) -> None:
        """Buffer params. Changing a param this run already logged raises :class:`Conflict` at once."""
        texts = {_key("Param", k): _text(v) for k, v in params.items()}
        for key, value in texts.items():
            old = self._params.get(key)
            if old is not None and old != value:
                raise Conflict(
                    f"Param {key!r} of run {self.id} is already {old!r}; it cannot change to {value!r}. "
                    "Params are immutable: start a new run, or log the changing value as a metric or tag."
                )
        self._params.update(texts)
        self._buffer.add_params(texts)

    def set_tag(self, key: str, value: object) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Buffer tags (tags may change; the last value wins)."""
        self._buffer.add_tags({_key("Tag", k): _text(v) for k, v in tags.items()})

    def log_model(
        self,
        model: Any,
        name: str | None = None,
        *,
        path: str = "model",
        input_example: Any = None,
        signature_data: Any = None,
        target: str | None = None,
        flavor: str | None = None,
        description: str = "",
    ) -> ModelVersion | None:
        """Save ``model`` (flavor files, signature, environment lock) under ``path``; register it as ``name``.

        ``signature_data`` (e.g. the training features) gives the observed ranges and categories of each input;
        ``input_example`` (a few rows) is stored with the version. Returns the registered version, if any.
        """
        from mloop.tracking.models import log_model

        return log_model(
            self, model, name, path=path, input_example=input_example, signature_data=signature_data,
            target=target, flavor=flavor, description=description,
        )  # fmt: skip

    def use_dataset(self, ref: str) -> DatasetVersion:
        """Record a dataset version as an input of this run (readers inside a run do it automatically)."""
        from mloop.refs import parse_ref

        r = parse_ref(ref, default_kind="data")
        if r.kind != "data":
            raise InvalidInput(f"{ref!r} is not a dataset reference; use data:<name>/<version> or data:<name>@<alias>.")
        version = self._client.store.get_dataset_version(r.name, r.version, r.alias)
        if version.private:  # the attempt is recorded: the model registered from this run will show it
            store, actor = self._client.store, self._client.actor
            store.add_lineage(version.ref, self.ref, READ_DENIED, actor=actor)
            store.append_event(HoldoutEvents.DENIED, version.ref, actor=actor,
                               payload={"run": self.ref, "purpose": None, "via": None})  # fmt: skip
            raise AccessDenied(
                f"{version.ref} is a private holdout and cannot be a training input of {self.ref}. "
                "Use the matching train split; holdouts are read only by evaluation."
            )
        self._client.store.add_lineage(version.ref, self.ref, "input", actor=self._client.actor)
        return version

    def flush(self) -> int:
        """Write buffered metrics now; returns how many were written."""
        return self._buffer.flush()

    # artifacts ------------------------------------------------------------------------------------------
    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> ArtifactEntry:
        """Store a file (content-addressed, deduplicated) under ``name`` (default: its file name)."""
        src = Path(path)
        if not src.is_file():
            raise InvalidInput(
                f"Artifact {str(path)!r} is not a file. Pass a file path, or use log_artifacts() for a folder."
            )
        return self._client.record_files(self.id, [(src, name or src.name)])[0]

    def log_artifacts(self, directory: str | os.PathLike[str], prefix: str = "") -> list[ArtifactEntry]:
        """Store every file below ``directory`` under ``prefix/<relative path>``."""
        root = Path(directory)
        if not root.is_dir():
            raise InvalidInput(f"{str(directory)!r} is not a folder. Use log_artifact() for a single file.")
        files = sorted(p for p in root.rglob("*") if p.is_file())
        pairs = [(p, "/".join(filter(None, [prefix, p.relative_to(root).as_posix()]))) for p in files]
        return self._client.record_files(self.id, pairs)

    def log_bytes(self, data: bytes, name: str) -> ArtifactEntry:
        return self._client.record_bytes(self.id, data, name)

    def log_text(self, text: str, name: str) -> ArtifactEntry:
        return self.log_bytes(text.encode(), name)

    def log_dict(self, obj: Mapping[str, Any] | list[Any], name: str) -> ArtifactEntry:
        """Store ``obj`` as JSON (or YAML when ``name`` ends in .yaml/.yml)."""
        if name.endswith((".yaml", ".yml")):
            import yaml

            return self.log_text(yaml.safe_dump(obj, sort_keys=False), name)
        return self.log_text(json.dumps(obj, indent=2, sort_keys=True, default=str), name)

    def log_figure(self, figure: Any, name: str) -> ArtifactEntry:
        """Store a matplotlib (``savefig``) or plotly (``write_html``/``to_image``) figure; format from ``name``."""
        buf = io.BytesIO()
        suffix = Path(name).suffix.lower().lstrip(".") or "png"
        if hasattr(figure, "savefig"):
            figure.savefig(buf, format=suffix, bbox_inches="tight")
        elif suffix == "html" and hasattr(figure, "write_html"):
            return self.log_text(figure.to_html(), name)
        elif hasattr(figure, "to_image"):
            buf.write(figure.to_image(format=suffix))
        else:
            raise InvalidInput(
                f"Cannot save {type(figure).__name__} as a figure: pass a matplotlib Figure or a plotly figure."
            )
        return self.log_bytes(buf.getvalue(), name)

    # lifecycle ------------------------------------------------------------------------------------------
    @property
    def info(self) -> RunRecord:
        """The run as stored now (buffered values are written first)."""
        if not self.status.terminal:
            self.flush()
        return self._client.store.get_run(self.id)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Write what is buffered and the final ``status`` in one transaction. Ending twice is a no-op."""
        if self.status.terminal:
            return
        status = RunStatus(status)
        atexit.unregister(self._at_exit)
        self._restore_sigterm()
        self._buffer.close()
        store, actor = self._client.store, self._client.actor
        metrics, params, tags = self._buffer.take()
        try:
            store.end_run(self.id, status, actor=actor, metrics=metrics, params=params, tags=tags)
        except Conflict:  # a param changed by another writer: keep every value, end FAILED, then report it
            store.end_run(self.id, RunStatus.FAILED, actor=actor, metrics=metrics, tags=tags)
            self._finished(RunStatus.FAILED)
            raise
        except BaseException:
            self._buffer.restore((metrics, params, tags))
            raise
        self._finished(status)

    def _finished(self, status: RunStatus) -> None:
        self.status = status
        if self._on_end is not None:
            self._on_end(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif self._killed or issubclass(exc_type, (KeyboardInterrupt, Terminated)):
            self.end(RunStatus.KILLED)
        elif isinstance(exc, SystemExit) and exc.code in (0, None):
            self.end(RunStatus.FINISHED)
        else:
            self.end(RunStatus.FAILED)

    def _at_exit(self) -> None:
        if not self.status.terminal:
            self.end(RunStatus.KILLED if self._killed else RunStatus.FINISHED)

    # SIGTERM: turn it into an exception so `with` blocks unwind, flush and record KILLED -------------------
    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            previous = signal.getsignal(signal.SIGTERM)
            if getattr(previous, "__self__", None).__class__ is Run:  # an outer run already handles it
                return
            signal.signal(signal.SIGTERM, self._on_sigterm)
            self._previous_sigterm = previous
        except (ValueError, OSError):  # not the main interpreter thread / unsupported platform
            return

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is None:
            return
        try:
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
        except (ValueError, OSError):
            pass
        self._previous_sigterm = None

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self._killed = True
        previous = self._previous_sigterm
        if callable(previous):
            previous(signum, frame)
        raise Terminated(128 + signum)
