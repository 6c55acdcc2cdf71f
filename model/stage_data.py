"""Stage CIFAR-100 classes as PNG images and `.lst` manifests for SageMaker training, locally and in S3."""

from __future__ import annotations

import codecs
import hashlib
import io
import pickle
import re
import tarfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from PIL import Image
from tqdm import tqdm

from harness.aws import (
    AwsSetupError,
    MissingCredentialsError,
    MissingRegionError,
    aws_session,
    client_error_text,
)
from harness.errors import ToolError

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
# MD5 of the official tarball, as published with torchvision's CIFAR100 dataset class.
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
DEFAULT_CLASSES: tuple[str, ...] = ("bicycle", "motorcycle")
DEFAULT_PREFIX = "scones"
SPLITS: tuple[str, ...] = ("train", "test")

IMAGE_SIDE = 32
IMAGE_BYTES = 3 * IMAGE_SIDE * IMAGE_SIDE

# A file or class name becomes a path on disk and an S3 key: keep it to one harmless path segment.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


# --- Errors -------------------------------------------------------------------------------------


class StagingError(ToolError):
    """Staging the data set failed; the message is one line meant for the person at the terminal."""


class DownloadError(StagingError):
    """The CIFAR-100 tarball could not be downloaded, or what arrived is not the official file."""


class CorruptTarballError(StagingError):
    """The tarball cannot be read, or does not hold CIFAR-100's meta/train/test pickles."""


class UnknownClassError(StagingError):
    """A requested class name is not one of the tarball's fine label names."""


class UploadError(StagingError):
    """S3 refused an upload for a reason other than a missing bucket or credentials."""


class BucketNotFoundError(AwsSetupError):
    """The S3 bucket does not exist (or this account may not see it)."""


# --- AWS session helpers (shared with model.sagemaker_jobs) ------------------------------------------


def require_bucket(s3: Any, bucket: str) -> None:
    """Fail fast, with the bucket's name, before any work that needs it."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise BucketNotFoundError(f"S3 bucket {bucket!r} does not exist") from exc
        if code in ("403", "AccessDenied"):
            raise BucketNotFoundError(
                f"S3 bucket {bucket!r} is not accessible with these credentials"
            ) from exc
        raise UploadError(f"cannot check S3 bucket {bucket!r}: {client_error_text(exc)}") from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise MissingCredentialsError(f"no usable AWS credentials: {exc}") from exc
    except NoRegionError as exc:
        raise MissingRegionError("no AWS region: pass --region or set AWS_REGION") from exc


# --- Reading the tarball ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CifarSplit:
    """One pickle of the tarball reduced to what staging needs."""

    images: np.ndarray  # (N, 32, 32, 3) uint8, RGB
    fine_labels: list[int]
    filenames: list[str]


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only lists, dicts, bytes, numbers and numpy arrays.

    A tarball given with --tarball is untrusted input, and plain pickle.load runs whatever callable
    the pickle names; CIFAR's pickles need nothing beyond numpy's array reconstruction.
    """

    # The function numpy pickles arrays with, found without importing a private numpy module.
    _reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python 3 writes bytes into protocol-2 pickles as codecs.encode(text, "latin1").
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"the pickle refers to {module}.{name}, which CIFAR never does"
            ) from None


def _unpickle(data: bytes, member: str) -> dict[str, Any]:
    try:
        # encoding="bytes": the CIFAR pickles were written by Python 2, whose str are bytes.
        loaded = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means the member is not a CIFAR pickle
        raise CorruptTarballError(
            f"{member!r} is not a readable CIFAR pickle: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(loaded, dict):
        raise CorruptTarballError(f"{member!r} holds a {type(loaded).__name__}, not a dict")
    return {_text(key): value for key, value in loaded.items()}


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _read_members(tarball: Path) -> dict[str, bytes]:
    """The bytes of `meta`, `train` and `test`, found by base name wherever the tarball keeps them."""
    wanted = {"meta", *SPLITS}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(tarball, mode="r:*") as archive:
            for member in archive:
                name = Path(member.name).name
                if name in wanted and member.isfile() and name not in found:
                    handle = archive.extractfile(member)
                    if handle is not None:
                        found[name] = handle.read()
    except FileNotFoundError as exc:
        raise CorruptTarballError(f"tarball not found: {tarball}") from exc
    except IsADirectoryError as exc:
        raise CorruptTarballError(f"tarball path is a directory: {tarball}") from exc
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise CorruptTarballError(
            f"cannot read tarball {tarball}: {type(exc).__name__}: {first_line}"
        ) from exc
    missing = sorted(wanted - found.keys())
    if missing:
        raise CorruptTarballError(
            f"tarball {tarball} has no {', '.join(missing)} member (not CIFAR-100 python?)"
        )
    return found


def _fine_label_names(meta: dict[str, Any]) -> list[str]:
    names = meta.get("fine_label_names")
    if not isinstance(names, list) or not names:
        raise CorruptTarballError("meta has no fine_label_names list")
    return [_text(name) for name in names]


def _split(raw: dict[str, Any], member: str) -> CifarSplit:
    try:
        data = np.asarray(raw["data"], dtype=np.uint8)
        labels = [int(label) for label in raw["fine_labels"]]
        filenames = [_text(name) for name in raw["filenames"]]
    except KeyError as exc:
        raise CorruptTarballError(f"{member!r} has no {exc.args[0]!r} key") from exc
    except (TypeError, ValueError) as exc:
        raise CorruptTarballError(f"{member!r} has malformed data: {exc}") from exc
    if data.ndim != 2 or data.shape[1] != IMAGE_BYTES or not (len(data) == len(labels) == len(filenames)):
        raise CorruptTarballError(
            f"{member!r}: data is {data.shape}, with {len(labels)} labels and {len(filenames)} filenames; "
            f"expected N x {IMAGE_BYTES} and N of each"
        )
    # Rows are channel-planar: 1024 red, 1024 green, then 1024 blue values, each row-major 32x32.
    images = data.reshape(-1, 3, IMAGE_SIDE, IMAGE_SIDE).transpose(0, 2, 3, 1)
    return CifarSplit(images=np.ascontiguousarray(images), fine_labels=labels, filenames=filenames)


def parse_classes(text: str | Sequence[str]) -> list[str]:
    """'bicycle, motorcycle' or a list -> ['bicycle', 'motorcycle'], without blanks or repeats."""
    items = text.split(",") if isinstance(text, str) else list(text)
    classes: list[str] = []
    for item in (part.strip() for part in items):
        if item and item not in classes:
            classes.append(item)
    if not classes:
        raise UnknownClassError("no class names given")
    return classes


# --- Staging on disk ------------------------------------------------------------------------------------


@dataclass
class StagedData:
    """What `stage_local` wrote: the class list (label = index) and each split's relative image paths."""

    out_dir: Path
    classes: list[str]
    images: dict[str, list[str]] = field(default_factory=dict)  # split -> ["bicycle/x.png", ...]

    def manifest(self, split: str) -> Path:
        return self.out_dir / f"{split}.lst"

    def count(self, split: str) -> int:
        return len(self.images.get(split, []))


def _png_name(filename: str) -> str:
    base = filename if filename.lower().endswith(".png") else f"{filename}.png"
    if not _SAFE_NAME.match(base) or ".." in base:
        raise CorruptTarballError(f"unsafe file name in the tarball: {filename!r}")
    return base


def stage_local(
    tarball: Path,
    out_dir: Path,
    classes: Sequence[str] = DEFAULT_CLASSES,
    *,
    show_progress: bool | None = None,
) -> StagedData:
    """Write OUT/{train,test}/<class>/<file>.png and OUT/{train,test}.lst for the named fine classes.

    A manifest line is `index<TAB>label<TAB>path`, the label being the class's position in `classes`
    and the path relative to the split's folder, which is what the built-in image-classification
    algorithm expects of its `train_lst`/`validation_lst` channels.
    """
    classes = parse_classes(classes)
    for name in classes:
        if not _SAFE_NAME.match(name):
            raise UnknownClassError(f"class name {name!r} cannot be a folder name")
    members = _read_members(tarball)
    label_names = _fine_label_names(_unpickle(members["meta"], "meta"))
    unknown = [name for name in classes if name not in label_names]
    if unknown:
        raise UnknownClassError(
            f"not CIFAR-100 fine label name(s): {', '.join(unknown)} (e.g. {', '.join(label_names[:5])}, ...)"
        )
    label_of = {label_names.index(name): position for position, name in enumerate(classes)}

    staged = StagedData(out_dir=out_dir, classes=classes)
    for split in SPLITS:
        data = _split(_unpickle(members[split], split), split)
        chosen = [i for i, fine in enumerate(data.fine_labels) if fine in label_of]
        relative_paths: list[str] = []
        lines: list[str] = []
        for index, row in enumerate(
            tqdm(chosen, desc=f"{split} PNGs", unit="img", disable=_no_bar(show_progress))
        ):
            label = label_of[data.fine_labels[row]]
            relative = f"{classes[label]}/{_png_name(data.filenames[row])}"
            target = out_dir / split / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(data.images[row]).save(target, format="PNG")
            relative_paths.append(relative)
            lines.append(f"{index}\t{label}\t{relative}\n")
        staged.images[split] = relative_paths
        staged.manifest(split).write_text("".join(lines), encoding="utf-8")
    return staged


def _no_bar(show_progress: bool | None) -> bool | None:
    # tqdm: disable=None hides the bar when stderr is not a terminal (CI logs, tests).
    return None if show_progress is None else not show_progress


# --- Download --------------------------------------------------------------------------------------------


def download_tarball(
    destination: Path,
    *,
    url: str = CIFAR100_URL,
    expected_md5: str | None = CIFAR100_MD5,
    show_progress: bool | None = None,
    opener: Callable[[str], Any] = urllib.request.urlopen,
) -> Path:
    """Download `url` to `destination` (kept if already there and intact), checking the MD5."""
    if destination.is_file() and (expected_md5 is None or _md5(destination) == expected_md5):
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with opener(url) as response, partial.open("wb") as sink:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc="CIFAR-100", disable=_no_bar(show_progress)
            ) as bar:
                while chunk := response.read(1 << 20):
                    sink.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"cannot download {url}: {exc}") from exc
    if expected_md5 is not None and digest.hexdigest() != expected_md5:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"downloaded {url} but its MD5 is {digest.hexdigest()}, expected {expected_md5}")
    partial.replace(destination)
    return destination


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- Upload ------------------------------------------------------------------------------------------------


def channel_prefixes(prefix: str) -> dict[str, str]:
    """S3 key prefix of each upload folder: PREFIX/{train,test,train_lst,test_lst}/."""
    root = prefix.strip("/")
    base = f"{root}/" if root else ""
    return {name: f"{base}{name}/" for name in ("train", "test", "train_lst", "test_lst")}


@dataclass
class UploadReport:
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _planned_uploads(staged: StagedData, prefix: str) -> Iterator[tuple[Path, str, str]]:
    """(local file, S3 key, content type) for every image and manifest."""
    prefixes = channel_prefixes(prefix)
    for split in SPLITS:
        for relative in staged.images.get(split, []):
            yield staged.out_dir / split / relative, prefixes[split] + relative, "image/png"
        yield staged.manifest(split), f"{prefixes[f'{split}_lst']}{split}.lst", "text/plain"


def _existing_objects(s3: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    """key -> (size, ETag without quotes) for everything under the prefix."""
    found: dict[str, tuple[int, str]] = {}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix.strip("/")):
        for item in page.get("Contents", []):
            found[item["Key"]] = (int(item["Size"]), str(item.get("ETag", "")).strip('"'))
    return found


def _same_object(path: Path, existing: tuple[int, str] | None) -> bool:
    if existing is None:
        return False
    size, etag = existing
    if path.stat().st_size != size:
        return False
    # A single-part upload's ETag is the MD5 of the bytes; a multipart one ("...-N") is not, and
    # these files are far below the multipart threshold, so size alone decides there.
    return "-" in etag or _md5(path) == etag


def upload_staged(
    staged: StagedData,
    bucket: str,
    prefix: str = DEFAULT_PREFIX,
    *,
    s3: Any,
    show_progress: bool | None = None,
    workers: int = 8,
) -> UploadReport:
    """Upload images and manifests to s3://BUCKET/PREFIX/{train,test,train_lst,test_lst}/, skipping
    objects that are already there with the same key, size and ETag."""
    require_bucket(s3, bucket)
    try:
        existing = _existing_objects(s3, bucket, prefix)
    except ClientError as exc:
        raise UploadError(f"cannot list s3://{bucket}/{prefix}: {client_error_text(exc)}") from exc
    report = UploadReport()
    pending: list[tuple[Path, str, str]] = []
    for path, key, content_type in _planned_uploads(staged, prefix):
        if _same_object(path, existing.get(key)):
            report.skipped.append(key)
        else:
            pending.append((path, key, content_type))

    def put(item: tuple[Path, str, str]) -> str:
        path, key, content_type = item
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=content_type)
        return key

    try:
        with (
            ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
            tqdm(total=len(pending), desc="S3 upload", unit="obj", disable=_no_bar(show_progress)) as bar,
        ):
            for key in pool.map(put, pending):
                report.uploaded.append(key)
                bar.update(1)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            raise BucketNotFoundError(f"S3 bucket {bucket!r} does not exist") from exc
        raise UploadError(f"upload to s3://{bucket}/ failed: {client_error_text(exc)}") from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise MissingCredentialsError(f"no usable AWS credentials: {exc}") from exc
    except BotoCoreError as exc:
        raise UploadError(f"upload to s3://{bucket}/ failed: {exc}") from exc
    return report


def stage(
    *,
    out_dir: Path,
    tarball: Path | None = None,
    classes: Iterable[str] = DEFAULT_CLASSES,
    bucket: str | None = None,
    prefix: str = DEFAULT_PREFIX,
    region: str | None = None,
    upload: bool = True,
    show_progress: bool | None = None,
) -> tuple[StagedData, UploadReport | None]:
    """The `stage-data` command: get the tarball, write images and manifests, upload them."""
    s3 = None
    if upload:
        if not bucket:
            raise BucketNotFoundError("no S3 bucket given: pass --bucket (or --no-upload)")
        # Check region, credentials and bucket before a download of 169 MB.
        s3 = aws_session(region).client("s3")
        require_bucket(s3, bucket)
    source = tarball or download_tarball(out_dir / "cifar-100-python.tar.gz", show_progress=show_progress)
    staged = stage_local(source, out_dir, list(classes), show_progress=show_progress)
    report = (
        upload_staged(staged, bucket, prefix, s3=s3, show_progress=show_progress) if s3 and bucket else None
    )
    return staged, report
