"""Int8 weight files: a model saved as int8 rows + scales loads back, through the product's loader,
as a plain transformers model that computes (almost) the same logits and the same greedy tokens."""

from __future__ import annotations

import json

import pytest
import torch

from lsp_server.engine import int8
from lsp_server.engine.models import ModelError, _load_model, check_safetensors_only
from tests.fixtures import tiny_llama

PROMPTS = ([1, 5, 9, 200, 31], [1, 300, 300, 7], [1, 42], [1, 17, 99, 250, 4, 8, 15])


def tied_llama(seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True,
                         bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(config).eval()


@torch.no_grad()
def logits(model, prompt):
    return model(input_ids=torch.tensor([prompt])).logits[0, -1].float()


def test_quantize_keeps_each_row_within_half_a_step():
    w = torch.randn(6, 50) * torch.tensor([1e-3, 0.1, 1.0, 10.0, 0.0, 3.0])[:, None]
    q, scale = int8.quantize(w)
    assert q.dtype == torch.int8 and scale.dtype == torch.float16 and scale.shape == (6,)
    back = int8.dequantize(q, scale, torch.float32)
    step = scale.float()[:, None]
    assert torch.all((back - w).abs() <= step / 2 + 1e-6)
    assert torch.all(back[4] == 0) and q.abs().max() == 127


@pytest.mark.parametrize("make", [lambda: tiny_llama(400, 64, 2, seed=3), lambda: tied_llama(4)],
                         ids=["untied", "tied"])
def test_a_model_round_trips_through_int8_files(make, tmp_path):
    model = make()
    files = int8.save_int8(model, tmp_path, max_bytes=40_000)  # small files: several shards
    assert len(files) > 1 and all(size < 40_000 + 4096 for size in files.values())
    assert json.loads((tmp_path / int8.INDEX).read_text())["files"] == list(files)
    check_safetensors_only(str(tmp_path))
    loaded = _load_model(str(tmp_path), torch.device("cpu"), "float32")  # the product's loader
    assert type(loaded) is type(model) and not any(p.dtype == torch.int8 for p in loaded.parameters())
    if model.config.tie_word_embeddings:  # stored once, tied again at load
        assert "lm_head.weight" not in int8.int8_tensors(model)
        assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    for prompt in PROMPTS:
        expected, got = logits(model, prompt), logits(loaded, prompt)
        assert torch.allclose(got, expected, atol=0.05 * expected.abs().max()), prompt
        assert int(got.argmax()) == int(expected.argmax()), prompt


def test_the_int8_files_are_much_smaller_than_fp16(tmp_path):
    model = tiny_llama(400, 64, 2, seed=3)
    fp16 = sum(p.numel() for p in model.parameters()) * 2
    assert sum(int8.save_int8(model, tmp_path).values()) < 0.6 * fp16


def test_an_int8_index_naming_other_files_is_refused(tmp_path):
    (tmp_path / int8.INDEX).write_text(json.dumps({"format": int8.FORMAT, "files": ["pytorch_model.bin"]}))
    with pytest.raises(ModelError, match="only safetensors"):
        check_safetensors_only(str(tmp_path))
    (tmp_path / int8.INDEX).write_text(json.dumps({"format": int8.FORMAT, "files": ["absent.safetensors"]}))
    with pytest.raises(ModelError, match="missing"):
        check_safetensors_only(str(tmp_path))
