"""``emofuse serve RUN``: a local HTTP service around a loaded run (FastAPI + uvicorn, the ``serve`` extra).

Routes:
    GET  /         the web page (``serve_page.PAGE``: upload a file or record the microphone)
    POST /predict  multipart form: ``file`` (audio in any format ``predict`` reads) and, for text
                   and fusion models, ``transcript``. JSON: label, every class probability, the
                   model and its classes; a file longer than ``Limits.timeline_seconds`` also gets
                   ``timeline`` (speech segments, each classified: ``emofuse.timeline``).
    GET  /model    classes, modalities, front end, limits
    GET  /health   liveness and the number of requests running and waiting

The run is loaded once. A bad request gets a 4xx JSON ``{"error": one line}`` and the service
goes on: not audio (415), empty, truncated, silent or too short (422), longer than
``max_seconds`` or ``max_bytes`` (413), a text model without a transcript (422). At most
``concurrency`` predictions run at once, in worker threads (the event loop keeps answering);
``queue`` more may wait; beyond that a request gets 503 before its upload is read. An upload
goes to a temporary file as it arrives (never whole in memory, cut off at ``max_bytes``), and
audio is decoded block by block, so a request's memory does not grow with the file.
"""

# No 'from __future__ import annotations': FastAPI reads the route functions' annotations (Request) at run time.

import asyncio
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import EmofuseError


@dataclass(frozen=True)
class Limits:
    """What the service accepts and how much it does at once.

    Args:
        max_seconds: longest audio accepted (413 beyond).
        max_bytes: largest upload accepted (413 beyond).
        concurrency: predictions running at once.
        queue: requests allowed to wait for a free slot; more get 503.
        timeline_seconds: files longer than this are answered with a timeline too.
    """

    max_seconds: float = 3600.0
    max_bytes: int = 2**30  # an hour of 44.1 kHz stereo 16-bit WAV is 635 MB; uploads go to disk, not memory
    concurrency: int = 1
    queue: int = 16
    timeline_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not (self.max_seconds > 0 and self.max_bytes > 0 and self.concurrency >= 1 and self.queue >= 0
                and self.timeline_seconds > 0):
            raise EmofuseError(f"service limits {self}: need max_seconds > 0, max_bytes > 0, concurrency >= 1, "
                               "queue >= 0 and timeline_seconds > 0")


class Refused(Exception):
    """A request the service turns down: an HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


FORM_OVERHEAD = 64 * 1024  # multipart boundaries, headers and a transcript on top of the audio itself


def describe(predictor, limits: Limits) -> dict:
    """The ``GET /model`` answer: what the model reads and returns, and the service's limits."""
    from . import __version__

    hp = predictor.modules[0].hparams
    return {"model": hp.get("model_name"), "classes": list(predictor.classes), "modalities": list(predictor.modalities),
            "needs_transcript": predictor.needs_text and not _transcribes(predictor),
            "transcribes": predictor.needs_text and _transcribes(predictor),
            "frontend": dict(hp.get("frontend") or {}), "folds": len(predictor.modules),
            "checkpoints": [str(s) for s in predictor.sources], "window_seconds": predictor.window,
            "limits": asdict(limits), "emofuse_version": __version__}


def _transcribes(predictor) -> bool:
    return (predictor.text_cfg or {}).get("source") == "asr"


def predict_file(predictor, path: Path, name: str, transcript: str | None, limits: Limits) -> dict:
    """Check and classify one uploaded file (runs in a worker thread). Raises ``Refused``."""
    from .audio import EMPTY, NON_FINITE, SILENT, TRUNCATED, audio_seconds, check_audio
    from .timeline import VadConfig, timeline

    def own(msg: str) -> str:  # the temporary path means nothing to the client: name its upload
        return msg.replace(str(path), name)

    if path.stat().st_size == 0:
        raise Refused(422, f"{name}: empty upload (0 bytes); send an audio file")
    try:
        header_seconds = audio_seconds(path)
    except EmofuseError as exc:
        raise Refused(415, own(str(exc)).replace("re-export it as WAV/FLAC or remove it", "send WAV, FLAC, OGG or MP3 audio")) from None
    if header_seconds > limits.max_seconds and math.isfinite(header_seconds):
        raise Refused(413, f"{name}: {header_seconds:.1f} s of audio, longer than this service's limit of "
                           f"{limits.max_seconds:g} s; send a shorter file (or start the service with a larger --max-seconds)")
    check = check_audio(path)
    reasons = {EMPTY: (422, "holds no audio samples; send a recording"),
               TRUNCATED: (422, "truncated: fewer samples than its header announces (an interrupted copy?); send the whole file"),
               SILENT: (422, "silent; there is nothing to classify"),
               NON_FINITE: (422, "holds NaN or infinite samples; re-export it")}
    if check.problem in reasons:
        status, why = reasons[check.problem]
        raise Refused(status, f"{name}: {why}")
    if check.problem is not None:
        raise Refused(415, f"{name}: not audio this service can decode ({check.problem}); send WAV, FLAC, OGG or MP3")
    if check.duration > limits.max_seconds:
        raise Refused(413, f"{name}: {check.duration:.1f} s of audio, longer than this service's limit of "
                           f"{limits.max_seconds:g} s; send a shorter file")
    out = {"file": name, "classes": list(predictor.classes), "model": predictor.modules[0].hparams.get("model_name"),
           "folds": len(predictor.modules), "transcript": transcript, "timeline": None}
    try:
        manual_text = predictor.needs_text and not _transcribes(predictor)
        if check.duration > limits.timeline_seconds and not manual_text:
            tl = timeline(predictor, path, VadConfig(max_seconds=predictor.window))
            return {**out, "label": tl.label, "probs": tl.probs, "seconds": tl.seconds, "windows": len(tl.segments),
                    "timeline": tl.as_dict()}
        pred = predictor.predict(path, text=transcript, utt=name)
    except EmofuseError as exc:
        raise Refused(422, own(str(exc))) from None
    return {**out, "label": pred.label, "probs": pred.probs, "seconds": pred.seconds, "windows": pred.windows}


def create_app(predictor, limits: Limits = Limits(), source: str = ""):
    """The ASGI application for a loaded ``Predictor`` (``emofuse.load``)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.formparsers import MultiPartException, MultiPartParser

    from .serve_page import PAGE

    app = FastAPI(title="emofuse", description=f"speech emotion recognition: {source}", docs_url=None, redoc_url=None)
    model = describe(predictor, limits)
    slots = asyncio.Semaphore(limits.concurrency)
    state = {"admitted": 0, "running": 0, "served": 0, "refused": 0}

    def refuse(status: int, reason: str) -> JSONResponse:
        state["refused"] += 1
        return JSONResponse({"error": " ".join(reason.split())}, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "running": state["running"], "waiting": state["admitted"] - state["running"],
                "served": state["served"], "refused": state["refused"]}

    @app.get("/model")
    async def model_info() -> dict:
        return model

    @app.post("/predict")
    async def predict(request: Request):
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return refuse(415, f"send multipart/form-data with the audio in the field 'file' (got {ctype or 'no content type'}); "
                               "e.g. curl -F file=@clip.wav URL/predict")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limits.max_bytes + FORM_OVERHEAD:
            return refuse(413, f"upload of {int(length)} bytes is larger than this service's limit of {limits.max_bytes} bytes; "
                               "send a shorter or compressed file")
        if state["admitted"] >= limits.concurrency + limits.queue:
            return refuse(503, f"busy: {state['running']} predictions running and {state['admitted'] - state['running']} "
                               "waiting; try again in a moment")
        state["admitted"] += 1
        try:
            tmpdir = tempfile.TemporaryDirectory(prefix="emofuse-serve-")
        except OSError as exc:
            state["admitted"] -= 1
            return refuse(507, f"the server cannot store the upload ({exc.strerror or exc}); free space in its temporary "
                               "folder (TMPDIR) and try again")
        with tmpdir as tmp:
            try:
                try:
                    name, path, transcript = await _receive(request, Path(tmp), limits, MultiPartParser, MultiPartException)
                except Refused as r:
                    return refuse(r.status, r.reason)
                if model["needs_transcript"] and not transcript:
                    return refuse(422, f"{name}: this model ({model['model']}) reads the transcript too; send it in the "
                                       "form field 'transcript'")
                async with slots:
                    state["running"] += 1
                    try:
                        result = await run_in_threadpool(predict_file, predictor, path, name, transcript, limits)
                    except Refused as r:
                        return refuse(r.status, r.reason)
                    except Exception as exc:  # a bug, not the client's fault: one line, and the service goes on
                        return refuse(500, f"{name}: internal error ({type(exc).__name__}: {str(exc)[:200]}); "
                                           "please report it with the file")
                    finally:
                        state["running"] -= 1
            finally:
                state["admitted"] -= 1
        state["served"] += 1
        return result

    return app


async def _receive(request, folder: Path, limits: Limits, parser_cls, parser_error) -> tuple[str, Path, str | None]:
    """Read the multipart upload (spooled to disk, cut off past the byte limit) -> (file name, path, transcript)."""
    seen = 0

    async def body():
        nonlocal seen
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limits.max_bytes + FORM_OVERHEAD:
                raise Refused(413, f"upload larger than this service's limit of {limits.max_bytes} bytes; "
                                   "send a shorter or compressed file")
            yield chunk

    try:
        form = await parser_cls(request.headers, body(), max_files=1, max_fields=4).parse()
    except parser_error as exc:
        raise Refused(400, f"malformed multipart form ({exc.message}); send the audio in the field 'file'") from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Refused(422, "no file in the form; send the audio in the field 'file' (curl -F file=@clip.wav ...)")
        name = Path(upload.filename or "upload").name[:120] or "upload"
        suffix = Path(name).suffix.lower()
        path = folder / ("upload" + (suffix if suffix.isascii() and suffix[1:].isalnum() and len(suffix) <= 6 else ""))
        from starlette.concurrency import run_in_threadpool

        def copy() -> None:  # up to max_bytes: in a worker thread, so the event loop (and /health) goes on
            with open(path, "wb") as out:
                shutil.copyfileobj(upload.file, out, 1 << 20)

        await run_in_threadpool(copy)
        if path.stat().st_size > limits.max_bytes:
            raise Refused(413, f"{name}: {path.stat().st_size} bytes, larger than this service's limit of "
                               f"{limits.max_bytes} bytes; send a shorter or compressed file")
        text = form.get("transcript")
        text = text.strip() if isinstance(text, str) and text.strip() else None
        return name, path, text
    finally:
        await form.close()


def serve(model: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, limits: Limits = Limits(),
          device: str | None = None, window_seconds: float = 8.0) -> None:
    """Load ``model`` once and serve it until interrupted."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401  (multipart uploads)
        import uvicorn
    except ImportError as exc:
        raise EmofuseError(f"the service needs FastAPI, uvicorn and python-multipart ({exc.name} is missing): "
                           "pip install 'emofuse[serve]'") from None
    from .inference import load

    predictor = load(model, device, window_seconds)
    app = create_app(predictor, limits, str(model))
    info = describe(predictor, limits)
    print(f"emofuse serve: {model} ({info['model']}, {info['folds']} fold(s), classes {', '.join(info['classes'])}) "
          f"on http://{host}:{port}  (Ctrl+C stops)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"emofuse serve: bound to {host}: reachable from other machines, without authentication", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    except SystemExit as exc:  # uvicorn exits when it cannot bind
        raise EmofuseError(f"cannot listen on {host}:{port} (in use, or not an address of this machine); "
                           "choose another --port or --host") from exc
