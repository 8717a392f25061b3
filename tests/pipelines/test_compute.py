"""Compute targets: create / list / show / delete / default, in the library and the CLI, and how runs pick one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mloop.cli.app import app
from mloop.errors import AlreadyExists, InvalidInput, NotFound
from mloop.pipelines import LocalExecutor, Pipeline
from mloop.pipelines.compute import (
    ComputeEvents,
    create_target,
    delete_target,
    get_target,
    list_targets,
    parse_bytes,
    resolve_executor,
    set_default_target,
)
from mloop.pipelines.executors.dask import DaskExecutor
from mloop.tracking.client import Client


def test_local_is_built_in_and_the_default(client: Client) -> None:
    [local] = list_targets(client)
    assert local.to_dict() == {"name": "local", "type": "local", "params": {}, "default": True, "builtin": True}
    assert isinstance(resolve_executor(client, None), LocalExecutor)
    given = LocalExecutor(max_workers=1)
    assert resolve_executor(client, given) is given


def test_create_list_show_delete_and_events(client: Client) -> None:
    small = create_target(client, "small", "local", {"max_workers": 1})
    cluster = create_target(client, "cluster", "dask", {"min_workers": 0, "max_workers": 3, "memory_limit": "1GB"})
    remote = create_target(client, "remote", "dask", {"address": "tcp://10.0.0.5:8786"}, default=True)
    assert [t.name for t in list_targets(client)] == ["local", "cluster", "remote", "small"]
    assert get_target(client, "cluster").params == {"min_workers": 0, "max_workers": 3, "memory_limit": 10**9}
    assert [t.name for t in list_targets(client) if t.default] == ["remote"] and remote.default
    executor = resolve_executor(client, None)  # the default target now
    assert isinstance(executor, DaskExecutor) and executor.get_params()["address"] == "tcp://10.0.0.5:8786"
    named = resolve_executor(client, "cluster")
    assert isinstance(named, DaskExecutor)
    assert named.get_params() | {"target": "x"} == {
        "address": None, "min_workers": 0, "max_workers": 3, "threads_per_worker": 1, "memory_limit": 10**9,
        "adapt_interval": 1.0, "wait_count": 3, "timeout": 10.0, "target": "x",
    }  # fmt: skip
    assert named.worker_resources() == {"cpu": 1.0, "memory": 1e9}
    small_executor = resolve_executor(client, "small")
    assert isinstance(small_executor, LocalExecutor) and small_executor.workers == 1
    deleted = delete_target(client, "remote")
    assert deleted.default and get_target(client, "local").default  # the default falls back to local
    set_default_target(client, "small")
    assert get_target(client, "small").default and not get_target(client, "local").default
    events = [e for e in client.store.list_events().items if e.type.startswith("compute.")]
    assert [(e.type, e.subject) for e in events] == [
        (ComputeEvents.CREATED, "compute:small"), (ComputeEvents.CREATED, "compute:cluster"),
        (ComputeEvents.CREATED, "compute:remote"), (ComputeEvents.DELETED, "compute:remote"),
        (ComputeEvents.DEFAULT_SET, "compute:small"),
    ]  # fmt: skip
    assert events[1].payload["params"]["max_workers"] == 3 and small.params == {"max_workers": 1}
    assert cluster.type == "dask"


@pytest.mark.parametrize(
    ("name", "kind", "params", "error", "match"),
    [
        ("bad name", "dask", {}, InvalidInput, "Compute target name 'bad name' is not valid"),
        ("k8s", "kubernetes", {}, InvalidInput, "type 'kubernetes' is not known. Use one of \\['dask', 'local'\\]"),
        ("c", "dask", {"min_workers": 3, "max_workers": 2}, InvalidInput, "min_workers=3 is more than max_workers=2"),
        ("c", "dask", {"max_workers": 0}, InvalidInput, "max_workers=0 must be an integer >= 1"),
        ("c", "dask", {"min_workers": -1}, InvalidInput, "min_workers=-1 must be an integer >= 0"),
        ("c", "dask", {"threads_per_worker": True}, InvalidInput, "threads_per_worker=True must be an integer"),
        ("c", "dask", {"memory_limit": "lots"}, InvalidInput, "Memory size 'lots' is not understood"),
        ("c", "dask", {"address": "10.0.0.5"}, InvalidInput, "address='10.0.0.5' must be like 'tcp://HOST:8786'"),
        ("c", "dask", {"address": "tcp://h:1", "max_workers": 2}, InvalidInput, "cannot apply"),
        ("c", "local", {"min_workers": 1}, InvalidInput, r"'local' takes \['max_workers'\], not \['min_workers'\]"),
        ("local", "local", {}, AlreadyExists, "Compute target 'local' is built in"),
    ],
)  # fmt: skip
def test_bad_targets_are_refused_naming_the_fix(
    client: Client, name: str, kind: str, params: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        create_target(client, name, kind, params)
    assert [t.name for t in list_targets(client)] == ["local"]


def test_duplicates_unknown_names_and_the_builtin(client: Client) -> None:
    create_target(client, "c", "dask", {"max_workers": 2})
    with pytest.raises(AlreadyExists, match=r"Compute target 'c' exists already.*mloop compute delete c"):
        create_target(client, "c", "local")
    with pytest.raises(NotFound, match=r"No compute target 'nope'; targets are \['local', 'c'\]"):
        get_target(client, "nope")
    with pytest.raises(NotFound, match="No compute target 'nope'"):
        resolve_executor(client, "nope")
    with pytest.raises(InvalidInput, match="built in and cannot be deleted"):
        delete_target(client, "local")
    with pytest.raises(InvalidInput, match="neither a compute target's name nor an executor"):
        resolve_executor(client, 42)  # type: ignore[arg-type]


def test_parse_bytes() -> None:
    assert parse_bytes("4GB") == 4 * 10**9 and parse_bytes("512MiB") == 512 * 2**20 and parse_bytes(1000) == 1000
    assert parse_bytes(" 1.5 kb ") == 1500
    with pytest.raises(InvalidInput, match="at least 1 byte"):
        parse_bytes("0")


def test_run_by_target_name(client: Client, load: Callable[..., Pipeline]) -> None:
    create_target(client, "one", "local", {"max_workers": 1})
    result = load().run(client=client, compute="one")
    assert result.ok and {s.status for s in result.steps.values()} == {"ran"}
    with pytest.raises(NotFound, match="No compute target 'two'"):
        load().run(client=client, compute="two")


def mloop(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), prog_name="mloop")
    assert result.exit_code == code, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


def test_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.workspace import init_workspace

    init_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert json.loads(mloop("compute", "list", "--json").stdout) == [
        {"name": "local", "type": "local", "params": {}, "default": True, "builtin": True}
    ]
    out = mloop(
        "compute", "create", "cluster", "--min-workers", "0", "--max-workers", "4", "--memory-limit", "2GB"
    ).stdout
    assert "cluster (dask): local Dask cluster, 0..4 workers (adaptive), 1 thread(s) each, 2,000,000,000 bytes" in out
    made = json.loads(mloop("compute", "create", "remote", "--address", "tcp://h:8786", "--default", "--json").stdout)
    assert made == {"name": "remote", "type": "dask", "params": {"address": "tcp://h:8786"}, "default": True,
                    "builtin": False}  # fmt: skip
    listed = mloop("compute", "list").stdout
    assert "Dask scheduler at tcp://h:8786" in listed and "process pool of every CPU" in listed
    shown = json.loads(mloop("compute", "show", "cluster", "--json").stdout)
    assert shown["params"] == {"min_workers": 0, "max_workers": 4, "memory_limit": 2 * 10**9}
    assert "max_workers: 4" in mloop("compute", "show", "cluster").stdout
    assert "local is the default again" in mloop("compute", "delete", "remote").stdout
    assert json.loads(mloop("compute", "default", "cluster", "--json").stdout)["default"] is True
    assert json.loads(mloop("compute", "delete", "cluster", "--json").stdout)["deleted"]["name"] == "cluster"
    # errors (exit codes: bad input 2, not found 3, already exists 4), each naming the fix
    err = mloop("compute", "create", "x", "--type", "slurm", code=2).stderr
    assert "type 'slurm' is not known" in err
    err = mloop("compute", "create", "x", "--min-workers", "3", "--max-workers", "1", code=2).stderr
    assert "min_workers=3 is more than max_workers=1" in err
    assert "No compute target 'gone'" in mloop("compute", "show", "gone", code=3).stderr
    mloop("compute", "create", "dup", "--type", "local")
    assert "exists already" in mloop("compute", "create", "dup", "--type", "local", code=4).stderr


def test_pipelines_run_compute_option(tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.workspace import init_workspace

    init_workspace(project)
    monkeypatch.chdir(project)
    for module in ("helpers", "deep"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    mloop("compute", "create", "solo", "--type", "local", "--max-workers", "1")
    result = json.loads(mloop("pipelines", "run", "flow.py:flow", "--compute", "solo", "--json").stdout)
    assert result["status"] == "FINISHED"
    err = mloop("pipelines", "run", "flow.py:flow", "--compute", "nope", code=3).stderr
    assert "No compute target 'nope'" in err
    assert "not both" in mloop("pipelines", "run", "flow.py:flow", "--compute", "solo", "--workers", "2", code=2).stderr


def test_importing_pipelines_does_not_import_dask() -> None:
    code = "import sys, mloop.pipelines.compute; print('dask' in sys.modules, 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
def test_concurrent_writers_lose_no_target(tmp_path: Path, store_kind: str, request: pytest.FixtureRequest) -> None:
    """Targets live in one settings document; writers racing on it must each land (compare-and-set + retry)."""
    import mloop
    from mloop.testing.threads import in_threads

    uri = None if store_kind == "sqlite" else str(request.getfixturevalue("postgres_uri"))
    ws = mloop.init_workspace(tmp_path / "ws", store_uri=uri)
    clients = [Client(workspace=ws) for _ in range(6)]
    try:

        def create_three(c: Client, i: int) -> list[str]:
            for j in range(3):
                create_target(c, f"t{i}-{j}", "dask", {"max_workers": 1 + j})
            return [f"t{i}-{j}" for j in range(3)]

        outcomes = in_threads(create_three, [(c, i) for i, c in enumerate(clients)])
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
        names = {t.name for t in list_targets(clients[0])}
        assert names == {"local"} | {f"t{i}-{j}" for i in range(6) for j in range(3)}
        created = clients[0].store.list_events(types=[ComputeEvents.CREATED], limit=100).items
        assert len(created) == 18  # one event per landed change, none for a refused compare-and-set
    finally:
        for c in clients:
            c.close()
