"""What `emofuse predict RUN` prints, from `emofuse export RUN --format onnx --out EXPORTED` and onnxruntime.

    python examples/onnx_predict.py EXPORTED clip.wav [more.wav ...]

Prints utt, the predicted class and every class's probability (CSV), as `predict` does.
"""
import json, sys
import onnxruntime as ort
from emofuse.export import graph_inputs  # the front end predict runs: decode, 16 kHz mono, windows, log-mel

folder, clips = sys.argv[1], sys.argv[2:]
meta = json.load(open(f"{folder}/model.json"))  # which folds, classes, inputs, front end, windows
session = ort.InferenceSession(f"{folder}/{meta['file']}")
print(",".join(["utt", "pred"] + [f"p_{c}" for c in meta["classes"]]))
for clip in clips:
    probs = session.run(None, graph_inputs(clip, meta))[0].mean(axis=0)  # (windows, classes) -> the clip's
    print(",".join([clip.rsplit("/", 1)[-1].rsplit(".", 1)[0], meta["classes"][probs.argmax()]] + [f"{p:.6f}" for p in probs]))
