"""The ``emofuse`` command line. Every user-facing failure is one line naming the file and the fix."""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys
import textwrap
from pathlib import Path

from .errors import EmofuseError

_OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")
# Disk and permission failures in the middle of work: one line with the fix, never a traceback.
_DISK_ERRORS = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some disk space (quota)",
                errno.EROFS: "the file system is read-only: choose a writable folder",
                errno.EACCES: "check the folder's permissions or choose a writable one"}


def _registry_names(full: bool) -> dict[str, list[str] | None]:
    """Names the help texts list, read from the registries (models, front ends, export formats).
    Those registries import torch (seconds), so they are read only when help is printed."""
    if not full:
        return {"models": None, "frontends": None, "formats": None}
    from .export import FORMATS
    from .features import KINDS
    from .models import list_models

    return {"models": list_models(), "frontends": list(KINDS), "formats": list(FORMATS)}


def _listed(names: list[str] | None, sep: str = ", ") -> str:
    return sep.join(names) if names else "..."


def _parser(full_help: bool = True) -> argparse.ArgumentParser:
    """The argument parser; ``full_help=False`` skips the registries that import torch (their
    names appear only in help texts; the library refuses an unknown name with the known ones)."""
    reg = _registry_names(full_help)
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="emofuse", formatter_class=fmt, description=textwrap.dedent("""\
        Multimodal speech emotion recognition with speaker-independent, leak-free evaluation.

        pipeline: prepare (corpus -> manifest) -> cv / train (features, folds, training, results)
        """), epilog="Run 'emofuse COMMAND --help' for examples.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str, examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, formatter_class=fmt,
                              epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "))

    q = add("prepare", "Parse a corpus, check every clip, and write a manifest (idempotent).", """
        emofuse prepare ravdess ../shared/data/ravdess --out data/ravdess8
        emofuse prepare ravdess ../shared/data/ravdess --out data/ravdess4 --class-map ravdess4
        emofuse prepare iemocap /data/IEMOCAP_full_release --out data/iemocap4
        emofuse prepare iemocap /data/IEMOCAP_full_release --out data/iemocap6 --class-map iemocap6
        emofuse prepare csv /data/mycorpus --csv /data/mycorpus/meta.csv --out data/mine --strict
        emofuse prepare merge data/ravdess4 data/cremad4 --out data/ravdess_cremad   # for cv.scheme=leave_one_corpus_out
        emofuse prepare merge voicesA:data/synthA voicesB:data/synthB --out data/ab  # NAME:DIR names a corpus
        """)
    from .corpora import list_corpora
    from .labels import list_class_maps
    q.add_argument("corpus", choices=list_corpora() + ["merge"], help="a corpus, or 'merge' to join prepared manifests")
    q.add_argument("root", nargs="+", help="the corpus folder (merge: two or more manifests, each DIR or NAME:DIR)")
    q.add_argument("--out", required=True, help="manifest folder to write")
    q.add_argument("--class-map", help=f"built-in map ({', '.join(list_class_maps())}) or a YAML file")
    q.add_argument("--csv", help="metadata CSV for the csv corpus (default ROOT/metadata.csv)")
    q.add_argument("--strict", action="store_true", help="fail on the first bad item instead of skipping it")
    q.add_argument("--workers", type=int, help="decoding processes (default: cores, at most 8)")
    q.add_argument("--min-seconds", type=float, default=0.25, help="shorter clips are skipped (default 0.25)")
    q.add_argument("--force", action="store_true", help="rebuild even when the inputs are unchanged")

    q = add("synth", "Write the built-in synthetic corpus (IEMOCAP release layout).", """
        emofuse synth /tmp/synth
        emofuse synth /tmp/synth --sessions 5 --per-class 20 --seed 1
        emofuse synth /tmp/iemocap_size --per-class 138 --durations iemocap --max-seconds 20   # ~5,500 utts, ~7 h
        """)
    q.add_argument("out")
    q.add_argument("--sessions", type=int, default=5)
    q.add_argument("--per-class", type=int, default=10, help="utterances per speaker and class")
    q.add_argument("--durations", choices=["uniform", "iemocap"], default="uniform",
                   help="clip lengths: uniform in [min, max], or IEMOCAP's skewed log-normal shape")
    q.add_argument("--min-seconds", type=float, default=1.0)
    q.add_argument("--max-seconds", type=float, default=2.5)
    q.add_argument("--sample-rate", type=int, default=16000)
    q.add_argument("--scripts", choices=["random", "shared"], default="random",
                   help="shared: every session's script dialogue reads one script (as in IEMOCAP), improvised "
                        "utterances say unique sentences: the transcript overlap across sessions is known in advance")
    q.add_argument("--seed", type=int, default=0)

    q = add("synth-noise", "Write a small synthetic noise bank in the MUSAN layout (for augment.noise_dir).", """
        emofuse synth-noise /tmp/noise
        emofuse cv resnet18_augment data.manifest=data/ravdess8 augment.noise_dir=/tmp/noise
        """)
    q.add_argument("out")
    q.add_argument("--per-kind", type=int, default=4, help="files per sub-folder (noise, music, speech)")
    q.add_argument("--seed", type=int, default=0)

    q = add("folds", "Write speaker-independent folds and their leakage audit for a manifest.", """
        emofuse folds data/ravdess8 --out folds/ravdess8
        emofuse folds data/iemocap4 --out folds/iemocap4 --scheme session
        """)
    q.add_argument("manifest")
    q.add_argument("--out", required=True)
    from .splits import SCHEMES

    q.add_argument("--scheme", default="auto", choices=list(SCHEMES))
    q.add_argument("--test-corpus", help="leave_one_corpus_out: test on this corpus only")
    q.add_argument("--n-folds", type=int)
    q.add_argument("--val-speakers", type=int)
    q.add_argument("--seed", type=int, default=0)

    q = add("features", "Compute and cache audio features (and text embeddings) for a manifest (cv does this too).", """
        emofuse features data/ravdess8
        emofuse features data/ravdess8 features.n_mels=80
        emofuse features data/ravdess8 --config whisper_mlp
        emofuse features data/iemocap4 --text
        emofuse features data/iemocap4 --text text.encoder=~/models/bert-base-uncased
        """)
    q.add_argument("manifest")
    q.add_argument("--config", default="default", help="config whose features: and text: groups to use (front ends: "
                   f"features.kind={_listed(reg['frontends'], ' | ')}; e.g. whisper_mlp for Whisper encoder features)")
    q.add_argument("--cache", help="cache folder (default: <manifest folder>/cache)")
    q.add_argument("--workers", type=int)
    q.add_argument("--text", action="store_true", help="also cache the frozen text encoder's token embeddings")
    q.add_argument("overrides", nargs="*", help="features.KEY=VALUE and text.KEY=VALUE settings")

    q = add("transcribe", "Fill a manifest's text_asr column with Whisper transcripts (resumable; needs the pretrained extra).", """
        emofuse transcribe data/ravdess8
        emofuse transcribe data/mycorpus --beam-size 5 --batch-size 16
        emofuse transcribe data/mycorpus --model ~/models/faster-whisper-small.en
        emofuse cv early_fusion data.manifest=data/mycorpus text.source=asr
        """)
    q.add_argument("manifest")
    q.add_argument("--model", default="tiny.en", help="tiny.en (packaged) or a local CTranslate2 Whisper folder")
    q.add_argument("--beam-size", type=int, default=1, help="1 = greedy decoding")
    q.add_argument("--batch-size", type=int, default=8)
    q.add_argument("--language", default="en", help="language token for multilingual models")
    q.add_argument("--device", default="auto", help="auto, cpu or cuda")
    q.add_argument("--compute-type", default="default", help="CTranslate2 compute type (default, int8, float16, ...)")
    q.add_argument("--threads", type=int, default=0, help="CPU threads (0: CTranslate2's default)")
    q.add_argument("--column", default="text_asr", help="manifest column to fill")

    q = add("convert-whisper", "Convert a CTranslate2 Whisper folder into a transformers WhisperModel folder (offline).", """
        emofuse convert-whisper tiny.en models/whisper-tiny.en-hf
        emofuse cv ssl_weighted data.manifest=data/ravdess8 features.model=models/whisper-tiny.en-hf
        """)
    q.add_argument("ct2_dir", help="tiny.en (packaged) or a local CTranslate2 Whisper folder")
    q.add_argument("out_dir")

    from .config import list_configs

    experiments = [c.split("/", 1)[1] for c in list_configs() if c.startswith("experiment/")]
    for name, help_, ex in (
        ("cv", "Run every fold of a speaker-independent cross-validation and summarise it.", """
            emofuse cv resnet18 data.manifest=data/ravdess8
            emofuse cv cnn_bilstm data.manifest=data/iemocap4 train.max_epochs=50 --out runs/cnn_iemocap
            emofuse cv my_experiment.yaml data.manifest=data/ravdess8 --jobs 2
            emofuse cv resnet18 data.manifest=data/iemocap4 --devices 4 --strategy ddp
            emofuse cv cross_attention data.manifest=data/iemocap4 text.encoder=~/models/bert-base-uncased
            """),
        ("train", "Train and evaluate one fold (into the same run folder that cv uses).", """
            emofuse train resnet18 --fold 0 data.manifest=data/ravdess8
            emofuse train runs/resnet18/config.yaml --fold 3 --out runs/resnet18
            emofuse train resnet18 --fold 0 data.manifest=data/ravdess8 --devices 2 --strategy ddp --accelerator cpu
            """),
    ):
        q = add(name, help_, ex)
        q.add_argument("config", help=f"a config YAML, or a shipped experiment name ({', '.join(experiments)}; "
                       "see 'emofuse configs')")
        q.add_argument("overrides", nargs="*", help="KEY.SUB=VALUE config overrides (e.g. train.max_epochs=5)")
        q.add_argument("--out", help="run folder (default runs/<name>)")
        q.add_argument("--overwrite", action="store_true", help="delete an existing run folder first")
        q.add_argument("--devices", help="devices per node (e.g. 1, 4, auto)")
        q.add_argument("--num-nodes", type=int)
        q.add_argument("--strategy", help="Lightning strategy (auto, ddp, ddp_spawn, ...)")
        q.add_argument("--accelerator", help="cpu, gpu, auto")
        q.add_argument("--no-progress", action="store_true", help="no progress bars")
        q.add_argument("--verbose", action="store_true", help="also show Lightning's own messages (devices, shutdown)")
        q.add_argument("--dry-run", action="store_true", help="print the resolved config, the folds and an estimated "
                       "time, then stop (trains nothing, writes no run folder)")
        if name == "train":
            q.add_argument("--fold", type=int, required=True)
        else:
            q.add_argument("--folds", help="comma-separated subset of folds (default: all)")
            q.add_argument("--jobs", type=int, default=1, help="folds trained at once, as separate processes")

    q = add("demo", "Generate the synthetic corpus and run a short 5-fold CV of an audio model.", """
        emofuse demo
        emofuse demo --out /tmp/emofuse_demo
        """)
    q.add_argument("--out", default="emofuse_demo", help="folder for the corpus, manifest and run")
    q.add_argument("--overwrite", action="store_true")
    q.add_argument("--verbose", action="store_true", help="also show Lightning's own messages (devices, shutdown)")
    q.add_argument("overrides", nargs="*", help="config overrides for the demo run")

    q = add("predict", "Predict emotions for audio files or folders with a trained checkpoint, fold or run (fold ensemble).", """
        emofuse predict runs/resnet18 clip.wav other.flac
        emofuse predict runs/resnet18/fold_0 recordings/ --out predictions.csv
        emofuse predict runs/resnet18/fold_0/checkpoints/best.ckpt long_interview.wav --window-seconds 6 --out p.json
        emofuse predict runs/early_fusion clip.wav --text "I can't believe you did that"
        emofuse predict runs/cross_attention recordings/ --transcripts transcripts.csv
        """)
    q.add_argument("model", help="a .ckpt file, a fold folder, or a CV run folder (its folds' ensemble)")
    q.add_argument("audio", nargs="+", help="audio files or folders (searched recursively)")
    q.add_argument("--text", help="transcript for a text or fusion model (one clip)")
    q.add_argument("--transcripts", help="CSV with columns utt (file stem) or path, and text")
    q.add_argument("--out", help="write CSV (.csv) or JSON (.json) here; default: CSV on stdout")
    q.add_argument("--window-seconds", type=float, default=8.0, help="long clips are cut into windows of this length")
    q.add_argument("--device", help="cpu, cuda (default: cuda when available)")
    _add_timeline_flag(q)

    q = add("evaluate", "Cross-corpus: apply a trained run (fold ensemble, one fold or a checkpoint) to another prepared corpus.", """
        emofuse prepare cremad /data/CREMA-D --out data/cremad4 --class-map cremad4
        emofuse evaluate runs/ravdess4 data/cremad4 --out eval/ravdess4_on_cremad4
        emofuse evaluate runs/ravdess4/fold_0 data/emodb4 --out eval/fold0_on_emodb4
        """)
    q.add_argument("model", help="a CV run folder (its folds' ensemble), a fold folder, or a .ckpt file")
    q.add_argument("manifest", help="a manifest folder (or its manifest.csv) of another corpus, from 'emofuse prepare'")
    q.add_argument("--out", required=True, help="folder for metrics.json, predictions.csv, confusion.png, results.md")
    q.add_argument("--text-column", help="manifest column a text model reads (default: text)")
    q.add_argument("--window-seconds", type=float, default=8.0, help="long clips are cut into windows of this length")
    q.add_argument("--device", help="cpu, cuda (default: cuda when available)")

    q = add("explain", "Draw what a model looks at: Grad-CAM (CNNs), attention (Transformer), audio x token attention (cross-attention).", """
        emofuse explain runs/resnet18 clip.wav --out explain/
        emofuse explain runs/audio_transformer/fold_2 clips/ --class angry
        emofuse explain runs/cross_attention clip.wav --text "I can't believe you did that" --out explain/
        """)
    q.add_argument("model", help="a .ckpt file, a fold folder, or a run folder (--fold picks the fold)")
    q.add_argument("audio", nargs="+", help="audio files or folders")
    q.add_argument("--out", default="explain", help="folder for the PNGs")
    q.add_argument("--fold", type=int, help="which fold of a run to explain (default: its first)")
    q.add_argument("--class", dest="target", help="explain this class (default: the predicted one)")
    q.add_argument("--text", help="transcript (text and fusion models; one clip)")
    q.add_argument("--transcripts", help="CSV with columns utt (file stem) or path, and text")
    q.add_argument("--window-seconds", type=float, default=8.0, help="the first window of this length is explained")
    q.add_argument("--device", help="cpu, cuda")

    q = add("export", "Export what 'predict' runs (a run's fold ensemble, or one fold) to ONNX or TorchScript, "
                      "with a sidecar JSON (which folds, inputs, front end, classes).", """
        emofuse export runs/resnet18 --format onnx --out exported/resnet18
        emofuse export runs/resnet18 --format onnx --fold 2 --out exported/resnet18_fold2
        emofuse export runs/cross_attention/fold_2 --format torchscript --out exported/ca
        """)
    q.add_argument("model", help="a .ckpt file, a fold folder, or a run folder (--fold picks the fold)")
    q.add_argument("--format", required=True, choices=reg["formats"], help=f"{_listed(reg['formats'], ' or ')}")
    q.add_argument("--out", required=True, help="folder for model.onnx / model.pt and model.json")
    q.add_argument("--fold", type=int, help="export this fold only (default: the ensemble of the run's finished folds)")
    q.add_argument("--window-seconds", type=float, default=8.0,
                   help="the windows predict cuts (recorded in model.json); fixed input length of attention models in ONNX")

    q = add("report", "Write RUN/report.html (self-contained) and RUN/report.md: audit, metrics, confusions, curves, maps.", """
        emofuse report runs/resnet18
        emofuse report runs/cross_attention --cams 0
        """)
    q.add_argument("run")
    q.add_argument("--cams", type=int, default=1, help="0 leaves out the class activation maps; otherwise one per class")

    q = add("compare", "Rank runs on the same corpus and folds (t intervals, chance and majority baselines) and pair "
                       "each with the first: fold differences, Wilcoxon, speaker-level permutation test.", """
        emofuse compare runs/cnn_bilstm runs/resnet18 runs/early_fusion runs/cross_attention
        emofuse compare runs/* --out table.md --bootstrap 2000
        """)
    q.add_argument("runs", nargs="+", help="run folders; the first is the reference the others are paired with")
    q.add_argument("--out", help="also write the Markdown here")
    q.add_argument("--bootstrap", type=int, default=1000, help="speaker resamples and permutations (default 1000)")
    q.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")

    _add_serve_parser(add)
    add("models", f"List the registered models ({_listed(reg['models'])}).", "emofuse models")
    add("configs", "List the shipped configs.", "emofuse configs")
    return p


def _read_transcripts(path_arg: str | None) -> dict[str, str]:
    """--transcripts CSV -> {file stem: text}."""
    import pandas as pd

    from .errors import EmofuseError

    if not path_arg:
        return {}
    path = Path(path_arg)
    if not path.is_file():
        raise EmofuseError(f"{path}: transcripts file not found; give a CSV with columns utt (or path) and text")
    try:  # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is dropped, not glued to the first column's name
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise EmofuseError(f"{path}: not UTF-8 text; save it as UTF-8 (in Excel: 'CSV UTF-8')") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise EmofuseError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]}); give columns utt (or path) and text") from None
    key = "utt" if "utt" in table.columns else "path" if "path" in table.columns else None
    if key is None or "text" not in table.columns:
        raise EmofuseError(f"{path}: needs columns utt (file stem) or path, and text; it has {list(table.columns)}")
    return {(Path(k).stem if key == "path" else k): t for k, t in zip(table[key], table["text"])}


def _predict(args) -> int:
    """Predict every file; a file that cannot be predicted is skipped, named on stderr with the
    reason, and listed in the output (column/field ``skipped``). Exit 0 when at least one file was
    predicted, 2 when none could be."""
    import pandas as pd

    from .atomic import write_text_atomic
    from .errors import EmofuseError
    from .inference import audio_files, load
    from .writable import check_writable

    if args.out:
        out = Path(args.out)
        if out.is_dir():
            raise EmofuseError(f"{out}: is a folder; give --out a file name ending in .csv or .json")
        check_writable(out.parent if str(out.parent) else Path("."), "predictions",
                       "give --out a path in a folder you can write to")
    files = audio_files(args.audio)
    texts = _read_transcripts(args.transcripts)
    if args.text is not None and len(files) > 1:
        raise EmofuseError("--text is for one clip; give several transcripts with --transcripts FILE")
    predictor = load(args.model, args.device, args.window_seconds)
    rows, skipped = [], 0
    for f in files:
        text = args.text if args.text is not None else texts.get(f.stem)
        try:
            pred = predictor.predict(f, text=text, utt=f.stem)
            row = {**pred.as_row(), "path": str(f), "skipped": ""}
            for line in pred.warnings():
                print(f"emofuse: warning: {line}", file=sys.stderr)
        except (EmofuseError, OSError) as exc:
            reason = str(exc).removeprefix(f"{f}: ").removeprefix(f"{f.stem}: ")
            print(f"emofuse: skipped {f}: {reason}", file=sys.stderr)
            row = {"utt": f.stem, "pred": "", "path": str(f), "skipped": reason}
            skipped += 1
        rows.append(row)
    if skipped == len(rows):
        raise EmofuseError(f"none of the {len(rows)} files could be predicted (reasons above); nothing written")
    df = pd.DataFrame(rows)
    df = df[[c for c in df.columns if c not in ("path", "skipped")] + ["path", "skipped"]]
    if args.out and args.out.endswith(".json"):
        write_text_atomic(args.out, json.dumps(rows, indent=2))
    elif args.out:
        write_text_atomic(args.out, df.to_csv(index=False))
    else:
        print(df.to_csv(index=False), end="")
    if args.out or skipped:
        print(f"{'wrote' if args.out else 'printed'} {len(rows) - skipped} predictions{f' to {args.out}' if args.out else ''}"
              f"{f', {skipped} files skipped (column skipped)' if skipped else ''} ({predictor.which}: "
              f"{', '.join(str(s) for s in predictor.sources[:3])}{' ...' if len(predictor.sources) > 3 else ''})",
              file=sys.stderr)
    return 0


def _parse_folds(text: str | None) -> list[int] | None:
    """``--folds 0,2,3`` -> [0, 2, 3] (None: all folds)."""
    if not text:
        return None
    try:
        folds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise EmofuseError(f"--folds {text}: give fold numbers separated by commas (e.g. --folds 0,2)") from None
    return list(dict.fromkeys(folds)) or None


def _resolve_cfg(args) -> tuple[dict, Path]:
    from .config import find_config, load_config
    from .runfolder import check_run_name

    overrides = list(args.overrides)
    for flag, key in (("devices", "train.devices"), ("num_nodes", "train.num_nodes"), ("strategy", "train.strategy"),
                      ("accelerator", "train.accelerator")):
        v = getattr(args, flag, None)
        if v is not None:
            overrides.append(f"{key}={v}")
    cfg = load_config(args.config, overrides)
    if not cfg.get("name"):
        cfg["name"] = find_config(args.config).stem
    run_dir = Path(args.out) if args.out else Path("runs") / check_run_name(cfg["name"])
    return cfg, run_dir


def print_summary(summary: dict, run_dir: Path) -> None:
    """The summary table as ``emofuse cv`` prints it (``emofuse.summary.render``)."""
    from .summary import render

    print(render(summary, "text", run_dir), end="")


def _quiet_warnings() -> None:
    """Silence library chatter that says nothing to a user (data-loader worker hints, deprecations)."""
    import warnings

    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*limit_(train|val)_batches=1.0.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")  # small folds: says nothing
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")


def main(argv: list[str] | None = None) -> int:
    _quiet_warnings()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(full_help=not argv or any(a in ("-h", "--help") for a in argv))
    # key.sub=value overrides may stand anywhere on the line, also after options.
    overrides = [a for a in argv if _OVERRIDE.match(a)]
    args = parser.parse_args([a for a in argv if not _OVERRIDE.match(a)])
    if overrides:
        if not hasattr(args, "overrides"):
            parser.error(f"'{args.command}' takes no key=value overrides: {overrides}")
        args.overrides = list(args.overrides) + overrides
    args.argv = argv
    if not args.command:
        parser.print_help()
        return 0
    try:
        return _dispatch(args)
    except EmofuseError as exc:
        print(f"emofuse: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _DISK_ERRORS:
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        print(f"emofuse: error: {exc.strerror or exc}{where}; {_DISK_ERRORS[exc.errno]} and run the same command again "
              "(finished work is kept)", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"emofuse: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("emofuse: interrupted; finished work is kept, run the same command again to resume", file=sys.stderr)
        return 130


def cmd_prepare(args) -> int:
    from .prepare import prepare

    if args.corpus == "merge":
        from .prepare import merge_manifests

        ignored = [flag for flag, on in (("--class-map", args.class_map), ("--csv", args.csv), ("--strict", args.strict),
                                         ("--force", args.force), ("--min-seconds", args.min_seconds != 0.25)) if on]
        if ignored:
            raise EmofuseError(f"prepare merge joins manifests as they were prepared: {', '.join(ignored)} would be "
                               "ignored; prepare each corpus with it first, then merge")
        print("\n".join(merge_manifests(args.root, args.out, args.workers).lines()))
        return 0
    if len(args.root) != 1:
        raise EmofuseError(f"prepare {args.corpus} reads one corpus folder, not {len(args.root)}; "
                           "to join prepared manifests use 'emofuse prepare merge'")
    opts = {"csv": args.csv} if args.csv else {}
    summary = prepare(args.corpus, args.root[0], args.out, args.class_map, args.strict, args.workers,
                      args.min_seconds, args.force, **opts)
    print("\n".join(summary.lines()))
    return 0


def cmd_synth(args) -> int:
    from .synth import SynthSpec, make_synthetic_corpus

    info = make_synthetic_corpus(args.out, SynthSpec(sessions=args.sessions, per_class=args.per_class,
                                                     min_seconds=args.min_seconds, max_seconds=args.max_seconds,
                                                     durations=args.durations, sample_rate=args.sample_rate,
                                                     scripts=args.scripts, seed=args.seed))
    print(f"wrote {info['utterances']} utterances ({info['hours']:.2f} h) to {args.out} ({json.dumps(info['labels'])})")
    print(f"next: emofuse prepare iemocap {args.out} --out {args.out.rstrip('/')}_manifest")
    return 0


def cmd_synth_noise(args) -> int:
    from .synth import make_noise_folder

    counts = make_noise_folder(args.out, args.per_kind, seed=args.seed)
    print(f"wrote {sum(counts.values())} files to {args.out} ({', '.join(f'{k}/: {v}' for k, v in counts.items())})")
    return 0


def cmd_folds(args) -> int:
    from .manifest import read_manifest
    from .splits import audit_split, make_folds, require_passed, write_split

    m = read_manifest(args.manifest)
    folds = make_folds(m.df, m.meta.get("corpus", ""), args.scheme, args.n_folds, args.val_speakers, args.seed,
                       args.test_corpus)
    audits = []
    for f in folds:
        audit = write_split(f, m.df, Path(args.out) / f"fold_{f.fold}", audit_split(f, m.df, near_duplicates=m.near_duplicates()))
        audits.append(audit)
        print(f"fold {f.fold}: test {', '.join(f.test_groups)} | train {audit['counts']['train']}, "
              f"val {audit['counts']['val']}, test {audit['counts']['test']} | audit {'passed' if audit['passed'] else 'FAILED'}")
    print(f"wrote {args.out}/fold_*/split.csv and audit.json")
    require_passed(audits, Path(args.out))
    return 0


def cmd_transcribe(args) -> int:
    from .asr import transcribe_manifest

    r = transcribe_manifest(args.manifest, args.model, args.beam_size, args.batch_size, args.device, args.compute_type,
                            args.threads, args.language, args.column, progress=sys.stderr.isatty())
    print(f"{r.manifest}: column {r.column}: {r.transcribed} transcribed, {r.cached} from {r.side_file}"
          + (f"; WER against the manual 'text' column {r.wer_vs_manual:.3f}" if r.wer_vs_manual is not None else ""))
    return 0


def cmd_features(args) -> int:
    from .config import apply_overrides, load_config
    from .manifest import read_manifest
    from .schema import check_config
    from .training.inputs import cache_features

    cfg = check_config(apply_overrides(load_config(args.config), args.overrides))
    print("\n".join(cache_features(read_manifest(args.manifest), cfg, args.cache, args.workers, args.text)))
    return 0


def cmd_cv(args) -> int:
    from .schema import check_config
    from .training.lifecycle import open_run
    from .training.scheduler import run_cv
    from .writable import check_writable

    _lightning_messages(args.verbose)
    cfg, run_dir = _resolve_cfg(args)
    folds = [args.fold] if args.command == "train" else _parse_folds(args.folds)
    check_config(cfg, folds)  # a bad key, value or fold number stops here, before any work
    if args.dry_run:
        from .training.plan import dry_run

        print(dry_run(cfg, run_dir, folds), end="")
        return 0
    check_writable(run_dir, "run folder", "give --out a folder you can write to")
    with _resume_hint(args, run_dir):
        ctx = open_run(cfg, run_dir, args.overwrite, fold=args.fold if args.command == "train" else None)
        if args.command == "train":
            return _train_one(ctx, args.fold, not args.no_progress)
        if (run_dir / "summary.json").is_file() and not args.overwrite:
            print(f"{run_dir}: finished run, kept (pass --overwrite to train again)", file=sys.stderr)
        summary = run_cv(ctx, folds, args.jobs, progress=not args.no_progress)
    if summary is not None:
        print_summary(summary, run_dir)
    return 0


def _lightning_messages(verbose: bool) -> None:
    """Lightning's banner and shutdown lines ("GPU available", "LOCAL_RANK", "`Trainer.fit`
    stopped", "Detected KeyboardInterrupt") only with --verbose; its warnings always."""
    if verbose:
        return
    import logging

    import lightning.pytorch  # noqa: F401  (it sets its loggers' level on import; ours must come after)

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _train_one(ctx, k: int, progress: bool) -> int:
    from .summary import summarize_run
    from .training.scheduler import train_with_progress

    result = train_with_progress(ctx, [k], progress)
    if result is not None:
        t = result["test"]
        print(f"fold {k}: test Macro-F1 {t['macro_f1']:.3f}, UA {t['ua']:.3f}, WA {t['wa']:.3f} "
              f"({ctx.run_dir}/fold_{k}/metrics.json)")
        summarize_run(ctx)  # summary.json once every fold is done, summary.partial.json before
    return 0


class Interrupted(Exception):
    """Ctrl-C during training, with the command that resumes the run."""


def resume_command(args, run_dir: Path) -> str:
    """The command that resumes this run: its own saved config, so an edited config file or a
    moved manifest does not stand in the way (and never ``--overwrite``, which would delete it)."""
    import shlex

    if not (run_dir / "config.yaml").is_file():  # stopped before the run began: the command as typed
        return shlex.join(["emofuse", *(a for a in getattr(args, "argv", []) if a != "--overwrite")])
    cmd = ["emofuse", args.command, str(run_dir / "config.yaml")]
    if args.command == "train":
        cmd += ["--fold", str(args.fold)]
    elif args.folds:
        cmd += ["--folds", args.folds]
    if getattr(args, "jobs", 1) > 1:
        cmd += ["--jobs", str(args.jobs)]
    return shlex.join(cmd + ["--out", str(run_dir)])


class _resume_hint:
    """Turns Ctrl-C inside training into ``Interrupted`` with the exact resume command."""

    def __init__(self, args, run_dir: Path) -> None:
        self.args, self.run_dir = args, run_dir

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            from .training.fold import Interrupted as FoldInterrupted

            where = f" during fold {exc.fold}" if isinstance(exc, FoldInterrupted) else ""
            kept = "finished folds and each fold's last.ckpt are kept" if (self.run_dir / "config.yaml").is_file() \
                else "nothing was trained yet"
            raise Interrupted(f"interrupted{where}; {kept}; resume with: {resume_command(self.args, self.run_dir)}") from None
        return False


def cmd_demo(args) -> int:
    from .demo import run_demo

    _lightning_messages(args.verbose)
    return run_demo(Path(args.out), args.overwrite, args.overrides)


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate

    rec = evaluate(args.model, args.manifest, args.out, args.device, args.window_seconds, args.text_column)
    mt, c = rec["metrics"], rec["counts"]
    left = c["manifest"] - c["evaluated"]
    print(f"{rec['corpus'] or args.manifest}: Macro-F1 {mt['macro_f1']:.3f}, UA {mt['ua']:.3f}, WA {mt['wa']:.3f} on "
          f"{c['evaluated']} utterances ({left} left out: see {args.out}/results.md); wrote {args.out}/metrics.json, "
          "predictions.csv, confusion.png, results.md")
    return 0


def cmd_report(args) -> int:
    from .report import write_report

    page, md = write_report(args.run, args.cams)
    print(f"wrote {page} and {md}")
    return 0


def cmd_compare(args) -> int:
    from .atomic import write_text_atomic
    from .report import compare_runs

    table = compare_runs(args.runs, b=args.bootstrap, seed=args.seed)
    print(table, end="")
    if args.out:
        write_text_atomic(args.out, table)  # replaces a link at --out instead of writing through it
    return 0


def cmd_export(args) -> int:
    from .export import export_model

    path, side = export_model(args.model, args.format, args.out, args.fold, args.window_seconds)
    meta = json.loads(side.read_text())
    print(f"wrote {path} and {side}: {meta['which']}; inputs "
          + ", ".join(f"{n} {tuple(i['shape'])} {i['dtype']}" for n, i in meta["inputs"].items())
          + f"; {meta['sample_rate']} Hz, {meta['window_seconds']:g} s windows; classes {', '.join(meta['classes'])}")
    return 0


def cmd_explain(args) -> int:
    from .explain import explain, plot_explanation
    from .inference import audio_files, load

    predictor = load(args.model, args.device, args.window_seconds, fold=args.fold)
    texts = _read_transcripts(args.transcripts)
    for f in audio_files(args.audio):
        e = explain(predictor, f, text=args.text if args.text is not None else texts.get(f.stem), target=args.target,
                    utt=f.stem)
        path = plot_explanation(e, Path(args.out) / f"{f.stem}.png")
        print(f"{path}: {e.kind} of {e.which}, predicted {e.label}, explained {e.explained}")
    return 0


def cmd_convert_whisper(args) -> int:
    from .pretrained.convert import convert_whisper

    print(f"{convert_whisper(args.ct2_dir, args.out_dir)}: transformers Whisper folder (every encoder layer: "
          f"features.kind=hf_encoder features.model={args.out_dir})")
    return 0


def cmd_predict(args) -> int:
    return _predict_timeline(args) if args.timeline else _predict(args)


def cmd_models(args) -> int:
    from .models import list_models, model_modalities

    print("\n".join(f"{n:<20} {' + '.join(model_modalities(n))}" for n in list_models()))
    return 0


def cmd_configs(args) -> int:
    from .config import list_configs

    print("\n".join(list_configs()))
    return 0


# --- emotion over time and the local service (issue #22): parser pieces and handlers -------------

def _add_timeline_flag(q: argparse.ArgumentParser) -> None:
    q.add_argument("--timeline", action="store_true",
                   help="long recordings: classify each speech segment (silence skipped) and write OUT/<file>.csv "
                        "(start, end, label, probabilities) and OUT/<file>.png; --out is then a folder (default timeline)")
    q.epilog += ("\n  emofuse predict runs/resnet18 interview.wav --timeline --out timeline/"
                 "   # emotion over time: timeline/interview.csv, .png")


def _add_serve_parser(add) -> None:
    q = add("serve", "Serve a trained run over HTTP on this machine: a web page, POST /predict, GET /model, GET /health.", """
        emofuse serve runs/resnet18                      # then open http://127.0.0.1:8000
        emofuse serve runs/resnet18 --port 8080 --max-seconds 3600 --concurrency 2 --queue 16
        curl -F file=@clip.wav http://127.0.0.1:8000/predict
        curl -F file=@clip.wav -F transcript="I can't believe it" http://127.0.0.1:8000/predict   # fusion models
        """)
    from .serve import Limits

    d = Limits()
    q.add_argument("model", help="a .ckpt file, a fold folder, or a CV run folder (its folds' ensemble)")
    q.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    q.add_argument("--port", type=int, default=8000)
    q.add_argument("--max-seconds", type=float, default=d.max_seconds, help=f"longest audio accepted (default {d.max_seconds:g})")
    q.add_argument("--max-bytes", type=int, default=d.max_bytes, help=f"largest upload accepted (default {d.max_bytes})")
    q.add_argument("--concurrency", type=int, default=d.concurrency, help=f"predictions run at once (default {d.concurrency})")
    q.add_argument("--queue", type=int, default=d.queue, help=f"requests that may wait; more get 503 (default {d.queue})")
    q.add_argument("--timeline-seconds", type=float, default=d.timeline_seconds,
                   help=f"longer files get a timeline of speech segments (default {d.timeline_seconds:g})")
    q.add_argument("--window-seconds", type=float, default=8.0, help="long clips are cut into windows of this length")
    q.add_argument("--device", help="cpu, cuda (default: cuda when available)")


def _predict_timeline(args) -> int:
    """``predict --timeline``: per file OUT/<stem>.csv and .png; a file that fails is skipped and named."""
    from .inference import audio_files, load
    from .timeline import VadConfig, plot_timeline, timeline, write_csv
    from .writable import check_writable

    out = Path(args.out or "timeline")
    if out.suffix.lower() in (".csv", ".json") or out.is_file():
        raise EmofuseError(f"{out}: with --timeline, --out is a folder for one CSV and one PNG per file; give a folder name")
    files = audio_files(args.audio)
    check_writable(out, "timeline folder", "give --out a folder you can write to")
    if args.text is not None or args.transcripts:
        raise EmofuseError("--timeline classifies speech segments, which have no transcripts of their own: drop --text / "
                           "--transcripts (a model trained on ASR text transcribes each segment itself)")
    vad = VadConfig(max_seconds=args.window_seconds)  # checked once, before any file
    predictor = load(args.model, args.device, args.window_seconds)
    done = 0
    for f in files:
        try:
            tl = timeline(predictor, f, vad)
        except (EmofuseError, OSError) as exc:
            print(f"emofuse: skipped {f}: {str(exc).removeprefix(f'{f}: ')}", file=sys.stderr)
            continue
        out.mkdir(parents=True, exist_ok=True)
        csv, png = write_csv(tl, out / f"{f.stem}.csv"), plot_timeline(tl, out / f"{f.stem}.png", title=f.name)
        print(f"{f}: {len(tl.segments)} speech segments, {tl.speech_seconds:.1f} s of {tl.seconds:.1f} s; mostly {tl.label} "
              f"({', '.join(f'{c} {p:.2f}' for c, p in tl.probs.items())}); wrote {csv} and {png}")
        done += 1
    if not done:
        raise EmofuseError(f"none of the {len(files)} files could be segmented and classified (reasons above); nothing written")
    return 0


def cmd_serve(args) -> int:
    from .serve import Limits, serve

    serve(args.model, args.host, args.port, Limits(args.max_seconds, args.max_bytes, args.concurrency, args.queue,
                                                   args.timeline_seconds), args.device, args.window_seconds)
    return 0


# One handler per command: a new command is a parser entry in _parser() plus one line here.
COMMANDS = {"prepare": cmd_prepare, "synth": cmd_synth, "synth-noise": cmd_synth_noise, "folds": cmd_folds,
            "transcribe": cmd_transcribe, "convert-whisper": cmd_convert_whisper, "features": cmd_features, "cv": cmd_cv,
            "train": cmd_cv, "demo": cmd_demo, "predict": cmd_predict, "evaluate": cmd_evaluate, "report": cmd_report,
            "compare": cmd_compare, "export": cmd_export, "explain": cmd_explain, "serve": cmd_serve, "models": cmd_models,
            "configs": cmd_configs}


def _dispatch(args) -> int:
    handler = COMMANDS.get(args.command)
    if handler is None:
        raise EmofuseError(f"unknown command {args.command}")
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
