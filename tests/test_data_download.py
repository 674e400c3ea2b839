"""The CIFAR-10 download against a real HTTP server on 127.0.0.1: md5, failures, unsafe archives."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from dlexp.data import find_batches_dir, load_cifar10
from dlexp.data.download import DownloadError, download_and_extract
from dlexp.errors import DataError
from tests.conftest import assert_one_clean_line, write_tiny_cifar10

BATCHES = "cifar-10-batches-py"
CUT_PATH = "/cut-short.tar.gz"  # answers with fewer bytes than its Content-Length


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder quietly, plus one transfer that breaks off midway."""

    def do_GET(self):
        if self.path != CUT_PATH:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + b"\0" * 98)
        self.close_connection = True
        return None

    def log_message(self, *args) -> None:
        pass  # keep the test output clean


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """urllib honours *_proxy variables: make sure 127.0.0.1 is reached directly."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(folder served, base URL) of an HTTP server on 127.0.0.1 at a free port."""
    folder = tmp_path_factory.mktemp("www")
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The parent of a tiny `cifar-10-batches-py` that the archives carry."""
    root = tmp_path_factory.mktemp("source")
    write_tiny_cifar10(root, seed=11)
    return root


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def publish(server, source: Path, name: str, extra: tuple[tarfile.TarInfo, ...] = ()) -> tuple:
    """Write `name` as a tar.gz of the tiny folder plus `extra` members; return (url, md5)."""
    folder, base = server
    path = folder / name
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source / BATCHES, arcname=BATCHES)
        for info in extra:
            tar.addfile(info, io.BytesIO(b"owned") if info.isfile() else None)
    return f"{base}/{name}", md5_of(path)


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(b"owned") if kind == tarfile.REGTYPE else 0
    return info


def closed_port() -> int:
    """A localhost port that nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_an_empty_root_is_downloaded_into_by_default(server, source, tmp_path):
    url, md5 = publish(server, source, "good.tar.gz")
    root = tmp_path / "data"
    data = load_cifar10(root, url=url, md5=md5, validation_size=10, cache_dir=None)
    expected = load_cifar10(source, validation_size=10, cache_dir=None)
    np.testing.assert_array_equal(data.train.images, expected.train.images)
    np.testing.assert_array_equal(data.test.labels, expected.test.labels)
    assert leftovers(root) == [BATCHES]  # no temporary download folder left behind
    # Present now: a dead URL does not matter any more.
    dead = f"http://127.0.0.1:{closed_port()}/x.tar.gz"
    assert find_batches_dir(root, download=True, url=dead) == root / BATCHES


def test_no_root_downloads_into_the_user_cache(server, source, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DLEXP_DATA", raising=False)
    url, md5 = publish(server, source, "good-for-home.tar.gz")
    data = load_cifar10(url=url, md5=md5, validation_size=10, cache_dir=None)
    assert len(data.train) == len(load_cifar10(source, validation_size=10, cache_dir=None).train)
    assert leftovers(tmp_path / "home" / ".cache" / "dlexp" / "data") == [BATCHES]


def test_dlexp_data_is_where_the_download_goes(server, source, tmp_path, monkeypatch):
    monkeypatch.setenv("DLEXP_DATA", str(tmp_path / "shared"))
    url, md5 = publish(server, source, "good-for-env.tar.gz")
    assert find_batches_dir(url=url, md5=md5) == tmp_path / "shared" / BATCHES


def test_a_root_naming_the_batches_folder_downloads_into_its_parent(server, source, tmp_path):
    url, _ = publish(server, source, "good-no-md5.tar.gz")
    root = tmp_path / "data" / BATCHES
    assert find_batches_dir(root, download=True, url=url, md5=None) == root
    assert leftovers(tmp_path / "data") == [BATCHES]


def test_bad_md5_is_refused_before_extraction(server, source, tmp_path):
    url, md5 = publish(server, source, "tampered.tar.gz")
    root = tmp_path / "data"
    with pytest.raises(DataError, match=r"failed: md5 mismatch: expected 0{32}, got ") as info:
        find_batches_dir(root, url=url, md5="0" * 32)
    assert md5 in str(info.value)
    assert_how_to_supply(str(info.value), root, url)
    assert_one_clean_line(info.value)
    assert leftovers(root) == []


@pytest.mark.parametrize(
    ("path", "match"),
    [("/missing.tar.gz", "HTTP 404 File not found"), (CUT_PATH, "sent 100 of 100000 bytes")],
    ids=["404", "cut-short"],
)
def test_http_failures_are_data_errors(server, tmp_path, path, match):
    url = server[1] + path
    with pytest.raises(DataError, match=match) as info:
        find_batches_dir(tmp_path / "data", download=True, url=url, md5=None)
    assert f"downloading {url} failed: " in str(info.value) and "data.url" in str(info.value)
    assert_one_clean_line(info.value)
    assert leftovers(tmp_path / "data") == []


def assert_how_to_supply(msg: str, root: Path, url: str) -> None:
    """The one-line download failure: where it looked, the url, and three ways out."""
    assert msg.startswith(f"CIFAR-10 not found in {root} and {root / BATCHES}, and downloading ")
    assert f"downloading {url} failed: " in msg
    assert "data.root" in msg and "DLEXP_DATA" in msg and "data.url" in msg and "data.md5" in msg
    assert "../shared" not in msg and "fetch.sh" not in msg  # a fresh clone lacks these


def test_an_unreachable_server_is_one_clear_error(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/cifar-10-python.tar.gz"
    root = tmp_path / "new" / "data"
    with pytest.raises(DataError, match="failed: Connection refused; ") as info:
        load_cifar10(root, url=url)  # download is on by default
    assert_how_to_supply(str(info.value), root, url)
    assert_one_clean_line(info.value)
    assert leftovers(tmp_path) == []  # not even the folders it made for the download


def test_a_failed_name_lookup_is_one_clear_error(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # as with no network: nothing is sent
    url, root = "http://127.0.0.1/cifar-10-python.tar.gz", tmp_path / "data"
    with pytest.raises(DataError, match="failed: Name or service not known; ") as info:
        find_batches_dir(root, url=url)
    assert_how_to_supply(str(info.value), root, url)
    assert_one_clean_line(info.value)


def test_a_silent_server_times_out_instead_of_hanging(tmp_path):
    with socket.socket() as sock:  # accepts the connection (backlog) but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/cifar-10-python.tar.gz"
        with pytest.raises(DataError, match=r"failed: no answer within 0\.2 s; ") as info:
            find_batches_dir(tmp_path / "data", url=url, timeout_s=0.2)
    assert_how_to_supply(str(info.value), tmp_path / "data", url)


def test_an_unwritable_target_is_a_download_error(server, source, tmp_path):
    url, md5 = publish(server, source, "good-for-a-file.tar.gz")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(DownloadError, match=r"could not write in .*a-file/data: ") as info:
        download_and_extract(url, tmp_path / "a-file" / "data", md5=md5)
    assert info.value.url == url and url not in info.value.reason
    assert_one_clean_line(info.value)


def test_tests_cannot_reach_the_internet(tmp_path):
    with pytest.raises(DataError, match=r"tests may not reach www\.cs\.toronto\.edu"):
        load_cifar10(tmp_path / "data")  # the official url: refused by conftest, never fetched


def test_a_file_that_is_not_a_tar_gz_is_a_data_error(server, tmp_path):
    (server[0] / "plain.bin").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="could not extract"):
        download_and_extract(f"{server[1]}/plain.bin", tmp_path / "data", md5=None)
    assert leftovers(tmp_path / "data") == []


def test_an_archive_without_the_batches_folder_is_a_data_error(server, tmp_path):
    path = server[0] / "other.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(member("readme.txt"), io.BytesIO(b"owned"))
    url = f"{server[1]}/other.tar.gz"
    with pytest.raises(DataError, match=f"has no {BATCHES}/ folder"):
        find_batches_dir(tmp_path / "data", download=True, url=url, md5=md5_of(path))


UNSAFE = {
    "dot-dot": lambda out: member("../../../../evil.txt"),
    "nested dot-dot": lambda out: member(f"{BATCHES}/../../../../../evil.txt"),
    "absolute": lambda out: member(str(out / "evil.txt")),
    "symlink out": lambda out: member(f"{BATCHES}/link", tarfile.SYMTYPE, str(out)),
    "relative symlink": lambda out: member(f"{BATCHES}/link", tarfile.SYMTYPE, "../../.."),
    "hard link": lambda out: member(f"{BATCHES}/hard", tarfile.LNKTYPE, str(out / "evil.txt")),
    "device": lambda out: member(f"{BATCHES}/dev", tarfile.CHRTYPE),
}


@pytest.mark.parametrize("case", UNSAFE, ids=list(UNSAFE))
def test_unsafe_members_are_refused_and_nothing_is_written(server, source, tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    extra = [UNSAFE[case](outside)]
    if extra[0].issym():  # then try to write through the link
        extra.append(member(f"{BATCHES}/link/evil.txt"))
    url, md5 = publish(server, source, f"unsafe-{case.replace(' ', '-')}.tar.gz", tuple(extra))
    target = tmp_path / "site" / "data"
    with pytest.raises(DataError, match="refusing") as info:
        download_and_extract(url, target, md5=md5)
    assert extra[0].name in str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.rglob("evil.txt")) == []
    assert leftovers(target) == [] and leftovers(outside) == []


def test_an_unsafe_archive_stops_the_loader_with_a_data_error(server, source, tmp_path):
    url, md5 = publish(server, source, "unsafe-via-loader.tar.gz", (member("../evil.txt"),))
    with pytest.raises(DataError, match="failed: refusing unsafe archive member") as info:
        load_cifar10(tmp_path / "data", url=url, md5=md5)
    assert_how_to_supply(str(info.value), tmp_path / "data", url)
    assert list(tmp_path.rglob("evil.txt")) == []


def test_only_the_batches_folder_is_moved_into_the_target(server, tmp_path):
    path = server[0] / "extra.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(member(f"{BATCHES}/data_batch_1"), io.BytesIO(b"owned"))
        tar.addfile(member("keepme/readme.txt"), io.BytesIO(b"owned"))
    target = tmp_path / "data"
    (target / "keepme").mkdir(parents=True)
    (target / "keepme" / "mine.txt").write_text("the user's")
    download_and_extract(f"{server[1]}/extra.tar.gz", target, md5=md5_of(path))
    assert (target / BATCHES / "data_batch_1").read_bytes() == b"owned"
    assert sorted(p.name for p in (target / "keepme").iterdir()) == ["mine.txt"]
