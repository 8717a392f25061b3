"""The collector on an object store: S3 through fsspec (moto's server on loopback), written and read back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from mloop.deployments.collected import read_collected
from mloop.serving.collector import Collector


@pytest.fixture
def s3_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``s3://<bucket>/<prefix>`` on a real S3-compatible server, configured the way a workspace is (env)."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="collected-test")
    import fsspec

    fsspec.filesystem("s3").clear_instance_cache()
    yield f"s3://collected-test/{uuid.uuid4().hex}"
    server.stop()


def test_collect_to_s3_and_read_back(s3_root: str) -> None:
    c = Collector(s3_root, endpoint="ep", flush_interval=0.1)
    assert c.files.fs is not None  # the object-store path: one put per part
    c.record("r1", "model:m/1", np.array([[1.0, 2.0], [3.0, 4.0]]), {"predictions": np.array([1, 0])}, 0.002,
             columns=("a", "b"))  # fmt: skip
    c.flush()
    c.record("r2", "model:m/1", np.array([[5.0, 6.0]]), {"predictions": np.array([1])}, 0.001, columns=("a", "b"))
    c.record_feedback([{"request_id": "r1", "ground_truth": [1, 1]}])
    c.close()
    assert c.stats()["rows"] == 3 and c.stats()["files"] == 3 and c.stats()["write_errors"] == 0
    context: Any = SimpleNamespace(artifacts=SimpleNamespace(uri=s3_root))
    df = read_collected(context, "ep", since="1h", with_feedback=True).to_pandas()
    assert list(df["request_id"]) == ["r1", "r1", "r2"] and list(df["input.b"]) == [2.0, 4.0, 6.0]
    assert df["ground_truth"].tolist()[:2] == [1, 1] and df["ground_truth"].isna().tolist()[2]
