"""RunDir: vocabularies survive every character but a line end, from training to the serving
loader; writes are atomic; an export reads the run directory and never the training data."""

from __future__ import annotations

import ast
import os

import pandas as pd
import pytest
import torch

from recsys.atomic_files import write_atomic
from recsys.errors import DataError
from recsys.run_dir import RunDir
from recsys.serving import loader
from recsys.serving.exporter import write_export_vocabularies
from recsys.serving.manifest import write_manifest
from recsys.train import train
from tests.conftest import ROOT, compose_config
from tests.serving_support import exported

# Ids that str.splitlines(), str.split() or a CSV reader would mangle; all legal in a vocabulary.
AWKWARD = [
    "plain", "two words", " leading", "trailing ", "tab\there", "ls\u2028x", "ps\u2029x",
    "nel\u0085x", "ff\x0cx", "vt\x0bx", "naïve—日本", "NA", "None", "", " ",
]  # fmt: skip


def test_vocabulary_round_trip_from_run_to_serving_loader(tmp_path):
    run = RunDir(tmp_path / "run")
    items = [f"item {x}" for x in AWKWARD]
    run.write_vocabularies(AWKWARD, items, item_titles=AWKWARD[::-1])
    vocab = {name: run.vocabulary(name) for name in ("users", "items", "item_titles")}
    assert vocab == {"users": AWKWARD, "items": items, "item_titles": AWKWARD[::-1]}

    export = tmp_path / "export"
    files = write_export_vocabularies(export, vocab, torch.tensor([3, 0, 14]))
    write_manifest(export, {"vocab": files})  # loader.read_vocabulary checks sha256 first
    for name, ids in vocab.items():
        assert loader.read_vocabulary(export, name) == ids, name
    assert loader.read_vocabulary(export, "popular_items") == [items[3], items[0], items[14]]


@pytest.mark.parametrize("end", ["\n", "\r", "\r\n"])
def test_id_with_a_line_end_is_refused_by_index_and_nothing_is_written(tmp_path, end):
    run = RunDir(tmp_path)
    run.write_vocabularies(["a", "b"], ["x", "y"])
    before = {p.name: p.read_bytes() for p in run.vocab_dir.iterdir()}
    with pytest.raises(DataError, match=r"items id at index 2 \('bad.*'\) holds a line break"):
        run.write_vocabularies(["c", "d", "e"], ["x", "y", f"bad{end}id"])
    assert {p.name: p.read_bytes() for p in run.vocab_dir.iterdir()} == before  # users too


@pytest.mark.parametrize("fails", ["replace", "fsync"])
def test_failed_write_leaves_the_old_file_whole_and_no_temp_file(tmp_path, monkeypatch, fails):
    path = tmp_path / "metrics.json"
    path.write_bytes(b'{"old": 1}\n')

    def boom(*args):
        raise OSError(f"{fails} failed")

    monkeypatch.setattr(os, fails, boom)
    with pytest.raises(OSError, match=f"{fails} failed"):
        write_atomic(path, b'{"new": 2}\n' * 1000)
    monkeypatch.undo()
    assert path.read_bytes() == b'{"old": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    write_atomic(path, b"{}\n")
    assert path.read_bytes() == b"{}\n"


def test_serving_imports_nothing_from_recsys_data():
    """Serving reads a run directory through RunDir; the data package is training's business."""
    found = []
    for path in (ROOT / "recsys" / "serving").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            found += [(path.name, n) for n in names if n.startswith("recsys.data")]
    assert found == []


def _log(path) -> list[str]:
    """A small interaction log whose user and item ids are awkward; returns the awkward user ids."""
    g = torch.Generator().manual_seed(0)
    odd = [x for x in AWKWARD if x.strip()]  # blank ids are missing ids to the data loader
    users = odd + [f"u{i}" for i in range(80 - len(odd))]
    items = [f"i {x}" for x in odd] + [f"i{j}" for j in range(60 - len(odd))]
    rows = [(u, items[j]) for u in users for j in torch.randperm(60, generator=g)[:12].tolist()]
    pd.DataFrame(rows, columns=["user", "item"]).to_parquet(path, index=False)
    return odd


def test_export_reads_no_training_data(tmp_path):
    log = tmp_path / "log.parquet"
    odd_users = _log(log)
    overrides = ["data=interactions", f"data.path={log}", "trainer.max_epochs=2",
                 "trainer.accelerator=cpu", "callbacks.progress_bar=null",
                 "trainer.enable_progress_bar=false"]  # fmt: skip
    train(compose_config(overrides, tmp_path / "run"))
    log.unlink()  # from here on the training data are gone

    run = RunDir(tmp_path / "run")
    out, manifest = exported(run.root, tmp_path / "export", "format=both")
    for name, entry in manifest["artifacts"].items():
        for fmt, check in entry["verification"].items():
            assert check["passed"], (name, fmt, check)
    assert manifest["data"]["name"] == "interactions"
    users, items = loader.read_vocabulary(out, "users"), loader.read_vocabulary(out, "items")
    assert users == run.vocabulary("users") and items == run.vocabulary("items")
    assert set(odd_users) <= set(users)

    scorer, _ = run.load_scorer()
    seen = [run.seen_pairs(split) for split in ("train", "valid")]
    retriever = loader.load_artifact(out, "retriever")
    for raw in odd_users[:6]:
        u = users.index(raw)
        with torch.no_grad():
            scores = scorer.score_all_items(torch.tensor([u]))[0]
        for pair_users, pair_items in seen:
            scores[pair_items[pair_users == u]] = float("-inf")
        want = torch.topk(scores, 10).indices.tolist()
        _, got = retriever(torch.tensor([u]), 10)
        assert [items[i] for i in got[0].tolist()] == [items[i] for i in want], raw


def test_written_files_get_the_mode_a_plain_open_would_give(tmp_path):
    """mkstemp makes 0600 files: a run's metrics must stay readable to the serving user."""
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    atomic = tmp_path / "atomic.json"
    write_atomic(atomic, b"{}")
    assert (atomic.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)
    atomic.chmod(0o640)
    write_atomic(atomic, b"{ }")  # a rewrite keeps the mode the user gave the file
    assert atomic.stat().st_mode & 0o777 == 0o640
