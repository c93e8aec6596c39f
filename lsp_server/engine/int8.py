"""Int8 weight files: how a model directory stays small on disk; dequantized to a plain model at load.

Every matrix (linear and embedding weights) is stored as int8 with one fp16 scale per row (the
row's largest magnitude / 127); every other tensor (norm weights) as fp16. The files are
``model.int8.json`` (format and file list) and the ``model.int8-0000k-of-0000n.safetensors`` it
names, each under ``MAX_FILE_BYTES``. ``load_int8_model`` rebuilds the ordinary transformers model
in the dtype asked for, so nothing downstream knows the weights were ever int8. Only safetensors
are read: the index is a list of names, never code.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

INDEX = "model.int8.json"
FORMAT = "int8 rows with fp16 absmax scales"
SCALE_SUFFIX = ".int8_scale"
MAX_FILE_BYTES = 15 * 2**20 - 2**16  # under 15 MiB with room for the safetensors header


def quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 rows, fp16 scale per row): row * 127 / max|row|, rounded; an all-zero row keeps scale 0."""
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / 127).to(torch.float16).float()  # rounded first: what dequantize sees
    q = torch.where(scale[:, None] > 0, w / scale.clamp_min(1e-30)[:, None], torch.zeros_like(w))
    return q.round().clamp(-127, 127).to(torch.int8), scale.to(torch.float16)


def dequantize(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (q.float() * scale.float()[:, None]).to(dtype)


def int8_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensors to store: matrices as int8 + scale, the rest fp16; a tied output matrix once."""
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    out = {}
    for name, tensor in model.state_dict().items():
        if tied and name == "lm_head.weight":
            continue  # the same matrix as the embedding: rebuilt by tying at load
        if tensor.ndim == 2:
            out[name], out[name + SCALE_SUFFIX] = quantize(tensor)
        else:
            out[name] = tensor.detach().to(torch.float16)
    return {k: v.contiguous().cpu() for k, v in out.items()}


def shards(tensors: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    """Tensors in order, a new file whenever the next would pass ``max_bytes`` (a matrix's scale
    stays with it)."""
    groups: list[dict] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if groups[-1] and size + nbytes > max_bytes and not name.endswith(SCALE_SUFFIX):
            groups.append({})
            size = 0
        groups[-1][name] = tensor
        size += nbytes
    return groups


def save_int8(model: torch.nn.Module, directory: Path, max_bytes: int = MAX_FILE_BYTES) -> dict[str, int]:
    """Write the config, the weights as int8 files and the index; returns {file name: bytes} of the
    weight files. The config says float16: the dtype the weights are dequantized to by default."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.architectures = [type(model).__name__]
    model.config.dtype = torch.float16
    model.config.save_pretrained(directory)
    groups = shards(int8_tensors(model), max_bytes)
    names = [f"model.int8-{k + 1:05d}-of-{len(groups):05d}.safetensors" for k in range(len(groups))]
    for name, group in zip(names, groups, strict=True):
        save_file(group, str(directory / name), metadata={"format": "pt", "speclsp": FORMAT})
    index = {"format": FORMAT, "files": names}
    (directory / INDEX).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return {name: (directory / name).stat().st_size for name in names}


def is_int8(directory: str | Path) -> bool:
    return (Path(directory) / INDEX).is_file()


def int8_files(directory: str | Path) -> list[str]:
    """The weight files the index names (names only; the caller checks they are safe and present)."""
    index = json.loads((Path(directory) / INDEX).read_text(encoding="utf-8"))
    if index.get("format") != FORMAT or not isinstance(index.get("files"), list):
        raise ValueError(f"{INDEX} is not an index of {FORMAT!r}")
    return [str(name) for name in index["files"]]


def load_int8_state(directory: str | Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The state dict, dequantized to ``dtype`` (without a tied output matrix)."""
    raw = {}
    for name in int8_files(directory):
        with safe_open(str(Path(directory) / name), framework="pt") as f:
            raw.update({key: f.get_tensor(key) for key in f.keys()})  # noqa: SIM118 - a safe_open handle, not a dict
    state = {}
    for key, tensor in raw.items():
        if key.endswith(SCALE_SUFFIX):
            continue
        scale = raw.get(key + SCALE_SUFFIX)
        state[key] = dequantize(tensor, scale, dtype) if scale is not None else tensor.to(dtype)
    return state


def load_int8_model(directory: str | Path, config, dtype: torch.dtype) -> torch.nn.Module:
    """The transformers model of ``config`` with the dequantized weights, in ``dtype``, in eval mode."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(load_int8_state(directory, torch.float32), strict=False)
    allowed = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if unexpected or set(missing) - allowed:
        raise ValueError(f"int8 weights do not fit the config: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.tie_weights()
    return model.to(dtype).eval()
