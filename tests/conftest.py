"""Shared fixtures: a tiny CIFAR-10 folder in the real pickle format, and Hydra compose."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from dlexp.config import register_config
from dlexp.search import register_plugins
from tests.postgres_server import create_database, missing_postgres, postgres_server

# dlexp's sweepers, registered once before any test module is collected, as the commands do
# before Hydra runs (an editable install is missed by Hydra's own plugin scan).
register_plugins()

TINY_PER_BATCH = 60  # images per data_batch_i (5 of them) -> 300 training images
TINY_TEST = 50


def write_batch(path: Path, data: np.ndarray, labels, str_keys: bool = False) -> None:
    """Write one CIFAR-10 batch pickle; bytes keys as the official files, or str keys."""
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    batch = {
        key("batch_label"): "tiny",
        key("labels"): list(map(int, labels)),
        key("data"): data,
        key("filenames"): [f"img_{i}.png" for i in range(len(labels))],
    }
    with path.open("wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_tiny_cifar10(root: Path, seed: int = 0, str_keys: bool = False) -> Path:
    """A `cifar-10-batches-py` folder under `root` with learnable (class-dependent) images."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    prototypes = rng.integers(0, 256, size=(10, 3072))

    def images(labels):
        noise = rng.integers(-40, 41, size=(len(labels), 3072))
        return np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)

    for i in range(1, 6):
        labels = rng.permutation(np.arange(TINY_PER_BATCH) % 10)
        write_batch(folder / f"data_batch_{i}", images(labels), labels, str_keys)
    labels = np.arange(TINY_TEST) % 10
    write_batch(folder / "test_batch", images(labels), labels, str_keys)
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": [b"airplane"] * 10}, f)
    return folder


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Keep the array cache of every test out of the user's home."""
    os.environ["DLEXP_CACHE"] = str(tmp_path_factory.mktemp("dlexp-cache"))


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@pytest.fixture(autouse=True)
def loopback_only_downloads(monkeypatch):
    """Tests never reach the internet: urlopen refuses any host but a local test server.

    dlexp downloads CIFAR-10 by default; a test that forgets a data root fails fast this way.
    """
    real_urlopen = urllib.request.urlopen

    def urlopen(url, *args, **kwargs):
        full_url = url.full_url if isinstance(url, urllib.request.Request) else str(url)
        host = urllib.parse.urlsplit(full_url).hostname
        if host not in LOOPBACK_HOSTS:
            raise urllib.error.URLError(f"tests may not reach {host}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory) -> Path:
    """The parent folder of a tiny `cifar-10-batches-py` (bytes-key pickles)."""
    root = tmp_path_factory.mktemp("tiny-cifar")
    write_tiny_cifar10(root)
    return root


@pytest.fixture(scope="module")
def raw(tiny_cifar):
    """The tiny dataset as read from disk, before any split or preprocessing."""
    from dlexp.data import load_raw_cifar10

    return load_raw_cifar10(tiny_cifar / "cifar-10-batches-py")


def assert_raw_equal(a, b) -> None:
    for name in ("train_x", "train_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def assert_one_clean_line(err: BaseException) -> None:
    """One line, and no chained pickle/numpy traceback behind it."""
    assert "\n" not in str(err)
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


def loaded_by_importing(module: str, watched: tuple[str, ...]) -> list[str]:
    """Which of `watched` a fresh interpreter has loaded once it imported `module`."""
    code = (
        f"import json, sys, {module}; "
        f"print(json.dumps([m for m in {watched!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def compose_train(overrides: list[str]):
    """Compose conf/train.yaml through Hydra's compose API, registered as dlexp.compose does."""
    register_config()  # before Hydra builds its search path: the user's conf/ folder joins it
    with initialize_config_module("dlexp.conf", version_base="1.3"):
        return compose("train", overrides=overrides)


@pytest.fixture
def tiny_cfg(tiny_cifar, tmp_path):
    """compose_train with the tiny data, a small validation split and a temp output_dir."""

    def make(*overrides: str):
        base = [
            f"data.root={tiny_cifar}",
            "data.validation_size=50",
            "batch_size=20",
            "eval_batch_size=64",
            "progress=false",
            f"output_dir={tmp_path / 'run'}",
        ]
        return compose_train([*base, *overrides])

    return make


def real_data_root() -> Path | None:
    """The real CIFAR-10 folder from $DLEXP_DATA or fetch.sh's cache, if present."""
    for candidate in (os.environ.get("DLEXP_DATA"), Path.home() / ".cache/cifar10-shared"):
        if candidate and (Path(candidate) / "cifar-10-batches-py" / "data_batch_1").is_file():
            return Path(candidate)
        if candidate and (Path(candidate) / "data_batch_1").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def real_cifar() -> Path:
    root = real_data_root()
    if root is None:
        pytest.skip(
            "real CIFAR-10 not found: run ../shared/data/cifar10/fetch.sh or set DLEXP_DATA"
        )
    return root


@pytest.fixture(scope="session")
def postgres_url():
    """The base URL of one PostgreSQL server for the session (see tests/postgres_server.py);
    skips when none can run here, saying why."""
    reason = missing_postgres()
    if reason:
        pytest.skip(f"PostgreSQL tests need a server: {reason}")
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_database(postgres_url, request) -> str:
    """The URL of a fresh database on the session's server, named after the test."""
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:51]
    return create_database(postgres_url, f"{stem}_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium (Debian's package) per test module; skipped, saying why, without it."""
    from tests.browser_session import tb_browser  # loads scripts/tensorboard_browser.py

    reason = tb_browser.missing_browser()
    if reason:
        pytest.skip(f"browser tests need headless Chromium: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = tb_browser.launch_chromium(playwright)
        yield chromium
        chromium.close()
