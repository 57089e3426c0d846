import http.server
import threading

import pytest

from charrnn.data import corpus
from charrnn.errors import CharRNNError


def test_universal_newlines(tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"one\r\ntwo\rthree\n")
    assert corpus.read_text(path) == "one\ntwo\nthree\n"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"\x7fELF\x02\x01\x00\x00binary"), "binary"),
        (
            lambda p: p.write_bytes(b"ok line\nbad: " + b"\xff\xfe rest"),
            r"byte 13 \(line 2, column 6\).*--encoding",
        ),
    ],
)
def test_unusable_files_raise_clear_errors(tmp_path, make, message):
    path = tmp_path / "input.txt"
    make(path)
    with pytest.raises(CharRNNError, match=message):
        corpus.read_text(path)


def test_other_encodings_and_error_modes(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café".encode("latin-1"))
    assert corpus.read_text(path, encoding="latin-1") == "café"
    assert corpus.read_text(path, errors="replace") == "caf\ufffd"
    with pytest.raises(CharRNNError, match="unknown encoding"):
        corpus.read_text(path, encoding="no-such-codec")


def test_several_files_start_on_new_lines(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.txt").write_text("beta\n")
    assert "".join(corpus.iter_chunks([tmp_path / "a.txt", tmp_path / "b.txt"])) == "alpha\nbeta\n"


def test_split_takes_validation_from_the_end():
    train, val = corpus.train_val_split("abcdefghij", 0.2)
    assert (train, val) == ("abcdefgh", "ij")
    assert corpus.train_val_split("abc", 0.0) == ("abc", "")
    with pytest.raises(CharRNNError):
        corpus.train_val_split("abc", 1.0)


GUTENBERG = (
    "\ufeffThe Project Gutenberg eBook of Anna Karenina\r\nlicence text\r\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK ANNA KARENINA ***\r\n\r\n"
    "Happy families are all alike.\r\n"
    "*** END OF THE PROJECT GUTENBERG EBOOK ANNA KARENINA ***\r\nmore licence\r\n"
)


def test_strip_gutenberg_boilerplate():
    assert corpus.strip_gutenberg_boilerplate(GUTENBERG.lstrip("\ufeff")) == "Happy families are all alike.\n"


def test_find_anna_downloads_from_a_local_server_when_nothing_is_on_disk(tmp_path, monkeypatch):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = GUTENBERG.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv(corpus.ANNA_ENV, raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        local = f"http://127.0.0.1:{server.server_port}/pg1399.txt"
        monkeypatch.setattr(corpus, "_candidate_anna_paths", lambda: [tmp_path / "cache" / "charrnn" / "anna.txt"])
        path = corpus.find_anna(url=local)
        assert path == tmp_path / "cache" / "charrnn" / "anna.txt"
        assert corpus.read_text(path) == "Happy families are all alike.\n"
        assert corpus.find_anna(download=False) == path  # found in the cache the second time
    finally:
        server.shutdown()


def test_find_anna_honours_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "mine.txt"
    path.write_text("text")
    monkeypatch.setenv(corpus.ANNA_ENV, str(path))
    assert corpus.find_anna() == path
    monkeypatch.setenv(corpus.ANNA_ENV, str(tmp_path / "missing.txt"))
    with pytest.raises(CharRNNError, match="not a file"):
        corpus.find_anna()


def test_download_failure_is_a_clear_error(tmp_path):
    with pytest.raises(CharRNNError, match="could not download"):
        corpus.download_gutenberg("http://127.0.0.1:9/none.txt", tmp_path / "x.txt", timeout_s=2)
