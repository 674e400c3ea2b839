"""Find the `cifar-10-batches-py` folder, downloading it when allowed."""

from __future__ import annotations

import os
from pathlib import Path

from dlexp.data.download import OFFICIAL_MD5, OFFICIAL_URL, download_and_extract
from dlexp.errors import DataError

BATCHES_DIRNAME = "cifar-10-batches-py"
MARKER_FILE = "data_batch_1"


def default_data_root() -> Path:
    """`$DLEXP_DATA` when set, else `./data`."""
    return Path(os.environ.get("DLEXP_DATA") or "data")


def _candidates(root: Path) -> list[Path]:
    # `root` may be the batches folder itself (the course's --data_dir) or its parent.
    return [root, root / BATCHES_DIRNAME]


def find_batches_dir(
    root: str | os.PathLike | None = None,
    download: bool = False,
    url: str = OFFICIAL_URL,
    md5: str | None = OFFICIAL_MD5,
) -> Path:
    """Return the folder holding `data_batch_1`, downloading the archive into `root` if allowed."""
    root = Path(root) if root is not None else default_data_root()
    root = root.expanduser().absolute()
    for candidate in _candidates(root):
        if (candidate / MARKER_FILE).is_file():
            return candidate
    looked = " and ".join(str(c) for c in _candidates(root))
    how = (
        "run ../shared/data/cifar10/fetch.sh and point data.root (or $DLEXP_DATA) at the folder "
        "it prints, or set data.download=true"
    )
    if not download:
        raise DataError(f"CIFAR-10 not found: looked for {MARKER_FILE} in {looked}; {how}")
    target_parent = root.parent if root.name == BATCHES_DIRNAME else root
    try:
        download_and_extract(url, target_parent, md5=md5)
    except DataError as err:
        raise DataError(f"CIFAR-10 not found in {looked}, download failed: {err}; {how}") from None
    batches = target_parent / BATCHES_DIRNAME
    if not (batches / MARKER_FILE).is_file():
        missing = f"{BATCHES_DIRNAME}/{MARKER_FILE}"
        raise DataError(f"the archive downloaded from {url} did not contain {missing}")
    return batches
