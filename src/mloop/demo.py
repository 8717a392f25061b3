"""``mloop demo``: a tracked training session on a dataset scikit-learn ships, in a fresh workspace.

It trains a small grid of models on the breast-cancer dataset, logs parameters, per-epoch metric histories,
test metrics, the environment, a confusion-matrix figure and the fitted model, then finds the best run with
a search and writes a comparison chart. Later releases extend it to the whole closed loop.
"""

from __future__ import annotations

import io
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DemoResult", "run_demo"]

_GRID: list[dict[str, Any]] = [
    {"model": "sgd", "alpha": 1e-4, "epochs": 30},
    {"model": "sgd", "alpha": 1e-3, "epochs": 30},
    {"model": "sgd", "alpha": 1e-2, "epochs": 30},
    {"model": "forest", "n_estimators": 50, "max_depth": 4},
    {"model": "forest", "n_estimators": 150, "max_depth": 8},
]


@dataclass
class DemoResult:
    workspace: Path
    experiment: str
    run_ids: list[str] = field(default_factory=list)
    best_run_id: str = ""
    best_accuracy: float = 0.0
    chart: Path | None = None
    seconds: float = 0.0


def _train(params: dict[str, Any], data: tuple[Any, ...], run: Any) -> Any:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test, y_train, y_test = data
    if params["model"] == "sgd":
        scaler = StandardScaler().fit(x_train)
        xs_train, xs_test = scaler.transform(x_train), scaler.transform(x_test)
        clf = SGDClassifier(loss="log_loss", alpha=params["alpha"], random_state=0)
        classes = np.unique(y_train)
        for epoch in range(params["epochs"]):
            clf.partial_fit(xs_train, y_train, classes=classes)
            run.log_metrics(
                {
                    "train_loss": log_loss(y_train, clf.predict_proba(xs_train)),
                    "val_accuracy": accuracy_score(y_test, clf.predict(xs_test)),
                },
                step=epoch,
            )
        model = make_pipeline(scaler, clf)
    else:
        model = RandomForestClassifier(
            n_estimators=params["n_estimators"], max_depth=params["max_depth"], random_state=0, n_jobs=1
        ).fit(x_train, y_train)
        for i, est in enumerate(model.estimators_[:: max(1, len(model.estimators_) // 25)]):
            run.log_metric("tree_val_accuracy", accuracy_score(y_test, est.predict(x_test)), step=i)
    return model


def _evaluate(model: Any, data: tuple[Any, ...]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    _, x_test, _, y_test = data
    proba = model.predict_proba(x_test)[:, 1]
    pred = model.predict(x_test)
    return {
        "accuracy": float(accuracy_score(y_test, pred)),
        "f1": float(f1_score(y_test, pred)),
        "roc_auc": float(roc_auc_score(y_test, proba)),
    }


def _confusion_figure(model: Any, data: tuple[Any, ...]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    _, x_test, _, y_test = data
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot()
    ConfusionMatrixDisplay.from_estimator(model, x_test, y_test, ax=ax, colorbar=False)
    return fig


def run_demo(directory: Path | None = None, *, console: Any = None) -> DemoResult:
    """Run the demo in ``directory`` (default ``./mloop-demo``) and return what it made."""
    from rich.console import Console
    from rich.progress import Progress

    from mloop.tracking.client import Client
    from mloop.workspace import init_workspace

    out = console or Console()
    started = time.perf_counter()
    root = (directory or Path("mloop-demo")).resolve()
    workspace = init_workspace(root)
    client = Client(workspace=workspace)
    experiment = "breast-cancer"
    result = DemoResult(workspace=root, experiment=experiment)

    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    data = tuple(train_test_split(x, y, test_size=0.25, random_state=7, stratify=y))
    out.print(f"[bold]mloop demo[/] workspace: {root / '.mloop'}")
    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("training", total=len(_GRID))
        with client.start_run(experiment, "grid-search", tags={"demo": "true"}) as parent:
            for params in _GRID:
                name = "-".join(f"{v}" for v in params.values())
                progress.update(task, description=f"training {name}")
                with client.start_run(experiment, name, params=params, parent=parent) as run:
                    model = _train(params, data, run)
                    run.log_metrics(_evaluate(model, data))
                    run.log_figure(_confusion_figure(model, data), "plots/confusion_matrix.png")
                    buf = io.BytesIO()
                    pickle.dump(model, buf, protocol=pickle.HIGHEST_PROTOCOL)
                    run.log_bytes(buf.getvalue(), "model/model.pkl")
                    result.run_ids.append(run.id)
                progress.advance(task)
            best = client.search_runs(
                experiment,
                filter=f"parent_id = '{parent.id}'",
                order_by=["metrics.roc_auc DESC"],
                max_results=1,
            )[0]
            parent.log_params({"best_run": best.id})
            parent.log_metrics({"best_roc_auc": best.metrics["roc_auc"]})
    result.best_run_id = best.id
    result.best_accuracy = best.metrics["accuracy"]
    try:
        from mloop.tracking.compare import write_chart

        sgd = list(result.run_ids[:3])
        result.chart = write_chart(client, sgd, root / "val_accuracy.html", metrics=["val_accuracy"])
    except ImportError:  # the comparison module ships with the CLI
        result.chart = None
    result.seconds = time.perf_counter() - started
    _report(out, client, result, best)
    client.close()
    return result


def _report(out: Any, client: Any, result: DemoResult, best: Any) -> None:
    from rich.table import Table

    table = Table(title=f"experiment {result.experiment!r}")
    for col in ("run", "name", "accuracy", "f1", "roc_auc"):
        table.add_column(col)
    for run in client.search_runs(result.experiment, filter="metrics.accuracy > 0", order_by=["metrics.roc_auc DESC"]):
        mark = " *" if run.id == best.id else ""
        table.add_row(run.id[-8:] + mark, run.name, *(f"{run.metrics[k]:.4f}" for k in ("accuracy", "f1", "roc_auc")))
    out.print(table)
    ws = result.workspace
    out.print(f"Best run: [bold]run:{best.id}[/] ({best.name}), roc_auc {best.metrics['roc_auc']:.4f}")
    if result.chart is not None:
        out.print(f"Chart of validation accuracy per epoch: {result.chart}")
    out.print("Look around (from that folder, or pass --uri):")
    out.print(f"  cd {ws}")
    out.print("  mloop runs list --experiment breast-cancer")
    out.print(f"  mloop runs show {best.id}")
    out.print(f"  mloop runs compare {' '.join(r[-8:] for r in result.run_ids[:3])} --chart compare.png")
    out.print(f"Done in {result.seconds:.1f} s.")
