"""scripts/train_demo_pair.py, every stage on a tiny corpus with tiny models on the CPU.

A real run needs a GPU and minutes; this one takes seconds: a dozen standard-library files (the
corpus source is a parameter), the tokenizer pair, the encoded corpus, both models trained a few
exact steps, the reload checks and training.json; then the product's own loader takes the pair.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
TRAIN_FILES = ("textwrap.py", "string.py", "shlex.py", "csv.py", "heapq.py", "copy.py", "fnmatch.py",
               "bisect.py", "abc.py", "keyword.py")
HELDOUT_FILES = ("glob.py", "colorsys.py")
STEPS = 20


def load_script():
    spec = importlib.util.spec_from_file_location("train_demo_pair", ROOT / "scripts" / "train_demo_pair.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def tiny_source(tdp):
    """A dozen standard-library files, two of them held out by name: present in every Python 3."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])

    def load():
        names = sorted(TRAIN_FILES + HELDOUT_FILES)
        return tdp.Loaded(str(stdlib), [tdp.SourceFile(n, (stdlib / n).read_text(encoding="utf-8")) for n in names], {})

    return tdp.CorpusSource("a few stdlib files", load, lambda file: file.relpath in HELDOUT_FILES, "by name")


def tiny_job(tdp, out: Path):
    run = tdp.RunSpec(vocab=512, seq_len=128, batch=8, warmup=5, sp_sample_bytes=200_000, eval_rows=16,
                      log_every=10, calibrate=(2, 5), max_shard_size="15MB", eval_every=10)
    target = tdp.ModelSpec("target", hidden=32, layers=1, heads=2, ffn=64, max_positions=256, rope_theta=1e4,
                           tie_embeddings=False, fim_rate=0.5, lr=1e-2, minutes=1.0)
    draft = tdp.ModelSpec("draft", hidden=16, layers=1, heads=2, ffn=48, max_positions=256, rope_theta=1e4,
                          tie_embeddings=True, fim_rate=0.0, lr=1e-2, minutes=1.0)
    return tdp.Job(target, draft, run, out, CPU, seed=7, target_steps=STEPS, draft_steps=STEPS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The stages of main(), in order, with the tiny job and corpus."""
    tdp = load_script()
    job = tiny_job(tdp, tmp_path_factory.mktemp("demo"))
    corpus = tdp.collect_corpus(job, tiny_source(tdp))
    tdp.prepare_output(job, corpus)
    tokens = tdp.train_tokenizers(job, corpus)
    data = tdp.encode_corpus(job, corpus, tokens.encoder)
    results = tdp.train_pair(job, data, tokens.encoder)
    tdp.check_reloads(job, results)
    summary = tdp.write_summary(job, corpus, tokens, data, results)
    return tdp, job, corpus, tokens, data, summary


def test_the_corpus_splits_by_the_sources_rule(trained):
    _, job, corpus, _, _, summary = trained
    assert sorted(f.relpath for f in corpus.heldout) == sorted(HELDOUT_FILES)
    assert len(corpus.train) == len(TRAIN_FILES)
    assert json.loads((job.out / "heldout.json").read_text()) == sorted(HELDOUT_FILES)
    assert summary["corpus"]["files_heldout"] == 2 and summary["corpus"]["source"] == "a few stdlib files"


def test_training_lowers_the_heldout_loss(trained):
    tdp, job, _, _, data, summary = trained
    for spec, vocab in ((job.target, job.run.vocab + 4), (job.draft, job.run.vocab)):
        untrained = tdp.evaluate(tdp.make_model(spec, vocab, job.seed), data.eval_ltr, job.run, CPU)["loss"]
        stats = summary["models"][spec.name]
        assert stats["steps"] <= STEPS and len(stats["heldout_curve"]) >= 1
        assert stats["heldout_left_to_right"]["loss"] < untrained - 0.5, (spec.name, untrained, stats)
        # the weights kept are those of the best point of the curve
        assert stats["heldout_left_to_right"]["loss"] == min(loss for _, loss in stats["heldout_curve"])
    assert "middle_loss" in summary["models"]["target"]["heldout_fim"]  # the target also learns FIM


def test_the_saved_pair_loads_in_the_product(trained):
    from lsp_server.config import Settings
    from lsp_server.engine.models import load_models

    _, job, _, _, _, summary = trained
    models = load_models(Settings(target=str(job.out / "target"), draft=str(job.out / "draft"),
                                  device="cpu", dtype="float32"))
    v = job.run.vocab
    assert models.draft.config.vocab_size == v and models.target.config.vocab_size == v + 4
    fim = models.codec.fim
    assert [fim.prefix, fim.suffix, fim.middle, fim.end] == list(range(v, v + 4))
    assert models.draft_vocab == v  # the product's pair check: shared ids mean the same text
    saved = json.loads((job.out / "training.json").read_text(encoding="utf-8"))
    assert saved["tokenizer"]["vocab_target"] == saved["tokenizer"]["vocab_draft"] + 4
    assert set(saved["models"]["target"]["reload_check"]) == {"left_to_right", "infill"}
    assert saved["models"] == json.loads(json.dumps(summary["models"]))


def test_a_rerun_with_the_same_seed_is_exact(trained, tmp_path):
    tdp, job, _, tokens, data, summary = trained
    (tmp_path / "draft").mkdir()
    again = tdp.train_model(dataclasses.replace(job, out=tmp_path), job.draft, job.run.vocab, STEPS, data,
                            tokens.encoder)
    first = summary["models"]["draft"]
    assert again["heldout_curve"] == first["heldout_curve"] and again["final_train_loss"] == first["final_train_loss"]


def test_a_time_budget_sets_the_step_count_from_timed_steps(trained, tmp_path):
    tdp, job, _, tokens, data, _ = trained
    (tmp_path / "draft").mkdir()
    draft = dataclasses.replace(job.draft, minutes=0.02)
    stats = tdp.train_model(dataclasses.replace(job, out=tmp_path), draft, job.run.vocab, None, data, tokens.encoder)
    assert stats["planned_steps"] >= job.run.calibrate[1]  # set once the calibration window was timed
    assert 0 < stats["steps"] <= stats["planned_steps"]
