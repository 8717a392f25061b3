"""Fixtures for the artifact store: a real local folder and a real S3 endpoint (moto's server on loopback).

The ``case`` fixture is parametrised over both backends so the shared contract runs on each.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from artifact_cases import BUCKET, StoreCase, local_store_case, s3_store_case


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible endpoint on 127.0.0.1 with an empty bucket ``mloop-test``."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(params=["local", "s3"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    """The same store contract over a local folder and over S3."""
    if request.param == "local":
        return local_store_case(tmp_path / "store")
    return s3_store_case(request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def local_case(tmp_path: Path) -> StoreCase:
    return local_store_case(tmp_path / "store")
