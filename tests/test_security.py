"""Untrusted inputs (issue #16): checkpoints that would run code, data values that would become live
HTML, and paths that would lead reads out of the corpus root or writes out of ``--out``.

One tiny CV run on a CSV corpus whose labels, speakers and utt_ids are hostile strings is shared by
the tests here (module scope): it is both the "received run folder" and the real checkpoint source.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
import torch

import emofuse
from conftest import TINY, assert_tables_whole, run_cli, tone
from emofuse.errors import EmofuseError
from emofuse.prepare import prepare

# Hostile data values. Each payload is observable if it ever runs: it changes the page title or
# marks the document, which a headless browser's DOM dump shows.
SCRIPT_LABEL = "<script>document.title='PWNED'</script>"
LINK_LABEL = "[click](javascript:document.title='PWNED')"
PIPE_LABEL = "sad|mad & co"
IMG_SPEAKER = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
LABELS = [SCRIPT_LABEL, LINK_LABEL, PIPE_LABEL, "neutral"]
SPEAKERS = [IMG_SPEAKER, "s<b>2</b>", "s3", "s4"]


class _Evil:
    """Unpickling this runs a shell command that creates ``marker`` (what a crafted .ckpt does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def write_evil_ckpt(path: Path, marker: Path, zip_format: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if zip_format:  # torch.save's zip container with the payload inside a plausible checkpoint dict
        torch.save({"emofuse_version": emofuse.__version__, "hyper_parameters": {"model_name": "cnn_bilstm"},
                    "state_dict": _Evil(marker)}, path)
    else:  # a bare pickle (torch.load's legacy format)
        path.write_bytes(pickle.dumps(_Evil(marker)))
    return path


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A CSV corpus of hostile labels/speakers/utt_ids -> prepare -> cv (2 folds, tiny model)."""
    base = tmp_path_factory.mktemp("hostile")
    root = base / "corpus"
    (root / "clips").mkdir(parents=True)
    rows = []
    for si, spk in enumerate(SPEAKERS):
        for li, lab in enumerate(LABELS):
            for j in range(3):
                name = f"clips/s{si}_l{li}_{j}.wav"
                sf.write(root / name, tone(0.9, 16000, 140.0 + 40 * li, seed=si * 10 + j), 16000)
                # utt_ids that climb out of any folder they are joined to
                rows.append({"path": name, "label": lab, "speaker": spk, "text": f"<i>said</i> {j}",
                             "utt_id": f"../../../esc_s{si}_l{li}_{j}"})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    prepare("csv", root, base / "manifest", workers=1)
    run = base / "runs" / "run"
    r = run_cli("cv", "demo", f"data.manifest={base / 'manifest'}", *TINY, "--folds", "0,1", "name=<b>bold</b>",
                "--out", str(run))
    assert r.returncode == 0, r.stderr[-3000:]
    return run


def received_copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "received"
    shutil.copytree(run, dst, symlinks=True)
    for p in dst.glob("report.*"):
        p.unlink()
    return dst


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emofuse: error:"), r.stderr[-2000:]
    return lines[0]


# ----------------------------------------------------------------------------- 6. checkpoints

def test_real_checkpoints_load_with_weights_only(hostile_run):
    for k in (0, 1):
        for name in ("best.ckpt", "last.ckpt"):
            raw = torch.load(hostile_run / f"fold_{k}" / "checkpoints" / name, map_location="cpu", weights_only=True)
            assert raw["hyper_parameters"]["model_name"] == "cnn_bilstm" and raw["state_dict"]
            assert raw["hyper_parameters"]["classes"] == sorted(LABELS)


def test_checkpoint_hyper_parameters_are_made_plain(tmp_path):
    """Values a config may carry (numpy numbers, paths, tuples) are stored as plain types, so the
    checkpoint still loads weights-only; a value that cannot be made plain fails at save time."""
    import numpy as np

    from emofuse.training.module import plain

    hp = {"spec_table": [(np.int64(2), 8, 2, np.int32(20))], "mean": np.zeros(3, dtype=np.float32), "lr": np.float32(0.5),
          "frontend": {"root": Path("/data"), "htk": np.bool_(False)}}
    torch.save({"hyper_parameters": plain(hp)}, tmp_path / "c.ckpt")
    back = torch.load(tmp_path / "c.ckpt", weights_only=True)["hyper_parameters"]
    assert back == {"spec_table": [(2, 8, 2, 20)], "mean": [0.0, 0.0, 0.0], "lr": 0.5, "frontend": {"root": "/data", "htk": False}}
    with pytest.raises(TypeError, match=r"hp\.model_kwargs\.act"):
        plain({"model_kwargs": {"act": torch.nn.ReLU()}}, "hp")


@pytest.mark.parametrize("zip_format", [True, False])
def test_crafted_checkpoint_never_runs_in_load(tmp_path, zip_format):
    marker = tmp_path / "PWNED"
    ckpt = write_evil_ckpt(tmp_path / "evil.ckpt", marker, zip_format)
    with pytest.raises(EmofuseError, match="evil.ckpt.*refused") as info:
        emofuse.load(ckpt, device="cpu")
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_crafted_checkpoint_never_runs_in_the_commands(hostile_run, tmp_path):
    marker = tmp_path / "PWNED"
    ckpt = write_evil_ckpt(tmp_path / "evil.ckpt", marker)
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(1.0), 16000)
    for args in (["predict", str(ckpt), str(clip)], ["explain", str(ckpt), str(clip), "--out", str(tmp_path / "maps")],
                 ["export", str(ckpt), "--format", "torchscript", "--out", str(tmp_path / "ts")]):
        line = one_line_error(run_cli(*args))
        assert "evil.ckpt" in line and "refused" in line, line
        assert not marker.exists(), args[0]
    # A received run folder whose fold 0 checkpoint is crafted: the report keeps its numbers and
    # skips the maps with a note; nothing runs.
    run = received_copy(hostile_run, tmp_path)
    write_evil_ckpt(run / "fold_0" / "checkpoints" / "best.ckpt", marker)
    r = run_cli("report", str(run), "--cams", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert not marker.exists()
    page = (run / "report.html").read_text()
    assert "maps skipped" in page and "refused" in page
    # ... and predicting with that run folder (the ensemble) stops with one line.
    line = one_line_error(run_cli("predict", str(run), str(clip)))
    assert "best.ckpt" in line and not marker.exists()


def test_run_folder_checkpoints_stay_inside_the_run(hostile_run, tmp_path):
    run = received_copy(hostile_run, tmp_path)
    outside = tmp_path / "elsewhere" / "x.ckpt"
    outside.parent.mkdir()
    shutil.copy(hostile_run / "fold_0" / "checkpoints" / "best.ckpt", outside)  # a valid checkpoint, but outside
    metrics = run / "fold_0" / "metrics.json"
    m = json.loads(metrics.read_text())
    m["checkpoint"] = "../elsewhere/x.ckpt"
    metrics.write_text(json.dumps(m))
    with pytest.raises(EmofuseError, match=r"fold_0/metrics\.json.*outside the run folder"):
        emofuse.load(run, device="cpu")
    m["checkpoint"] = str(outside)  # an absolute path: the same
    metrics.write_text(json.dumps(m))
    with pytest.raises(EmofuseError, match="outside the run folder"):
        emofuse.load(run, device="cpu")
    # A symbolic link inside the run that points outside it is refused too.
    m["checkpoint"] = "fold_0/checkpoints/best.ckpt"
    metrics.write_text(json.dumps(m))
    best = run / "fold_0" / "checkpoints" / "best.ckpt"
    best.unlink()
    best.symlink_to(outside)
    with pytest.raises(EmofuseError, match="outside the run folder"):
        emofuse.load(run, device="cpu")
    with pytest.raises(EmofuseError, match="outside the fold folder"):
        emofuse.load(run / "fold_0", device="cpu")
    # The untouched run loads.
    assert len(emofuse.load(hostile_run, device="cpu").modules) == 2


# ----------------------------------------------------------------------------- 7. HTML injection

class _Tags(HTMLParser):
    """Every element and attribute a browser would build from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs


def test_report_escapes_every_data_value(hostile_run, tmp_path):
    run = received_copy(hostile_run, tmp_path)
    r = run_cli("report", str(run), "--cams", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    page = (run / "report.html").read_text()
    parsed = _Tags()
    parsed.feed(page)
    assert "script" not in parsed.tags and "b" not in parsed.tags and "i" not in parsed.tags
    assert not any(name.startswith("on") for name, _ in parsed.attrs), "no event handler attributes"
    assert not any(v and v.strip().lower().startswith("javascript:") for _, v in parsed.attrs), "no javascript: links"
    assert parsed.tags.count("img") >= 3, "the figures are still there"
    # The values are shown, as text.
    for value in (SCRIPT_LABEL, IMG_SPEAKER, PIPE_LABEL, "<b>bold</b>"):
        assert __import__("html").escape(value, quote=False) in page or __import__("html").escape(value) in page, value
    # Markdown outputs carry no live HTML and no broken tables.
    for md in (run / "report.md", run / "results.md"):
        text = md.read_text()
        assert "<script" not in text and "<img" not in text and "<b>" not in text, md.name
        assert not re.search(r"(?<!\\)\]\(javascript:", text), f"{md.name}: a live link"
        assert_tables_whole(text)
    # compare: the same for its table (and its file)
    r = run_cli("compare", str(run), "--out", str(tmp_path / "t.md"))
    assert r.returncode == 0, r.stderr[-2000:]
    table = (tmp_path / "t.md").read_text()
    assert "<b>" not in table and "&lt;b&gt;bold&lt;/b&gt;" in table
    assert any(line.startswith("|---") for line in table.splitlines()), table
    assert_tables_whole(table)


@pytest.mark.browser
def test_hostile_report_runs_no_script_in_headless_chromium(hostile_run, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium)")
    run = received_copy(hostile_run, tmp_path)
    assert run_cli("report", str(run), "--cams", "0").returncode == 0
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=2000",
                           "--dump-dom", (run / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "<body" in proc.stdout, proc.stderr[-2000:]
    dom = proc.stdout
    title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert "PWNED" not in title and title.startswith("emofuse report")
    assert not re.search(r"<body[^>]*data-pwned", dom), "the onerror handler ran"
    assert "<img src=\"x\"" not in dom and "<script>" not in dom
    assert "&lt;script&gt;" in dom, "the label is shown as text"


# ----------------------------------------------------------------------------- 8. paths

def _csv_corpus(tmp_path: Path, rows: list[str]) -> Path:
    root = tmp_path / "corpus"
    (root / "clips").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    for i in range(4):
        sf.write(root / "clips" / f"c{i}.wav", tone(0.6, seed=i), 16000)
    sf.write(tmp_path / "outside" / "x.wav", tone(0.6, seed=9), 16000)
    (root / "clips" / "link.wav").symlink_to(tmp_path / "outside" / "x.wav")
    (root / "metadata.csv").write_text("path,label,speaker\n" + "".join(f"clips/c{i}.wav,{'ab'[i % 2]},s{i // 2}\n" for i in range(4))
                                       + "".join(r + "\n" for r in rows))
    return root


def test_csv_rows_outside_the_root_are_skipped(tmp_path):
    root = _csv_corpus(tmp_path, ["../outside/x.wav,a,s9", "clips/../../outside/x.wav,b,s9", "clips/link.wav,a,s9",
                                  f"{tmp_path / 'outside' / 'x.wav'},a,s9", "clips/../clips/c0.wav,a,s8"])
    s = prepare("csv", root, tmp_path / "m", workers=1)
    assert s.skipped == {"path outside the corpus root": 4} and s.rows == 5
    skipped = pd.read_csv(tmp_path / "m" / "skipped.csv")
    assert skipped["detail"].str.contains("outside the corpus root").all()
    assert skipped["detail"].str.contains("../outside/x.wav", regex=False).any()
    m = pd.read_csv(tmp_path / "m" / "manifest.csv")
    assert not m["path"].str.contains("outside").any() and not m["path"].str.contains("link").any()
    r = run_cli("prepare", "csv", str(root), "--out", str(tmp_path / "m2"), "--strict")
    line = one_line_error(r)
    assert "metadata.csv:6" in line and "outside the corpus root" in line and "../outside/x.wav" in line


def test_ravdess_and_iemocap_paths_outside_the_root_are_skipped(tmp_path):
    from conftest import write_iemocap_release, write_ravdess

    outside = tmp_path / "outside"
    outside.mkdir()
    sf.write(outside / "03-01-05-02-01-01-09.wav", tone(0.6), 16000)
    rav = write_ravdess(tmp_path / "rav", actors=(1, 2), emotions=("01", "05"), sr=16000, channels=1)
    (rav / "Actor_01" / "03-01-05-02-01-02-01.wav").symlink_to(outside / "03-01-05-02-01-01-09.wav")
    (rav / "Actor_09").symlink_to(outside, target_is_directory=True)
    s = prepare("ravdess", rav, tmp_path / "mr", workers=1)
    assert s.skipped == {"path outside the corpus root": 2} and s.rows == 8

    # IEMOCAP release: an EmoEvaluation line whose utterance id climbs out of the session
    iem = write_iemocap_release(tmp_path / "IEMOCAP", sr=16000, channels=1)
    evil = "Ses01F_x/../../../../../../outside/Ses01F_impro01_F000"
    (iem / "Session1/sentences/wav/Ses01F_impro01/Ses01F_x").mkdir()  # so that the OS would walk the '..'s
    (outside / "Ses01F_impro01_F000.wav").write_bytes((iem / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav").read_bytes())
    with open(iem / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt", "a") as fh:
        fh.write(f"[20.0000 - 21.0000]\t{evil}\tneu\t[2.5, 2.5, 2.5]\n")
    s = prepare("iemocap", iem, tmp_path / "mi", workers=1)
    assert s.skipped["path outside the corpus root"] == 1
    assert not pd.read_csv(tmp_path / "mi" / "manifest.csv")["path"].str.contains("outside").any()

    # IEMOCAP wavs/ + labels.csv: a file_name that climbs out of wavs/
    simple = tmp_path / "simple"
    (simple / "wavs" / "Session1").mkdir(parents=True)
    sf.write(simple / "wavs" / "Session1" / "Ses01F_impro01_F000.wav", tone(0.6), 16000)
    sf.write(simple / "wavs" / "Session1" / "Ses01F_impro01_M001.wav", tone(0.6, seed=3), 16000)
    (simple / "labels.csv").write_text("file_name,emotion_label\nSes01F_impro01_F000.wav,neu\nSes01F_impro01_M001.wav,ang\n"
                                       "../../../outside/Ses01F_impro01_F009.wav,sad\n")
    sf.write(outside / "Ses01F_impro01_F009.wav", tone(0.6, seed=4), 16000)
    s = prepare("iemocap", simple, tmp_path / "ms", workers=1)
    assert s.skipped == {"path outside the corpus root": 1} and s.rows == 2


def _victim(tmp_path: Path, name: str) -> Path:
    v = tmp_path / "victims" / name
    v.parent.mkdir(exist_ok=True)
    v.write_text("precious")
    return v


def test_export_replaces_symlinks_instead_of_writing_through_them(hostile_run, tmp_path):
    """out/model.pt, out/model.json, out/model.onnx are links to files elsewhere."""
    out = tmp_path / "ts"
    out.mkdir()
    links = {"model.pt": _victim(tmp_path, "a"), "model.json": _victim(tmp_path, "b")}
    for name, target in links.items():
        (out / name).symlink_to(target)
    r = run_cli("export", str(hostile_run), "--format", "torchscript", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    for name, target in links.items():
        assert target.read_text() == "precious", name
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 100, name
    assert json.loads((out / "model.json").read_text())["classes"] == sorted(LABELS)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [], "no temporary files left"
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    (onnx / "model.onnx").symlink_to(_victim(tmp_path, "c"))
    r = run_cli("export", str(hostile_run), "--format", "onnx", "--out", str(onnx))
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "victims" / "c").read_text() == "precious" and not (onnx / "model.onnx").is_symlink()


def test_explain_replaces_a_symlinked_png(hostile_run, tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(1.0), 16000)
    (maps / "clip.png").symlink_to(_victim(tmp_path, "d"))
    r = run_cli("explain", str(hostile_run), str(clip), "--out", str(maps))
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "victims" / "d").read_text() == "precious"
    assert not (maps / "clip.png").is_symlink() and (maps / "clip.png").read_bytes()[:4] == b"\x89PNG"


def test_report_writes_only_inside_the_run(hostile_run, tmp_path):
    """A received run whose report.html / report.md are links, and whose utt_ids climb out of the run."""
    run = received_copy(hostile_run, tmp_path)
    (run / "report.html").symlink_to(_victim(tmp_path, "e"))
    (run / "report.md").symlink_to(_victim(tmp_path, "f"))
    # where run / f".cam_{utt}.png" would land for utt "../../../esc_..."
    sentinels = [run.parent / f"esc_s{si}_l{li}_{j}.png" for si in range(4) for li in range(4) for j in range(3)]
    for s in sentinels:
        s.write_text("precious")
    before = {p for p in tmp_path.rglob("*")}
    r = run_cli("report", str(run), "--cams", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("e", "f"):
        assert (tmp_path / "victims" / name).read_text() == "precious"
    assert not (run / "report.html").is_symlink() and "<html" in (run / "report.html").read_text()
    assert all(s.read_text() == "precious" for s in sentinels)
    assert "class activation" in (run / "report.html").read_text().lower()
    new = {p for p in tmp_path.rglob("*")} - before
    assert all(p.is_relative_to(run) for p in new), sorted(map(str, new))
    assert (run / "report.html").read_text().count("<figure>") >= 2 + 2, "per-fold confusions and the maps"

    # Files the report embeds are the run's own: a link to a file elsewhere is left out.
    secret = _victim(tmp_path, "secret")
    secret.write_text("password: hunter2")
    (run / "config.yaml").unlink()
    (run / "config.yaml").symlink_to(secret)
    (run / "confusion.png").unlink()
    (run / "confusion.png").symlink_to(secret)
    (run / "fold_1" / "metrics.json").unlink()  # the per-fold confusion is drawn from it
    (run / "fold_1" / "metrics.json").symlink_to(secret)
    assert run_cli("report", str(run), "--cams", "0").returncode == 0
    page = (run / "report.html").read_text()
    assert "hunter2" not in page and __import__("base64").b64encode(b"password: hunter2").decode() not in page
    assert "alt='fold 0'" in page and "alt='fold 1'" not in page and "alt='pooled confusion'" not in page
