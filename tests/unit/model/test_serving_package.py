"""The model.tar.gz packager: layout, pins, file names from metadata, and the same bytes every time."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from model.inference import DEFAULT_MODEL_DIR
from model.serving.package import (
    FIXED_MTIME,
    ModelPackageError,
    build_model_package,
    main,
    model_files,
    project_pins,
    requirements,
)
from tests.helpers import PROJECT_ROOT

ROOT = PROJECT_ROOT


def _metadata(model_dir: Path) -> dict[str, Any]:
    metadata: dict[str, Any] = json.loads((model_dir / "metadata.json").read_text())
    return metadata


def _write_metadata(model_dir: Path, metadata: dict[str, Any]) -> None:
    (model_dir / "metadata.json").write_text(json.dumps(metadata))


@pytest.fixture
def single_model_dir(tmp_path: Path) -> Path:
    """The committed classifier alone, as the coming artifact format has it (no cascade, no teacher)."""
    directory = tmp_path / "single"
    directory.mkdir()
    shutil.copy(DEFAULT_MODEL_DIR / "classifier.onnx", directory)
    metadata = _metadata(DEFAULT_MODEL_DIR)
    metadata.pop("cascade", None)
    _write_metadata(directory, metadata)
    return directory


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tarfile.TarFile:
    package = build_model_package(tmp_path_factory.mktemp("package") / "model.tar.gz")
    return tarfile.open(package.path)


def test_the_archive_has_the_model_files_at_its_root_and_the_code_under_code(built: tarfile.TarFile) -> None:
    files = {member.name for member in built.getmembers() if member.isfile()}
    assert {"metadata.json", "classifier.onnx", "code/inference.py", "code/requirements.txt"} <= files
    # The handler and what it imports, at the import paths the code uses
    assert {
        "code/model/__init__.py",
        "code/model/inference.py",
        "code/model/serving/__init__.py",
        "code/model/serving/handler.py",
        "code/scones_common/__init__.py",
        "code/scones_common/exceptions.py",
        "code/scones_common/images.py",
    } <= files
    # Nothing the handler does not import: no training code, no harness, no tests
    assert not any(name.startswith(("code/harness", "code/tests", "code/layers")) for name in files)
    assert "code/model/train.py" not in files
    assert not any(name.startswith("code/model/sagemaker_jobs") for name in files)


def test_every_file_the_metadata_names_is_shipped(built: tarfile.TarFile) -> None:
    metadata = _metadata(DEFAULT_MODEL_DIR)
    names = {member.name for member in built.getmembers()}
    assert metadata.get("model_file", "classifier.onnx") in names
    if "cascade" in metadata:
        assert metadata["cascade"]["teacher_file"] in names


def test_a_model_without_a_cascade_ships_only_its_classifier(single_model_dir: Path, tmp_path: Path) -> None:
    package = build_model_package(tmp_path / "model.tar.gz", single_model_dir)
    model_members = [name for name in package.members if not name.startswith("code/")]
    assert model_members == ["classifier.onnx", "metadata.json"]


def test_the_entry_point_reexports_the_handlers_four_functions(built: tarfile.TarFile) -> None:
    source = built.extractfile("code/inference.py").read().decode()  # type: ignore[union-attr]
    assert "from model.serving.handler import input_fn, model_fn, output_fn, predict_fn" in source


def test_requirements_pin_what_the_code_imports_at_pyprojects_versions(built: tarfile.TarFile) -> None:
    pins = project_pins(ROOT / "pyproject.toml")
    shipped = built.extractfile("code/requirements.txt").read().decode().split()  # type: ignore[union-attr]
    assert shipped == [f"{name}=={pins[name]}" for name in ("numpy", "onnxruntime", "pillow")]
    assert shipped == requirements()


def test_members_are_sorted_with_fixed_times_and_owners(built: tarfile.TarFile) -> None:
    members = built.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(FIXED_MTIME, 0, 0, "", "")}
    assert {m.mode for m in members if m.isfile()} == {0o644}


def test_the_same_inputs_give_the_same_sha256(tmp_path: Path) -> None:
    first = build_model_package(tmp_path / "a" / "model.tar.gz")
    second = build_model_package(tmp_path / "b" / "model.tar.gz")
    assert first.sha256 == second.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()


def test_a_file_the_metadata_names_but_the_directory_lacks_is_refused(
    single_model_dir: Path, tmp_path: Path
) -> None:
    metadata = _metadata(single_model_dir)
    metadata["cascade"] = {"teacher_file": "teacher.onnx"}
    _write_metadata(single_model_dir, metadata)
    with pytest.raises(ModelPackageError, match=r"teacher\.onnx"):
        build_model_package(tmp_path / "model.tar.gz", single_model_dir)


def test_a_file_that_does_not_match_its_recorded_sha256_is_refused(single_model_dir: Path) -> None:
    metadata = _metadata(single_model_dir)
    metadata["model_sha256"] = "0" * 64
    _write_metadata(single_model_dir, metadata)
    with pytest.raises(ModelPackageError, match="sha256"):
        model_files(single_model_dir)


@pytest.mark.parametrize("name", ["../classifier.onnx", "/etc/passwd", "sub/classifier.onnx"])
def test_a_file_name_outside_the_model_directory_is_refused(single_model_dir: Path, name: str) -> None:
    metadata = _metadata(single_model_dir)
    metadata["model_file"] = name
    _write_metadata(single_model_dir, metadata)
    with pytest.raises(ModelPackageError, match="not a file of the model directory"):
        model_files(single_model_dir)


def test_the_command_prints_the_members_and_the_sha256(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out" / "model.tar.gz"
    assert main(["--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "code/inference.py" in printed
    assert f"sha256 {hashlib.sha256(output.read_bytes()).hexdigest()}" in printed


def test_the_command_names_the_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--output", str(tmp_path / "m.tar.gz"), "--model-dir", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.startswith("Error: no metadata.json in ")
