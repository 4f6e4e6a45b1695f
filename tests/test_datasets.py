"""Tests of sklearn_mesh.datasets: metadata loader, fetchers (local server), synthetic audio."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_mesh.datasets import (
    DownloadError,
    RemoteFile,
    download_file,
    fetch_bsd10k,
    fetch_bsd35k_cs,
    get_data_home,
    load_bsd_metadata,
    make_bst_audio,
)
from sklearn_mesh.datasets._metadata import _parse_tags
from sklearn_mesh.taxonomy import BST, BST_FULL

V10_HEADER = "sound_id,class,class_idx,class_top,set,uploader,license,tags,title"
V12_HEADER = "sound_id,class,class_idx,class_top,confidence,uploader,license,title,tags,description"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _v10(tmp_path):
    return _write(
        tmp_path / "metadata_train.csv",
        V10_HEADER
        + "\n"
        + '185755,fx-o,11,fx,train,u1,cc0,"campus,microwave,bell",microwave_oven.wav\n'
        + '358405,is-w,5,is,train,u2,cc0,"sax,alto",Sax Alto - F5\n'
        + "12,ss-u,21,ss,train,u3,cc0,,Street\n",
    )


def _v12(tmp_path):
    return _write(
        tmp_path / "BSD10k_metadata.csv",
        V12_HEADER
        + "\n"
        + "1,m-sp,0,m,5,u,cc0,Drum loop,\"['drums', 'loop']\",A groove.\n"
        + "2,sp-s,8,sp,,u,cc0,Voice,\"talk,man\",\n"
        + "3,fx-a,15,fx,2,u,cc0,,dog,Barking dog\n",
    )


def _bsd35k(tmp_path):
    return _write(
        tmp_path / "BSD35k-CS_metadata.csv",
        V12_HEADER
        + "\n"
        + "1,m-sp,0,m,,u,cc0,Beat,\"drum,beat\",desc\n"
        + "2,m-other,404,m,,u,cc0,Odd,odd,\n"
        + "3,fx-d,404,fx,,u,cc0,Whoosh,whoosh,\n"
        + "4,ss-n,19,ss,,u,cc0,Forest,birds,\n",
    )


# --------------------------------------------------------------------------- loader
def test_load_v10(tmp_path):
    data = load_bsd_metadata(_v10(tmp_path))
    assert data.id_column == "sound_id"
    assert data.ids.tolist() == [185755, 358405, 12]
    assert data.target.tolist() == ["fx-o", "is-w", "ss-u"]
    assert data.target_top.tolist() == ["fx", "is", "ss"]
    assert data.text == [
        "microwave_oven.wav. campus microwave bell",
        "Sax Alto - F5. sax alto",
        "Street",
    ]
    assert data.confidence is None and data.audio_paths is None
    assert {"text", "audio_path"} <= set(data.frame.columns)
    assert data.frame["text"].tolist() == data.text
    assert data.dropped.empty and data.taxonomy == BST


def test_load_v12_confidence_description_and_list_tags(tmp_path):
    data = load_bsd_metadata(_v12(tmp_path), text_sep=" | ", tag_sep=",")
    assert data.text == [
        "Drum loop | drums,loop | A groove.",
        "Voice | talk,man",
        "dog | Barking dog",
    ]
    np.testing.assert_array_equal(data.confidence, [5.0, np.nan, 2.0])
    assert data.confidence.dtype == np.float64
    only_title = load_bsd_metadata(_v12(tmp_path), text_fields=("title", "nonexistent"))
    assert only_title.text == ["Drum loop", "Voice", ""]


def test_load_bsd35k_other_policies(tmp_path):
    path = _bsd35k(tmp_path)
    with pytest.raises(ValueError) as err:
        load_bsd_metadata(path)
    assert "'m-other'" in str(err.value) and "'fx-d'" in str(err.value)
    dropped = load_bsd_metadata(path, unknown_labels="drop")
    assert dropped.target.tolist() == ["m-sp", "ss-n"]
    assert dropped.ids.tolist() == [1, 4]
    assert np.isnan(dropped.confidence).all()
    assert dropped.dropped["id"].tolist() == [2, 3]
    assert set(dropped.dropped["reason"]) == {"unknown label"}
    kept = load_bsd_metadata(path, taxonomy=BST_FULL)
    assert kept.target.tolist() == ["m-sp", "m-other", "fx-d", "ss-n"]
    assert len(kept.frame) == 4 and kept.taxonomy == BST_FULL


def test_load_evaluation_metadata(tmp_path):
    path = _write(
        tmp_path / "metadata.csv",
        "id,title,tags,description\nab12,Rain,\"rain,storm\",\ncd34,,,\n",
    )
    data = load_bsd_metadata(path)
    assert data.id_column == "id" and data.ids.tolist() == ["ab12", "cd34"]
    assert data.target is None and data.target_top is None
    assert data.text == ["Rain. rain storm", ""]


def test_load_from_folder_buffer_and_dataframe(tmp_path):
    path = _v10(tmp_path)
    assert load_bsd_metadata(tmp_path).ids.tolist() == load_bsd_metadata(path).ids.tolist()
    frame = pd.read_csv(path)
    assert load_bsd_metadata(frame).text == load_bsd_metadata(path).text
    buf = io.StringIO(path.read_text())
    assert load_bsd_metadata(buf).target.tolist() == ["fx-o", "is-w", "ss-u"]
    _write(tmp_path / "other_metadata.csv", V10_HEADER + "\n")
    with pytest.raises(FileNotFoundError, match="exactly one"):
        load_bsd_metadata(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_bsd_metadata(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("title,class\nx,m-sp\n", {}, "no id column"),
        ("sound_id,class\n1,m-sp\n", {"id_column": "clip"}, "id_column 'clip' is missing"),
        ("sound_id,title\n1,x\n", {"label_column": "class"}, "label_column 'class' is missing"),
        ("sound_id,class\n1,m-sp\n2,m-m\n1,fx-o\n", {}, r"ids occur more than once.*\[1\]"),
        ("sound_id,class\n1,m-sp\n2,zz-1\n3,zz-1\n", {}, r"'zz-1' \(2 rows\)"),
        ("sound_id,class\n1,m-sp\n2,\n", {}, "1 rows have no label"),
        ("sound_id,class,class_top\n1,m-sp,fx\n", {}, "class_top"),
        ("sound_id,class,confidence\n1,m-sp,9\n", {}, "confidence must lie in 1..5"),
        ("sound_id,class\n1,m-sp\n", {"unknown_labels": "keep"}, "unknown_labels"),
        ("sound_id,class\n,m-sp\n", {}, "id column 'sound_id' is empty"),
    ],
)
def test_load_errors(tmp_path, text, kwargs, match):
    path = _write(tmp_path / "m.csv", text)
    with pytest.raises(ValueError, match=match):
        load_bsd_metadata(path, **kwargs)


def test_missing_label_dropped_with_reason(tmp_path):
    path = _write(tmp_path / "m.csv", "sound_id,class\n1,m-sp\n2,\n")
    data = load_bsd_metadata(path, unknown_labels="drop")
    assert data.ids.tolist() == [1]
    assert data.dropped.to_dict("records") == [{"id": 2, "label": None, "reason": "missing label"}]


def _touch(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_audio_dir_resolution(tmp_path):
    csv = _v10(tmp_path)
    audio = tmp_path / "audio"
    _touch(audio / "185755.wav")
    _touch(audio / "185755.mp3")  # wav preferred
    _touch(audio / "sub" / "358405.flac")
    _touch(audio / "12.ogg")
    _touch(audio / "999.txt")
    data = load_bsd_metadata(csv, audio_dir=audio)
    paths = [Path(p) for p in data.audio_paths]
    assert paths == [audio / "185755.wav", audio / "sub" / "358405.flac", audio / "12.ogg"]
    assert data.frame["audio_path"].tolist() == [str(p) for p in paths]


def test_missing_audio_policies(tmp_path):
    csv = _v10(tmp_path)
    audio = tmp_path / "audio"
    _touch(audio / "12.wav")
    with pytest.raises(FileNotFoundError) as err:
        load_bsd_metadata(csv, audio_dir=audio)
    msg = str(err.value)
    assert "2 of 3 clips" in msg and "185755" in msg and "missing_audio='drop'" in msg
    dropped = load_bsd_metadata(csv, audio_dir=audio, missing_audio="drop")
    assert dropped.ids.tolist() == [12] and len(dropped.text) == 1
    assert set(dropped.dropped["reason"]) == {"missing audio"}
    ignored = load_bsd_metadata(csv, audio_dir=audio, missing_audio="ignore")
    assert ignored.audio_paths.tolist()[:2] == [None, None]
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_bsd_metadata(csv, audio_dir=tmp_path / "nowhere")


def test_explicit_audio_path_column(tmp_path):
    _touch(tmp_path / "clips" / "a.wav")
    path = _write(
        tmp_path / "meta.csv", "id,audio_path,title\nx,clips/a.wav,A\ny,clips/b.wav,B\n"
    )
    with pytest.raises(FileNotFoundError, match="1 of 2 clips"):
        load_bsd_metadata(path)
    data = load_bsd_metadata(path, missing_audio="drop")
    assert data.audio_paths.tolist() == [str(tmp_path / "clips" / "a.wav")]


@settings(deadline=None, max_examples=30)
@given(st.lists(st.text(alphabet="abcxyz-_ 0123", min_size=1, max_size=8), max_size=6))
def test_parse_tags_formats(tags):
    clean = [t.strip() for t in tags if t.strip()]
    assert _parse_tags(",".join(tags)) == clean
    assert _parse_tags(repr(tags)) == clean
    assert _parse_tags(tags) == clean
    assert _parse_tags(float("nan")) == [] and _parse_tags(None) == []


def test_real_bsd10k_metadata(bsd10k_dir):
    data = load_bsd_metadata(bsd10k_dir / "metadata_train.csv")
    assert len(data.frame) == 9389 == len(data.text) == len(data.target)
    assert len(set(data.target)) == 23
    assert set(data.target) == set(BST.leaves)
    assert data.confidence is None and data.dropped.empty
    assert np.mean([len(t) > 0 for t in data.text]) > 0.99
    counts = pd.Series(data.target).value_counts()
    assert counts.idxmax() == "fx-o" and counts.idxmin() == "sp-c"


# --------------------------------------------------------------------------- fetchers
class _Server:
    """A local HTTP server on 127.0.0.1 serving in-memory files (optional Range support)."""

    def __init__(self):
        self.routes: dict[str, bytes] = {}
        self.range_ok = True
        self.truncate: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                if rng and server.range_ok:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    status = 206
                payload = body[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                if status == 206:
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}"
                    )
                self.end_headers()
                if self.path in server.truncate:
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = _Server()
    yield srv
    srv.close()


def _zip_bytes(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


def _publish_record(server, record, files: dict[str, bytes], *, bad_md5=False):
    entries = []
    for name, body in files.items():
        md5 = hashlib.md5(body).hexdigest()
        if bad_md5:
            md5 = "0" * 32
        entries.append({"key": name, "size": len(body), "checksum": f"md5:{md5}"})
        server.routes[f"/api/records/{record}/files/{name}/content"] = body
    server.routes[f"/api/records/{record}"] = json.dumps({"files": entries}).encode()


BSD10K_CSV = V12_HEADER + "\n1,m-sp,0,m,5,u,cc0,Beat,drum,\n2,fx-a,15,fx,3,u,cc0,Dog,bark,\n"


def test_fetch_bsd10k_from_local_server_then_cache(server, tmp_path):
    meta = _zip_bytes({"metadata/BSD10k_metadata.csv": BSD10K_CSV})
    _publish_record(server, "19868804", {"metadata.zip": meta})
    api = server.url + "/api/records"
    data = fetch_bsd10k(tmp_path, base_url=api, verbose=False)
    assert data.target.tolist() == ["m-sp", "fx-a"]
    assert Path(data.metadata_path) == tmp_path / "BSD10k-v1.2" / "metadata" / "BSD10k_metadata.csv"
    assert not (tmp_path / "BSD10k-v1.2" / "downloads" / "metadata.zip").exists()
    n_requests = len(server.requests)
    again = fetch_bsd10k(tmp_path, download_if_missing=False)
    assert again.ids.tolist() == [1, 2]
    assert len(server.requests) == n_requests  # served from the cache


def test_fetch_checksum_mismatch_leaves_nothing(server, tmp_path):
    meta = _zip_bytes({"metadata/BSD10k_metadata.csv": BSD10K_CSV})
    _publish_record(server, "19868804", {"metadata.zip": meta}, bad_md5=True)
    with pytest.raises(DownloadError, match="Checksum mismatch") as err:
        fetch_bsd10k(tmp_path, base_url=server.url + "/api/records", verbose=False)
    assert "by hand" in str(err.value)
    root = tmp_path / "BSD10k-v1.2"
    assert not list(root.rglob("*.csv"))
    assert not list(root.rglob("*.zip")) and not list(root.rglob("*.part"))


def test_fetch_with_pinned_sha256_and_url_override(server, tmp_path):
    body = _zip_bytes({"metadata/BSD35k-CS_metadata.csv": _bsd35k(tmp_path).read_text()})
    server.routes["/mirror/meta.zip"] = body
    files = {
        "metadata": RemoteFile(
            "metadata.zip",
            url=server.url + "/mirror/meta.zip",
            sha256=hashlib.sha256(body).hexdigest(),
        )
    }
    data = fetch_bsd35k_cs(tmp_path / "cache", files=files, verbose=False)
    # BSD35k-CS default: *-other / fx-d dropped (reported), BST label space
    assert data.target.tolist() == ["m-sp", "ss-n"]
    assert data.dropped["label"].tolist() == ["m-other", "fx-d"]
    assert [p for p, _ in server.requests] == ["/mirror/meta.zip"]  # no record lookup
    kept = fetch_bsd35k_cs(tmp_path / "cache", download_if_missing=False, taxonomy=BST_FULL)
    assert len(kept.target) == 4


def test_download_resumes_partial_file(server, tmp_path):
    body = bytes(range(256)) * 400
    server.routes["/f.bin"] = body
    dest = tmp_path / "f.bin"
    part = tmp_path / "f.bin.part"
    part.write_bytes(body[:1000])
    download_file(server.url + "/f.bin", dest, md5=hashlib.md5(body).hexdigest(), size=len(body))
    assert dest.read_bytes() == body and not part.exists()
    assert server.requests[-1] == ("/f.bin", "bytes=1000-")


def test_download_restarts_when_range_unsupported(server, tmp_path):
    body = b"abcdefgh" * 1000
    server.routes["/f.bin"] = body
    server.range_ok = False
    (tmp_path / "f.bin.part").write_bytes(b"XXXX")  # stale junk must not be kept
    sha = hashlib.sha256(body).hexdigest()
    download_file(server.url + "/f.bin", tmp_path / "f.bin", sha256=sha)
    assert (tmp_path / "f.bin").read_bytes() == body


def test_interrupted_download_is_atomic_then_resumes(server, tmp_path):
    body = b"0123456789" * 5000
    server.routes["/f.bin"] = body
    server.truncate.add("/f.bin")
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="resume"):
        download_file(server.url + "/f.bin", dest, md5=hashlib.md5(body).hexdigest())
    assert not dest.exists()
    partial = (tmp_path / "f.bin.part").read_bytes()
    assert 0 < len(partial) < len(body) and body.startswith(partial)
    server.truncate.clear()
    download_file(server.url + "/f.bin", dest, md5=hashlib.md5(body).hexdigest())
    assert dest.read_bytes() == body
    assert server.requests[-1][1] == f"bytes={len(partial)}-"


def test_download_http_error_and_bad_scheme(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download_file(server.url + "/missing", tmp_path / "x")
    with pytest.raises(ValueError, match="http"):
        download_file("file:///etc/passwd", tmp_path / "x")


def _closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_offline_fails_fast_with_instructions(tmp_path):
    api = f"http://127.0.0.1:{_closed_port()}/api/records"
    with pytest.raises(DownloadError) as err:
        fetch_bsd10k(tmp_path, base_url=api, timeout=2, verbose=False)
    msg = str(err.value)
    assert "metadata.zip" in msg and str(tmp_path / "BSD10k-v1.2") in msg
    assert "doi.org/10.5281/zenodo.19868804" in msg
    with pytest.raises(FileNotFoundError, match="download_if_missing=False") as err:
        fetch_bsd35k_cs(tmp_path, download_if_missing=False)
    assert str(tmp_path / "BSD35k-CS") in str(err.value)


def test_unresponsive_server_times_out(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)  # accepts connections, never answers
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/f.bin"
        with pytest.raises(DownloadError):
            download_file(url, tmp_path / "f.bin", timeout=0.5)
    finally:
        sock.close()


def test_prefilled_cache_and_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKLEARN_MESH_DATA", str(tmp_path / "home"))
    assert get_data_home() == tmp_path / "home"
    assert get_data_home(tmp_path / "explicit") == tmp_path / "explicit"
    _bsd35k(tmp_path / "home" / "BSD35k-CS" / "metadata")
    data = fetch_bsd35k_cs(download_if_missing=False)
    assert data.ids.tolist() == [1, 4]
    with pytest.raises(ValueError, match="Unknown parts"):
        fetch_bsd35k_cs(download_if_missing=False, parts=("lyrics",))


# --------------------------------------------------------------------------- synthetic audio
@pytest.fixture(scope="module")
def small_audio():
    return make_bst_audio(46, max_duration=2.0, label_noise=0.2, random_state=3)


def test_make_bst_audio_structure(small_audio):
    d = small_audio
    n = 46
    assert len(d.audio) == len(d.text) == n == d.target.size == d.ids.size
    assert d.sample_rate == 16000
    for wave, dur in zip(d.audio, d.durations):
        assert wave.dtype == np.float32 and wave.ndim == 1
        assert np.all(np.isfinite(wave)) and np.abs(wave).max() <= 1.0
        assert np.abs(wave).max() > 0.05
        assert wave.size == round(dur * d.sample_rate)
    assert np.all((d.durations >= 0.05 - 1e-3) & (d.durations <= 2.0 + 1e-3))
    assert len(set(d.ids)) == n
    counts = pd.Series(d.target_clean).value_counts()
    assert set(counts.index) == set(BST.leaves) and counts.max() - counts.min() <= 1
    assert d.frame.columns.tolist() == ["id", "audio", "text", "label", "confidence"]
    wave, sr = d.frame["audio"].iloc[0]
    assert sr == 16000 and wave is d.audio[0]
    assert d.frame["label"].tolist() == d.target.tolist()
    assert set(np.unique(d.confidence)) <= {1, 2, 3, 4, 5}
    assert d.target_top.tolist() == BST.to_top(d.target_clean).tolist()
    assert all(isinstance(t, str) for t in d.text)


def test_make_bst_audio_label_noise(small_audio):
    d = small_audio
    assert d.noisy_mask.sum() == round(0.2 * 46)
    np.testing.assert_array_equal(d.target != d.target_clean, d.noisy_mask)
    assert d.confidence[d.noisy_mask].mean() < d.confidence[~d.noisy_mask].mean()
    clean = make_bst_audio(10, max_duration=0.2, random_state=0)
    assert not clean.noisy_mask.any()
    np.testing.assert_array_equal(clean.target, clean.target_clean)


def test_make_bst_audio_deterministic():
    a = make_bst_audio(12, max_duration=0.5, random_state=7)
    b = make_bst_audio(12, max_duration=0.5, random_state=7)
    c = make_bst_audio(12, max_duration=0.5, random_state=8)
    assert a.text == b.text and a.target.tolist() == b.target.tolist()
    assert all(np.array_equal(x, y) for x, y in zip(a.audio, b.audio))
    assert not all(
        x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a.audio, c.audio)
    )


@pytest.mark.parametrize("sr", [8000, 44100])
def test_make_bst_audio_sample_rates_and_taxonomies(sr):
    d = make_bst_audio(29, sample_rate=sr, max_duration=0.3, taxonomy=BST_FULL, random_state=1)
    assert d.sample_rate == sr and set(d.target) == set(BST_FULL.leaves)
    assert all(w.size == round(t * sr) for w, t in zip(d.audio, d.durations))
    assert all(np.abs(w).max() <= 1 and np.isfinite(w).all() for w in d.audio)
    sub = make_bst_audio(6, max_duration=0.2, taxonomy=BST.subset(["m-sp", "fx-o", "ss-n"]))
    assert set(sub.target) == {"m-sp", "fx-o", "ss-n"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"sample_rate": 100}, "sample_rate"),
        ({"min_duration": 2.0, "max_duration": 1.0}, "min_duration"),
        ({"label_noise": 1.0}, "label_noise"),
        ({"class_weights": [1.0, 2.0]}, "class_weights"),
    ],
)
def test_make_bst_audio_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_bst_audio(**{"n_samples": 5, **kwargs})


def test_make_bst_audio_unknown_class():
    from sklearn_mesh.taxonomy import Taxonomy

    with pytest.raises(ValueError, match="no synthesis recipe for the classes \\['a-1'\\]"):
        make_bst_audio(3, taxonomy=Taxonomy({"a-1": "a"}))


def test_make_bst_audio_class_weights():
    w = np.zeros(23)
    w[[0, 11]] = 1.0
    d = make_bst_audio(20, max_duration=0.1, class_weights=w, random_state=0)
    assert set(d.target) <= {"m-sp", "fx-o"}


def _spectral_features(wave, sr):
    n_fft = 512
    if wave.size < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.size))
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft)[::256][:300]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    edges = np.unique(np.geomspace(1, power.shape[1] - 1, 20).astype(int))
    bands = np.log(np.add.reduceat(power, edges, axis=1) + 1e-10)
    energy = bands.mean(axis=1)
    return np.r_[bands.mean(0), bands.std(0), np.log(wave.size / sr), energy.std()]


def test_make_bst_audio_learnable_but_not_trivial():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    d = make_bst_audio(230, max_duration=3.0, random_state=0)
    X = np.array([_spectral_features(w, d.sample_rate) for w in d.audio])
    y = d.target
    pred = cross_val_predict(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        X,
        y,
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
    )
    acc = np.mean(pred == y)
    assert 3 / 23 < acc < 0.97  # well above chance, far from perfect
    wrong = pred != y
    same_top = BST.to_top(pred) == BST.to_top(y)
    parent = BST.parent_index
    n_sib_pairs = sum(
        parent[i] == parent[j] for i in range(23) for j in range(23) if i != j
    )
    n_cousin_pairs = 23 * 22 - n_sib_pairs
    # per ordered class pair, siblings are confused more often than cousins
    assert (wrong & same_top).sum() / n_sib_pairs > (wrong & ~same_top).sum() / n_cousin_pairs


def test_ids_keep_leading_zeros_and_integer_ids(tmp_path):
    path = _write(tmp_path / "meta.csv", "id,title\n007,a\n010,b\n")
    audio = tmp_path / "audio"
    _touch(audio / "007.wav")
    _touch(audio / "010.flac")
    data = load_bsd_metadata(path, audio_dir=audio)
    assert data.ids.tolist() == ["007", "010"]
    assert [Path(p).name for p in data.audio_paths] == ["007.wav", "010.flac"]
    ints = load_bsd_metadata(_write(tmp_path / "m2.csv", "sound_id,class\n5,m-sp\n12,fx-o\n"))
    assert ints.ids.dtype == np.int64 and ints.ids.tolist() == [5, 12]


@settings(deadline=None, max_examples=8)
@given(
    n=st.integers(1, 30),
    lo=st.floats(0.01, 0.1),
    span=st.floats(1.0, 4.0),
    noise=st.floats(0.0, 0.9),
    seed=st.integers(0, 1000),
)
def test_make_bst_audio_invariants(n, lo, span, noise, seed):
    hi = lo * span
    d = make_bst_audio(
        n, min_duration=lo, max_duration=hi, label_noise=noise, sample_rate=8000, random_state=seed
    )
    assert len(d.audio) == n and d.noisy_mask.sum() == round(noise * n)
    assert np.all(d.durations >= max(lo - 1 / 8000, 16 / 8000) - 1e-9)
    assert np.all(d.durations <= max(hi, 16 / 8000) + 1 / 8000)
    assert all(w.dtype == np.float32 and np.abs(w).max() <= 1.0 for w in d.audio)
    assert np.all(d.target[d.noisy_mask] != d.target_clean[d.noisy_mask])
    assert set(d.target) <= set(BST.leaves)
