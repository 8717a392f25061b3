"""An evaluation's HTML report as a local file (``mloop evaluate --report``).

:func:`~mloop.registry.evaluate.evaluate` stores the report as a blob with the evaluation (``report_digest``);
:func:`write_report` writes that blob to a file and :func:`evaluate_with_report` does both in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.entities import Evaluation
from mloop.registry.evaluate import evaluate

if TYPE_CHECKING:
    from mloop.context import Context

__all__ = ["ReportedEvaluation", "evaluate_with_report", "write_report"]


@dataclass(frozen=True)
class ReportedEvaluation:
    """An evaluation and where its HTML report was written (``None``: not written)."""

    evaluation: Evaluation
    report: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The evaluation's JSON shape, with ``report`` (which keeps its place) the file written, if any."""
        shape = self.evaluation.to_dict()
        if self.report is not None:
            shape["report"] = str(self.report)
        return shape


def write_report(client: Context, evaluation: Evaluation, path: Path) -> Path | None:
    """Write the stored HTML report of ``evaluation`` to ``path`` (creating its folders); return the absolute
    path written, or ``None`` when the evaluation stored no report (nothing is written then)."""
    if evaluation.report_digest is None:
        return None
    html = client.artifacts.get_bytes(
        evaluation.report_digest, name=f"report of {evaluation.model_ref} on {evaluation.data_ref}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(html)
    return path.resolve()


def evaluate_with_report(
    client: Context,
    model_ref: str,
    data_ref: str,
    *,
    target: str | None = None,
    task: str | None = None,
    report: Path | None = None,
) -> ReportedEvaluation:
    """:func:`~mloop.registry.evaluate.evaluate` ``model_ref`` on ``data_ref`` (stored with the version), then
    write its HTML report to ``report`` when one is given."""
    e = evaluate(client, model_ref, data_ref, target=target, task=task)
    return ReportedEvaluation(e, None if report is None else write_report(client, e, report))
