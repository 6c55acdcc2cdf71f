"""model.tar.gz served as the SageMaker PyTorch container would, in a clean interpreter: the local answers.

The archive is built and unpacked; a Python with nothing but the standard library, the packages
code/requirements.txt installs (as the container does at start) and the container's inference toolkit
loads it through the toolkit's own handler service. Its answers must be the local endpoint's for the
same bytes and content type, and a bad request must get the container's 4xx.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from harness.local.endpoint import EndpointErrorResponse, LocalEndpoint
from harness.local.workflow import load_model
from harness.samples import Sample, demo_samples
from model.serving.package import build_model_package
from tests.helpers import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROBE = Path(__file__).resolve().parent / "container_serve.py"
# The target container: pytorch-inference:2.6.0-cpu-py312-ubuntu22.04-sagemaker (docs/SAGEMAKER.md).
CONTAINER_PYTHON = (3, 12)
# What that image already holds and the probe needs: the toolkit (which vendors sagemaker_inference)
# and the two packages its handler service imports. --no-deps: numpy comes from requirements.txt.
CONTAINER_TOOLKIT = ("sagemaker-pytorch-inference==2.0.25", "six==1.17.0", "scipy==1.16.3")
PIP_TIMEOUT_SECONDS = 900


def _python_version(executable: str) -> tuple[int, int] | None:
    try:
        done = subprocess.run(
            [executable, "-I", "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    major, minor = done.stdout.split()
    return int(major), int(minor)


def container_python() -> str:
    """A Python of the container's minor version if this machine has one (pyenv), else this one."""
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    wanted = "python{}.{}".format(*CONTAINER_PYTHON)
    candidates = [
        os.environ.get("SCONES_CONTAINER_PYTHON"),
        shutil.which(wanted),
        *sorted(
            glob.glob(f"{pyenv_root}/versions/{CONTAINER_PYTHON[0]}.{CONTAINER_PYTHON[1]}.*/bin/{wanted}")
        ),
    ]
    for candidate in filter(None, candidates):
        if _python_version(candidate) == CONTAINER_PYTHON:
            return candidate
    warnings.warn(f"no {wanted} here: the container check runs on {sys.version.split()[0]}", stacklevel=2)
    return sys.executable


def _pip_install(python: str, target: Path, *args: str) -> None:
    environment = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    done = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--target", str(target), *args],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_SECONDS,
        env=environment,
    )
    assert done.returncode == 0, f"pip install {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def container_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """model.tar.gz unpacked, and the container's packages installed for it (cached by their pins)."""
    built = build_model_package(tmp_path_factory.mktemp("package") / "model.tar.gz")
    model_dir = tmp_path_factory.mktemp("opt-ml") / "model"
    with tarfile.open(built.path) as archive:
        archive.extractall(model_dir, filter="data")
    python = container_python()
    version = _python_version(python)
    requirements = (model_dir / "code" / "requirements.txt").read_text(encoding="utf-8")
    key = hashlib.sha256(json.dumps([python, version, requirements, CONTAINER_TOOLKIT]).encode()).hexdigest()
    # Under .pytest_cache, so that later runs reuse it; a run without the cache plugin installs anew.
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    cache_dir = cache.mkdir("container-env") if cache is not None else tmp_path_factory.getbasetemp()
    env_dir = cache_dir / key[:16]
    if not (env_dir / "complete").exists():
        # Built beside its final place and renamed, so an interrupted install is never taken as done.
        building = cache_dir / f"{key[:16]}.building"
        shutil.rmtree(building, ignore_errors=True)
        # What the container runs at start: pip install -r /opt/ml/model/code/requirements.txt.
        _pip_install(python, building / "site", "-r", str(model_dir / "code" / "requirements.txt"))
        _pip_install(python, building / "toolkit", "--no-deps", *CONTAINER_TOOLKIT)
        (building / "complete").write_text(requirements, encoding="utf-8")
        shutil.rmtree(env_dir, ignore_errors=True)
        building.rename(env_dir)
    return {
        "python": python,
        "model_dir": model_dir,
        "site_dirs": [env_dir / "site", env_dir / "toolkit"],
        "package": built,
    }


def _jpeg(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        image.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@dataclass(frozen=True)
class Probe:
    name: str
    content_type: str
    data: bytes
    accept: str | None = None  # only the container sees it: the local endpoint is always sent JSON's


def _probes(samples: list[Sample]) -> list[Probe]:
    """Each demo sample with the content type the workflow sends, then requests a client gets wrong."""
    probes = [
        Probe(sample.name, "image/jpeg" if sample.name.endswith(".jpg") else "image/png", sample.data)
        for sample in samples
    ]
    png = samples[0].data
    return [
        *probes,
        Probe("sniffed", "application/x-image", png),
        Probe("jpeg", "image/jpeg", _jpeg(png)),
        Probe("accept-any", "image/png", png, accept="*/*"),
        Probe("jpeg-as-png", "image/png", _jpeg(png)),
        Probe("empty", "image/png", b""),
        Probe("csv", "text/csv", b"1,2,3\n"),
        Probe("gif-type", "image/gif", png),
        Probe("accept-csv", "image/png", png, accept="text/csv"),
    ]


@pytest.fixture(scope="module")
def served(container_env: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The probes answered in the clean interpreter, and the same probes sent to the local endpoint."""
    probes = _probes(demo_samples())
    wire = [
        {
            "name": probe.name,
            "content_type": probe.content_type,
            "accept": probe.accept,
            "body": base64.b64encode(probe.data).decode(),
        }
        for probe in probes
    ]
    requests_path = tmp_path_factory.mktemp("requests") / "requests.json"
    requests_path.write_text(json.dumps(wire), encoding="utf-8")
    done = subprocess.run(
        [
            container_env["python"],
            "-I",  # no PYTHON* variables, no user site, no script directory on sys.path
            "-S",  # no site-packages: only the standard library and what main() adds
            str(PROBE),
            str(container_env["model_dir"]),
            str(requests_path),
            *map(str, container_env["site_dirs"]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path_factory.mktemp("cwd"),
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")},
    )
    assert done.returncode == 0, done.stderr
    container = json.loads(done.stdout.strip().splitlines()[-1])

    endpoint = LocalEndpoint("local", load_model())
    local: dict[str, bytes | EndpointErrorResponse] = {}
    for probe in probes:
        if probe.accept is not None:
            continue
        try:
            local[probe.name] = endpoint.invoke(probe.data, probe.content_type)
        except EndpointErrorResponse as exc:
            local[probe.name] = exc
    return {"container": container, "answers": {a["name"]: a for a in container["answers"]}, "local": local}


def test_the_clean_interpreter_serves_only_what_the_archive_and_requirements_bring(
    served: dict[str, Any], container_env: dict[str, Any]
) -> None:
    container = served["container"]
    code_dir = str(container_env["model_dir"] / "code")
    site_dir = str(container_env["site_dirs"][0])
    modules = container["modules"]
    # The handler and the project's modules come from code/, the third-party ones from requirements.txt
    assert modules["inference"] == f"{code_dir}/inference.py"
    assert modules["model.inference"] == f"{code_dir}/model/inference.py"
    assert modules["scones_common.images"] == f"{code_dir}/scones_common/images.py"
    assert modules["numpy"].startswith(site_dir) and modules["onnxruntime"].startswith(site_dir)
    repository = str(PROJECT_ROOT)
    assert not any("site-packages" in entry or repository in entry for entry in container["sys_path"][1:-2])
    requirements = (container_env["model_dir"] / "code" / "requirements.txt").read_text().split()
    assert sorted(f"{name}=={v}" for name, v in container["versions"].items()) == requirements
    # The handler's errors are the toolkit's own, so the toolkit answers with their status
    assert container["toolkit_error"] is True


def test_every_sample_gets_the_local_endpoints_answer(served: dict[str, Any]) -> None:
    first = demo_samples()[0].name
    names = [sample.name for sample in demo_samples() if not sample.name.startswith("not-an-image")]
    for name in [*names, "sniffed", "jpeg", "accept-any"]:
        answer = served["answers"][name]
        assert (answer["status"], answer["content_type"]) == (200, "application/json"), answer
        # accept-any is the first sample's bytes with Accept: */*, which the local endpoint is not sent
        local = served["local"][first if name == "accept-any" else name]
        assert isinstance(local, bytes), f"{name}: {local}"
        assert json.loads(answer["body"]) == pytest.approx(json.loads(local), abs=1e-6), name


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("not-an-image.png", 400),
        ("jpeg-as-png", 400),
        ("empty", 400),
        ("csv", 415),
        ("gif-type", 415),
        ("accept-csv", 406),
    ],
)
def test_a_bad_request_gets_the_containers_client_error(
    served: dict[str, Any], name: str, status: int
) -> None:
    answer = served["answers"][name]
    assert answer["status"] == status, answer
    local = served["local"].get(name)
    if local is not None:  # None for accept-csv: the local endpoint is always sent Accept: application/json
        # The local endpoint reports the same status and message, as the runtime's ModelError (424) would
        assert isinstance(local, EndpointErrorResponse)
        assert (local.code, local.status, local.original_status) == ("ModelError", 424, status)
        expected = f'Received client error ({status}) from primary with message "{answer["body"]}"'
        assert local.message == expected


def test_the_archive_is_the_same_bytes_when_built_again(
    container_env: dict[str, Any], tmp_path: Path
) -> None:
    again = build_model_package(tmp_path / "model.tar.gz")
    assert again.sha256 == container_env["package"].sha256
    assert again.path.read_bytes() == container_env["package"].path.read_bytes()
