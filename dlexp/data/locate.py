"""Find the `cifar-10-batches-py` folder, downloading it unless told not to."""

from __future__ import annotations

import os
from pathlib import Path

from dlexp.data.download import (
    OFFICIAL_MD5,
    OFFICIAL_URL,
    TIMEOUT_S,
    DownloadError,
    download_and_extract,
)
from dlexp.errors import DataError

BATCHES_DIRNAME = "cifar-10-batches-py"
MARKER_FILE = "data_batch_1"
HOLDS_IT = f"set data.root or $DLEXP_DATA to a folder that holds {BATCHES_DIRNAME}"


def default_data_root() -> Path:
    """`$DLEXP_DATA` when set, else `~/.cache/dlexp/data`."""
    return Path(os.environ.get("DLEXP_DATA") or "~/.cache/dlexp/data").expanduser()


def _candidates(root: Path) -> list[Path]:
    # `root` may be the batches folder itself (the course's --data_dir) or its parent.
    return [root, root / BATCHES_DIRNAME]


def find_batches_dir(
    root: str | os.PathLike | None = None,
    download: bool = True,
    url: str = OFFICIAL_URL,
    md5: str | None = OFFICIAL_MD5,
    timeout_s: float = TIMEOUT_S,
) -> Path:
    """The folder holding `data_batch_1`, downloaded into `root` if missing and `download` is on.

    `root=None` is `default_data_root()`. Every failure is a one-line DataError that says where
    it looked and how to supply the data.
    """
    root = Path(root).expanduser() if root is not None else default_data_root()
    root = root.absolute()
    for candidate in _candidates(root):
        if (candidate / MARKER_FILE).is_file():
            return candidate
    looked = " and ".join(str(c) for c in _candidates(root))
    if not download:
        raise DataError(
            f"CIFAR-10 not found: looked for {MARKER_FILE} in {looked}; put {BATCHES_DIRNAME} "
            f"there, {HOLDS_IT}, or allow data.download=true"
        )
    target_parent = root.parent if root.name == BATCHES_DIRNAME else root
    how = (
        f"copy {BATCHES_DIRNAME} there, {HOLDS_IT}, or point data.url at a mirror with its data.md5"
    )
    try:
        download_and_extract(url, target_parent, md5=md5, timeout_s=timeout_s)
    except DownloadError as err:
        raise DataError(f"CIFAR-10 not found in {looked}, and {err}; {how}") from None
    batches = target_parent / BATCHES_DIRNAME
    if not (batches / MARKER_FILE).is_file():
        lacks = f"the archive from {url} lacks {BATCHES_DIRNAME}/{MARKER_FILE}"
        raise DataError(f"CIFAR-10 not found in {looked}, and {lacks}; {how}")
    return batches
