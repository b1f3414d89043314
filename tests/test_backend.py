"""Backend selection: auto/cpu/cuda, the environment variable, and CuPy imported only by petrecon.backend."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import petrecon
from petrecon import backend
from petrecon.errors import ParameterError


@pytest.fixture
def no_gpu(monkeypatch):
    """Pretend CuPy is missing or sees no GPU, whatever this machine has."""
    monkeypatch.setattr(backend, "_cupy_or_none", lambda: None)
    backend.default_backend.cache_clear()
    yield
    backend.default_backend.cache_clear()


def test_auto_without_gpu_is_cpu(no_gpu, monkeypatch):
    monkeypatch.delenv(backend.ENV_VARIABLE, raising=False)
    assert backend.resolve_backend("auto") == "cpu"
    assert backend.resolve_backend(None) == "cpu"
    assert backend.default_backend() == "cpu"


def test_cuda_without_gpu_is_a_clear_parameter_error(no_gpu):
    with pytest.raises(ParameterError, match="'cuda' asked for.*no GPU"):
        backend.resolve_backend("cuda")
    with pytest.raises(ParameterError, match="'cuda' asked for"):
        backend.cupy()


def test_sinogram_projector_on_cuda_without_gpu_raises(no_gpu):
    from petrecon.geometry import default_layout
    from petrecon.projectors.sinogram import SinogramProjector
    from petrecon.volume import ImageGrid

    layout = default_layout("test")
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    with pytest.raises(ParameterError, match="cuda"):
        SinogramProjector(layout, grid, backend="cuda")
    assert SinogramProjector(layout, grid).backend == "cpu"


def test_environment_variable_picks_the_backend_once_per_process(no_gpu, monkeypatch):
    monkeypatch.setenv(backend.ENV_VARIABLE, "CPU")
    assert backend.default_backend() == "cpu"
    monkeypatch.setenv(backend.ENV_VARIABLE, "cuda")
    assert backend.default_backend() == "cpu"  # decided on first use, not re-read
    backend.default_backend.cache_clear()
    with pytest.raises(ParameterError, match="'cuda' asked for"):
        backend.default_backend()


def test_unknown_backend_names_the_choices(monkeypatch):
    with pytest.raises(ParameterError, match="auto, cpu, cuda"):
        backend.resolve_backend("opencl")
    monkeypatch.setenv(backend.ENV_VARIABLE, "tpu")
    with pytest.raises(ParameterError, match="PETRECON_BACKEND='tpu'"):
        backend.resolve_backend(None)


def test_explicit_cpu_never_probes_cupy(monkeypatch):
    def fail():
        raise AssertionError("probed CuPy for an explicit cpu backend")

    monkeypatch.setattr(backend, "_cupy_or_none", fail)
    assert backend.resolve_backend("cpu") == "cpu"


def test_numpy_arrays_get_numpy_and_scipy_modules():
    x = np.zeros((2, 2))
    assert backend.array_module(x) is np
    assert backend.ndimage_module(x).__name__ == "scipy.ndimage"
    assert backend.to_numpy(x) is x


def test_only_petrecon_backend_imports_cupy():
    importers = []
    for path in Path(petrecon.__file__).parent.rglob("*.py"):
        if re.search(r"^\s*(import|from)\s+cupy", path.read_text(), re.MULTILINE):
            importers.append(path.name)
    assert importers == ["backend.py"]


def test_importing_petrecon_and_its_gpu_modules_does_not_import_cupy():
    code = ("import sys, petrecon, petrecon.backend, petrecon.cuda.sinogram, petrecon.cuda.histogram, "
            "petrecon.projectors.sinogram, petrecon.recon; print(sys.modules.get('cupy') is not None)")
    root = Path(petrecon.__file__).parent.parent
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert result.stdout.strip() == "False"
