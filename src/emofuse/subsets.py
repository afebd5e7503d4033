"""Transcript overlap across fold parts, the protocols that remove it, and test subsets.

IEMOCAP's scripted dialogues reuse the same scripts in every session, so under
leave-one-session-out many test utterances say a line that occurs word for word in training
(Pepino et al., ICASSP 2020, call text results on these folds "highly optimistic"); read or
scripted corpora (RAVDESS, CREMA-D, EmoDB, ESD, MSP with shared prompts) share the property. A
text model can then recognise the line instead of the emotion. This module measures that
overlap per fold, offers ``script_disjoint`` training sets, and names the test subsets every
run reports on (scripted / improvised, transcript seen / unseen in training).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

import numpy as np
import pandas as pd

from .errors import EmofuseError

PROTOCOLS = ("standard", "script_disjoint")
SUBSETS = ("improvised", "scripted")
_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Case, punctuation and whitespace folded: ``"Excuse me."`` and ``"excuse  me"`` are one line."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return _SPACE.sub(" ", text).strip()


def transcript_column(df: pd.DataFrame, preferred: str | None = None) -> str | None:
    """The column whose transcripts the audit measures: the run's text column, else the manual
    ``text`` column; None when the corpus has no transcripts."""
    for col in ([preferred] if preferred else []) + ["text"]:
        if col in df.columns and (df[col].fillna("").astype(str).str.strip() != "").any():
            return col
    return None


def dialog_type(df: pd.DataFrame) -> pd.Series:
    """``improvised`` / ``scripted`` per row from IEMOCAP's dialogue names (``Ses01F_impro01``,
    ``Ses01M_script01_1``, in the ``dialog`` column or the utt_id); ``""`` where neither shows."""
    source = df["dialog"].astype(str) if "dialog" in df.columns else df["utt_id"].astype(str)
    out = pd.Series("", index=df.index, dtype=object)
    out[source.str.contains("_impro", regex=False)] = "improvised"
    out[source.str.contains("_script", regex=False)] = "scripted"
    return out


def select_subset(df: pd.DataFrame, subset: str | None) -> pd.DataFrame:
    """Rows of one dialogue type (``data.subset``); the whole table for None."""
    if not subset:
        return df
    if subset not in SUBSETS:
        raise EmofuseError(f"data.subset={subset!r}: use one of {list(SUBSETS)} or null")
    kind = dialog_type(df)
    if not (kind != "").any():
        raise EmofuseError(f"data.subset={subset}: this manifest's dialogue names do not say scripted or improvised "
                           "(IEMOCAP's do); drop data.subset")
    keep = df[kind == subset]
    if keep.empty:
        raise EmofuseError(f"data.subset={subset}: no {subset} utterances in this manifest; drop data.subset")
    return keep.reset_index(drop=True)


def transcript_overlap(parts: dict[str, list[str]], df: pd.DataFrame, column: str | None, min_words: int = 3) -> dict:
    """Share of validation and test utterances whose normalised transcript occurs in the training part.

    Returns ``{"column", "min_words", "val": {...}, "test": {...}}`` where each part has
    ``items`` (with a transcript), ``seen`` and ``share`` (transcript occurs in training),
    ``share_min_words`` (the same over transcripts of at least ``min_words`` words: replies such
    as "Yeah." are not a leak in practice) and ``per_class`` shares; ``{"available": False}``
    when the corpus has no transcripts.
    """
    if column is None:
        return {"available": False, "note": "no transcripts in this manifest: transcript overlap cannot be measured"}
    text = dict(zip(df["utt_id"], df[column].fillna("").astype(str).map(normalise_text)))
    label = dict(zip(df["utt_id"], df["label"]))
    train = {text[u] for u in parts["train"] if text[u]}
    out: dict = {"available": True, "column": column, "min_words": int(min_words)}
    for part in ("val", "test"):
        ids = [u for u in parts[part] if text[u]]
        seen = [u for u in ids if text[u] in train]
        long = [u for u in ids if len(text[u].split()) >= min_words]
        long_seen = [u for u in long if text[u] in train]
        per_class = {}
        for c in sorted({label[u] for u in ids}):
            cls = [u for u in ids if label[u] == c]
            per_class[c] = round(sum(u in set(seen) for u in cls) / len(cls), 4)
        out[part] = {"items": len(ids), "seen": len(seen), "share": round(len(seen) / len(ids), 4) if ids else 0.0,
                     "items_min_words": len(long), "seen_min_words": len(long_seen),
                     "share_min_words": round(len(long_seen) / len(long), 4) if long else 0.0, "per_class": per_class}
    return out


def seen_in_training(parts: dict[str, list[str]], df: pd.DataFrame, column: str | None) -> set[str]:
    """Validation and test utt_ids whose normalised transcript occurs in the training part."""
    if column is None:
        return set()
    text = dict(zip(df["utt_id"], df[column].fillna("").astype(str).map(normalise_text)))
    train = {text[u] for u in parts["train"] if text[u]}
    return {u for p in ("val", "test") for u in parts[p] if text[u] and text[u] in train}


def script_disjoint(split, df: pd.DataFrame, column: str | None):
    """The fold with training items whose transcript occurs in its validation or test part left out.

    Returns (the new FoldSplit, how many training items were left out).
    """
    if column is None:
        raise EmofuseError("cv.protocol=script_disjoint needs transcripts, and this manifest has none; "
                           "use cv.protocol=standard")
    text = dict(zip(df["utt_id"], df[column].fillna("").astype(str).map(normalise_text)))
    held = {text[u] for u in split.val + split.test if text[u]}
    train = [u for u in split.train if not (text[u] and text[u] in held)]
    return replace(split, train=train), len(split.train) - len(train)


def subset_masks(utt_ids: list[str], df: pd.DataFrame, seen: set[str]) -> dict[str, np.ndarray]:
    """Boolean masks over ``utt_ids`` for the subsets a run reports: improvised / scripted (where the
    dialogue names say) and transcript seen / unseen in training (where there are transcripts)."""
    rows = df.set_index("utt_id").loc[utt_ids]
    masks: dict[str, np.ndarray] = {}
    kind = dialog_type(rows.reset_index()).to_numpy()
    if (kind != "").any():
        for name in SUBSETS:
            masks[name] = kind == name
    if seen:
        s = np.array([u in seen for u in utt_ids])
        masks["transcript_seen"] = s
        masks["transcript_unseen"] = ~s
    return masks


def overlap_lines(summary: dict) -> list[str]:
    """The protocol, the transcript overlap (a loud warning where it inflates a text model) and the
    subset figures, as plain lines for the CLI and results.md."""
    lines = [f"protocol: {summary.get('protocol', 'standard')}; test subset: {summary.get('subset', 'all')}"]
    ov = summary.get("transcript_overlap") or {}
    if ov.get("message"):
        lines.append(("WARNING: " if ov.get("level") == "warning" else "transcript overlap: ") + ov["message"])
    if ov.get("available") and any(ov.get("removed_from_train") or []):
        lines.append(f"script_disjoint: training items left out per fold: {ov['removed_from_train']}")
    for name, m in (summary.get("subsets") or {}).items():
        lines.append(f"test subset {name} (n={m['n']}, folds pooled): Macro-F1 {m['macro_f1']:.3f}, UA {m['ua']:.3f}, "
                     f"WA {m['wa']:.3f}")
    return lines
