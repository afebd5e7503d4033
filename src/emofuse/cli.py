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


def _parser() -> argparse.ArgumentParser:
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
    q.add_argument("--config", default="default", help="config whose features: and text: groups to use "
                   "(e.g. whisper_mlp for Whisper encoder features)")
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
        q.add_argument("config", help="a config YAML, or a shipped experiment name (resnet18, cnn_bilstm, audio_transformer, "
                       "text_mlp, early_fusion, cross_attention, demo; see 'emofuse configs')")
        q.add_argument("overrides", nargs="*", help="KEY.SUB=VALUE config overrides (e.g. train.max_epochs=5)")
        q.add_argument("--out", help="run folder (default runs/<name>)")
        q.add_argument("--overwrite", action="store_true", help="delete an existing run folder first")
        q.add_argument("--devices", help="devices per node (e.g. 1, 4, auto)")
        q.add_argument("--num-nodes", type=int)
        q.add_argument("--strategy", help="Lightning strategy (auto, ddp, ddp_spawn, ...)")
        q.add_argument("--accelerator", help="cpu, gpu, auto")
        q.add_argument("--no-progress", action="store_true", help="no progress bars")
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
    q.add_argument("--fold", type=int, default=0, help="which fold of a run to explain")
    q.add_argument("--class", dest="target", help="explain this class (default: the predicted one)")
    q.add_argument("--text", help="transcript (text and fusion models; one clip)")
    q.add_argument("--transcripts", help="CSV with columns utt (file stem) or path, and text")
    q.add_argument("--window-seconds", type=float, default=8.0, help="the first window of this length is explained")
    q.add_argument("--device", help="cpu, cuda")

    q = add("export", "Export a trained model to TorchScript or ONNX (runs without emofuse; sidecar JSON with settings).", """
        emofuse export runs/resnet18 --format onnx --out exported/resnet18
        emofuse export runs/cross_attention/fold_2 --format torchscript --out exported/ca
        """)
    q.add_argument("model", help="a .ckpt file, a fold folder, or a run folder (--fold picks the fold)")
    q.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    q.add_argument("--out", required=True, help="folder for model.onnx / model.pt and model.json")
    q.add_argument("--fold", type=int, default=0)
    q.add_argument("--window-seconds", type=float, default=8.0, help="fixed input length of attention models in ONNX")

    q = add("report", "Write RUN/report.html (self-contained) and RUN/report.md: audit, metrics, confusions, curves, maps.", """
        emofuse report runs/resnet18
        emofuse report runs/cross_attention --cams 0
        """)
    q.add_argument("run")
    q.add_argument("--cams", type=int, default=3, help="class activation maps of fold 0 test items to include")

    q = add("compare", "Rank runs on the same corpus and folds (t intervals, chance and majority baselines) and pair "
                       "each with the first: fold differences, Wilcoxon, speaker-level permutation test.", """
        emofuse compare runs/cnn_bilstm runs/resnet18 runs/early_fusion runs/cross_attention
        emofuse compare runs/* --out table.md --bootstrap 2000
        """)
    q.add_argument("runs", nargs="+", help="run folders; the first is the reference the others are paired with")
    q.add_argument("--out", help="also write the Markdown here")
    q.add_argument("--bootstrap", type=int, default=1000, help="speaker resamples and permutations (default 1000)")
    q.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")

    add("models", "List the registered models.", "emofuse models")
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
            row = {**predictor.predict(f, text=text, utt=f.stem).as_row(), "path": str(f), "skipped": ""}
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
              f"{f', {skipped} files skipped (column skipped)' if skipped else ''} ({len(predictor.modules)} model(s): "
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
    from .metrics import HEADLINE

    print()
    print(f"{summary.get('name') or summary['model']} ({summary['model']}, {', '.join(summary['modalities'])}) on "
          f"{summary['corpus']}: {summary['n_folds']} speaker-independent folds ({summary['scheme']})"
          f"{'' if summary['complete'] else ' [partial]'}")
    print(f"{'fold':>4}  {'test speakers':<28} {'Macro-F1':>8} {'UA':>6} {'WA':>6}")
    for f in summary["per_fold"]:
        print(f"{f['fold']:>4}  {', '.join(f['test_groups'])[:28]:<28} {f['macro_f1']:>8.3f} {f['ua']:>6.3f} {f['wa']:>6.3f}")
    print(f"{'mean':>4}  {'':<28} " + " ".join(f"{summary[k]['mean']:>{8 if k == 'macro_f1' else 6}.3f}" for k in HEADLINE))
    print(f"{'std':>4}  {'':<28} " + " ".join(f"{summary[k]['std']:>{8 if k == 'macro_f1' else 6}.3f}" for k in HEADLINE))
    print("per-class F1: " + ", ".join(f"{c} {v['mean']:.3f}" for c, v in summary["per_class_f1"].items()))
    from .subsets import overlap_lines

    print("\n".join(overlap_lines(summary)))
    print(f"files: {run_dir}/summary.json, results.md, confusion.png, audit.json, fold_*/predictions.csv; "
          f"TensorBoard: tensorboard --logdir {run_dir}")


def _quiet_warnings() -> None:
    """Silence library chatter that says nothing to a user (data-loader worker hints, deprecations)."""
    import warnings

    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*limit_(train|val)_batches=1.0.*")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")


def main(argv: list[str] | None = None) -> int:
    _quiet_warnings()
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # key.sub=value overrides may stand anywhere on the line, also after options.
    overrides = [a for a in argv if _OVERRIDE.match(a)]
    args = parser.parse_args([a for a in argv if not _OVERRIDE.match(a)])
    if overrides:
        if not hasattr(args, "overrides"):
            parser.error(f"'{args.command}' takes no key=value overrides: {overrides}")
        args.overrides = list(args.overrides) + overrides
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
    except KeyboardInterrupt:
        print("emofuse: interrupted; finished work is kept, run the same command again to resume", file=sys.stderr)
        return 130


def _dispatch(args) -> int:
    if args.command == "prepare":
        from .prepare import prepare

        if args.corpus == "merge":
            from .prepare import merge_manifests

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
    if args.command == "synth":
        from .synth import SynthSpec, make_synthetic_corpus

        info = make_synthetic_corpus(args.out, SynthSpec(sessions=args.sessions, per_class=args.per_class,
                                                         min_seconds=args.min_seconds, max_seconds=args.max_seconds,
                                                         durations=args.durations, sample_rate=args.sample_rate,
                                                         scripts=args.scripts, seed=args.seed))
        print(f"wrote {info['utterances']} utterances ({info['hours']:.2f} h) to {args.out} ({json.dumps(info['labels'])})")
        print(f"next: emofuse prepare iemocap {args.out} --out {args.out.rstrip('/')}_manifest")
        return 0
    if args.command == "folds":
        from .manifest import read_manifest
        from .splits import audit_split, make_folds, require_passed, write_split

        m = read_manifest(args.manifest)
        folds = make_folds(m.df, m.meta.get("corpus", ""), args.scheme, args.n_folds, args.val_speakers, args.seed,
                           args.test_corpus)
        audits = []
        for f in folds:
            audit = write_split(f, m.df, Path(args.out) / f"fold_{f.fold}",
                                audit_split(f, m.df, near_duplicates=m.near_duplicates()))
            audits.append(audit)
            print(f"fold {f.fold}: test {', '.join(f.test_groups)} | train {audit['counts']['train']}, "
                  f"val {audit['counts']['val']}, test {audit['counts']['test']} | audit {'passed' if audit['passed'] else 'FAILED'}")
        print(f"wrote {args.out}/fold_*/split.csv and audit.json")
        require_passed(audits, Path(args.out))
        return 0
    if args.command == "synth-noise":
        from .synth import make_noise_folder

        counts = make_noise_folder(args.out, args.per_kind, seed=args.seed)
        print(f"wrote {sum(counts.values())} files to {args.out} ({', '.join(f'{k}/: {v}' for k, v in counts.items())})")
        return 0
    if args.command == "transcribe":
        from .asr import transcribe_manifest

        r = transcribe_manifest(args.manifest, args.model, args.beam_size, args.batch_size, args.device, args.compute_type,
                                args.threads, args.language, args.column, progress=sys.stderr.isatty())
        print(f"{r.manifest}: column {r.column}: {r.transcribed} transcribed, {r.cached} from {r.side_file}"
              + (f"; WER against the manual 'text' column {r.wer_vs_manual:.3f}" if r.wer_vs_manual is not None else ""))
        return 0
    if args.command == "features":
        from .config import apply_overrides, load_config
        from .features import open_store
        from .manifest import read_manifest
        from .schema import check_config
        from .training.run import frontend_config

        cfg = check_config(apply_overrides(load_config(args.config), args.overrides))
        m = read_manifest(args.manifest)
        cache = args.cache or m.path.parent / "cache"
        store = open_store(cache, frontend_config(cfg))
        n = store.ensure(m.df["audio_sha1"].tolist(), [m.audio_path(p) for p in m.df["path"]], workers=args.workers)
        print(f"{store.dir}: {n} utterances computed, {len(m.df) - n} already cached")
        if args.text:
            from .text import TextConfig, TextStore
            from .training.run import transcripts

            text_cfg = TextConfig.from_dict(cfg.get("text"))
            texts = transcripts(m, text_cfg)
            tstore = TextStore(cache, text_cfg)
            n = tstore.ensure(texts)
            print(f"{tstore.dir}: {n} distinct texts encoded, {len(set(texts)) - n} already cached")
        return 0
    if args.command in ("cv", "train"):
        from .schema import check_config
        from .training.run import open_run, run_cv, summarize_run, train_fold
        from .writable import check_writable

        cfg, run_dir = _resolve_cfg(args)
        folds = [args.fold] if args.command == "train" else _parse_folds(args.folds)
        check_config(cfg, folds)  # a bad key, value or fold number stops here, before any work
        check_writable(run_dir, "run folder", "give --out a folder you can write to")
        ctx = open_run(cfg, run_dir, args.overwrite, fold=args.fold if args.command == "train" else None)
        if args.command == "train":
            result = train_fold(ctx, args.fold, progress=not args.no_progress)
            if result is not None:
                t = result["test"]
                print(f"fold {args.fold}: test Macro-F1 {t['macro_f1']:.3f}, UA {t['ua']:.3f}, WA {t['wa']:.3f} "
                      f"({run_dir}/fold_{args.fold}/metrics.json)")
                summarize_run(ctx)  # summary.json once every fold is done, summary.partial.json before
            return 0
        if (run_dir / "summary.json").is_file() and not args.overwrite:
            print(f"{run_dir}: finished run, kept (pass --overwrite to train again)", file=sys.stderr)
        summary = run_cv(ctx, folds, args.jobs, progress=not args.no_progress)
        if summary is not None:
            print_summary(summary, run_dir)
        return 0
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(Path(args.out), args.overwrite, args.overrides)
    if args.command == "predict":
        return _predict(args)
    if args.command == "evaluate":
        from .evaluate import evaluate

        rec = evaluate(args.model, args.manifest, args.out, args.device, args.window_seconds, args.text_column)
        mt, c = rec["metrics"], rec["counts"]
        left = c["manifest"] - c["evaluated"]
        print(f"{rec['corpus'] or args.manifest}: Macro-F1 {mt['macro_f1']:.3f}, UA {mt['ua']:.3f}, WA {mt['wa']:.3f} on "
              f"{c['evaluated']} utterances ({left} left out: see {args.out}/results.md); wrote {args.out}/metrics.json, "
              "predictions.csv, confusion.png, results.md")
        return 0
    if args.command == "report":
        from .report import write_report

        page, md = write_report(args.run, args.cams)
        print(f"wrote {page} and {md}")
        return 0
    if args.command == "compare":
        from .report import compare_runs

        table = compare_runs(args.runs, b=args.bootstrap, seed=args.seed)
        print(table, end="")
        if args.out:
            from .atomic import write_text_atomic

            write_text_atomic(args.out, table)  # replaces a link at --out instead of writing through it
        return 0
    if args.command == "export":
        from .export import export_model

        path, side = export_model(args.model, args.format, args.out, args.fold, args.window_seconds)
        print(f"wrote {path} and {side}")
        return 0
    if args.command == "explain":
        from .explain import explain, plot_explanation
        from .inference import audio_files, load

        predictor = load(args.model, args.device, args.window_seconds)
        files = audio_files(args.audio)
        texts = _read_transcripts(args.transcripts)
        for f in files:
            e = explain(predictor, f, text=args.text if args.text is not None else texts.get(f.stem), target=args.target,
                        fold=args.fold, utt=f.stem)
            path = plot_explanation(e, Path(args.out) / f"{f.stem}.png")
            print(f"{path}: {e.kind}, predicted {e.label}, explained {e.explained}")
        return 0
    if args.command == "models":
        from .models import list_models, model_modalities

        print("\n".join(f"{n:<20} {' + '.join(model_modalities(n))}" for n in list_models()))
        return 0
    if args.command == "configs":
        from .config import list_configs

        print("\n".join(list_configs()))
        return 0
    raise EmofuseError(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
