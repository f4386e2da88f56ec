"""Submission bytes -> the cells of Python source the student process runs, with clear errors.

A `.py` file is one cell. A notebook's code cells run one by one (as nbgrader and otter do), so
IPython-only syntax is neutralised here: line magics and `!shell` lines become `pass`, cell
magics that only time or capture their body keep the body, other cell magics are dropped, and
every change is noted in the report.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import PurePath

import nbformat

from grader.report import Note

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
KEEP_BODY_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
_LINE_MAGIC = re.compile(r"^(\s*)(?:[%!]|[A-Za-z_][\w, ]*=\s*[%!])")
_HELP = re.compile(r"^(\s*)[\w.\[\]()]+\?\??\s*$|^(\s*)\?\??[\w.]+\s*$")


class IntakeError(ValueError):
    """The submission cannot be graded at all: the message says why, for the student."""


@dataclass
class Cell:
    number: int  # 1-based position among the notebook's cells (0 for a .py file)
    source: str


@dataclass
class Submission:
    filename: str
    kind: str  # "py" or "ipynb"
    cells: list[Cell]
    notes: list[Note] = field(default_factory=list)

    def syntax_errors(self) -> list[Note]:
        """Cells that do not compile; a .py file with one is graded 0 with status `error`."""
        found = []
        for cell in self.cells:
            try:
                compile(cell.source, _cell_filename(cell), "exec", dont_inherit=True)
            except (SyntaxError, ValueError) as exc:
                line = getattr(exc, "lineno", None)
                where = f"cell {cell.number}" if self.kind == "ipynb" else "the file"
                found.append(Note(
                    kind="syntax_error",
                    cell=cell.number if self.kind == "ipynb" else None,
                    line=line,
                    message=f"{type(exc).__name__} in {where}"
                    + (f", line {line}" if line else "") + f": {getattr(exc, 'msg', exc)}",
                ))
        return found


def _cell_filename(cell: Cell) -> str:
    return "<submission>" if cell.number == 0 else f"<cell {cell.number}>"


def read_submission(data: bytes, filename: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Submission:
    """Turn uploaded bytes into cells; raise IntakeError with a student-facing message."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in filename):
        raise IntakeError(f"the file name {filename!r} contains control characters: rename the file")
    suffix = PurePath(filename).suffix.lower()
    if suffix not in (".py", ".ipynb"):
        raise IntakeError(f"{filename!r}: submit a Python module (.py) or a Jupyter notebook (.ipynb)")
    if len(data) > max_bytes:
        raise IntakeError(
            f"{filename!r} is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit"
            " (clear the notebook's outputs and submit again)"
        )
    if not data.strip():
        raise IntakeError(f"{filename!r} is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IntakeError(f"{filename!r} is not UTF-8 text (bad byte at offset {exc.start})") from None
    if "\x00" in text:
        raise IntakeError(f"{filename!r} contains NUL bytes: it is not a text file")
    if suffix == ".py":
        return Submission(filename, "py", [Cell(0, text)])
    return _read_notebook(text, filename)


def _read_notebook(text: str, filename: str) -> Submission:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IntakeError(f"{filename!r} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(raw, dict) or "cells" not in raw or "nbformat" not in raw:
        raise IntakeError(f"{filename!r} is JSON but not a Jupyter notebook (no 'cells' or 'nbformat')")
    if raw.get("nbformat") != 4:
        raise IntakeError(f"{filename!r} uses nbformat {raw.get('nbformat')!r}; only version 4 notebooks are accepted"
                          " (re-save it with a current Jupyter)")
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except nbformat.ValidationError as exc:
        raise IntakeError(f"{filename!r} is not a valid notebook: {exc.message}") from None
    except Exception as exc:  # nbformat raises assorted errors for malformed documents
        raise IntakeError(f"{filename!r} is not a valid notebook: {exc}") from None

    submission = Submission(filename, "ipynb", [])
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        source, notes = neutralise_ipython(cell.source, number)
        submission.cells.append(Cell(number, source))
        submission.notes.extend(notes)
    if not submission.cells:
        raise IntakeError(f"{filename!r} has no code cells")
    return submission


def neutralise_ipython(source: str, cell: int) -> tuple[str, list[Note]]:
    """Replace IPython-only syntax with plain Python of the same line count."""
    lines = source.splitlines()
    notes = []
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        magic = first[2:].split()[0] if len(first) > 2 else ""
        if magic in KEEP_BODY_CELL_MAGICS:
            notes.append(Note(kind="magic", cell=cell, line=1, message=f"cell magic %%{magic} ignored; its body runs"))
            return "\n".join(["pass"] + lines[1:]), notes
        notes.append(Note(kind="magic", cell=cell, line=1, message=f"cell magic %%{magic}: cell not run"))
        return "pass", notes
    out = []
    for number, line in enumerate(lines, start=1):
        magic = _LINE_MAGIC.match(line)
        help_ = _HELP.match(line)
        if magic or help_:
            indent = (magic or help_).group(1) or ""
            notes.append(Note(kind="magic", cell=cell, line=number, message=f"IPython line not run: {line.strip()[:80]}"))
            out.append(f"{indent}pass")
        else:
            out.append(line)
    return "\n".join(out), notes
