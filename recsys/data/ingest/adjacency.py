"""Adjacency-list files (`format: adjacency`): one line per user, `user item item ...`, integer ids.

The layout of the LightGCN / LightGCN++ benchmark splits (Gowalla, Yelp2018, Amazon-Book, ML-1M).
Each line becomes one row per item, so the rows read are the (user, item) pairs and every later step
(cleaning, splits, the data report) works as for any other format. A line holding no pair still gets
one flagged placeholder row, so it is counted out by a named cleaning step instead of vanishing:
a blank line (`drop_blank_rows`), a line with only a user id (`drop_user_only_lines`), and, with
`cleaning.on_invalid: drop`, a token that is not a non-negative integer (`drop_invalid_ids`: its
pair, or every pair of its line when the bad token is the user id). Row numbers are file lines.

Lines are split in Python (one call per line, not per item) and the ids parsed by numpy in one call
per chunk of lines, so a 30k-line, 700k-pair file loads in well under a second.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
from itertools import chain, islice
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.ingest.log_table import LogTable
from recsys.data.ingest.readers import ON_INVALID_HINT, TEXT_ERRORS, text_error
from recsys.errors import DataError

CHUNK_LINES = 200_000  # lines per chunk: bounds the Python strings held at once
OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}  # compressed text, by extension
ONLY_DIGITS = re.compile(r"[^0-9\s]")  # a chunk without a match parses exactly with numpy
VALID_ID = r"[0-9]{1,18}"  # a non-negative integer that fits int64
COLUMNS = {"user": "first id of a line", "item": "the ids after it"}  # for the data report


def read_adjacency(
    path: Path, encoding: str = "utf-8", on_invalid: str = "error", chunk_lines: int = CHUNK_LINES
) -> LogTable:
    """One row per (user, item) pair of the file, plus a flagged placeholder row for each line with
    no pair; a bad id raises a DataError naming file, line and token (on_invalid='error')."""
    opener = OPENERS.get(path.suffix.lower(), open)
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("line", "user", "item", "blank", "user_only", "invalid_ids")
    }
    start = 0
    try:
        with opener(path, "rt", encoding=encoding) as handle:
            while lines := list(islice(handle, chunk_lines)):
                for name, array in _chunk_rows(path, lines, start, on_invalid).items():
                    parts[name].append(array)
                start += len(lines)
    except UnicodeDecodeError as err:
        raise text_error(path, "adjacency", err) from err
    except TEXT_ERRORS as err:  # a damaged compressed file
        raise text_error(path, "adjacency", err) from err
    merged = {k: np.concatenate(v) for k, v in parts.items()}
    user, user_ids = _codes(merged.pop("user"))
    item, item_ids = _codes(merged.pop("item"))
    rows = merged.pop("line")
    return LogTable(str(path), rows, user, item, user_ids, item_ids, {}, dict(COLUMNS), merged)


def _chunk_rows(path: Path, lines: list[str], start: int, on_invalid: str) -> dict[str, np.ndarray]:
    """Rows of one chunk of lines: file line, user id, item id (-1 where none), flags."""
    tokens = [line.split() for line in lines]
    counts = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))  # (L,)
    flat = list(chain.from_iterable(tokens))
    del tokens
    values, bad = _parse_ids(flat, lines)  # (T,)
    if on_invalid == "error" and bad.any():
        _raise_bad(path, flat, bad, counts, start)
    line_of = np.repeat(np.arange(len(lines)), counts)  # (T,) chunk line of each token
    first = np.cumsum(counts) - counts  # (L,) index of each line's first token
    position = np.arange(len(flat)) - first[line_of]  # (T,) 0 = the user id
    per_line = np.maximum(counts - 1, 1)  # (L,) rows: one per item, or one placeholder
    row_start = np.cumsum(per_line) - per_line
    has_user = counts > 0
    line_user = np.full(len(lines), -1, dtype=np.int64)
    line_user[has_user] = values[first[has_user]]
    user_bad = np.zeros(len(lines), dtype=bool)
    user_bad[has_user] = bad[first[has_user]]
    item = np.full(int(per_line.sum()), -1, dtype=np.int64)
    item_bad = np.zeros(len(item), dtype=bool)
    is_item = position > 0
    at = row_start[line_of[is_item]] + position[is_item] - 1
    item[at], item_bad[at] = values[is_item], bad[is_item]
    invalid = item_bad | np.repeat(user_bad, per_line)
    user = np.repeat(line_user, per_line)
    user[invalid] = -1
    item[invalid] = -1
    return {
        "line": np.repeat(start + 1 + np.arange(len(lines), dtype=np.int64), per_line),
        "user": user,
        "item": item,
        "blank": np.repeat(counts == 0, per_line),
        "user_only": np.repeat(counts == 1, per_line) & ~invalid,
        "invalid_ids": invalid,
    }


def _parse_ids(flat: list[str], lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(T,) int64 ids and (T,) bad mask. numpy parses plain digits in one call; only a chunk holding
    another character (`-`, `.`, a letter, `_` that int() would accept) is checked token by token."""
    if not ONLY_DIGITS.search("".join(lines)):
        try:
            return np.array(flat, dtype=np.int64), np.zeros(len(flat), dtype=bool)
        except OverflowError:
            pass  # an id of 19+ digits: found below
    tokens = pd.Series(flat, dtype=object)
    ok = tokens.str.fullmatch(VALID_ID).to_numpy(dtype=bool)
    values = np.full(len(flat), -1, dtype=np.int64)
    values[ok] = np.array(tokens[ok].tolist(), dtype=np.int64)
    return values, ~ok


def _raise_bad(path: Path, flat: list[str], bad: np.ndarray, counts: np.ndarray, start: int):
    token = int(bad.argmax())
    line = int(np.searchsorted(np.cumsum(counts), token, side="right"))
    position = token - int(np.cumsum(counts)[line] - counts[line])
    role = "user id" if position == 0 else f"item {position}"
    raise DataError(
        f"{path}: line {start + line + 1}, {role}: {flat[token]!r} is not a non-negative integer id"
        + ON_INVALID_HINT
    )


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes into the sorted distinct ids (as strings, like every reader's raw ids); -1 stays -1."""
    known = values >= 0
    ids, inverse = np.unique(values[known], return_inverse=True)
    codes = np.full(len(values), -1, dtype=np.int32 if len(ids) < 2**31 - 1 else np.int64)
    codes[known] = inverse
    return codes, ids.astype(str).astype(object)
