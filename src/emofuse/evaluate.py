"""Cross-corpus evaluation: a trained run (its fold ensemble, one fold or one checkpoint) applied
to every utterance of another prepared manifest.

The run's classes and the manifest's classes are aligned by name (the built-in class maps share
names: ``angry``, ``happy``, ``sad``, ``neutral``, ...). Nothing is dropped silently:

- an utterance whose class the run cannot predict (``calm`` for a 4-class run) is counted per
  class and left out of the metrics;
- a class the run predicts that the corpus never labels stays in the prediction space: choosing
  it is an error, and the class gets a row in the confusion matrix and an F1 of 0 (the macro
  averages run over the classes present in the corpus, as in ``compute_metrics``);
- an utterance whose audio is byte-identical to one the run trained on (its ``inputs/manifest.csv``
  ``audio_sha1``) is counted and left out; speaker ids shared with the training manifest are
  reported (different corpora's ids rarely collide: the parsers prefix them with the corpus).

Writes ``metrics.json``, ``predictions.csv``, ``confusion.png`` and ``results.md`` into ``out``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import write_csv_atomic, write_text_atomic
from .errors import EmofuseError
from .manifest import read_manifest
from .metrics import compute_metrics, plot_confusion
from .writable import check_writable


def align_classes(run_classes: list[str], corpus_classes: list[str]) -> dict:
    """The by-name alignment of a run's classes with a corpus's classes."""
    shared = [c for c in run_classes if c in corpus_classes]
    if not shared:
        raise EmofuseError(f"the run predicts {run_classes} and the manifest labels {corpus_classes}: no class in common; "
                           "prepare the corpus with a class map that uses the run's class names (e.g. a '...4' map)")
    return {"shared": shared, "run_only": [c for c in run_classes if c not in corpus_classes],
            "corpus_only": [c for c in corpus_classes if c not in run_classes]}


def training_table(sources: list[Path]) -> pd.DataFrame | None:
    """The manifest columns the run trained on (``<run>/inputs/manifest.csv``), found above its checkpoints."""
    for src in sources:
        for folder in Path(src).resolve().parents:
            table = folder / "inputs" / "manifest.csv"
            if table.is_file():
                return pd.read_csv(table, dtype=str, keep_default_na=False)
    return None


def evaluate(run: str | Path, manifest: str | Path, out: str | Path, device: str | None = None,
             window_seconds: float = 8.0, text_column: str | None = None) -> dict:
    """Predict every utterance of ``manifest`` with ``run`` and write the metrics into ``out``.

    Args:
        run: a CV run folder (fold ensemble), a fold folder or a ``.ckpt`` file.
        manifest: a manifest folder or CSV written by ``emofuse prepare`` (another corpus).
        out: the folder to write metrics.json, predictions.csv, confusion.png, results.md.
        text_column: the manifest column a text model reads (default ``text``).

    Returns:
        the metrics record written to ``metrics.json``.
    """
    from .inference import load

    out = check_writable(out, "evaluation", "give --out a folder you can write to")
    m = read_manifest(manifest)
    column = text_column or "text"
    if column not in m.df.columns:
        raise EmofuseError(f"{m.path}: no column {column!r}; choose --text-column from {list(m.df.columns)}")
    predictor = load(run, device, window_seconds)
    classes = list(predictor.classes)
    align = align_classes(classes, m.classes)

    trained = training_table(predictor.sources)
    seen_audio = set(trained["audio_sha1"]) if trained is not None and "audio_sha1" in trained.columns else set()
    shared_speakers = sorted(set(trained["speaker"]) & set(m.df["speaker"])) if trained is not None else []

    rows, y_true, y_pred = [], [], []
    not_predictable: dict[str, int] = {}
    in_training, failed = 0, 0
    for r in m.df.itertuples(index=False):
        row = {"utt_id": r.utt_id, "speaker": r.speaker, "label": r.label, "pred": "", "used": False, "skipped": ""}
        if r.label not in classes:
            not_predictable[r.label] = not_predictable.get(r.label, 0) + 1
            row["skipped"] = "class the run cannot predict"
        elif seen_audio and getattr(r, "audio_sha1", "") in seen_audio:
            in_training += 1
            row["skipped"] = "audio the run trained on"
        else:
            text = str(getattr(r, column, "")) if predictor.needs_text else None
            try:
                p = predictor.predict(m.audio_path(r.path), text=text, utt=r.utt_id)
            except (EmofuseError, OSError) as exc:
                failed += 1
                row["skipped"] = str(exc)
                print(f"emofuse: skipped {r.utt_id}: {exc}", file=sys.stderr)
            else:
                row.update(pred=p.label, used=True, **{f"p_{c}": round(v, 5) for c, v in p.probs.items()})
                y_true.append(classes.index(r.label))
                y_pred.append(classes.index(p.label))
        rows.append(row)
    if not y_true:
        raise EmofuseError(f"{m.path}: none of its {len(m.df)} utterances could be evaluated (classes the run cannot "
                           f"predict: {not_predictable}, audio the run trained on: {in_training}, failed: {failed})")
    metrics = compute_metrics(np.array(y_true), np.array(y_pred), classes)
    record = {
        "run": [str(s) for s in predictor.sources], "manifest": str(m.path.resolve()), "corpus": m.meta.get("corpus", ""),
        "classes": classes, "alignment": align, "metrics": metrics,
        "counts": {"manifest": len(m.df), "evaluated": len(y_true), "not_predictable_by_class": not_predictable,
                   "audio_the_run_trained_on": in_training, "failed": failed},
        "training_overlap": ("not checked: no inputs/manifest.csv above the checkpoints" if trained is None else
                             {"same_audio_left_out": in_training, "shared_speaker_ids": shared_speakers[:20],
                              "shared_speaker_count": len(shared_speakers)}),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "metrics.json", json.dumps(record, indent=2))
    write_csv_atomic(pd.DataFrame(rows), out / "predictions.csv")
    plot_confusion(metrics["confusion"], classes, out / "confusion.png",
                   f"{m.meta.get('corpus') or m.path.parent.name} (rows: true class, normalised)")
    write_text_atomic(out / "results.md", results_markdown(record))
    return record


def results_markdown(record: dict) -> str:
    """The evaluation's headline, and every item left out with the reason."""
    mt, c, a = record["metrics"], record["counts"], record["alignment"]
    lines = [f"# Cross-corpus evaluation on {record['corpus'] or record['manifest']}", "",
             f"Macro-F1 {mt['macro_f1']:.3f}, UA {mt['ua']:.3f}, WA {mt['wa']:.3f} on {c['evaluated']} of "
             f"{c['manifest']} utterances.", "",
             f"- classes evaluated (in both): {', '.join(a['shared'])}",
             f"- classes the run predicts but the corpus never labels (F1 0, kept as wrong answers): "
             f"{', '.join(a['run_only']) or 'none'}",
             "- classes the corpus labels but the run cannot predict (left out): "
             + (", ".join(f"{k} ({v})" for k, v in c["not_predictable_by_class"].items()) or "none"),
             f"- utterances whose audio the run trained on (left out): {c['audio_the_run_trained_on']}",
             f"- utterances that failed to decode or predict (left out): {c['failed']}"]
    ov = record["training_overlap"]
    if isinstance(ov, dict) and ov["shared_speaker_count"]:
        lines.append(f"- WARNING: {ov['shared_speaker_count']} speaker ids also occur in the training manifest "
                     f"(first: {', '.join(ov['shared_speaker_ids'][:5])}); if they are the same people this is not cross-corpus")
    elif isinstance(ov, str):
        lines.append(f"- training overlap {ov}")
    return "\n".join(lines) + "\n"
