"""Text ↔ token ids for prompts built at the token level.

CodeLlama's fill-in-the-middle format is defined on ids: specials go in by id (never by
string, which would be tokenized as text), the suffix goes in without SentencePiece's implicit
leading space, and generated ids are decoded relative to an anchor so their own leading space
survives. Getting any of this wrong shifts every completion by one space (llama.cpp#3503).
"""

from __future__ import annotations

from dataclasses import dataclass

from .api import ModelError
from .sources import explain

FIM_TOKENS = ("▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>")
_SENTINELS = ("\n", "☺", "a")


@dataclass(frozen=True)
class FimIds:
    prefix: int
    suffix: int
    middle: int
    end: int


class TokenCodec:
    """Wraps a transformers tokenizer with the few verbs prompts need."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.bos = tokenizer.bos_token_id
        self.eos = tokenizer.eos_token_id
        self.fim = self._find_fim()
        self._anchor = self.encode("a")[:1]
        self._anchor_text = self.decode(self._anchor)

    def encode(self, text: str) -> list[int]:
        """Ids of `text` as the start of a sequence would get them (with the dummy-prefix space)."""
        if not text:
            return []
        # lone surrogates (possible in JSON strings) are not text the tokenizer can take: U+FFFD
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        # split_special_tokens: text that spells "▁<PRE>" or "<s>" is text, never a control token
        return list(self.tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

    def encode_infill(self, text: str) -> list[int]:
        """Ids of `text` as a continuation: no implicit leading space (Meta's encode_infilling)."""
        if not text:
            return []
        for sentinel in _SENTINELS:
            head = self.encode(sentinel)
            ids = self.encode(sentinel + text)
            if ids[: len(head)] == head and self.decode_continuation(ids[len(head):]) == text:
                return ids[len(head):]
        return self.encode(text)  # tokenizers without a dummy prefix need no trick

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def decode_continuation(self, ids: list[int]) -> str:
        """Text of ids that follow earlier text: a leading '▁' stays a space."""
        if not ids:
            return ""
        return self.decode(self._anchor + list(ids))[len(self._anchor_text):]

    def _find_fim(self) -> FimIds | None:
        ids = [self.tok.convert_tokens_to_ids(t) for t in FIM_TOKENS]
        unk = self.tok.unk_token_id
        if any(i is None or i == unk for i in ids):
            return None
        return FimIds(*ids)

    def pieces(self) -> tuple[list[str], set[int]]:
        """Every id's piece, and the ids no text spells (control tokens, FIM specials, any token added
        to the SentencePiece model): what token healing matches the text before the cursor against."""
        specials = set(self.tok.all_special_ids) | set(self.tok.added_tokens_decoder)
        return self.tok.convert_ids_to_tokens(list(range(len(self.tok)))), specials

    def vocab_prefix(self, n: int) -> list[str]:
        return self.tok.convert_ids_to_tokens(list(range(n)))


def load_tokenizer(path: str):
    """The transformers tokenizer in a model directory (see sources.model_dir); imported here, not
    with the module, so code that only reads ids needs no transformers."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=False, local_files_only=True)
    except Exception as e:
        raise ModelError(explain(path, "tokenizer", e)) from e
