"""MELD (Multimodal EmotionLines Dataset), audio extracted to WAV beforehand.

Release layout (MELD.Raw, github.com/declare-lab/MELD README; Poria et al., ACL 2019): one CSV per
official split, ``train_sent_emo.csv``, ``dev_sent_emo.csv``, ``test_sent_emo.csv`` (columns Sr No.,
Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, StartTime,
EndTime), and one video per utterance, ``dia{Dialogue_ID}_utt{Utterance_ID}.mp4``, in
``train_splits/``, ``dev_splits_complete/`` and ``output_repeated_splits_test/``. emofuse reads audio,
so extract it first, keeping the names (for example
``ffmpeg -i dia0_utt0.mp4 -ac 1 -ar 16000 dia0_utt0.wav`` in each folder). The CSVs and the split
folders may sit in the folder given or in ``train/``, ``dev/``, ``test/`` below it; folders named
just ``train/``, ``dev/``, ``test/`` holding the WAVs work too.

Emotions: anger, disgust, fear, joy, neutral, sadness, surprise. The split is recorded in the
``official_split`` column (train / dev / test); dialogue ids restart in each split, so utt_ids are
``<split>_dia<D>_utt<U>``.

Speaker: the ``Speaker`` column (the Friends character, one actor each), so folds are speaker
independent; season and episode are kept in ``season`` / ``episode`` / ``dialogue`` columns. The
six main characters speak in every official split: the official split is *not* speaker
independent (the audit fails it), and speaker folds leave each main character out in turn.
Rows naming several speakers ("All", "Monica and Rachel") are their own speaker.

Quirks handled: a CSV row whose WAV is missing (extraction failed, or the release lacks the
video: dev ``dia110_utt7`` is missing and train ``dia125_utt3`` is corrupt, declare-lab/MELD
issues #22, #27, #39) is reported as 'transcript without audio' and skipped; the decoder's
audio checks in prepare catch empty or truncated WAVs. Videos without a CSV row (``final_videos_test*``)
are ignored. Utterance texts with cp1252 mojibake (``â€™``) are repaired where the repair is exact.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import EmofuseError
from ..labels import MELD_CODES, get_class_map
from ..audio import AUDIO_EXTENSIONS
from .base import (BAD_ROW, TRANSCRIPT_NO_AUDIO, UNKNOWN_LABEL, Candidate, ParseResult, Problem, outside_problem,
                   register_corpus, relative_inside)
from .csv_corpus import read_csv_rows

SPLITS = {"train": ("train_splits", "train"), "dev": ("dev_splits_complete", "dev"),
          "test": ("output_repeated_splits_test", "test")}


def _fix_text(text: str) -> str:
    if "â" not in text and "Ã" not in text:
        return text
    try:
        return text.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _audio_dirs(root: Path, split: str) -> list[Path]:
    return [d for base in (root, root / split) for d in (base / n for n in SPLITS[split]) if d.is_dir()]


def _find(dirs: list[Path], stem: str) -> Path | None:
    for d in dirs:
        for ext in AUDIO_EXTENSIONS:
            if (d / f"{stem}{ext}").is_file():
                return d / f"{stem}{ext}"
    return None


@register_corpus("meld")
def parse_meld(root: Path, class_map: str | None = None, **options: str) -> ParseResult:
    cmap = get_class_map(class_map or "meld7", known=frozenset(MELD_CODES))
    tables = {s: next((p for p in (root / f"{s}_sent_emo.csv", root / s / f"{s}_sent_emo.csv") if p.is_file()), None)
              for s in SPLITS}
    if not any(tables.values()):
        raise EmofuseError(f"{root}: no MELD label file found (train_sent_emo.csv, dev_sent_emo.csv, test_sent_emo.csv); "
                           "pass the MELD.Raw folder")
    candidates: list[Candidate] = []
    problems: list[Problem] = []
    meta: list[Path] = []
    for split, table in tables.items():
        if table is None:
            continue
        meta.append(table)
        dirs = _audio_dirs(root, split)
        rows = read_csv_rows(table)
        need = {"Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"}
        if rows and not need <= set(rows[0]):
            raise EmofuseError(f"{table}: needs columns {sorted(need)}, found {sorted(rows[0])}; is this a MELD *_sent_emo.csv?")
        for lineno, row in enumerate(rows, start=2):
            where = f"{table.relative_to(root).as_posix()}:{lineno}"
            d, u = (row.get("Dialogue_ID") or "").strip(), (row.get("Utterance_ID") or "").strip()
            speaker, raw = (row.get("Speaker") or "").strip(), (row.get("Emotion") or "").strip().lower()
            if not d.isdigit() or not u.isdigit() or not speaker:
                problems.append(Problem(BAD_ROW, where, "Dialogue_ID and Utterance_ID must be numbers and Speaker filled in"))
                continue
            if not cmap.is_known(raw):
                problems.append(Problem(UNKNOWN_LABEL, where, f"emotion {raw!r} is not one of {sorted(MELD_CODES)}"))
                continue
            stem = f"dia{d}_utt{u}"
            f = _find(dirs, stem)
            if f is None:
                shown = (dirs[0] if dirs else root / SPLITS[split][0]) / f"{stem}.wav"
                problems.append(Problem(TRANSCRIPT_NO_AUDIO, shown.relative_to(root).as_posix(),
                                        f"{where} has no extracted audio; extract {stem}.mp4 to WAV, or leave it skipped"))
                continue
            rel = f.relative_to(root).as_posix()
            if relative_inside(root, rel) is None:
                problems.append(outside_problem(root, where, rel))
                continue
            candidates.append(Candidate(
                f"{split}_{stem}", rel, f"meld_{speaker}", f"meld_{speaker}", raw, "", _fix_text((row.get("Utterance") or "").strip()),
                {"official_split": split, "dialogue": f"{split}_dia{d}", "season": (row.get("Season") or "").strip(),
                 "episode": (row.get("Episode") or "").strip(), "sentiment": (row.get("Sentiment") or "").strip()},
            ))
    return ParseResult(candidates, problems, meta, cmap)
