"""Staging CIFAR-100 classes: PNGs, .lst manifests, the S3 layout, and the one-line errors."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from click.testing import CliRunner
from moto import mock_aws
from PIL import Image

from harness.cli.stage_data import stage_data_command
from model.stage_data import (
    BucketNotFoundError,
    CorruptTarballError,
    DownloadError,
    MissingRegionError,
    UnknownClassError,
    download_tarball,
    stage,
    stage_local,
    upload_staged,
)
from tests.helpers import fake_aws_environment

BUCKET = "scones-test-bucket"
REGION = "us-east-1"

# 100 fine label names with the real indices of the two classes the project uses.
FINE_NAMES = [f"class{i:02d}" for i in range(100)]
FINE_NAMES[0], FINE_NAMES[8], FINE_NAMES[48] = "apple", "bicycle", "motorcycle"
APPLE, BICYCLE, MOTORCYCLE = 0, 8, 48

# (fine label, filename) per split, interleaved; apples must be skipped.
TRAIN_ROWS = [
    (BICYCLE, "bicycle_s_000001.png"),
    (APPLE, "apple_s_000001.png"),
    (MOTORCYCLE, "motorcycle_s_000001.png"),
    (BICYCLE, "bike_s_000002.png"),
    (APPLE, "apple_s_000002.png"),
    (MOTORCYCLE, "minibike_s_000003.png"),
    (BICYCLE, "cycle_s_000003.png"),
]
TEST_ROWS = [
    (MOTORCYCLE, "motorcycle_s_000100.png"),
    (APPLE, "apple_s_000100.png"),
    (BICYCLE, "bicycle_s_000100.png"),
]


def _pickle_split(rows: list[tuple[int, str]], seed: int) -> tuple[bytes, np.ndarray]:
    data = np.random.default_rng(seed).integers(0, 256, size=(len(rows), 3072), dtype=np.uint8)
    content = {
        b"batch_label": b"training batch 1 of 1",
        b"filenames": [name.encode() for _, name in rows],
        b"fine_labels": [label for label, _ in rows],
        b"coarse_labels": [0 for _ in rows],
        b"data": data,
    }
    # Protocol 2 and bytes keys, as the Python 2 originals.
    return pickle.dumps(content, protocol=2), data


def _write_tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


@pytest.fixture
def cifar(tmp_path: Path) -> dict[str, Any]:
    """A small CIFAR-100-format tarball and the pixel rows it holds."""
    train, train_data = _pickle_split(TRAIN_ROWS, seed=1)
    test, test_data = _pickle_split(TEST_ROWS, seed=2)
    meta = pickle.dumps(
        {b"fine_label_names": [name.encode() for name in FINE_NAMES], b"coarse_label_names": [b"x"]},
        protocol=2,
    )
    tarball = _write_tarball(tmp_path / "cifar.tar.gz", {"meta": meta, "train": train, "test": test})
    return {"tarball": tarball, "data": {"train": train_data, "test": test_data}, "meta": meta}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """Fake credentials and region, no AWS config files, moto S3 with one bucket."""
    fake_aws_environment(monkeypatch, tmp_path, REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield s3


def _expected_image(data: np.ndarray, row: int) -> np.ndarray:
    return data[row].reshape(3, 32, 32).transpose(1, 2, 0)


# --- Local staging -----------------------------------------------------------------------------------


def test_pngs_decode_to_the_pickled_pixels(cifar: dict[str, Any], tmp_path: Path) -> None:
    # Given the tarball, When staged with the default classes
    out = tmp_path / "out"
    staged = stage_local(cifar["tarball"], out)
    # Then every chosen row is a 32x32 RGB PNG holding exactly its channel-planar pixels
    for split, rows in (("train", TRAIN_ROWS), ("test", TEST_ROWS)):
        for row, (label, filename) in enumerate(rows):
            name = "bicycle" if label == BICYCLE else "motorcycle"
            path = out / split / name / filename
            if label == APPLE:
                assert not path.exists()
                continue
            with Image.open(path, formats=["PNG"]) as image:
                assert (image.format, image.mode, image.size) == ("PNG", "RGB", (32, 32))
                np.testing.assert_array_equal(np.asarray(image), _expected_image(cifar["data"][split], row))
    assert (staged.count("train"), staged.count("test")) == (5, 2)
    assert not list(out.rglob("apple*"))


def test_manifests_list_index_label_and_relative_path(cifar: dict[str, Any], tmp_path: Path) -> None:
    staged = stage_local(cifar["tarball"], tmp_path)
    assert staged.manifest("train").read_text() == (
        "0\t0\tbicycle/bicycle_s_000001.png\n"
        "1\t1\tmotorcycle/motorcycle_s_000001.png\n"
        "2\t0\tbicycle/bike_s_000002.png\n"
        "3\t1\tmotorcycle/minibike_s_000003.png\n"
        "4\t0\tbicycle/cycle_s_000003.png\n"
    )
    assert (tmp_path / "test.lst").read_text() == (
        "0\t1\tmotorcycle/motorcycle_s_000100.png\n1\t0\tbicycle/bicycle_s_000100.png\n"
    )


def test_other_class_lists_label_by_position(cifar: dict[str, Any], tmp_path: Path) -> None:
    # Given three classes in another order (the "more classes" stretch goal)
    staged = stage_local(cifar["tarball"], tmp_path, ["motorcycle", "apple", "bicycle"])
    # Then the label is the position in that list
    lines = staged.manifest("test").read_text().splitlines()
    assert lines == [
        "0\t0\tmotorcycle/motorcycle_s_000100.png",
        "1\t1\tapple/apple_s_000100.png",
        "2\t2\tbicycle/bicycle_s_000100.png",
    ]
    assert staged.classes == ["motorcycle", "apple", "bicycle"]


# --- Errors ----------------------------------------------------------------------------------------------


def test_unknown_class_names_the_class(cifar: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(UnknownClassError, match="skateboard"):
        stage_local(cifar["tarball"], tmp_path, ["bicycle", "skateboard"])


@pytest.mark.parametrize(
    "payload",
    [b"", b"not a tarball at all", b"\x1f\x8b\x08\x00" + b"\x00" * 40],
    ids=["empty", "text", "broken-gzip"],
)
def test_corrupt_tarball(payload: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bad.tar.gz"
    path.write_bytes(payload)
    with pytest.raises(CorruptTarballError):
        stage_local(path, tmp_path / "out")


def test_truncated_tarball(cifar: dict[str, Any], tmp_path: Path) -> None:
    data = cifar["tarball"].read_bytes()
    path = tmp_path / "truncated.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptTarballError):
        stage_local(path, tmp_path / "out")


def test_tarball_without_test_member(cifar: dict[str, Any], tmp_path: Path) -> None:
    path = _write_tarball(tmp_path / "partial.tar.gz", {"meta": cifar["meta"]})
    with pytest.raises(CorruptTarballError, match="no test, train member"):
        stage_local(path, tmp_path / "out")


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned",))


def test_pickle_naming_other_callables_is_refused(cifar: dict[str, Any], tmp_path: Path) -> None:
    # Given a tarball whose meta pickle would call os.system when loaded with pickle.load
    evil = pickle.dumps({b"fine_label_names": [_Exploit()]}, protocol=2)
    path = _write_tarball(tmp_path / "evil.tar.gz", {"meta": evil, "train": b"", "test": b""})
    # Then it is rejected as not a CIFAR pickle
    with pytest.raises(CorruptTarballError, match="system"):
        stage_local(path, tmp_path / "out")


def test_missing_tarball_path(tmp_path: Path) -> None:
    with pytest.raises(CorruptTarballError, match="not found"):
        stage_local(tmp_path / "nope.tar.gz", tmp_path / "out")


# --- Download (no network: a fake opener) -------------------------------------------------------------


class _FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes) -> None:
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_download_checks_md5_and_keeps_the_file(tmp_path: Path) -> None:
    import hashlib

    payload = b"tarball bytes" * 1000
    target = tmp_path / "c.tar.gz"
    md5 = hashlib.md5(payload).hexdigest()
    calls: list[str] = []

    def opener(url: str) -> _FakeResponse:
        calls.append(url)
        return _FakeResponse(payload)

    assert download_tarball(target, expected_md5=md5, opener=opener) == target
    assert target.read_bytes() == payload
    # A second call finds the intact file and does not download again
    download_tarball(target, expected_md5=md5, opener=opener)
    assert len(calls) == 1


def test_download_rejects_wrong_md5_and_network_errors(tmp_path: Path) -> None:
    target = tmp_path / "c.tar.gz"
    with pytest.raises(DownloadError, match="MD5"):
        download_tarball(target, opener=lambda url: _FakeResponse(b"something else"))
    assert not target.exists() and not list(tmp_path.iterdir())

    def offline(url: str) -> Any:
        raise urllib.error.URLError("no route to host")

    with pytest.raises(DownloadError, match="no route to host"):
        download_tarball(target, opener=offline)


# --- S3 upload (moto) ------------------------------------------------------------------------------------


def _keys(s3: Any) -> dict[str, int]:
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {item["Key"]: item["Size"] for item in listed}


def test_upload_layout_and_second_upload_skips(cifar: dict[str, Any], tmp_path: Path, aws_env: Any) -> None:
    s3 = aws_env
    staged = stage_local(cifar["tarball"], tmp_path / "out")
    # When uploaded
    first = upload_staged(staged, BUCKET, "scones", s3=s3)
    # Then the channels' layout is in S3
    assert sorted(_keys(s3)) == [
        "scones/test/bicycle/bicycle_s_000100.png",
        "scones/test/motorcycle/motorcycle_s_000100.png",
        "scones/test_lst/test.lst",
        "scones/train/bicycle/bicycle_s_000001.png",
        "scones/train/bicycle/bike_s_000002.png",
        "scones/train/bicycle/cycle_s_000003.png",
        "scones/train/motorcycle/minibike_s_000003.png",
        "scones/train/motorcycle/motorcycle_s_000001.png",
        "scones/train_lst/train.lst",
    ]
    assert len(first.uploaded) == 9 and first.skipped == []
    head = s3.head_object(Bucket=BUCKET, Key="scones/train/bicycle/bike_s_000002.png")
    assert head["ContentType"] == "image/png"
    body = s3.get_object(Bucket=BUCKET, Key="scones/train_lst/train.lst")["Body"].read()
    assert body == staged.manifest("train").read_bytes()

    # When uploaded again unchanged, Then nothing is sent
    second = upload_staged(staged, BUCKET, "scones", s3=s3)
    assert second.uploaded == [] and len(second.skipped) == 9

    # When one file changes (same size, other bytes), Then only it is sent again
    manifest = staged.manifest("test")
    manifest.write_text(manifest.read_text().replace("0\t1\t", "0\t0\t", 1))
    third = upload_staged(staged, BUCKET, "scones", s3=s3)
    assert third.uploaded == ["scones/test_lst/test.lst"]


def test_missing_bucket_is_named(cifar: dict[str, Any], tmp_path: Path, aws_env: Any) -> None:
    with pytest.raises(BucketNotFoundError, match="no-such-bucket"):
        stage(out_dir=tmp_path, tarball=cifar["tarball"], bucket="no-such-bucket")


def test_missing_region(
    cifar: dict[str, Any], tmp_path: Path, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(MissingRegionError, match="region"):
        stage(out_dir=tmp_path, tarball=cifar["tarball"], bucket=BUCKET)


# --- CLI ---------------------------------------------------------------------------------------------------


def test_cli_stages_and_uploads(cifar: dict[str, Any], tmp_path: Path, aws_env: Any) -> None:
    result = CliRunner().invoke(
        stage_data_command,
        ["--tarball", str(cifar["tarball"]), "--out", str(tmp_path / "o"), "--bucket", BUCKET],
    )
    assert result.exit_code == 0, result.output
    assert "classes: 0=bicycle, 1=motorcycle" in result.stdout
    assert "train: 5 images" in result.stdout
    assert "9 uploaded, 0 already there" in result.stdout
    assert len(_keys(aws_env)) == 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--classes", "bicycle,unicorn", "--no-upload"], "unicorn"),
        (["--bucket", "no-such-bucket"], "no-such-bucket"),
    ],
    ids=["unknown-class", "missing-bucket"],
)
def test_cli_errors_are_one_line(
    args: list[str], message: str, cifar: dict[str, Any], tmp_path: Path, aws_env: Any
) -> None:
    result = CliRunner().invoke(
        stage_data_command, ["--tarball", str(cifar["tarball"]), "--out", str(tmp_path / "o"), *args]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_cli_corrupt_tarball_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"garbage")
    result = CliRunner().invoke(
        stage_data_command, ["--tarball", str(bad), "--no-upload", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot read tarball")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_missing_region_is_one_line(
    cifar: dict[str, Any], tmp_path: Path, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    result = CliRunner().invoke(
        stage_data_command, ["--tarball", str(cifar["tarball"]), "--out", str(tmp_path), "--bucket", BUCKET]
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)"
    )
