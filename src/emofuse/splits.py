"""Speaker-independent folds and the leakage audit.

Folds are built from the manifest's ``session`` or ``speaker`` column, never from rows: every
speaker sits in exactly one of train / validation / test in each fold, and the validation
speakers are carved out of that fold's training speakers. A random utterance split is not
offered. Two more schemes take their parts from the manifest:

- ``official``: the corpus's published partitions (the ``official_split`` column: MSP-Podcast's
  Train / Development / Test1 / Test2, MELD's train / dev / test, ESD's train / evaluation /
  test), one fold per official test set. ``auto`` picks it where every row has a partition and
  no speaker crosses them; where speakers do cross (MELD, ESD) the audit refuses it.
- ``leave_one_corpus_out``: on a manifest of several corpora (``emofuse prepare merge``), one
  fold per corpus (``cv.test_corpus=NAME``: just that one) tests on that corpus and trains on the
  others; validation speakers are drawn from each training corpus. ``auto`` picks it on such a
  manifest.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .atomic import write_csv_atomic, write_text_atomic
from .errors import EmofuseError
from .subsets import transcript_column, transcript_overlap

SCHEMES = ("auto", "session", "speaker", "official", "leave_one_corpus_out")
OFFICIAL_COLUMN = "official_split"
CORPUS_COLUMN = "corpus"
# Official partition names -> part; a test set keeps its own name (MSP-Podcast has Test1 and Test2).
OFFICIAL_PARTS = {"train": "train", "training": "train", "dev": "val", "development": "val", "validation": "val",
                  "val": "val", "valid": "val", "evaluation": "val"}
# What to use instead when a scheme's parts leak (said in the audit's refusal).
INSTEAD = {"official": "cv.scheme=speaker (speaker-independent folds made by emofuse)",
           "leave_one_corpus_out": "remove the shared recordings or speakers from one corpus, re-run 'emofuse prepare' "
                                   "and 'emofuse prepare merge'"}


class LeakageError(EmofuseError):
    """A split put one speaker or utterance in two of train / validation / test."""


@dataclass
class FoldSplit:
    """One fold: utterance ids per part, and the speakers behind them."""

    fold: int
    scheme: str
    test_groups: list[str]
    train: list[str]
    val: list[str]
    test: list[str]
    speakers: dict[str, list[str]] = field(default_factory=dict)
    # How the training part was made: {"name": "standard"} or {"name": "script_disjoint",
    # "removed_from_train": N} (training items whose transcript occurs in validation or test).
    protocol: dict = field(default_factory=lambda: {"name": "standard"})

    def parts(self) -> dict[str, list[str]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def default_n_folds(df: pd.DataFrame, corpus: str, scheme: str) -> int:
    if scheme == "session":
        return int(df["session"].nunique())
    return 6 if corpus == "ravdess" else min(5, int(df["speaker"].nunique()))


def has_official(df: pd.DataFrame) -> bool:
    """Every row carries a published partition."""
    return OFFICIAL_COLUMN in df.columns and bool((df[OFFICIAL_COLUMN].astype(str).str.strip() != "").all())


def official_speakers_disjoint(df: pd.DataFrame) -> bool:
    """No speaker in two official parts (validation and the test sets count apart)."""
    part = _official_parts(df)
    return bool((df.assign(_part=part).groupby("speaker")["_part"].nunique() <= 1).all())


def official_has_validation(df: pd.DataFrame) -> bool:
    """The published partitions include a development/validation part (for model selection)."""
    return bool((_official_parts(df) == "val").any())


def _official_parts(df: pd.DataFrame) -> pd.Series:
    """Each row's official partition as train / val / Test* ("" where the name is unknown)."""
    return df[OFFICIAL_COLUMN].astype(str).str.strip().map(_official_part)


def _official_part(name: str) -> str:
    low = name.strip().lower()
    return OFFICIAL_PARTS.get(low, name.strip() if low.startswith("test") else "")


def resolve_scheme(scheme: str, corpus: str, df: pd.DataFrame, test_corpus: str | None = None) -> str:
    if scheme not in SCHEMES:
        raise EmofuseError(f"unknown fold scheme {scheme!r}: use one of {list(SCHEMES)}")
    if test_corpus and scheme not in ("auto", "leave_one_corpus_out"):
        raise EmofuseError(f"cv.test_corpus={test_corpus} belongs to cv.scheme=leave_one_corpus_out, not {scheme}; "
                           "drop one of the two")
    if test_corpus:
        return "leave_one_corpus_out"
    if scheme != "auto":
        return scheme
    # A merged manifest exists to test across corpora; a corpus's published partitions are its
    # default where they are speaker independent.
    if CORPUS_COLUMN in df.columns and df[CORPUS_COLUMN].nunique() > 1:
        return "leave_one_corpus_out"
    if has_official(df) and official_speakers_disjoint(df) and official_has_validation(df):
        return "official"
    # Leave-one-session-out where sessions hold several speakers (IEMOCAP); speaker folds otherwise.
    per_session = df.groupby("session")["speaker"].nunique()
    return "session" if corpus == "iemocap" or (len(per_session) >= 3 and per_session.min() > 1) else "speaker"


def _speaker_groups(df: pd.DataFrame, n_folds: int, seed: int) -> list[list[str]]:
    """Speakers dealt round-robin into folds, one gender at a time, so each fold is gender-balanced."""
    gender = df.groupby("speaker")["gender"].first().fillna("")
    rng = random.Random(seed)
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    offset = 0
    for g in sorted(gender.unique()):
        spk = sorted(gender.index[gender == g])
        rng.shuffle(spk)
        for i, s in enumerate(spk):
            folds[(i + offset) % n_folds].append(s)
        offset += len(spk)
    return [sorted(f) for f in folds]


def _pick_val_speakers(train_speakers: list[str], gender: pd.Series, n: int, seed: int) -> list[str]:
    """``n`` training speakers, alternating genders, chosen reproducibly per fold."""
    rng = random.Random(seed)
    by_gender: dict[str, list[str]] = {}
    for s in sorted(train_speakers):
        by_gender.setdefault(str(gender.get(s, "")), []).append(s)
    for spk in by_gender.values():
        rng.shuffle(spk)
    order = sorted(by_gender)
    picked: list[str] = []
    while len(picked) < n and any(by_gender.values()):
        for g in order:
            if by_gender[g] and len(picked) < n:
                picked.append(by_gender[g].pop())
    return sorted(picked)


def make_folds(df: pd.DataFrame, corpus: str = "", scheme: str = "auto", n_folds: int | None = None,
               val_speakers: int | None = None, seed: int = 0, test_corpus: str | None = None) -> list[FoldSplit]:
    """Speaker-independent folds over a manifest table.

    Args:
        df: the manifest table (needs utt_id, speaker, session, gender).
        corpus: the corpus name from prepare.json (``iemocap`` selects leave-one-session-out).
        scheme: ``session`` (leave one session out), ``speaker`` (speaker-grouped K folds),
            ``official`` (the corpus's published partitions), ``leave_one_corpus_out`` (a merged
            manifest), or ``auto``.
        n_folds: folds for the speaker scheme (default 6 for RAVDESS, else up to 5).
        val_speakers: training speakers moved to validation in each fold (default: about one
            fold's worth, e.g. 2 on IEMOCAP, 4 on RAVDESS, and at most half of them).
        seed: fixes the speaker shuffles.
        test_corpus: leave_one_corpus_out: the one corpus to test on (default: each in turn).
    """
    scheme = resolve_scheme(scheme, corpus, df, test_corpus)
    if scheme == "official":
        return official_folds(df, n_folds, val_speakers)
    if scheme == "leave_one_corpus_out":
        return corpus_folds(df, n_folds, val_speakers, seed, test_corpus)
    if scheme == "session":
        sessions = sorted(df["session"].unique())
        if n_folds not in (None, len(sessions)):
            raise EmofuseError(f"leave-one-session-out gives {len(sessions)} folds, not {n_folds}; drop cv.n_folds or use cv.scheme=speaker")
        groups = [sorted(df.loc[df["session"] == s, "speaker"].unique()) for s in sessions]
        names = [[s] for s in sessions]
    else:
        k = n_folds or default_n_folds(df, corpus, scheme)
        n_spk = df["speaker"].nunique()
        if k < 2 or k > n_spk:
            raise EmofuseError(f"cannot make {k} speaker folds from {n_spk} speakers; set cv.n_folds between 2 and {n_spk}")
        groups = _speaker_groups(df, k, seed)
        names = groups
    gender = df.groupby("speaker")["gender"].first()
    all_speakers = sorted(df["speaker"].unique())
    by_speaker = df.groupby("speaker")["utt_id"].apply(list).to_dict()
    folds = []
    for i, test_spk in enumerate(groups):
        train_spk = [s for s in all_speakers if s not in set(test_spk)]
        # Default: one fold's worth of the training speakers, but never more than half of them
        # (with 2 folds one fold's worth would be all of them).
        n_val = val_speakers if val_speakers is not None else max(1, min(round(len(train_spk) / max(1, len(groups) - 1)),
                                                                          len(train_spk) // 2))
        if n_val >= len(train_spk):
            raise EmofuseError(f"fold {i}: {n_val} validation speakers would leave no training speaker; lower cv.val_speakers")
        val_spk = _pick_val_speakers(train_spk, gender, n_val, seed * 1000 + i)
        train_spk = [s for s in train_spk if s not in set(val_spk)]
        ids = {part: sorted(u for s in spk for u in by_speaker[s])
               for part, spk in (("train", train_spk), ("val", val_spk), ("test", test_spk))}
        folds.append(FoldSplit(i, scheme, list(names[i]), ids["train"], ids["val"], ids["test"],
                               {"train": train_spk, "val": val_spk, "test": list(test_spk)}))
    return folds


def official_folds(df: pd.DataFrame, n_folds: int | None = None, val_speakers: int | None = None) -> list[FoldSplit]:
    """One fold per official test set, the official train and validation parts in each.

    Raises:
        EmofuseError: the manifest has no complete ``official_split`` column, a partition name
            is not known, or there is no train or no test partition.
    """
    if OFFICIAL_COLUMN not in df.columns:
        raise EmofuseError("cv.scheme=official: this manifest has no official_split column (its corpus publishes no "
                           "partitions); use cv.scheme=auto")
    names = df[OFFICIAL_COLUMN].astype(str).str.strip()
    if (names == "").any():
        first = df.loc[names == "", "utt_id"].iloc[0]
        raise EmofuseError(f"cv.scheme=official: {int((names == '').sum())} utterances have no official partition "
                           f"(first: {first}); use cv.scheme=speaker, or prepare the release with its partitions")
    if n_folds is not None or val_speakers is not None:
        raise EmofuseError("cv.scheme=official takes its parts from the corpus; drop cv.n_folds and cv.val_speakers")
    part = names.map(_official_part)
    unknown = sorted(set(names[part == ""]))
    if unknown:
        raise EmofuseError(f"cv.scheme=official: unknown partition names {unknown[:5]} in official_split; "
                           f"known: {sorted(OFFICIAL_PARTS)} and Test*")
    tests = sorted({p for p in part if p not in ("train", "val")})
    if not tests or not (part == "train").any():
        raise EmofuseError(f"cv.scheme=official: the partitions {sorted(set(names))} give no train or no test part; "
                           "use cv.scheme=speaker")
    if not (part == "val").any():  # model selection must never see the test part
        raise EmofuseError(f"cv.scheme=official: the partitions {sorted(set(names))} have no development/validation part "
                           "for model selection; use cv.scheme=speaker (validation speakers drawn from training)")
    ids = {p: sorted(df.loc[part == p, "utt_id"]) for p in ("train", "val", *tests)}
    spk = {p: sorted(df.loc[part == p, "speaker"].unique()) for p in ids}
    return [FoldSplit(i, "official", [t], ids["train"], ids["val"], ids[t],
                      {"train": spk["train"], "val": spk["val"], "test": spk[t]}) for i, t in enumerate(tests)]


def corpus_folds(df: pd.DataFrame, n_folds: int | None = None, val_speakers: int | None = None, seed: int = 0,
                 test_corpus: str | None = None) -> list[FoldSplit]:
    """Leave one corpus out: test on one corpus, train on the others (validation speakers drawn
    from every training corpus, about a sixth of its speakers, or ``val_speakers`` in all).

    Raises:
        EmofuseError: the manifest is not a merge of two or more corpora, or ``test_corpus`` is
            not one of them.
    """
    corpora = sorted(df[CORPUS_COLUMN].unique()) if CORPUS_COLUMN in df.columns else []
    if len(corpora) < 2:
        raise EmofuseError("cv.scheme=leave_one_corpus_out needs a manifest of two or more corpora; make one with "
                           "'emofuse prepare merge A/manifest.csv B/manifest.csv --out DIR'")
    if test_corpus is not None and test_corpus not in corpora:
        raise EmofuseError(f"cv.test_corpus={test_corpus}: not a corpus of this manifest; use one of {corpora}")
    if n_folds not in (None, len(corpora) if test_corpus is None else 1):
        raise EmofuseError(f"leave-one-corpus-out gives one fold per corpus ({len(corpora)}); drop cv.n_folds")
    gender = df.groupby("speaker")["gender"].first()
    corpus_of = df.groupby("speaker")[CORPUS_COLUMN].first()
    by_speaker = df.groupby("speaker")["utt_id"].apply(list).to_dict()
    folds = []
    for i, test in enumerate(corpora):
        if test_corpus is not None and test != test_corpus:
            continue
        others = [c for c in corpora if c != test]
        pools = {c: sorted(corpus_of.index[corpus_of == c]) for c in others}
        if val_speakers is None:
            want = {c: min(max(1, round(len(pools[c]) / 6)), len(pools[c]) - 1) for c in others}
        else:  # dealt round-robin over the training corpora
            want = {c: 0 for c in others}
            for k in range(val_speakers):
                want[others[k % len(others)]] += 1
        val_spk = sorted(s for c in others for s in _pick_val_speakers(pools[c], gender, want[c], seed * 1000 + i))
        train_spk = sorted(s for c in others for s in pools[c] if s not in set(val_spk))
        if not train_spk:
            raise EmofuseError(f"fold {i}: {len(val_spk)} validation speakers would leave no training speaker; lower cv.val_speakers")
        test_spk = sorted(corpus_of.index[corpus_of == test])
        ids = {part: sorted(u for s in spk for u in by_speaker[s])
               for part, spk in (("train", train_spk), ("val", val_spk), ("test", test_spk))}
        folds.append(FoldSplit(len(folds), "leave_one_corpus_out", [test], ids["train"], ids["val"], ids["test"],
                               {"train": train_spk, "val": val_spk, "test": test_spk}))
    return folds


def audit_split(split: FoldSplit, df: pd.DataFrame, text_column: str | None = None, min_words: int = 3,
                near_duplicates: list[tuple[str, str, float]] | None = None) -> dict:
    """Check that no speaker, no utt_id and no recording (identical audio content, the
    manifest's ``audio_sha1``: a file copied under another name or speaker) is in two parts;
    return the audit record (``passed`` False on any overlap: nothing may train on it).

    ``near_duplicates``: (utt_a, utt_b, bit error rate) pairs of the same recording in another
    encoding, rate, gain or trim (``emofuse prepare`` finds them with ``emofuse.fingerprint``); a
    pair across two parts fails the audit like identical bytes do. None: not checked (said so).

    It also measures, as information, the transcript overlap: the share of validation and test
    utterances whose normalised transcript (``text_column``, else the manual ``text``) occurs
    in the training part (``emofuse.subsets.transcript_overlap``).

    Raises:
        LeakageError: the split names utterances the manifest does not have.
    """
    parts = split.parts()
    known = set(df["utt_id"])
    unknown = sorted({u for ids in parts.values() for u in ids} - known)
    if unknown:  # a stored split that names utterances the manifest no longer has
        raise LeakageError(f"fold {split.fold}: its split names {len(unknown)} utterances that are not in the manifest "
                           f"(first: {unknown[0]}); the manifest changed under the run: start a new run (--out or --overwrite)")
    spk_of = dict(zip(df["utt_id"], df["speaker"]))
    sha_of = dict(zip(df["utt_id"], df["audio_sha1"])) if "audio_sha1" in df.columns else None
    speakers = {p: sorted({spk_of[u] for u in ids}) for p, ids in parts.items()}
    checks: dict[str, list[str]] = {}
    names = list(parts)
    for a_i, a in enumerate(names):
        for b in names[a_i + 1:]:
            checks[f"speakers_in_{a}_and_{b}"] = sorted(set(speakers[a]) & set(speakers[b]))
            checks[f"utt_ids_in_{a}_and_{b}"] = sorted(set(parts[a]) & set(parts[b]))[:20]
            if sha_of is not None:
                shared = {sha_of[u] for u in parts[a]} & {sha_of[u] for u in parts[b]}
                checks[f"same_audio_in_{a}_and_{b}"] = sorted(u for u in parts[a] + parts[b] if sha_of[u] in shared)[:20]
    if near_duplicates is not None:
        part_of = {u: p for p, ids in parts.items() for u in ids}
        for a_i, a in enumerate(names):
            for b in names[a_i + 1:]:
                checks[f"near_duplicate_audio_in_{a}_and_{b}"] = sorted(
                    f"{x} ~ {y} (BER {ber:.2f})" for x, y, ber in near_duplicates
                    if {part_of.get(x), part_of.get(y)} == {a, b})[:20]
    for p, ids in parts.items():
        dup = pd.Series(ids)
        checks[f"duplicate_utt_ids_in_{p}"] = sorted(dup[dup.duplicated()].unique().tolist())[:20]
    label_of = dict(zip(df["utt_id"], df["label"]))
    record = {
        "fold": split.fold, "scheme": split.scheme, "test_groups": split.test_groups,
        "speakers": speakers,
        "counts": {p: len(ids) for p, ids in parts.items()},
        "label_counts": {p: dict(sorted(pd.Series([label_of[u] for u in ids]).value_counts().to_dict().items()))
                         for p, ids in parts.items()},
        "checks": checks,
        "protocol": split.protocol,
        "near_duplicate_check": ("content fingerprints from emofuse prepare (re-encoded, resampled, gain-changed or "
                                 "trimmed copies)" if near_duplicates is not None else
                                 "not run: the manifest has no near_duplicates.csv (re-run emofuse prepare)"),
        "transcript_overlap": transcript_overlap(parts, df, transcript_column(df, text_column), min_words),
        "passed": not any(checks.values()),
    }
    return record


def write_split(split: FoldSplit, df: pd.DataFrame, out_dir: Path, audit: dict | None = None) -> dict:
    """Write ``split.csv`` (utt_id, speaker, part) and ``audit.json`` (atomically); return the audit.

    The caller decides what a failed audit stops (``audit["passed"]``); nothing trains on it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    spk_of = dict(zip(df["utt_id"], df["speaker"]))
    rows = [{"utt_id": u, "speaker": spk_of[u], "part": p} for p, ids in split.parts().items() for u in ids]
    write_csv_atomic(pd.DataFrame(rows, columns=["utt_id", "speaker", "part"]), out_dir / "split.csv")
    audit = audit if audit is not None else audit_split(split, df)
    write_text_atomic(out_dir / "audit.json", json.dumps(audit, indent=2))
    return audit


def require_passed(audits: list[dict], where: Path) -> None:
    """Raise ``LeakageError`` naming the failing folds and their first overlaps."""
    failed = [a for a in audits if not a["passed"]]
    if failed:
        bad = {k: v[:3] for k, v in failed[0]["checks"].items() if v}
        scheme = failed[0].get("scheme")
        if scheme == "official":
            raise LeakageError(f"{where}: the corpus's official partitions fail the leakage audit (fold {failed[0]['fold']}: "
                               f"{bad}): they share speakers or recordings across train/validation/test; use {INSTEAD['official']}")
        fix = INSTEAD.get(scheme, "fix the manifest (speaker ids, duplicate recordings), re-run 'emofuse prepare'")
        raise LeakageError(f"{where}: the leakage audit fails for folds {[a['fold'] for a in failed]} "
                           f"(fold {failed[0]['fold']}: {bad}); {fix}, and start a new run")


def read_split(out_dir: Path) -> FoldSplit:
    table = pd.read_csv(out_dir / "split.csv", dtype=str, keep_default_na=False)
    audit = json.loads((out_dir / "audit.json").read_text())
    ids = {p: table.loc[table["part"] == p, "utt_id"].tolist() for p in ("train", "val", "test")}
    return FoldSplit(int(audit["fold"]), audit["scheme"], audit["test_groups"], ids["train"], ids["val"], ids["test"],
                     audit["speakers"], audit.get("protocol") or {"name": "standard"})

