"""A user's own FAQ, in a format simpler than Stack Overflow's: a folder with

* ``faq.csv`` (required): ``id,question,answer``, one row per original question and its answer;
  ``id`` a whole number, unique; question and answer non-empty;
* ``duplicates.csv`` (optional): ``id,question``, other wordings of an original's question, as
  users asked them (``id`` is the original's).

UTF-8, comma-separated with a header row, quoted as spreadsheets and ``csv`` write it (answers may
hold commas, quotes, line breaks and code). The matcher trains on the originals' own questions and
answers, plus the duplicates where there are any (docs/faq.md, "Your own FAQ", says what accuracy
to expect with few or none). Every problem is reported with the file, the line and what is wrong,
and nothing is trained on a file that has one.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from faq.data import ORIGINALS_FILE, FaqDataset, load_dataset
from faq.text import clean_text

FAQ_FILE, DUPLICATES_FILE = "faq.csv", "duplicates.csv"
FAQ_COLUMNS, DUPLICATE_COLUMNS = ("id", "question", "answer"), ("id", "question")
MIN_ORIGINALS = 5  # the matcher answers with its five best originals


class FaqFileError(ValueError):
    """A problem in the user's files: which file, which line, what."""


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for every data row, after checking the encoding and the header."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FaqFileError(
            f"{path}: line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in columns if c not in header]
    if missing:
        found, wanted = ",".join(header) or "nothing", ",".join(columns)
        raise FaqFileError(
            f"{path}: line 1: missing column(s) {', '.join(missing)}; expected {wanted}, found {found}"
        )
    rows, start = [], reader.line_num + 1
    for row in reader:  # a quoted field may span lines: report the line where the row starts
        rows.append((start, {k.strip(): (v or "") for k, v in row.items() if k is not None}))
        start = reader.line_num + 1
    return rows


def _id(path: Path, line: int, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise FaqFileError(f"{path}: line {line}: id {value!r} is not a whole number") from None


def read_own_faq(folder: Path) -> FaqDataset:
    """The FAQ in ``folder`` (``faq.csv`` and maybe ``duplicates.csv``), cleaned as served."""
    path = folder / FAQ_FILE
    if not path.is_file():
        raise FaqFileError(f"{path}: not found (a folder of your own FAQ needs {FAQ_FILE}; docs/faq.md)")
    originals, first_line = [], {}
    for line, row in _rows(path, FAQ_COLUMNS):
        faq_id = _id(path, line, row["id"])
        if faq_id in first_line:
            raise FaqFileError(
                f"{path}: line {line}: id {faq_id} is already used on line {first_line[faq_id]}"
            )
        first_line[faq_id] = line
        question, answer = clean_text(row["question"]), clean_text(row["answer"])
        for name, value in (("question", question), ("answer", answer)):
            if not value:
                raise FaqFileError(f"{path}: line {line}: the {name} is empty (or has no words)")
        shown = {"question_text": row["question"].strip(), "answer_text": row["answer"].strip()}
        originals.append(
            {"faq_id": faq_id, "question": question, "answer": answer, "answer_id": faq_id, **shown}
        )
    if len(originals) < MIN_ORIGINALS:
        raise FaqFileError(
            f"{path}: {len(originals)} original(s); the matcher needs at least {MIN_ORIGINALS}"
        )
    duplicates = []
    dup_path = folder / DUPLICATES_FILE
    if dup_path.is_file():
        for line, row in _rows(dup_path, DUPLICATE_COLUMNS):
            faq_id = _id(dup_path, line, row["id"])
            if faq_id not in first_line:
                raise FaqFileError(f"{dup_path}: line {line}: id {faq_id} is not an id of {FAQ_FILE}")
            if text := clean_text(row["question"]):
                duplicates.append({"dup_id": line, "text": text, "faq_id": faq_id})
    return FaqDataset(
        pd.DataFrame(originals).sort_values("faq_id").reset_index(drop=True),
        pd.DataFrame(duplicates, columns=["dup_id", "text", "faq_id"]).astype(
            {"dup_id": "int64", "faq_id": "int64"}
        ),
    )


def read_faq(folder: Path | None) -> FaqDataset:
    """Either format: Stack Overflow's three files (the shipped set when ``folder`` is None), or
    ``faq.csv`` with an optional ``duplicates.csv``."""
    if folder is not None and not (folder / ORIGINALS_FILE).exists():
        return read_own_faq(folder)
    return load_dataset(folder)
