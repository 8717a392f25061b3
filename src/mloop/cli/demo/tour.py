"""The tour ``mloop demo`` runs: the loop so far, on data scikit-learn ships, in a fresh workspace.

1. version the data (Parquet) and split off a private, stratified holdout;
2. train a small grid of models in tracked runs that read the train split (lineage is recorded);
3. register the best run's model only if it beats production on the holdout (the first one does: there is
   no champion yet), then show a weaker challenger being refused by the promotion gate;
4. print where to look. Serving, monitoring and automatic retraining extend it as they land.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEMO_DIRNAME", "DemoResult", "demo_root", "path_hint", "run_demo"]

DEMO_DIRNAME = "mloop-demo"
_MARKER = "made-by-mloop-demo"  # in the demo's .mloop/: running the demo again from inside reuses the folder

_GRID: list[dict[str, Any]] = [
    {"model": "sgd", "alpha": 1e-4, "epochs": 30},
    {"model": "sgd", "alpha": 1e-2, "epochs": 30},
    {"model": "forest", "n_estimators": 60, "max_depth": 3},
    {"model": "forest", "n_estimators": 150, "max_depth": 8},
]


@dataclass
class DemoResult:
    workspace: Path
    experiment: str
    run_ids: list[str] = field(default_factory=list)
    best_run_id: str = ""
    best_accuracy: float = 0.0
    production: str = ""
    production_metrics: dict[str, Any] = field(default_factory=dict)
    refused: str = ""
    chart: Path | None = None
    seconds: float = 0.0


def _train(params: dict[str, Any], x: Any, y: Any, xv: Any, yv: Any, run: Any) -> Any:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if params["model"] == "sgd":
        scaler = StandardScaler().fit(x)
        clf = SGDClassifier(loss="log_loss", alpha=params["alpha"], random_state=0)
        for epoch in range(params["epochs"]):
            clf.partial_fit(scaler.transform(x), y, classes=np.unique(y))
            run.log_metrics(
                {"train_loss": log_loss(y, clf.predict_proba(scaler.transform(x))),
                 "val_accuracy": accuracy_score(yv, clf.predict(scaler.transform(xv)))},
                step=epoch,
            )  # fmt: skip
        return make_pipeline(scaler, clf)
    model = RandomForestClassifier(
        n_estimators=params["n_estimators"], max_depth=params["max_depth"], random_state=0, n_jobs=1
    ).fit(x, y)
    run.log_metric("val_accuracy", accuracy_score(yv, model.predict(xv)))
    return model


def _data(root: Path, client: Any) -> Any:
    from sklearn.datasets import load_breast_cancer

    import mloop

    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "breast_cancer.parquet"
        frame.to_parquet(path, index=False)
        mloop.Dataset.add(path, "breast-cancer", client=client, message="scikit-learn's breast cancer data")
    return mloop.split_dataset("data:breast-cancer@latest", holdout=0.25, seed=7, stratify="label", client=client)


def demo_root(directory: Path | None = None, *, cwd: Path | None = None) -> Path:
    """Where the demo runs: ``directory`` if given; else the demo folder the current folder is in (so running
    the demo again from inside it reuses it instead of nesting another); else ``./mloop-demo``."""
    from mloop.config import find_workspace

    if directory is not None:
        return directory.expanduser().resolve()
    here = (cwd or Path.cwd()).resolve()
    found = find_workspace(here)
    if found is not None and ((found / _MARKER).is_file() or found.parent.name == DEMO_DIRNAME):
        return found.parent
    return here / DEMO_DIRNAME


def path_hint() -> str | None:
    """How to put ``mloop`` on PATH when it is not (so the printed commands work as printed); else ``None``."""
    import shutil
    import sys

    if shutil.which("mloop") is not None:
        return None
    activate = Path(sys.prefix) / "bin" / "activate"
    if activate.is_file():
        return f"`mloop` is not on your PATH: first run `source {activate}`."
    return f"`mloop` is not on your PATH: first run `export PATH=\"{Path(sys.executable).parent}:$PATH\"`."


def run_demo(directory: Path | None = None, *, console: Any = None) -> DemoResult:
    """Run the demo in :func:`demo_root` of ``directory`` and return what it made."""
    from rich.console import Console
    from rich.progress import Progress

    import mloop
    from mloop.errors import GateFailed
    from mloop.tracking.client import Client
    from mloop.workspace import init_workspace

    out = console or Console()
    started = time.perf_counter()
    root = demo_root(directory)
    client = Client(workspace=init_workspace(root))
    marker = root / ".mloop" / _MARKER
    if not marker.exists():
        marker.write_text("This workspace was made by `mloop demo`; running it again from here reuses it.\n")
    experiment = "breast-cancer"
    result = DemoResult(workspace=root, experiment=experiment)
    out.print(f"[bold]mloop demo[/] workspace: {root / '.mloop'}")

    split = _data(root, client)
    out.print(f"Data: {split.source.ref} → {split.train.ref} ({split.train.info.rows} rows) and private "
              f"{split.holdout.ref} ({split.holdout.info.rows} rows)")  # fmt: skip
    from sklearn.model_selection import train_test_split

    train = None
    models: dict[str, Any] = {}
    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("training", total=len(_GRID))
        with client.start_run(experiment, "grid-search", tags={"demo": "true"}) as parent:
            for params in _GRID:
                name = "-".join(f"{v}" for v in params.values())
                progress.update(task, description=f"training {name}")
                with client.start_run(experiment, name, params=params, parent=parent) as run:
                    run.use_dataset(split.train.ref)  # lineage: this run trained on that version
                    train = split.train.to_pandas()
                    x, y = train.drop(columns=["label"]), train["label"]
                    xt, xv, yt, yv = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
                    model = _train(params, xt, yt, xv, yv, run)
                    run.log_model(model, input_example=x.head(3), signature_data=x, target="label")
                    models[run.id] = model
                    result.run_ids.append(run.id)
                progress.advance(task)
    ranked = client.search_runs(experiment, filter=f"parent_id = '{parent.id}'", order_by=["metrics.val_accuracy DESC"])
    best, worst = ranked[0], ranked[-1]
    result.best_run_id, result.best_accuracy = best.id, best.metrics["val_accuracy"]

    better = mloop.register_if_better(
        f"run:{best.id}/model", "breast-cancer", data=split.holdout.ref, alias="production", client=client
    )
    result.production = better.version.ref
    result.production_metrics = dict(better.evaluation.metrics)
    out.print(f"Registered {better.version.ref} from run {best.name}; promoted to production: {better.promoted}")
    challenger = mloop.register_model(f"run:{worst.id}/model", "breast-cancer", client=client)
    mloop.evaluate(challenger.ref, split.holdout.ref, client=client)
    try:
        mloop.promote("breast-cancer", challenger.version, to="production", client=client)
    except GateFailed as refusal:
        result.refused = challenger.ref
        out.print(f"[yellow]Gate refused {challenger.ref}[/] (run {worst.name}):")
        out.print(str(refusal).split("\n", 1)[1].rsplit("\n", 1)[0])
    try:
        from mloop.tracking.compare import write_chart

        sgd = [r.id for r in ranked if r.params.get("model") == "sgd"]
        result.chart = write_chart(client, sgd, root / "val_accuracy.html", metrics=["val_accuracy"])
    except ImportError:  # pragma: no cover - ships with the CLI
        result.chart = None
    result.seconds = time.perf_counter() - started
    _report(out, client, result)
    client.close()
    return result


def _report(out: Any, client: Any, result: DemoResult) -> None:
    from rich.table import Table

    table = Table(title=f"experiment {result.experiment!r}")
    for col in ("run", "name", "val_accuracy"):
        table.add_column(col)
    for run in client.search_runs(result.experiment, filter="metrics.val_accuracy > 0",
                                  order_by=["metrics.val_accuracy DESC"]):  # fmt: skip
        mark = " *" if run.id == result.best_run_id else ""
        table.add_row(run.id[-8:] + mark, run.name, f"{run.metrics['val_accuracy']:.4f}")
    out.print(table)
    m = result.production_metrics
    if m:
        out.print(f"Production: [bold]{result.production}[/] — holdout roc_auc {m['roc_auc']:.4f}, "
                  f"accuracy {m['accuracy']:.4f}")  # fmt: skip
    if result.chart is not None:
        out.print(f"Chart of validation accuracy per epoch: {result.chart}")
    out.print("Look around (from that folder, or pass --uri):")
    hint = path_hint()
    if hint is not None:
        out.print(hint, markup=False)
    out.print(f"  cd {result.workspace}")
    out.print("  mloop runs list --experiment breast-cancer")
    out.print(f"  mloop models show {result.production}")
    out.print(f"  mloop lineage {result.production}")
    out.print("  mloop data versions breast-cancer-holdout")
    out.print("  mloop events list")
    out.print(f"Done in {result.seconds:.1f} s.")
