"""Steps and graphs: typed inputs/outputs/params from annotations, and every bad definition refused up front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pipeline_cases import write

from mloop.entities import RunRecord, RunStatus
from mloop.errors import InvalidInput
from mloop.pipelines import MaxAge, Never, Pipeline, Reuse, SameActor, load_pipeline, step
from mloop.pipelines.graph import Graph, bind_params


@step
def source(*, n: int = 2) -> list:
    return list(range(n))


@step
def total(source: list, *, offset: int = 0) -> int:
    return sum(source) + offset


@step(outputs=("evens", "odds"))
def split(source: list) -> tuple[list, list]:
    return source[::2], source[1::2]


@step
def as_text(total: str) -> str:
    return total


@step(name="total")
def total_again(source: list) -> int:
    return len(source)


@step(inputs={"numbers": "source"}, cache=False, retries=2, timeout=5)
def count(numbers: list, *, required: int) -> int:
    return len(numbers) + required


@step
def loop_a(loop_b: int) -> int:
    return loop_b


@step
def loop_b(loop_a: int) -> int:
    return loop_a


def test_step_reads_inputs_params_and_outputs_from_the_signature() -> None:
    assert total.inputs == {"source": "source"}
    assert set(total.params) == {"offset"} and total.params["offset"].default == 0
    assert total.outputs == {"total": int}
    assert split.outputs == {"evens": list, "odds": list} and split.multiple
    assert count.inputs == {"numbers": "source"} and count.params["required"].required
    assert count.retries == 2 and count.timeout == 5 and isinstance(count.cache, Never)
    assert total(source=[1, 2], offset=1) == 4  # a step is still callable


def test_graph_orders_steps_and_knows_descendants() -> None:
    g = Graph([total, split, source])
    assert g.order == ["source", "total", "split"]
    assert g.descendants("source") == {"total", "split"}
    assert g.upstream["total"] == {"source"}


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([source, total, total_again], "Two steps are named 'total'"),
        ([total], "reads input 'source', which no step produces"),
        ([source, total, as_text], "input 'total' expects str, but step 'total' outputs 'total' as int"),
        ([loop_a, loop_b], "Steps form a cycle: loop_a <- loop_b <- loop_a"),
        ([], "at least one step"),
        ([source, "nope"], "is not a step"),
    ],
)
def test_bad_graphs_are_refused_naming_the_step_and_the_fix(steps: list[Any], message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Pipeline("p", steps)
    assert message in str(info.value)


def test_duplicate_outputs_and_bad_step_options_are_refused() -> None:
    def dup(source: list) -> int:
        return 0

    dup.__qualname__ = "dup"
    with pytest.raises(InvalidInput, match="produced by both step 'source' and step 'dup'"):
        Pipeline("p", [source, step(outputs=("source",))(dup)])
    with pytest.raises(InvalidInput, match="retries"):
        step(retries=-1)(dup)
    with pytest.raises(InvalidInput, match="timeout"):
        step(timeout=0)(dup)
    with pytest.raises(InvalidInput, match="cache="):
        step(cache="yes")(dup)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="names no input argument"):
        step(inputs={"nope": "x"})(dup)

    def inner(*args: int) -> int:
        return 0

    with pytest.raises(InvalidInput, match="inside a function"):
        step(inner)
    inner.__qualname__ = "inner"
    with pytest.raises(InvalidInput, match=r"\*args"):
        step(inner)


def test_parameters_bind_by_step_or_name_and_unknown_ones_are_refused() -> None:
    g = Graph([source, total, count])
    bound = bind_params(g, {"n": 5, "total.offset": 2, "required": 1})
    assert bound == {"source": {"n": 5}, "total": {"offset": 2}, "count": {"required": 1}}
    with pytest.raises(InvalidInput, match=r"Unknown parameter 'ofset'\. Did you mean 'offset'\?"):
        bind_params(g, {"ofset": 1, "required": 1})
    with pytest.raises(InvalidInput, match=r"Unknown parameter 'total\.nope'"):
        bind_params(g, {"total.nope": 1, "required": 1})
    with pytest.raises(InvalidInput, match="Step 'count' needs parameter 'required'"):
        bind_params(g, {})


def test_cache_policies_compose_as_values() -> None:
    old = RunRecord("r", "e", "n", RunStatus.FINISHED, start_time=0, end_time=1_000, actor="ann")
    policy = MaxAge(60) & SameActor()
    assert policy.refusal(old, now_ms=30_000, actor="ann") is None
    assert "old" in str(policy.refusal(old, now_ms=100_000, actor="ann"))
    assert "made by 'ann'" in str(policy.refusal(old, now_ms=30_000, actor="bob"))
    assert MaxAge(60) == MaxAge(60) != MaxAge(61) and Reuse().enabled and not (Reuse() & Never()).enabled
    assert MaxAge(60).get_params() == {"seconds": 60}


def test_load_pipeline_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a Python file"):
        load_pipeline(str(tmp_path / "missing.py:x"))
    broken = write(tmp_path / "broken.py", "raise RuntimeError('boom')\n")
    with pytest.raises(InvalidInput, match=r"Cannot load pipeline file .*boom"):
        load_pipeline(str(broken))
    empty = write(tmp_path / "empty.py", "x = 1\n")
    with pytest.raises(InvalidInput, match="defines 0 pipelines"):
        load_pipeline(str(empty))
    with pytest.raises(InvalidInput, match="defines no pipeline 'nope'"):
        load_pipeline(f"{empty}:nope")
