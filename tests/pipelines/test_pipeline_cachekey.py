"""Cache keys: pure and decodable; code (with transitive project modules), params, inputs and environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline_cases import write

from mloop.pipelines import Pipeline
from mloop.pipelines.cachekey import CacheKey, Fingerprinter, differences


def _keys(p: Pipeline, inputs: dict[str, str] | None = None) -> dict[str, CacheKey]:
    fp = Fingerprinter()
    return {n: fp.key(s.fn, n, {k: v.default for k, v in s.params.items()}, inputs or {}) for n, s in p.steps.items()}


def test_key_is_pure_and_decodable(load: Callable[..., Pipeline]) -> None:
    first, again = _keys(load()), _keys(load())
    assert {n: k.digest for n, k in first.items()} == {n: k.digest for n, k in again.items()}
    decoded = CacheKey.from_json(first["b"].to_json())
    assert decoded.digest == first["b"].digest and decoded == first["b"]
    assert set(first["b"].components) == {"code", "params", "inputs", "environment"}
    assert first["b"].digest.startswith("sha256:")


def test_code_covers_imported_project_modules_transitively(load: Callable[..., Pipeline]) -> None:
    keys = _keys(load())
    assert set(keys["b"].components["code"]["modules"]) == {"helpers", "deep"}  # deep: imported by helpers
    assert keys["a"].components["code"]["modules"] == {}  # mloop (an installed package) is environment
    assert "mloop" not in keys["b"].components["code"]["modules"]


def test_editing_a_deep_helper_changes_only_the_steps_that_use_it(project: Path, load: Callable[..., Pipeline]) -> None:
    before = _keys(load())
    write(project / "deep.py", "def scale(x):\n    return x + 1\n")
    after = _keys(load())
    changed = {n for n in before if before[n].digest != after[n].digest}
    assert changed == {"b"}
    assert differences(before["b"].components, after["b"].components) == [
        ("code", f"module 'deep' changed: {_short(before, 'deep')} -> {_short(after, 'deep')}")
    ]


def _short(keys: dict[str, CacheKey], module: str) -> str:
    return str(keys["b"].components["code"]["modules"][module])[:12]


def test_same_module_helper_functions_are_part_of_the_code(project: Path, load: Callable[..., Pipeline]) -> None:
    flow = (project / "flow.py").read_text()
    write(project / "flow.py", flow.replace("return len(a)", "return _n(a)") + "\ndef _n(x):\n    return len(x)\n")
    before = _keys(load())
    assert set(before["e"].components["code"]["helpers"]) == {"_n"}
    write(project / "flow.py", (project / "flow.py").read_text().replace("return len(x)", "return len(x) + 0"))
    after = _keys(load())
    assert {n for n in before if before[n].digest != after[n].digest} == {"e"}
    assert differences(before["e"].components, after["e"].components)[0][1].startswith("helper function '_n' changed")


def test_module_constants_and_imported_names_are_part_of_the_code(project: Path, load: Callable[..., Pipeline]) -> None:
    flow = (project / "flow.py").read_text().replace("import helpers\n", "import helpers\nfrom helpers import double\n")
    flow = flow.replace('return "d" * k', 'return "d" * k * WIDTH').replace("return len(a)", "return double(len(a))")
    write(project / "flow.py", flow + "\nWIDTH = 2\n")
    before = _keys(load())
    assert set(before["e"].components["code"]["modules"]) == {"helpers", "deep"}  # via `from helpers import`
    write(project / "flow.py", flow + "\nWIDTH = 3\n")
    after = _keys(load())
    assert {n for n in before if before[n].digest != after[n].digest} == {"d"}
    assert differences(before["d"].components, after["d"].components)[0][1].startswith("global value 'WIDTH'")


def test_differences_name_each_component() -> None:
    old = {
        "code": {"function": "f1", "helpers": {}, "modules": {"m": "x"}},
        "params": {"n": "1"},
        "inputs": {"a": "blake3:" + "0" * 64},
        "environment": {"python": "3.11.7", "packages": {"numpy": "1.26"}},
    }
    new = {
        "code": {"function": "f2", "helpers": {}, "modules": {}},
        "params": {"n": "2", "m": "0"},
        "inputs": {"a": "blake3:" + "1" * 64},
        "environment": {"python": "3.12.0", "packages": {"numpy": "2.0"}},
    }
    assert differences(old, new) == [
        ("code", "the step function's source changed"),
        ("code", "module 'm' removed (was x)"),
        ("params", "parameter 'm' added (0)"),
        ("params", "parameter 'n' changed: 1 -> 2"),
        ("inputs", "input 'a' changed: blake3:000000000000 -> blake3:111111111111"),
        ("environment", "Python 3.11.7 -> 3.12.0"),
        ("environment", "package 'numpy' changed: 1.26 -> 2.0"),
    ]
    assert differences(old, old) == []


def test_environment_records_the_packages_a_step_imports(tmp_path: Path) -> None:
    from mloop.pipelines import load_pipeline

    write(
        tmp_path / "np_flow.py",
        """
        import numpy as np
        from mloop.pipelines import Pipeline, step

        @step
        def arr(*, n: int = 2) -> np.ndarray:
            return np.arange(n)

        p = Pipeline("np", [arr])
    """,
    )
    p = load_pipeline(str(tmp_path / "np_flow.py"))
    key = _keys(p)["arr"]
    import numpy

    assert key.components["environment"]["packages"] == {"numpy": numpy.__version__}
    assert key.components["params"] == {"n": "2"}
