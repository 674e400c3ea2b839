"""Where the data is (dlexp.data.locate): data.root, $DLEXP_DATA, the user cache."""

from __future__ import annotations

import pytest

from dlexp.data import default_data_root, find_batches_dir, load_cifar10
from dlexp.errors import DataError
from tests.conftest import TINY_PER_BATCH, assert_one_clean_line, write_tiny_cifar10

BATCHES = "cifar-10-batches-py"
N_TRAIN = 5 * TINY_PER_BATCH


@pytest.mark.parametrize("sub", ["", BATCHES], ids=["parent", "batches-folder"])
def test_root_may_be_the_parent_or_the_batches_folder(tiny_cifar, sub):
    found = find_batches_dir(tiny_cifar / sub if sub else tiny_cifar)
    assert found.resolve() == (tiny_cifar / BATCHES).resolve()


def test_dlexp_data_is_the_default_root(tiny_cifar, monkeypatch):
    monkeypatch.setenv("DLEXP_DATA", str(tiny_cifar))
    assert default_data_root() == tiny_cifar
    assert len(load_cifar10(validation_size=10, cache_dir=None).train) == N_TRAIN - 10


def test_a_tilde_in_dlexp_data_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DLEXP_DATA", "~/cifar")
    assert default_data_root() == tmp_path / "cifar"


@pytest.mark.parametrize("env", [None, ""], ids=["unset", "empty"])
def test_the_user_cache_is_the_fallback_root(tmp_path, monkeypatch, env):
    monkeypatch.setenv("HOME", str(tmp_path))
    if env is None:
        monkeypatch.delenv("DLEXP_DATA", raising=False)
    else:
        monkeypatch.setenv("DLEXP_DATA", env)
    cache = tmp_path / ".cache" / "dlexp" / "data"
    assert default_data_root() == cache
    write_tiny_cifar10(cache)
    assert find_batches_dir() == cache / BATCHES
    assert len(load_cifar10(validation_size=10, cache_dir=None).train) == N_TRAIN - 10


@pytest.mark.parametrize("sub", ["", BATCHES], ids=["parent", "batches-folder"])
def test_missing_data_without_download_says_where_and_how(tmp_path, sub):
    root = tmp_path / "nowhere" / sub if sub else tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_cifar10(root, download=False)
    msg = str(info.value)
    assert msg.startswith("CIFAR-10 not found: looked for data_batch_1 in ")
    assert f"{root} and {root / BATCHES}" in msg
    assert "data.root" in msg and "DLEXP_DATA" in msg and "data.download=true" in msg
    assert "../shared" not in msg and "fetch.sh" not in msg  # a fresh clone lacks these
    assert_one_clean_line(info.value)
    assert not (tmp_path / "nowhere").exists()  # nothing written when told not to download
