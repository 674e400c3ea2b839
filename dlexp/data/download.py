"""Download the CIFAR-10 archive with a progress bar, verify its md5, extract it safely."""

from __future__ import annotations

import hashlib
import http.client
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from dlexp.errors import DataError

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
CHUNK_BYTES = 1 << 20


def _why(err: Exception) -> str:
    """A short reason for a failed download."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    return str(getattr(err, "reason", None) or err)  # URLError wraps the socket error


def _fetch(url: str, dest: Path, timeout_s: float) -> str:
    """Stream `url` into `dest`; return the md5 hex digest of what was written."""
    digest, received, total = hashlib.md5(), 0, None
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, dest.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="CIFAR-10", leave=False) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    # URLError is an OSError; HTTPException covers a broken response (IncompleteRead...).
    except (OSError, ValueError, http.client.HTTPException) as err:
        raise DataError(f"could not download {url}: {_why(err)}") from None
    # read(n) returns b"" when the server hangs up early, without an error of its own.
    if total is not None and received != total:
        raise DataError(f"could not download {url}: got {received} of {total} bytes")
    return digest.hexdigest()


def _safe_extract(archive: Path, target: Path) -> None:
    """Extract a tar.gz, refusing members that would land outside `target` or are links."""
    target = target.resolve()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                dest = (target / member.name).resolve()
                if not dest.is_relative_to(target) or member.issym() or member.islnk():
                    name = member.name
                    raise DataError(f"refusing unsafe archive member {name!r} in {archive.name}")
                if not (member.isfile() or member.isdir()):
                    raise DataError(f"refusing special archive member {member.name!r}")
            # The "data" filter is a second line of defence where this Python has it.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(target, members=members, **extra)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f"could not extract {archive.name}: {err}") from None


def download_and_extract(
    url: str,
    target: Path,
    md5: str | None = OFFICIAL_MD5,
    timeout_s: float = 60.0,
    keep: str = "cifar-10-batches-py",
) -> None:
    """Download the archive at `url`, verify `md5` when given, and move its `keep` folder into
    `target`; nothing else from the archive can replace what is already there."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".download-") as tmp:
        archive = Path(tmp) / "cifar-10-python.tar.gz"
        got = _fetch(url, archive, timeout_s)
        if md5 is not None and got != md5:
            raise DataError(f"md5 mismatch for {url}: expected {md5}, got {got}")
        staging = Path(tmp) / "extract"
        staging.mkdir()
        _safe_extract(archive, staging)
        extracted, dest = staging / keep, target / keep
        if not extracted.is_dir():
            raise DataError(f"the archive from {url} has no {keep}/ folder")
        if dest.exists():
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        shutil.move(str(extracted), dest)
