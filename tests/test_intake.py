"""Intake: every kind of unusable upload gets a clear, named error; notebooks keep their cells apart."""

import json
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.intake import IntakeError, read_submission


def notebook_bytes(*cells: str, markdown: str | None = None) -> bytes:
    nb = new_notebook(cells=([new_markdown_cell(markdown)] if markdown else []) + [new_code_cell(c) for c in cells])
    return nbformat.writes(nb).encode()


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"\xff\xfe\x00bad", "a.py", "not UTF-8"),
        (b"x = 1\x00", "a.py", "NUL bytes"),
        (b"", "a.py", "is empty"),
        (b"   \n", "a.ipynb", "is empty"),
        (b"{not json", "a.ipynb", "not valid JSON (line 1"),
        (b'{"hello": 1}', "a.ipynb", "not a Jupyter notebook"),
        (b"[1, 2]", "a.ipynb", "not a Jupyter notebook"),
        (json.dumps({"cells": [], "nbformat": 3, "nbformat_minor": 0, "metadata": {}}).encode(), "a.ipynb", "nbformat 3"),
        (json.dumps({"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode(),
         "a.ipynb", "not a valid notebook"),
        (b"print(1)", "a.txt", "submit a Python module (.py) or a Jupyter notebook"),
        (b"print(1)", "a\x00b.py", "contains control characters"),
        (b"x = 1\n" * 10, "a.py", "over the 0.0 MB limit"),
    ],
)
def test_unusable_input_is_rejected_with_a_named_problem(data, filename, message):
    max_bytes = 20 if "limit" in message else 5 * 1024 * 1024
    with pytest.raises(IntakeError, match=re.escape(message)):
        read_submission(data, filename, max_bytes=max_bytes)


def test_notebook_without_code_cells_is_rejected():
    nb = new_notebook(cells=[new_markdown_cell("only words")])
    with pytest.raises(IntakeError, match="no code cells"):
        read_submission(nbformat.writes(nb).encode(), "a.ipynb")


def test_py_file_is_one_cell_and_keeps_its_text():
    submission = read_submission(b"def f():\n    return 1\n", "sol.py")
    assert submission.kind == "py"
    assert [c.source for c in submission.cells] == ["def f():\n    return 1\n"]
    assert submission.syntax_errors() == []


def test_syntax_error_names_line_and_message():
    submission = read_submission(b"x = 1\ndef f(:\n    pass\n", "sol.py")
    (error,) = submission.syntax_errors()
    assert error.line == 2 and "SyntaxError" in error.message and "line 2" in error.message


def test_notebook_cells_keep_their_numbers_and_markdown_is_skipped():
    data = notebook_bytes("import torch", "def f(:", "y = 2", markdown="# title")
    submission = read_submission(data, "nb.ipynb")
    assert [c.number for c in submission.cells] == [2, 3, 4]
    (error,) = submission.syntax_errors()
    assert error.cell == 3 and "cell 3" in error.message


def test_magics_and_shell_lines_become_noops_with_a_note():
    data = notebook_bytes("%matplotlib inline\nimport torch\n!pip install torch\nfiles = !ls\nx = 1\ntorch.optim?",
                          "%%time\ny = 2", "%%bash\necho hi")
    submission = read_submission(data, "nb.ipynb")
    first, timed, bash = (c.source for c in submission.cells)
    assert first.splitlines() == ["pass", "import torch", "pass", "pass", "x = 1", "pass"]
    assert timed.splitlines() == ["pass", "y = 2"]
    assert bash == "pass"
    assert submission.syntax_errors() == []
    assert len([n for n in submission.notes if n.kind == "magic"]) == 6
    assert {n.cell for n in submission.notes} == {1, 2, 3}


def test_indented_magic_keeps_the_block_valid():
    data = notebook_bytes("for i in range(2):\n    %time x = i\n    y = i")
    submission = read_submission(data, "nb.ipynb")
    assert submission.cells[0].source.splitlines()[1] == "    pass"
    assert submission.syntax_errors() == []


def test_utf8_bom_is_accepted():
    submission = read_submission("x = 'é'\n".encode("utf-8-sig"), "a.py")
    assert submission.cells[0].source == "x = 'é'\n"


def test_notebook_with_a_50_mb_output_cell_is_rejected_before_anything_runs():
    nb = new_notebook(cells=[new_code_cell("print('x' * 50_000_000)")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 50_000_000)]
    with pytest.raises(IntakeError, match=r"over the 5\.2 MB limit \(clear the notebook's outputs"):
        read_submission(nbformat.writes(nb).encode(), "huge.ipynb")
