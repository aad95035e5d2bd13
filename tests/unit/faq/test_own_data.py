"""A user's own FAQ (faq.csv, duplicates.csv): read as served, and every malformed file refused
with its name, the line and what is wrong."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from faq.model import FaqModel
from faq.own_data import FaqFileError, read_faq, read_own_faq

ORIGINALS = [
    (1, "How do I copy an array?", "Use `arr.slice()` or `[...arr]`:\n\n    const copy = [...arr];"),
    (2, "How to check if a key is in an object", 'Use `"key" in obj` or `Object.hasOwn(obj, "key")`.'),
    (3, "Why is 0.1 + 0.2 not 0.3?", "Floating point: compare with `Math.abs(a - b) < Number.EPSILON`."),
    (4, "How do I remove an item from an array?", "Find its index, then `arr.splice(i, 1)`."),
    (5, "What is the difference between let and var?", "`let` is block-scoped, `var` function-scoped."),
    (6, "How do I deep clone an object?", "`structuredClone(obj)` copies nested objects, dates and maps."),
]


def write(folder: Path, name: str, rows: list, header: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / name).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return folder / name


def test_a_good_faq_with_quotes_line_breaks_and_code_trains_a_matcher(tmp_path: Path) -> None:
    write(tmp_path, "faq.csv", ORIGINALS, ("id", "question", "answer"))
    write(
        tmp_path,
        "duplicates.csv",
        [(4, "js delete element from array"), (6, "copy nested object")],
        ("id", "question"),
    )
    ds = read_faq(tmp_path)
    assert list(ds.originals["faq_id"]) == [1, 2, 3, 4, 5, 6] and len(ds.duplicates) == 2
    assert "splice" in ds.originals.loc[3, "answer"]
    model = FaqModel.fit(ds)
    assert int(model.top_k("how can I remove an element from an array", 1)["faq_id"][0]) == 4


def test_without_duplicates_the_originals_alone_train_it(tmp_path: Path) -> None:
    write(tmp_path, "faq.csv", ORIGINALS, ("id", "question", "answer"))
    ds = read_own_faq(tmp_path)
    assert ds.duplicates.empty
    assert int(FaqModel.fit(ds).top_k("difference between let and var", 1)["faq_id"][0]) == 5


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (ORIGINALS, ("id", "question"), r"faq.csv: line 1: missing column\(s\) answer"),
        (
            [*ORIGINALS, (3, "again", "again")],
            ("id", "question", "answer"),
            "line 10: id 3 is already used on line 6",
        ),
        (
            [*ORIGINALS[:5], (6, "A question", "  ")],
            ("id", "question", "answer"),
            "line 9: the answer is empty",
        ),
        (
            [*ORIGINALS[:5], ("six", "q", "a")],
            ("id", "question", "answer"),
            "line 9: id 'six' is not a whole number",
        ),
        (ORIGINALS[:1], ("id", "question", "answer"), "1 original\\(s\\); the matcher needs at least 5"),
    ],
)
def test_malformed_faq_files_are_refused_with_file_line_and_reason(
    tmp_path: Path, rows: list, header: tuple[str, ...], message: str
) -> None:
    write(tmp_path, "faq.csv", rows, header)
    with pytest.raises(FaqFileError, match=message):
        read_own_faq(tmp_path)


def test_not_utf8_and_unknown_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.csv", ORIGINALS, ("id", "question", "answer"))
    write(tmp_path, "duplicates.csv", [(1, "copy array"), (42, "what is this")], ("id", "question"))
    with pytest.raises(FaqFileError, match=r"duplicates.csv: line 3: id 42 is not an id of faq.csv"):
        read_own_faq(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"Floating", b"Flo\xe9ting"))
    with pytest.raises(FaqFileError, match=r"faq.csv: line 6: not UTF-8 \(byte 0xe9\)"):
        read_own_faq(tmp_path)
    with pytest.raises(FaqFileError, match="not found"):
        read_faq(tmp_path / "nowhere")
