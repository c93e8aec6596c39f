"""Tiny models and a LLaMA-style SentencePiece tokenizer built on the spot: no downloads.

They mirror the real pair's relation: the draft's vocabulary is V, the target's is V + 4 with
the fill-in-the-middle specials ▁<PRE> ▁<SUF> ▁<MID> ▁<EOT> above V, and shared ids mean the
same text. The tokenizer is trained with `sentencepiece` (BPE, byte fallback, dummy prefix,
split digits) and loaded through transformers' LlamaTokenizer, like CodeLlama's.
"""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path

import torch

FIM = ["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"]
CORPUS_FILES = ["json/encoder.py", "json/decoder.py", "textwrap.py", "bisect.py"]
EXTRA_TEXT = "s = 'é 中文 😀'\nprint(s)  # 😀 中文\n"


def corpus_text() -> str:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return "".join((stdlib / f).read_text(encoding="utf-8") for f in CORPUS_FILES) + EXTRA_TEXT


def train_tokenizer(out: Path, vocab: int = 512) -> Path:
    """A SentencePiece BPE model saved as a transformers LLaMA tokenizer directory."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    (out / "corpus.txt").write_text(corpus_text(), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(out / "corpus.txt"), model_prefix=str(out / "sp"), vocab_size=vocab, model_type="bpe",
        byte_fallback=True, add_dummy_prefix=True, split_digits=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2, num_threads=1)
    raw = out / "raw"
    raw.mkdir(exist_ok=True)
    shutil.copy(out / "sp.model", raw / "tokenizer.model")
    (raw / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
         "add_bos_token": True, "add_eos_token": False}))
    AutoTokenizer.from_pretrained(raw).save_pretrained(out / "draft_tok")
    tok = AutoTokenizer.from_pretrained(raw)
    tok.add_special_tokens({"additional_special_tokens": FIM})
    tok.save_pretrained(out / "target_tok")
    return out


def tiny_llama(vocab: int, hidden: int, layers: int, seed: int, max_positions: int = 1024, kv_heads: int = 2):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=kv_heads,
                         max_position_embeddings=max_positions, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2, rope_theta=10000.0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # sharper than default init, so greedy text is not one repeated token
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
    return model


def build_pair(root: Path, vocab: int = 512) -> tuple[Path, Path]:
    """Target and draft directories in Hugging Face layout (config, safetensors, tokenizer)."""
    tok_dir = train_tokenizer(root / "tokenizer", vocab)
    target_dir, draft_dir = root / "target", root / "draft"
    tiny_llama(vocab + len(FIM), 64, 2, seed=0, max_positions=2048).save_pretrained(target_dir)
    tiny_llama(vocab, 32, 1, seed=1, max_positions=512).save_pretrained(draft_dir)
    for f in (tok_dir / "target_tok").iterdir():
        shutil.copy(f, target_dir / f.name)
    for f in (tok_dir / "draft_tok").iterdir():
        shutil.copy(f, draft_dir / f.name)
    return target_dir, draft_dir


def common_prefix(a, b) -> int:
    """Length of the longest common prefix of two id lists (written out, not the product's own)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n
