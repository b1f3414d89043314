"""The README's Python examples run as written (GPU examples only where CuPy sees a GPU)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from petrecon.backend import gpu_available

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _example(index: int):
    needs_gpu = "import cupy" in BLOCKS[index]
    marks = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")]
    return pytest.param(index, marks=marks if needs_gpu else [])


@pytest.mark.parametrize("index", [_example(i) for i in range(len(BLOCKS))])
def test_readme_python_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), {})
