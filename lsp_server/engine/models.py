"""Load the target, the draft and the tokenizer: by Hugging Face id or local directory.

Only safetensors weights are read and `trust_remote_code` is never enabled: a model directory
is data, not code. Nothing here touches the network: a Hugging Face id is looked up in the local
cache only, every `from_pretrained` gets a directory and `local_files_only=True`, and `speclsp
pull` is the one command that downloads. So a mistyped id fails at once instead of after the
hub client's retries. Every failure becomes a ModelError whose message tells the user what to do.
With no setting, the real pair is used when it is already on this machine (Hugging Face cache);
otherwise the embedded demo pair shipped inside the package.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import int8
from .api import ModelChoice, ModelError

# Moved to torch-free modules (the remote backend uses them); the names stay importable from here.
from .sources import DEMO_DIR, demo_paths, local_snapshot, looks_like_path, model_dir, resolve_sources  # noqa: F401
from .sources import explain as _explain
from .tokenizer import TokenCodec
from .tokenizer import load_tokenizer as _load_tokenizer

SUPPORTED = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")
Progress = Callable[[str, int], None]  # (message, percent)


@dataclass
class LoadedModels:
    target: torch.nn.Module
    draft: torch.nn.Module | None
    codec: TokenCodec
    draft_vocab: int
    device: torch.device
    dtype: torch.dtype
    info: dict = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA or ROCm (both are torch.cuda) when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {name!r} asked for, but this PyTorch sees no CUDA/ROCm GPU; set device to 'auto' or 'cpu'")
    return dev


def resolve_dtype(name: str, device: torch.device, weight_bytes_fp32: int = 0) -> torch.dtype:
    """'auto': float16 on GPUs (bfloat16 is no faster there for decoding), float32 on CPUs unless
    the model is big enough that halving its memory matters more than bf16's slower CPU kernels."""
    if name != "auto":
        return getattr(torch, name)
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if weight_bytes_fp32 > 4 << 30 else torch.float32


def load_models(settings: ModelChoice, progress: Progress = lambda m, p: None) -> LoadedModels:
    t0 = time.perf_counter()
    target_src, draft_src, notices = resolve_sources(settings)
    device = resolve_device(settings.device)
    target_path = model_dir(target_src)
    progress(f"loading tokenizer from {target_src}", 5)
    codec = TokenCodec(_load_tokenizer(target_path))
    progress(f"loading target model {target_src}", 10)
    target = _load_model(target_path, device, settings.dtype)
    draft, draft_vocab = None, 0
    if draft_src is not None:
        progress(f"loading draft model {draft_src}", 70)
        try:
            draft_path = model_dir(draft_src)
            draft = _load_model(draft_path, device, settings.dtype)
            draft_vocab = check_pair(target, draft, codec, _load_tokenizer(draft_path))
        except ModelError as e:
            notices.append(f"draft model not used, completing without speculation: {e}")
            draft = None
    progress("models loaded", 100)
    info = {"target": target_src, "draft": draft_src if draft is not None else None, "device": str(device),
            "dtype": str(next(target.parameters()).dtype).replace("torch.", ""),
            "load_s": round(time.perf_counter() - t0, 2), "fim": codec.fim is not None}
    return LoadedModels(target, draft, codec, draft_vocab, device, next(target.parameters()).dtype, info, notices)


def check_pair(target: torch.nn.Module, draft: torch.nn.Module, codec: TokenCodec, draft_tokenizer) -> int:
    """The draft may have fewer ids than the target, but every id it has must mean the same text."""
    tv, dv = target.config.vocab_size, draft.config.vocab_size
    if dv > tv:
        raise ModelError(f"draft vocabulary ({dv}) is larger than the target's ({tv})")
    shared = min(dv, len(draft_tokenizer))
    if TokenCodec(draft_tokenizer).vocab_prefix(shared) != codec.vocab_prefix(shared):
        raise ModelError("draft and target tokenizers disagree on shared ids; they are not a speculative pair")
    return dv


def _load_model(src: str, device: torch.device, dtype_name: str) -> torch.nn.Module:
    """`src` is a directory (see model_dir)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    check_safetensors_only(src)
    try:
        config = AutoConfig.from_pretrained(src, trust_remote_code=False, local_files_only=True)
    except Exception as e:
        raise ModelError(_explain(src, "model config", e)) from e
    arch = (getattr(config, "architectures", None) or ["?"])[0]
    if arch not in SUPPORTED:
        raise ModelError(f"{src}: architecture {arch} is not supported (supported: {', '.join(SUPPORTED)})")
    dtype = resolve_dtype(dtype_name, device, _fp32_bytes(config))
    try:
        if int8.is_int8(src):  # int8 rows + scales (the embedded demo pair), dequantized here
            return int8.load_int8_model(src, config, dtype).to(device)
        model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype, use_safetensors=True, trust_remote_code=False,
                                                     local_files_only=True)
        return model.to(device).eval()
    except torch.OutOfMemoryError as e:
        raise ModelError(f"{src} does not fit in {device} memory; try dtype float16/bfloat16, "
                         "device 'cpu', or a smaller model") from e
    except Exception as e:
        raise ModelError(_explain(src, "model weights", e)) from e


def check_safetensors_only(path: str) -> None:
    """Refuse a directory whose weights are anything but safetensors files, whatever its index
    says: transformers follows `model.safetensors.index.json` to any file it names, and a pickled
    checkpoint can run code when it is read."""
    folder = Path(path)
    index = folder / "model.safetensors.index.json"
    if int8.is_int8(folder):
        try:
            files = set(int8.int8_files(folder))
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise ModelError(f"{folder / int8.INDEX} cannot be read ({type(e).__name__}); check the directory") from e
    elif index.is_file():
        try:
            files = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelError(f"{index} cannot be read ({type(e).__name__}); check the directory") from e
    else:
        files = {"model.safetensors"}
    bad = sorted(str(f)[:80] for f in files if not str(f).endswith(".safetensors") or "/" in str(f) or "\\" in str(f))
    if bad:
        raise ModelError(f"{path}: only safetensors weights are loaded, but the index names {', '.join(bad[:3])}")
    missing = sorted(f for f in files if not (folder / f).is_file())
    if missing:
        raise ModelError(f"{path}: no safetensors weights ({', '.join(missing[:3])} missing); pickled "
                         "checkpoints (.bin, .pt) are not loaded")


def _fp32_bytes(config) -> int:
    h, v = config.hidden_size, config.vocab_size
    ffn = getattr(config, "intermediate_size", 4 * h)
    return 4 * (2 * v * h + config.num_hidden_layers * (4 * h * h + 3 * h * ffn))
