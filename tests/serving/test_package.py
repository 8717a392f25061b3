"""``mloop package``: the build context (reproducible, pinned, non-root, health-checked), the bundle (verified
before serving) and Kubernetes manifests validated against the official JSON schemas (kubernetes-validate)."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mloop.cli.app import build_app
from mloop.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from mloop.registry.versions import set_version_tags
from mloop.serving.bundle import MANIFEST_NAME, bundle_app, load_bundle
from mloop.serving.kubernetes import DEFAULT_CPU, DEFAULT_MEMORY, to_yaml
from mloop.serving.package import package_model, requirements
from mloop.tracking.client import Client

K8S_VERSION = "1.30.0"  # a Kubernetes release whose schemas kubernetes-validate ships
ROW = {"age": 61, "income": 55.0, "plan": "pro"}


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def _sources() -> str:
    """A digest of what goes into mloop's wheel (other people may edit the tree while the tests run)."""
    root = Path(__file__).resolve().parents[2]
    files = [root / "pyproject.toml", root / "README.md", *sorted((root / "src" / "mloop").rglob("*"))]
    h = hashlib.sha256()
    for p in files:
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """mloop's wheel, built once from the source tree as package_model builds it when given none, and the
    digest of the sources it was built from (``""`` if they changed during the build)."""
    from mloop.serving.package import _mloop_wheel

    before = _sources()
    built = _mloop_wheel(tmp_path_factory.mktemp("wheel"), None)
    with zipfile.ZipFile(built) as z:
        names = z.namelist()
    assert "mloop/serving/bundle.py" in names and not any("__pycache__" in n for n in names)
    return built, before if _sources() == before else ""


@pytest.fixture
def packaged(client: Client, churn: Any, tmp_path: Path, wheel: tuple[Path, str]) -> Path:
    package_model(client, "model:churn", docker=tmp_path / "ctx", kubernetes=tmp_path / "k8s", mloop_wheel=wheel[0])
    return tmp_path


def test_the_build_context_is_reproducible_byte_for_byte(
    client: Client, packaged: Path, wheel: tuple[Path, str]
) -> None:
    again = package_model(client, "model:churn/1", docker=packaged / "ctx2", kubernetes=packaged / "k8s2",
                          mloop_wheel=wheel[0])  # fmt: skip
    first, second = _tree(packaged / "ctx"), _tree(packaged / "ctx2")
    assert first == second
    assert {"Dockerfile", "requirements.txt", "bundle/" + MANIFEST_NAME, ".dockerignore"} <= set(first)
    assert any(re.fullmatch(r"wheels/mloop-[^/]+\.whl", name) for name in first)
    assert _tree(packaged / "k8s") == _tree(packaged / "k8s2")
    assert sorted(Path(f).name for f in again.files if "k8s2" in f) == ["deployment.yaml", "hpa.yaml", "service.yaml"]


def test_dockerfile_pins_the_base_runs_as_non_root_and_checks_health(client: Client, packaged: Path) -> None:
    import platform

    text = (packaged / "ctx" / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == f"FROM python:{platform.python_version()}-slim"  # the lock's Python, exact tag
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0] not in ("0", "root")
    assert lines.index(users[-1]) > max(i for i, line in enumerate(lines) if line.startswith(("RUN", "COPY")))
    health = next(line for line in text.splitlines() if line.strip().startswith("CMD"))
    assert "/health/ready" in health and any(line.startswith("HEALTHCHECK ") for line in lines)
    assert "EXPOSE 8080" in lines
    entry = json.loads(next(line for line in lines if line.startswith("ENTRYPOINT ")).split(" ", 1)[1])
    assert entry[:4] == ["mloop", "serve", "--bundle", "/opt/mloop/bundle"]
    wheel = next(Path(p).name for p in (packaged / "ctx" / "wheels").iterdir())
    assert f"RUN pip install --no-cache-dir --no-deps /opt/mloop/wheels/{wheel}" in lines


def test_requirements_pin_every_locked_package_and_the_servers_dependencies(client: Client, packaged: Path) -> None:
    version = client.store.get_model_version("churn", 1)
    lines = (packaged / "ctx" / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if not line.startswith("#"))
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", n) and re.fullmatch(r"[0-9A-Za-z.+!]+", v) for n, v in pins.items())
    lock = version.environment["packages"]
    assert lock and all(pins[name] == pin for name, pin in lock.items())
    for needed in ("starlette", "uvicorn", "orjson", "sqlalchemy", "anyio", "h11", "click"):  # server + transitive
        assert needed in pins, needed
    assert "mloop" not in pins and "pytest" not in pins  # mloop ships as the wheel; test tools stay out
    assert list(pins) == sorted(pins)


def test_requirements_keep_the_locked_version_over_the_installed_one() -> None:
    pins = requirements({"python": "3.11.7", "packages": {"numpy": "1.0.0", "scikit_learn": "0.1"}})
    assert pins["numpy"] == "1.0.0" and pins["scikit-learn"] == "0.1"


def test_requirement_markers_are_evaluated_for_the_locks_python() -> None:
    """anyio needs exceptiongroup below Python 3.11 only: a 3.9 lock needs it (refused, naming it, where it is
    not installed), a 3.11 lock does not."""
    from importlib import metadata

    assert "exceptiongroup" not in requirements({"python": "3.11.7", "packages": {}})
    try:
        metadata.version("exceptiongroup")
    except metadata.PackageNotFoundError:
        with pytest.raises(InvalidInput, match=r"exceptiongroup is needed under Python 3\.9\.0 .*Python 3\.9 "):
            requirements({"python": "3.9.0", "packages": {}})
    else:
        assert "exceptiongroup" in requirements({"python": "3.9.0", "packages": {}})


def test_manifest_lists_every_file_with_its_digest(client: Client, packaged: Path) -> None:
    version = client.store.get_model_version("churn", 1)
    bundle = packaged / "ctx" / "bundle"
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    model = manifest["model"]
    assert (model["name"], model["version"], model["flavor"]) == ("churn", 1, "sklearn")
    assert model["signature"] == dict(version.signature or {})
    assert model["environment"]["packages"] == dict(version.environment["packages"])
    assert [f["path"] for f in manifest["files"]] == sorted(f.path for f in version.files)
    for f in manifest["files"]:
        data = (bundle / "model" / f["path"]).read_bytes()
        assert f["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest() and f["size"] == len(data)
        assert f["digest"] == next(v.digest for v in version.files if v.path == f["path"])


def test_the_bundle_is_served_by_the_scoring_app(churn: Any, packaged: Path, served: Any) -> None:
    model, _ = churn
    app = served(bundle_app(packaged / "ctx" / "bundle"))
    try:
        assert app.get("/health/ready").json() == {"status": "ready", "model": "model:churn/1"}
        r = app.post("/predict", json=[ROW])
        assert r.status_code == 200
        assert r.json() == {"predictions": model.predict(pd.DataFrame([ROW])).tolist(), "model": "model:churn/1"}
    finally:
        app.close()


def test_a_tampered_bundle_file_is_refused_naming_it(packaged: Path) -> None:
    bundle = packaged / "ctx" / "bundle"
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    victim = bundle / "model" / manifest["files"][0]["path"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=re.escape(repr(manifest["files"][0]["path"]))):
        load_bundle(bundle)


def test_an_unlisted_or_missing_bundle_file_is_refused(packaged: Path) -> None:
    bundle = packaged / "ctx" / "bundle"
    (bundle / "model" / "extra.py").write_text("print('planted')\n")
    with pytest.raises(IntegrityError, match=r"'extra\.py'.*not in its manifest"):
        load_bundle(bundle)
    (bundle / "model" / "extra.py").unlink()
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    (bundle / "model" / manifest["files"][-1]["path"]).unlink()
    with pytest.raises(IntegrityError, match="found missing"):
        load_bundle(bundle)
    with pytest.raises(InvalidInput, match=r"no mloop-bundle\.json"):
        load_bundle(packaged)


def _validate(path: Path) -> list[dict[str, Any]]:
    from kubernetes_validate import utils

    docs = list(yaml.safe_load_all(path.read_text()))
    for doc in docs:
        utils.validate(doc, K8S_VERSION, strict=True)  # raises ValidationError on any schema violation
    return docs


def test_kubernetes_manifests_are_valid_against_the_official_schemas(packaged: Path) -> None:
    (deployment,) = _validate(packaged / "k8s" / "deployment.yaml")
    (service,) = _validate(packaged / "k8s" / "service.yaml")
    (hpa,) = _validate(packaged / "k8s" / "hpa.yaml")
    assert (deployment["kind"], service["kind"], hpa["kind"]) == ("Deployment", "Service", "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["resources"]["requests"] == {"cpu": DEFAULT_CPU, "memory": DEFAULT_MEMORY}
    assert container["image"] == "mloop-churn:1" and container["securityContext"]["runAsNonRoot"] is True
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in service["spec"]["selector"].items())
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)


def test_the_validator_rejects_a_broken_manifest(packaged: Path) -> None:
    """The schema check above can fail: a misspelt field in a strict schema is an error."""
    from kubernetes_validate import utils
    from kubernetes_validate.utils import ValidationError

    (deployment,) = yaml.safe_load_all((packaged / "k8s" / "deployment.yaml").read_text())
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(ValidationError):
        utils.validate(deployment, K8S_VERSION, strict=True)
    deployment = yaml.safe_load((packaged / "k8s" / "deployment.yaml").read_text())
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(ValidationError):
        utils.validate(deployment, K8S_VERSION, strict=True)


def test_resources_come_from_flags_else_the_profile_tags_else_defaults(
    client: Client, churn: Any, tmp_path: Path
) -> None:
    set_version_tags(client, "model:churn/1", {"mloop.profile.cpu_request": "250m",
                                               "mloop.profile.memory_request": "300Mi"})  # fmt: skip
    result = package_model(client, "model:churn/1", kubernetes=tmp_path / "a", replicas_min=1, replicas_max=4,
                           target_cpu=60, image="registry.example.com/churn:1")  # fmt: skip
    assert result.resources is not None and result.resources.to_dict() == {
        "cpu": "250m", "memory": "300Mi", "cpu_limit": "500m", "memory_limit": "300Mi", "cpu_source": "profile",
        "memory_source": "profile"}  # fmt: skip
    (deployment,) = _validate(tmp_path / "a" / "deployment.yaml")
    (hpa,) = _validate(tmp_path / "a" / "hpa.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "300Mi"},
                                      "limits": {"cpu": "500m", "memory": "300Mi"}}  # fmt: skip
    assert container["image"] == "registry.example.com/churn:1"
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 4
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    result = package_model(client, "model:churn/1", kubernetes=tmp_path / "b", cpu="1.5")
    assert result.resources is not None
    assert (result.resources.cpu, result.resources.cpu_source, result.resources.memory) == ("1.5", "flag", "300Mi")
    assert result.resources.cpu_limit == "3000m"
    set_version_tags(client, "model:churn/1", {"mloop.profile.memory_request": "lots"})
    with pytest.raises(InvalidInput, match=r"mloop\.profile\.memory_request of model:churn/1, 'lots'.*--memory"):
        package_model(client, "model:churn/1", kubernetes=tmp_path / "c")
    assert not (tmp_path / "c").exists()  # checked before anything is written


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"replicas_min": 0}, InvalidInput, "--replicas-min must be at least 1, got 0"),
        ({"replicas_min": 3, "replicas_max": 2}, InvalidInput, r"--replicas-max \(2\) is below --replicas-min \(3\)"),
        ({"target_cpu": 0}, InvalidInput, "--target-cpu .* got 0"),
        ({"cpu": "half"}, InvalidInput, "--cpu 'half' is not a Kubernetes cpu quantity; use e.g. 500m"),
        ({"memory": "1GB"}, InvalidInput, "--memory '1GB' is not a Kubernetes memory quantity; use e.g. 256Mi"),
        ({"image": "my image"}, InvalidInput, "--image 'my image' is not an image name"),
    ],
)
def test_bad_options_are_named(
    client: Client, churn: Any, tmp_path: Path, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        package_model(client, "model:churn/1", kubernetes=tmp_path / "k8s", **options)
    assert not (tmp_path / "k8s").exists()


def test_unknown_model_nothing_to_do_and_non_empty_folders(client: Client, churn: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="nope"):
        package_model(client, "model:nope/1", kubernetes=tmp_path / "k8s")
    with pytest.raises(InvalidInput, match="Nothing to write"):
        package_model(client, "model:churn/1")
    with pytest.raises(InvalidInput, match="both"):
        package_model(client, "model:churn/1", docker=tmp_path / "same", kubernetes=tmp_path / "same")
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "keep.txt").write_text("mine")
    with pytest.raises(AlreadyExists, match=r"--kubernetes '.*k8s' is not empty \(keep.txt\).*--force"):
        package_model(client, "model:churn/1", kubernetes=tmp_path / "k8s")
    package_model(client, "model:churn/1", kubernetes=tmp_path / "k8s", force=True)
    assert sorted(p.name for p in (tmp_path / "k8s").iterdir()) == ["deployment.yaml", "hpa.yaml", "keep.txt",
                                                                   "service.yaml"]  # fmt: skip
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="is a file"):
        package_model(client, "model:churn/1", kubernetes=tmp_path / "file")


def test_yaml_writer_round_trips_through_a_yaml_parser() -> None:
    doc = {"a": {"b": [1, "2", True, "yes", "", {"c": "x: y", "d": []}], "e": {}}, "app.kubernetes.io/name": "n",
           "f": ["null", "0x10", "#not a comment", "multi\nline", "ü"]}  # fmt: skip
    assert yaml.safe_load(to_yaml(doc)) == doc


def test_cli_package_json_lists_the_written_files(client: Client, churn: Any, tmp_path: Path) -> None:
    folder = client.workspace.settings.workspace
    assert folder is not None
    runner = CliRunner()
    args = ["--uri", client.settings.store_uri, "package", "model:churn", "--kubernetes", str(tmp_path / "k8s"),
            "--replicas-min", "1", "--replicas-max", "3", "--cpu", "250m", "--memory", "256Mi", "--json"]  # fmt: skip
    result = runner.invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["model"] == "model:churn/1" and out["resources"]["cpu"] == "250m"
    assert sorted(Path(f).name for f in out["files"]) == ["deployment.yaml", "hpa.yaml", "service.yaml"]
    assert all(Path(f).is_file() for f in out["files"])
    result = runner.invoke(build_app(), ["--uri", client.settings.store_uri, "package", "model:churn",
                                         "--kubernetes", str(tmp_path / "k8s")])  # fmt: skip
    assert result.exit_code != 0 and "--force" in result.output


def test_force_replaces_what_package_wrote_and_keeps_other_files(
    client: Client, packaged: Path, wheel: tuple[Path, str], tmp_path: Path
) -> None:
    ctx = packaged / "ctx"
    (ctx / "bundle" / "model" / "stale.bin").write_bytes(b"old")
    (ctx / "notes.txt").write_text("mine")
    with pytest.raises(AlreadyExists, match="--docker"):
        package_model(client, "model:churn/1", docker=ctx, mloop_wheel=wheel[0])
    package_model(client, "model:churn/1", docker=ctx, mloop_wheel=wheel[0], force=True)
    assert not (ctx / "bundle" / "model" / "stale.bin").exists() and (ctx / "notes.txt").read_text() == "mine"
    load_bundle(ctx / "bundle")  # complete and verified again
    (tmp_path / "mloop.whl").write_bytes(b"not a wheel")
    with pytest.raises(InvalidInput, match=r"--mloop-wheel '.*mloop\.whl' is not an mloop wheel"):
        package_model(client, "model:churn/1", docker=tmp_path / "ctx3", mloop_wheel=tmp_path / "mloop.whl")


def test_the_bundle_state_matches_the_registry_state(client: Client, churn: Any, packaged: Path, served: Any) -> None:
    """bundle_app (through ServerState.install) sets up the server as ServerState.load does: same attributes."""
    from mloop.serving import create_app

    from_registry = create_app("model:churn/1", client)
    from_registry.state.load()
    from_bundle = bundle_app(packaged / "ctx" / "bundle")
    a, b = vars(from_registry.state), vars(from_bundle.state)
    assert sorted(a) == sorted(b)
    for name in a:
        if name in ("context", "ref"):
            continue
        assert type(a[name]) is type(b[name]), name
        if isinstance(a[name], (str, int, bool, list)) or a[name] is None:
            assert a[name] == b[name], name
    assert a["schema"].columns == b["schema"].columns


def test_cli_serve_takes_a_model_ref_or_a_bundle_not_both(client: Client, tmp_path: Path) -> None:
    runner = CliRunner()
    for args in (["serve"], ["serve", "model:churn/1", "--bundle", str(tmp_path)]):
        result = runner.invoke(build_app(), args)
        assert result.exit_code == 2 and "give a MODEL_REF or --bundle DIR" in result.output, result.output
    result = runner.invoke(build_app(), ["serve", "--bundle", str(tmp_path)])
    assert result.exit_code != 0 and "no mloop-bundle.json" in result.output, result.output


def test_the_mloop_wheel_build_is_reproducible(wheel: tuple[Path, str], tmp_path: Path) -> None:
    from mloop.serving.package import _mloop_wheel

    first, sources = wheel
    again = _mloop_wheel(tmp_path, None)
    if not sources or _sources() != sources:
        pytest.skip("mloop's source tree changed while the wheels were built (someone is editing it)")
    assert again.name == first.name and again.read_bytes() == first.read_bytes()


def test_requirements_pin_what_the_shipped_wheel_requires(packaged: Path) -> None:
    from packaging.requirements import Requirement

    from mloop.serving.package import _canonical, _wheel_requires

    wheel = next((packaged / "ctx" / "wheels").glob("mloop-*.whl"))
    pins = dict(line.split("==") for line in (packaged / "ctx" / "requirements.txt").read_text().splitlines()
                if not line.startswith("#"))  # fmt: skip
    needed = [Requirement(t) for t in _wheel_requires(wheel)]
    runtime = [r for r in needed if r.marker is None or r.marker.evaluate({"extra": ""})]
    assert runtime and all(_canonical(r.name) in pins for r in runtime)
    assert all(r.specifier.contains(pins[_canonical(r.name)], prereleases=True) for r in runtime)


@pytest.mark.parametrize(("name", "expected"), [("churn", "churn"), ("Churn_Model.v2", "churn-model-v2"),
                                                ("__x__", "x"), ("___", "model"), ("a" * 80, "a" * 50)])  # fmt: skip
def test_resource_names_are_dns_labels(name: str, expected: str) -> None:
    from mloop.serving.kubernetes import slug

    assert slug(name) == expected


@pytest.mark.slow
def test_serve_bundle_with_two_workers(churn: Any, packaged: Path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    model, _ = churn
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mloop"), "serve", "--bundle", str(packaged / "ctx" /
                             "bundle"), "--workers", "2", "--port", str(port)], cwd=packaged, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        answers = {httpx.post(f"http://127.0.0.1:{port}/predict", json=[ROW]).json()["model"] for _ in range(8)}
        assert answers == {"model:churn/1"}
        r = httpx.post(f"http://127.0.0.1:{port}/predict", json=[ROW])
        assert r.json()["predictions"] == model.predict(pd.DataFrame([ROW])).tolist()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM) and "Finished server process" in err, err


def test_a_score_py_bundle_starts_twice_and_a_planted_helper_is_refused(
    client: Client, tmp_path: Path, wheel: tuple[Path, str], served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing score.py must not leave bytecode in the bundle (the next start would find an unlisted file)."""
    import sys

    import mloop

    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as without PYTHONDONTWRITEBYTECODE (set here)

    script = tmp_path / "scorer"
    script.mkdir()
    (script / "helper.py").write_text("def double(rows):\n    return [2 * sum(r) for r in rows]\n")
    (script / "score.py").write_text("from helper import double\n\ndef init():\n    pass\n\n"
                                     "def run(data):\n    return double(data.values.tolist())\n")  # fmt: skip
    mloop.register_model(script, "doubler")
    package_model(client, "model:doubler", docker=tmp_path / "ctx", mloop_wheel=wheel[0])
    bundle = tmp_path / "ctx" / "bundle"
    for _ in range(2):
        app = served(bundle_app(bundle))
        try:
            r = app.post("/predict", json=[{"a": 1, "b": 2}, {"a": 3, "b": 4}])
            assert r.status_code == 200 and r.json()["predictions"] == [6, 14], r.text
        finally:
            app.close()
    assert sorted(p.name for p in (bundle / "model").rglob("*")) == ["helper.py", "mloop-model.json", "score.py"]
    (bundle / "model" / "__pycache__").mkdir()
    (bundle / "model" / "__pycache__" / "helper.cpython-311.pyc").write_bytes(b"planted")
    with pytest.raises(IntegrityError, match=r"'__pycache__/helper\.cpython-311\.pyc'.*not in its manifest"):
        load_bundle(bundle)
