"""Artifact path normalisation and confinement."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mloop.artifacts import normalize_artifact_path
from mloop.artifacts.paths import blob_key, digest_from_key
from mloop.errors import InvalidInput

ROOT = "/srv/run"

_pieces = st.sampled_from(["a", "b", "model.pkl", ".", "..", "...", "", "/", "//", "\\", "C:", "c:", ":", " ", "\x00"])
_names = st.one_of(
    st.lists(_pieces, max_size=8).map("".join),
    st.lists(_pieces, max_size=8).map("/".join),
    st.text(max_size=40),
)


@given(_names)
def test_normalized_paths_are_confined(name: str) -> None:
    error: InvalidInput | None = None
    try:
        result = normalize_artifact_path(name)
    except InvalidInput as exc:
        error = exc
    if error is not None:
        assert repr(name) in str(error), "the message names the value"
        return
    segments = result.split("/")
    assert result
    assert not result.startswith("/")
    assert ".." not in segments
    assert "." not in segments
    assert "" not in segments
    assert "\\" not in result
    assert "\x00" not in result
    joined = posixpath.normpath(posixpath.join(ROOT, result))
    assert joined.startswith(ROOT + "/")
    assert posixpath.relpath(joined, ROOT) == result
    assert normalize_artifact_path(result) == result


@given(st.lists(st.text(alphabet="abcXYZ019_-. ", min_size=1, max_size=8), min_size=1, max_size=5))
def test_safe_names_keep_their_segments(segments: list[str]) -> None:
    segments = [s for s in segments if s.strip(".") and s.strip()]
    if not segments:
        return
    name = "/".join(segments)
    assert normalize_artifact_path(name) == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model.pkl", "model.pkl"),
        ("./model//weights.bin", "model/weights.bin"),
        ("a/./b/", "a/b"),
        ("plots/roc curve.png", "plots/roc curve.png"),
        ("...", "..."),
        ("a..b/c", "a..b/c"),
        ("données/modèle.bin", "données/modèle.bin"),
    ],
)
def test_normalize_accepts(name: str, expected: str) -> None:
    assert normalize_artifact_path(name) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (".", "names no file"),
        ("./", "names no file"),
        ("..", r"'\.\.'"),
        ("../secrets.txt", r"'\.\.'"),
        ("a/../../etc/passwd", r"'\.\.'"),
        ("a/..", r"'\.\.'"),
        ("/etc/passwd", "absolute"),
        ("//server/share/x", "absolute"),
        ("C:/Windows/x.dll", "drive letter"),
        ("c:model.pkl", "drive letter"),
        ("./A:", "drive letter"),
        ("a\\b", "backslash"),
        ("..\\..\\x", "backslash"),
        ("model\x00.pkl", "NUL"),
        ("model\n.pkl", "control character"),
        (" /", "blank segment"),
        ("a/ /b", "blank segment"),
    ],
)
def test_normalize_rejects(name: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as excinfo:
        normalize_artifact_path(name)
    assert repr(name) in str(excinfo.value)


def test_backslash_message_suggests_forward_slashes() -> None:
    with pytest.raises(InvalidInput, match="'a/b'"):
        normalize_artifact_path("a\\b")


def test_non_string_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="string"):
        normalize_artifact_path(b"model.pkl")  # type: ignore[arg-type]


def test_blob_key_layout_roundtrip() -> None:
    digest = "blake3:" + "0123456789abcdef" * 4
    key = blob_key(digest)
    assert key == "blobs/blake3/01/" + ("0123456789abcdef" * 4)[2:]
    assert digest_from_key(key) == digest
    assert digest_from_key("tmp/x.part") is None
    assert digest_from_key("blobs/blake3/01/xyz") is None
    assert digest_from_key("blobs/md5/01/" + "0" * 30) is None
    assert digest_from_key("blobs/blake3/0/" + "0" * 63) is None
