"""scripts/train_demo_pair.py, every stage on a tiny corpus with tiny models on the CPU.

A real run needs a GPU and minutes; this one takes seconds: a dozen standard-library files (the
corpus source is a parameter), the tokenizer pair, the encoded corpus, both models trained a few
exact steps, the reload checks and training.json; then the product's own loader takes the pair.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import random
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
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
    assert set(saved["models"]["target"]["reload_check"]) == {"left_to_right", "infill", "infill_spm"}
    assert saved["models"] == json.loads(json.dumps(summary["models"]))


def hole_texts(doc, a: int, b: int, hole: tuple[int, int, int, int]) -> tuple[str, str, str]:
    """(prefix, middle, suffix) of a training sample's lines a..b-1 split at its hole."""
    i, c, j, e = hole
    text = "".join(doc.lines[a:b])
    start, end = len("".join(doc.lines[a:i])) + c, len("".join(doc.lines[a:j])) + e
    return text[:start], text[start:end], text[end:]


def test_fim_rows_are_the_servers_prompts_id_for_id(trained):
    """A FIM training row is the prompt the server builds for the same prefix and suffix, then the
    middle and <EOT>, id for id, in both orders: the dummy prefix on the prefix only, the suffix and
    the middle as continuations (Meta's encode_infilling), nothing added at the <SUF> or <MID>
    boundary. Holes of every shape, in chunks that start inside a file too."""
    from transformers import AutoTokenizer

    from lsp_server.engine.tokenizer import TokenCodec
    from lsp_server.prompt import CursorContext, PromptBuilder

    tdp, job, _, tokens, data, _ = trained
    codec = TokenCodec(AutoTokenizer.from_pretrained(job.out / "target", local_files_only=True))
    rng = random.Random(3)
    for k in range(300):
        doc = rng.choice(data.train)
        a, b = rng.choice(tdp.chunk_ranges(doc, 40, 80))
        plan = tdp.Plan(doc, a, b, tdp.random_hole(doc, a, b, rng), suffix_first=k % 2 == 1)
        rows = tdp.make_rows([plan], tokens.encoder, 4096, job.run.vocab)
        prefix, middle, suffix = hole_texts(doc, a, b, plan.hole)
        order = "spm" if plan.suffix_first else "psm"
        # healing off: the server's prompt before it backs up to a token boundary (healing.py)
        prompt = PromptBuilder(codec, 100_000, order, heal=False).build(CursorContext(prefix, suffix)).target_ids
        row = rows.ids[0, :rows.lengths[0]].tolist()
        assert row == prompt + codec.encode_infill(middle) + [codec.fim.end], (order, prefix[-20:], middle)
        assert rows.hole_starts[0] == len(prompt)


@torch.no_grad()
def first_middle_tokens(model, rows, suffix_first: bool, blank) -> dict:
    """The first middle token of the FIM rows in one order, measured row by row: mean loss, greedy
    top-1 rate, and the share of greedy whitespace where the middle starts with code."""
    losses, right, code, whitespace = [], 0, 0, 0
    for r in range(len(rows)):
        length, hole = int(rows.lengths[r]), int(rows.hole_starts[r])
        if hole >= length or bool(rows.suffix_first[r]) != suffix_first:
            continue
        logits = model(torch.tensor(rows.ids[r:r + 1, :hole]).long()).logits[0, -1].float()
        truth, guess = int(rows.ids[r, hole]), int(logits.argmax())
        losses.append(float(torch.nn.functional.cross_entropy(logits, torch.tensor(truth))))
        right += guess == truth
        code += not blank[truth]
        whitespace += bool(not blank[truth] and blank[guess])
    return {"rows": len(losses), "first_token_loss": sum(losses) / len(losses),
            "first_token_top1": right / len(losses), "first_token_whitespace": whitespace / code}


def test_heldout_fim_is_measured_by_order_at_the_first_middle_token(trained):
    """A target can fill in SPM and not in PSM: after <MID> it must recall the prefix's end from
    before the suffix, and one that has not learned to predicts the same first token whatever the
    prefix (a newline, most often), so its PSM fills start with whitespace. The middle loss of both
    orders together hardly shows it, so each order's first middle token is measured on its own, at
    every held-out evaluation and at the end."""
    tdp, job, _, tokens, data, summary = trained
    rows, vocab = data.eval_fim, job.run.vocab + 4
    assert {False, True} <= set(rows.suffix_first.tolist())  # held-out FIM rows in both orders
    blank = tdp.whitespace_ids(tokens.encoder.backend, vocab)
    model = tdp.load_saved(job.out / "target", torch.float32)
    measured = tdp.evaluate(model, rows, job.run, CPU, blank)
    for order, suffix_first in (("psm", False), ("spm", True)):
        direct = first_middle_tokens(model, rows, suffix_first, blank)
        assert measured[order]["rows"] == direct["rows"]
        for key in ("first_token_loss", "first_token_top1", "first_token_whitespace"):
            assert measured[order][key] == pytest.approx(direct[key], abs=2e-3), (order, key)
        assert measured[order]["middle_loss"] > 0
    assert "first_token_whitespace" not in tdp.evaluate(model, rows, job.run, CPU)["psm"]  # no pieces given
    target = summary["models"]["target"]
    assert {"first_token_whitespace", "first_token_top1"} <= set(target["heldout_fim"]["psm"])
    curve = target["heldout_fim_first_token_curve"]
    assert [point[0] for point in curve] == [point[0] for point in target["heldout_curve"]]
    assert all(len(point) == 5 and None not in point for point in curve)


def test_whitespace_ids_are_the_pieces_whose_text_starts_with_whitespace(trained):
    tdp, job, _, tokens, _, _ = trained
    backend, vocab = tokens.encoder.backend, job.run.vocab
    blank = tdp.whitespace_ids(backend, vocab + 4)
    cases = (("x = 1", False), (" x = 1", True), ("\n    x", True), ("\tx", True), ("é", False))
    for text, starts_blank in cases:
        first = tokens.encoder.enc_infill_many([text])[0][0]
        assert blank[first] == starts_blank, (text, backend.id_to_token(int(first)))
    assert not blank[vocab:].any()  # "▁<PRE>" and the other FIM pieces end a fill or are lost; never a space
    assert not blank[[tdp.BOS, tdp.EOS, tdp.UNK]].any()


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


# --------------------------------------------------------------------------------------------------
# The python-env source, on a fake stdlib + site-packages tree (tests/fake_python_env.py)


@pytest.fixture(scope="module")
def env_trained(tmp_path_factory):
    """Every stage on the fake interpreter's files, tokenized in two processes."""
    from tests import fake_python_env

    tdp = load_script()
    stdlib, site = fake_python_env.build(tmp_path_factory.mktemp("env"))
    source = dataclasses.replace(tdp.PYTHON_ENV, load=lambda: tdp.load_python_env(stdlib, [site]))
    job = dataclasses.replace(tiny_job(tdp, tmp_path_factory.mktemp("env_demo")), workers=2)
    corpus = tdp.collect_corpus(job, source)
    tdp.prepare_output(job, corpus)
    partial = json.loads((job.out / "training.json").read_text(encoding="utf-8"))
    tokens = tdp.train_tokenizers(job, corpus)
    data = tdp.encode_corpus(job, corpus, tokens.encoder)
    tdp.check_reloads(job, results := tdp.train_pair(job, data, tokens.encoder))
    summary = tdp.write_summary(job, corpus, tokens, data, results)
    return tdp, job, corpus, tokens, data, summary, partial, {"stdlib": [stdlib], "site": [site]}


def test_whole_packages_are_held_out_and_listed_for_the_product(env_trained):
    from lsp_server.bench import heldout

    _, job, corpus, _, _, summary, _, roots = env_trained
    assert sorted(f.relpath for f in corpus.heldout) == ["held12/__init__.py", "held12/more.py"]
    assert {f.package for f in corpus.train} == {"alphapkg", "gammapkg", "stdlib.mymod", "stdlib.other"}
    listing = job.out / "heldout.json"
    assert json.loads(listing.read_text()) == [{"root": "site", "path": p, "package": "held12"}
                                               for p in ("held12/__init__.py", "held12/more.py")]
    found = heldout.heldout_paths(listing, roots)
    assert [path for _, path in found] == [roots["site"][0] / "held12/__init__.py", roots["site"][0] / "held12/more.py"]
    assert summary["corpus"]["packages_heldout"] == ["held12"]


def test_licences_are_recorded_and_non_permissive_packages_left_out(env_trained):
    _, job, _, _, _, summary, partial, _ = env_trained
    corpus = summary["corpus"]
    assert set(corpus["packages_excluded_for_licence"]) == {"betapkg", "unowned:loose"}
    assert corpus["packages"]["alphapkg"]["licence"] == "MIT (License-Expression)"
    assert corpus["packages"]["stdlib.mymod"]["licence"].startswith("PSF-2.0")
    assert corpus["files_skipped"]["duplicate content"] == 1
    # training.json exists from the start (a run that dies says how far it got), complete at the end
    assert partial["complete"] is False and partial["corpus"]["packages"] == corpus["packages"]
    assert json.loads((job.out / "training.json").read_text())["complete"] is True


def test_the_pair_is_stored_as_int8_and_loads_in_the_product(env_trained):
    from lsp_server.config import Settings
    from lsp_server.engine.models import load_models

    tdp, job, _, _, data, summary, _, _ = env_trained
    for name in ("target", "draft"):
        assert (job.out / name / "model.int8.json").is_file() and not (job.out / name / "model.safetensors").exists()
        stats = summary["models"][name]
        assert all(f.startswith("model.int8-") for f in stats["weight_files"])
        # int8 costs the held-out loss almost nothing
        assert abs(stats["heldout_left_to_right_int8"]["loss"] - stats["heldout_left_to_right"]["loss"]) < 0.05
    models = load_models(Settings(target=str(job.out / "target"), draft=str(job.out / "draft"),
                                  device="cpu", dtype="float32"))
    assert models.draft_vocab == job.run.vocab and models.codec.fim is not None
    reloaded = tdp.evaluate(models.target, data.eval_ltr, job.run, CPU)["loss"]
    assert reloaded == pytest.approx(summary["models"]["target"]["heldout_left_to_right_int8"]["loss"], abs=1e-3)


def test_tokenizing_in_processes_gives_the_same_ids(env_trained):
    tdp, _, corpus, tokens, data, _, _, _ = env_trained
    texts = [f.text for f in corpus.train]
    serial = tdp.build_docs(texts, tokens.encoder, workers=1)
    assert tdp.encode_in_processes(texts, tokens.encoder, 2) is not None  # the pool ran (no fallback)
    assert len(serial) == len(data.train) and len(tdp.slices(texts, 8)) > 1
    for one, other in zip(serial, data.train, strict=True):
        assert one.lines == other.lines and one.rest.tolist() == other.rest.tolist()
        assert one.starts.tolist() == other.starts.tolist()


def test_the_caps_keep_a_stable_sample_in_order():
    tdp = load_script()
    files = [tdp.SourceFile(f"m{i}.py", "x" * (100 + i)) for i in range(50)]
    kept = tdp.cap_files(files, 2000)
    assert 0 < sum(len(f.text) for f in kept) <= 2000 and len(kept) < 50
    assert kept == [f for f in files if f in kept] and tdp.cap_files(files, 2000) == kept
    assert tdp.cap_files(files, 0) == files


def test_the_minutes_budget_is_split_between_the_models(trained):
    tdp, job, *_ = trained
    planned = tdp.plan_training(dataclasses.replace(job, minutes=10.0))
    left = planned.target.minutes + planned.draft.minutes
    assert left <= 10 - tdp.RESERVE_SECONDS / 60 and left > 5
    assert planned.target.minutes == pytest.approx(tdp.TARGET_SHARE * left)
    fixed = tdp.plan_training(dataclasses.replace(job, minutes=10.0, fixed_minutes=(True, False)))
    assert fixed.target.minutes == job.target.minutes and fixed.draft.minutes > planned.draft.minutes
    assert tdp.plan_training(job) == job  # no --minutes: the budgets stay as they are


def test_the_log_reaches_train_log_with_the_lines_before_it(tmp_path):
    tdp = load_script()
    tdp.log("before the folder exists")
    tdp.open_log(tmp_path / "train.log")
    tdp.log("after")
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert lines[-2].endswith("before the folder exists") and lines[-1].endswith("after")
    tdp.LOG_FILE.pop().close()


def test_the_script_needs_neither_pygls_nor_cachetools():
    """The GPU machine has neither; the script runs there from a bare checkout."""
    import subprocess

    probe = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('t', sys.argv[1]); "
             "m = importlib.util.module_from_spec(spec); sys.modules['t'] = m; spec.loader.exec_module(m); "
             "print(sorted(n for n in sys.modules if n.split('.')[0] in ('pygls', 'cachetools', 'lsprotocol')))")
    out = subprocess.run([sys.executable, "-c", probe, str(ROOT / "scripts" / "train_demo_pair.py")],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------------
# Token ids in range: what a GPU run would otherwise meet as an opaque device-side assert

# Source text that spells out the tokenizer's special pieces, as transformers' CodeLlama tokenizer does.
SPECIALS_IN_TEXT = ('class CodeLlamaTokenizer:\n    prefix_token = "▁<PRE>"\n    middle_token = "▁<MID>"\n'
                    '    suffix_token = "▁<SUF>"\n    eot_token = "▁<EOT>"\n    bos_token = "<s>"\n')


def test_special_pieces_in_source_text_are_text_in_every_tokenizing_process(trained):
    tdp, job, _, tokens, _, _ = trained
    texts = [SPECIALS_IN_TEXT, "x = 1\n" + SPECIALS_IN_TEXT]
    serial = tdp.build_docs(texts, tokens.encoder, workers=1)
    forked = tdp.build_docs(texts, tokens.encoder, workers=2)
    for one, other in zip(serial, forked, strict=True):
        assert other.rest.tolist() == one.rest.tolist()
        assert max(other.rest) < job.run.vocab and tdp.BOS not in other.rest.tolist()
    assert max(tokens.encoder.enc_many(texts)[0]) < job.run.vocab


@pytest.mark.parametrize(("ids", "lengths", "error"), [
    ([[1, 5, 9, 2]], [4], None),
    ([[1, 5, 2, 2]], [2], None),  # padding is labelled IGNORE
    ([[1, 5, 10, 2]], [4], "input id 10 at row 0, position 2"),
    ([[1, 5, 2, 2], [1, 3, -1, 2]], [4, 4], "input id -1 at row 1, position 2"),
    ([[1, 5, 2, 12]], [2], "input id 12 at row 0, position 3"),  # past the length: still fed to the model
])
def test_a_batch_with_an_id_outside_the_vocabulary_is_named(ids, lengths, error):
    tdp = load_script()
    ids, lengths = np.array(ids, np.int32), np.array(lengths)
    labels = tdp.labels_for(ids, lengths)
    assert (labels[0, lengths[0]:] == tdp.IGNORE).all() and (labels[0, :lengths[0]] == ids[0, :lengths[0]]).all()
    if error is None:
        tdp.check_batch(ids, labels, 10, "draft: epoch 2, step 7")
        return
    with pytest.raises(ValueError, match=f"^draft: epoch 2, step 7: {error} is outside \\[0, 10\\)"):
        tdp.check_batch(ids, labels, 10, "draft: epoch 2, step 7")


def test_a_label_outside_the_vocabulary_is_named():
    tdp = load_script()
    ids = np.array([[1, 5, 9]], np.int32)
    for label, ok in ((-100, True), (0, True), (9, True), (10, False), (-1, False)):
        labels = np.array([[1, 5, label]])
        if ok:
            tdp.check_batch(ids, labels, 10, "target")
        else:
            with pytest.raises(ValueError, match=f"target: label {label} at row 0, position 2"):
                tdp.check_batch(ids, labels, 10, "target")


def test_a_left_to_right_row_with_a_fim_id_is_refused():
    tdp = load_script()
    rows = tdp.Rows(np.array([[1, 5, 9, 2], [1, 10, 2, 2]], np.int32), np.array([4, 3]), np.array([4, 3]))
    with pytest.raises(ValueError, match=r"draft: FIM id 10 in a left-to-right row \(1, position 1\)"):
        tdp.check_left_to_right(rows, 10, "draft")
    tdp.check_left_to_right(tdp.Rows(rows.ids[:1], rows.lengths[:1], rows.hole_starts[:1]), 10, "draft")


def test_the_training_loop_names_the_batch_with_a_bad_id(trained):
    tdp, job, _, tokens, data, _ = trained
    spec = job.draft
    bad = tdp.training_epoch(data.train, tokens.encoder, spec, job.run, random.Random(0))
    bad.ids[3 * job.run.batch + 1, 4] = job.run.vocab + 2  # in the 4th batch
    feeder = tdp.EpochFeeder(lambda rng: bad, "bad")
    model = tdp.make_model(spec, job.run.vocab, job.seed)
    try:
        with pytest.raises(ValueError, match=f"^draft: epoch 1, step 4: input id {job.run.vocab + 2} at row 1"):
            tdp.train(model, spec, job.run, feeder, CPU, 10, lambda: 0.0)
    finally:
        feeder.close()


@pytest.fixture(scope="module")
def epochs_trained(tmp_path_factory):
    """Both models trained over more than two epochs of the fake tree (tokenized in two processes),
    one of its files spelling out the special pieces; every batch fed to train_step is kept."""
    from tests import fake_python_env

    tdp = load_script()
    stdlib, site = fake_python_env.build(tmp_path_factory.mktemp("env"))
    fake_python_env.write(stdlib / "fimtext.py", SPECIALS_IN_TEXT * 20)  # stdlib.fimtext: a training package
    source = dataclasses.replace(tdp.PYTHON_ENV, load=lambda: tdp.load_python_env(stdlib, [site]))
    job = dataclasses.replace(tiny_job(tdp, tmp_path_factory.mktemp("epochs")), workers=2)
    corpus = tdp.collect_corpus(job, source)
    assert "fimtext.py" in {f.relpath for f in corpus.train}
    tdp.prepare_output(job, corpus)
    tokens = tdp.train_tokenizers(job, corpus)
    data = tdp.encode_corpus(job, corpus, tokens.encoder)
    per_epoch = len(tdp.training_epoch(data.train, tokens.encoder, job.draft, job.run,
                                       random.Random(0))) // job.run.batch
    steps = 2 * per_epoch + per_epoch // 2 + 2
    job = dataclasses.replace(job, target_steps=steps, draft_steps=steps)
    batches, step = [], tdp.train_step

    def spy(model, optimizer, x, y, lr, device):
        batches.append((model.config.vocab_size, x.numpy().copy(), y.numpy().copy()))
        return step(model, optimizer, x, y, lr, device)

    tdp.train_step = spy
    try:
        results = tdp.train_pair(job, data, tokens.encoder)
    finally:
        tdp.train_step = step
    return tdp, job, results, batches, steps


def test_every_batch_of_several_epochs_is_within_the_vocabularies(epochs_trained):
    tdp, job, results, batches, steps = epochs_trained
    v = job.run.vocab
    for name in ("target", "draft"):
        assert results[name]["steps"] == steps and results[name]["epochs_started"] >= 2, results[name]
    assert [size for size, _, _ in batches] == [v + 4] * steps + [v] * steps
    fim_seen = 0
    for size, x, y in batches:
        assert x.min() >= 0 and x.max() < size
        assert ((y == tdp.IGNORE) | ((y >= 0) & (y < size))).all()
        fim_seen += int((x >= v).any())
        if size == v:  # the draft: no FIM id, not even one spelled out in the source text
            assert x.max() < v
    assert fim_seen > 0  # the target's batches do hold FIM samples
