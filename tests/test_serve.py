"""`emofuse serve`: the service started for real on a loopback port, good and bad requests, overload,
and the web page driven in headless Chromium."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

import emofuse  # noqa: E402
from conftest import tone  # noqa: E402
from emofuse.serve import Limits, create_app  # noqa: E402
from test_timeline import recording  # noqa: E402

CLASSES = ["angry", "happy", "sad", "neutral"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the service exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up in {timeout} s")


@pytest.fixture(scope="module")
def service(trained_run):
    """`emofuse serve RUN` in a subprocess on a free loopback port (audio up to 40 s, timelines past 20 s)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "emofuse", "serve", str(trained_run), "--port", str(port),
                             "--max-seconds", "40", "--timeline-seconds", "20", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class ThreadServer:
    """An app served by uvicorn in a thread of this process (so the test can hold its predictor)."""

    def __init__(self, app) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ThreadServer":
        self.thread.start()
        wait_healthy(self.url, timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def post(url: str, path, transcript: str | None = None, name: str | None = None) -> httpx.Response:
    data = {"transcript": transcript} if transcript is not None else {}
    with open(path, "rb") as f:
        return httpx.post(f"{url}/predict", files={"file": (name or path.name, f)}, data=data, timeout=120)


def test_a_clip_gets_its_label_and_every_probability(service, tmp_path):
    path = tmp_path / "clip.flac"
    sf.write(path, tone(2.0, 44100, 200.0, channels=2), 44100)
    r = post(service, path)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["classes"] == CLASSES and set(j["probs"]) == set(CLASSES) and j["label"] in CLASSES
    assert abs(sum(j["probs"].values()) - 1) < 1e-5 and j["model"] == "cnn_bilstm" and j["folds"] == 2
    assert j["timeline"] is None and abs(j["seconds"] - 2.0) < 1e-3 and j["file"] == "clip.flac"
    m = httpx.get(f"{service}/model").json()
    assert m["classes"] == CLASSES and m["modalities"] == ["audio"] and not m["needs_transcript"]
    assert m["frontend"]["n_mels"] > 0 and m["limits"]["max_seconds"] == 40
    page = httpx.get(service).text
    assert "<form" in page and "MediaRecorder" in page and "<svg" not in page  # the SVG is built by the script
    assert not re.search(r"(src|href|action)\s*=\s*[\"']?(https?:)?//|<link|<script src|@import|url\(", page), \
        "the page loads nothing from elsewhere"


def test_a_long_file_gets_a_timeline_of_speech_segments(service, trained_run, tmp_path):
    path = recording(tmp_path / "talk.wav", seconds=32.0)
    j = post(service, path).json()
    tl = j["timeline"]
    assert tl is not None and len(tl["segments"]) == 4 and abs(tl["seconds"] - 32.0) < 1e-3
    assert all(s["label"] in CLASSES and abs(sum(s["probs"].values()) - 1) < 1e-4 for s in tl["segments"])
    assert abs(sum(j["probs"].values()) - 1) < 1e-5 and j["label"] in CLASSES


def test_bad_requests_get_a_one_line_4xx_and_the_service_goes_on(service, tmp_path):
    def refused(r: httpx.Response, status: int, words: str) -> None:
        assert r.status_code == status, r.text
        reason = r.json()["error"]
        assert words in reason and "\n" not in reason and "Traceback" not in reason and str(tmp_path) not in reason

    text = tmp_path / "notes.wav"
    text.write_text("these are meeting notes, not audio\n" * 50)
    refused(post(service, text), 415, "notes.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    refused(post(service, empty), 422, "empty upload")
    whole = tmp_path / "whole.wav"
    sf.write(whole, tone(3.0, 16000), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: 44 + 16000])  # the header still announces 3 s
    refused(post(service, cut), 422, "truncated")
    long = tmp_path / "long.wav"
    sf.write(long, tone(45.0, 8000), 8000, subtype="PCM_16")
    refused(post(service, long), 413, "limit of 40 s")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    refused(post(service, silent), 422, "silent")
    short = tmp_path / "short.wav"
    sf.write(short, tone(0.01, 16000), 16000)
    refused(post(service, short), 422, "shorter than one analysis window")
    refused(httpx.post(f"{service}/predict", data={"transcript": "hi"}, timeout=30), 415, "multipart/form-data")
    refused(httpx.post(f"{service}/predict", files={"other": ("a.wav", b"x")}, timeout=30), 422, "field 'file'")
    refused(httpx.post(f"{service}/predict", content=whole.read_bytes(), headers={"content-type": "audio/wav"}, timeout=30),
            415, "multipart/form-data")
    health = httpx.get(f"{service}/health").json()
    assert health["status"] == "ok" and health["running"] == 0 and health["refused"] >= 9
    assert post(service, whole).status_code == 200, "still serving"


def test_byte_limit_and_text_models(trained_run, tmp_path):
    from dataclasses import asdict

    from emofuse.config import load_config
    from emofuse.features import FrontendConfig
    from emofuse.inference import Predictor
    from emofuse.training.module import EmotionModule

    cfg = load_config("early_fusion")
    model_cfg = {k: v for k, v in cfg["model"].items() if k != "name"}
    module = EmotionModule("early_fusion", model_cfg, CLASSES, 64, frontend=asdict(FrontendConfig()), text_dim=384,
                           text=cfg["text"])
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(1.5, 16000), 16000)
    with ThreadServer(create_app(Predictor([module.eval()]), Limits(max_bytes=200_000))) as s:
        assert httpx.get(f"{s.url}/model").json()["needs_transcript"] is True
        r = post(s.url, clip)
        assert r.status_code == 422 and "transcript" in r.json()["error"]
        r = post(s.url, clip, transcript="I can't believe you did that.")
        assert r.status_code == 200 and r.json()["transcript"] == "I can't believe you did that.", r.text
        big = tmp_path / "big.wav"
        sf.write(big, tone(8.0, 16000), 16000, subtype="PCM_16")  # 256 kB
        r = post(s.url, big, transcript="hello")
        assert r.status_code == 413 and "200000 bytes" in r.json()["error"]


def test_overload_gets_503_while_the_only_slot_is_busy(trained_run, tmp_path):
    predictor = emofuse.load(trained_run, device="cpu")
    entered, release = threading.Event(), threading.Event()
    real = predictor.predict

    def slow_predict(*args, **kwargs):
        entered.set()
        assert release.wait(60)
        return real(*args, **kwargs)

    predictor.predict = slow_predict
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(1.0, 16000), 16000)
    with ThreadServer(create_app(predictor, Limits(concurrency=1, queue=0))) as s:
        first: list = []
        t = threading.Thread(target=lambda: first.append(post(s.url, clip)))
        t.start()
        assert entered.wait(60)
        busy = post(s.url, clip)
        assert busy.status_code == 503 and "busy" in busy.json()["error"]
        h = httpx.get(f"{s.url}/health", timeout=5).json()  # the event loop answers while the model works
        assert h["running"] == 1
        release.set()
        t.join(60)
        assert first[0].status_code == 200
        assert post(s.url, clip).status_code == 200, "the slot is free again"


@pytest.mark.browser
def test_the_page_uploads_through_its_own_form_and_shows_the_result(service, tmp_path):
    from cdp import Chromium, find_chromium

    if find_chromium() is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(2.0, 22050, 180.0), 22050)
    talk = recording(tmp_path / "talk.wav", seconds=32.0)
    with Chromium() as b:
        b.goto(service + "/")
        assert b.wait_for("document.body.dataset.state === 'ready'")
        b.set_file("#file", clip)
        b.eval("document.querySelector('#send').click()")
        assert b.wait_for("['done', 'error'].includes(document.body.dataset.state) && document.body.dataset.state") == "done"
        label = b.eval("document.getElementById('label').textContent")
        bars = b.eval("[...document.querySelectorAll('#bars .row')].map(r => [r.dataset.cls, +r.dataset.prob])")
        assert label in CLASSES and [c for c, _ in bars] == CLASSES and abs(sum(p for _, p in bars) - 1) < 1e-4
        assert max(bars, key=lambda cp: cp[1])[0] == label
        direct = post(service, clip).json()
        assert direct["label"] == label and all(abs(direct["probs"][c] - p) < 1e-4 for c, p in bars)
        # a long file: the timeline is drawn, one coloured strip per speech segment
        b.set_file("#file", talk)
        b.eval("document.querySelector('#send').click()")
        b.wait_for("document.body.dataset.state === 'done' && document.querySelectorAll('#plot rect.seg').length")
        assert b.eval("document.querySelectorAll('#plot rect.seg').length") == 4
        # a file that is not audio: the page shows the one-line reason
        junk = tmp_path / "junk.wav"
        junk.write_text("not audio at all\n" * 20)
        b.set_file("#file", junk)
        b.eval("document.querySelector('#send').click()")
        b.wait_for("document.body.dataset.state === 'error'")
        assert "junk.wav" in b.eval("document.getElementById('status').textContent")
