"""Download the CIFAR-10 archive with a progress bar, verify its md5, extract it safely."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
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
TIMEOUT_S = 30.0  # per connect and per read, so a blackholed network fails fast
REASON_CHARS = 200  # a reason longer than this is cut, to keep the error on one short line


class DownloadError(DataError):
    """`downloading <url> failed: <reason>`; `reason` is short and names no url."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"downloading {url} failed: {reason}")
        self.url, self.reason = url, reason


def _why(err: Exception, timeout_s: float) -> str:
    """A short one-line reason for a failed transfer."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    reason = getattr(err, "reason", None) or err  # URLError wraps the socket error
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(reason, OSError) and reason.strerror:  # drop the "[Errno 111]" prefix
        return reason.strerror
    text = str(reason).strip().splitlines()
    return text[0][:REASON_CHARS] if text else type(reason).__name__


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
    # URLError is an OSError; HTTPException covers a broken response (IncompleteRead...);
    # ValueError a malformed url.
    except (OSError, ValueError, http.client.HTTPException) as err:
        raise DataError(_why(err, timeout_s)) from None
    # read(n) returns b"" when the server hangs up early, without an error of its own.
    if total is not None and received != total:
        raise DataError(f"the server sent {received} of {total} bytes")
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
                    raise DataError(f"refusing unsafe archive member {member.name!r}")
                if not (member.isfile() or member.isdir()):
                    raise DataError(f"refusing special archive member {member.name!r}")
            # The "data" filter is a second line of defence where this Python has it.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(target, members=members, **extra)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f"could not extract the archive: {str(err)[:REASON_CHARS]}") from None


def _swap_in(extracted: Path, dest: Path, trash: Path) -> None:
    """Replace `dest` by `extracted` with renames; a copy that a parallel run put first wins."""
    if dest.exists():
        dest.rename(trash)  # an incomplete earlier copy; the temporary folder deletes it
    try:
        extracted.rename(dest)
    except OSError:
        if not dest.is_dir():  # not merely another process being quicker
            raise


def download_and_extract(
    url: str,
    target: Path,
    md5: str | None = OFFICIAL_MD5,
    timeout_s: float = TIMEOUT_S,
    keep: str = "cifar-10-batches-py",
) -> None:
    """Download `url`, check `md5` when given, and move the archive's `keep` folder into `target`.

    Nothing else from the archive can replace what is already there. Every failure (network,
    checksum, archive, disk) is a DownloadError.
    """
    target = Path(target)
    created = [p for p in (target, *target.parents) if not p.exists()]  # deepest first
    try:
        _download_into(url, target, md5, timeout_s, keep)
    except BaseException:
        for folder in created:  # a failed download leaves no empty folders behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _download_into(url: str, target: Path, md5: str | None, timeout_s: float, keep: str) -> None:
    """download_and_extract without the clean-up of the folders it made."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        # The temporary folder sits in `target`, so that the final move is a rename.
        with tempfile.TemporaryDirectory(dir=target, prefix=".download-") as tmp:
            archive = Path(tmp) / "cifar-10-python.tar.gz"
            got = _fetch(url, archive, timeout_s)
            if md5 is not None and got != md5:
                raise DataError(f"md5 mismatch: expected {md5}, got {got}")
            staging = Path(tmp) / "extract"
            staging.mkdir()
            _safe_extract(archive, staging)
            if not (staging / keep).is_dir():
                raise DataError(f"the archive has no {keep}/ folder")
            _swap_in(staging / keep, target / keep, Path(tmp) / "replaced")
    except DataError as err:
        raise DownloadError(url, str(err)) from None
    except OSError as err:  # the target folder: unwritable, disk full...
        raise DownloadError(url, f"could not write in {target}: {err.strerror or err}") from None
