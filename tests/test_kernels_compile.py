"""Every shipped CUDA source compiles with nvcc (so syntax errors show up in CI without a GPU).

Each ``.cu`` file in ``resource_dir("kernels")`` is compiled to a cubin for
sm_90 (H100: ptxas allocates registers, so device-code errors surface) and
to PTX for the virtual compute_75 architecture (the oldest nvcc 12/13
supports). Skipped only when nvcc is not installed. The sources are the
exact text CuPy compiles: their local headers inlined by
:func:`petrecon.cuda.modules.kernel_source`.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import petrecon.cuda
from petrecon.cuda.modules import kernel_source
from petrecon.resources import resource_dir

NVCC = shutil.which("nvcc")
SOURCES = sorted(path.name for path in resource_dir("kernels").glob("*.cu"))
TARGETS = {"sm_90-cubin": ["-arch=sm_90", "-cubin"], "compute_75-ptx": ["-arch=compute_75", "--ptx"]}


def test_the_kernels_folder_ships_the_sources():
    assert {"joseph_lors.cu", "joseph_sinogram.cu", "histogram.cu", "peak.cu"} <= set(SOURCES)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("source", SOURCES)
def test_kernel_source_compiles_with_nvcc(source, target, tmp_path):
    inlined = tmp_path / source
    inlined.write_text(kernel_source(source))
    command = [NVCC, *TARGETS[target], "-Werror=all-warnings", str(inlined), "-o", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_kernel_the_wrappers_launch_exists_in_its_source():
    wrappers = Path(petrecon.cuda.__file__).parent
    launched = set()
    for path in wrappers.glob("*.py"):
        text = path.read_text()
        constant = re.search(r'^SOURCE = "([^"]+)"', text, re.MULTILINE)
        for source, name in re.findall(r'get_kernel\((SOURCE|"[^"]+"), "(\w+)"\)', text):
            launched.add((constant.group(1) if source == "SOURCE" else source.strip('"'), name))
    assert len(launched) == 11  # 4 LOR-array, 4 sinogram, 2 histogram kernels, the FLOP/s probe
    for source, name in launched:
        assert re.search(rf'extern "C" __global__ void {name}\(', kernel_source(source)), (source, name)


def _nvrtc():
    """CuPy's NVRTC binding if CuPy and an NVRTC library are installed (no GPU needed), else None."""
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception:  # ImportError without CuPy; a loader error without libnvrtc
        return None
    return nvrtc


@pytest.mark.skipif(_nvrtc() is None, reason="CuPy's NVRTC (libnvrtc) is not installed")
@pytest.mark.parametrize("source", SOURCES)
def test_kernel_source_compiles_with_nvrtc_as_cupy_does(source):
    from petrecon.cuda.modules import COMPILE_OPTIONS

    nvrtc = _nvrtc()
    program = nvrtc.createProgram(kernel_source(source), source, [], [])
    try:
        nvrtc.compileProgram(program, ["-arch=compute_90", *COMPILE_OPTIONS])
    except Exception as error:
        pytest.fail(f"NVRTC rejected {source}: {error}\n{nvrtc.getProgramLog(program)}")
    assert b".entry" in nvrtc.getPTX(program)
