"""The CuPy wrappers of petrecon.cuda, driven end to end without a GPU.

A stand-in for CuPy (numpy arrays that pose as CuPy arrays) replaces the
device, and every ``get_kernel`` returns the kernel compiled for the host by
:mod:`petrecon.cuda.host`. This runs the Python side of the CUDA backend -
argument order and types of every launch, array shapes and layouts, the
sinogram endpoint tables, OSEM on the "cuda" backend, the histogram's chunk
bookkeeping - against the numba/numpy results on any machine with g++. The
histogram kernels run with one thread per block (the host cannot emulate
warp shuffles); the real device is left to the ``gpu``-marked tests.
"""

from __future__ import annotations

import dataclasses
import shutil
import types

import numpy as np
import pytest
import scipy.ndimage

import petrecon.cuda.histogram
import petrecon.cuda.joseph
import petrecon.cuda.sinogram
import petrecon.operators
from petrecon import backend
from petrecon.cuda.host import compile_for_host
from petrecon.geometry import SinogramLayout, TofSpec, default_layout, get_scanner
from petrecon.projectors import adjoint_lors_tof, forward_lors, forward_lors_tof
from petrecon.projectors.sinogram import SinogramProjector
from petrecon.recon import OsemProtocol, osem
from petrecon.volume import ImageGrid

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
RELATIVE_TOLERANCE = 1e-5  # contract 4, as on the GPU


class HostArray(np.ndarray):
    """A numpy array posing as a CuPy array (``type(x).__module__`` starts with "cupy"; ``.get()``)."""

    def get(self) -> np.ndarray:
        return np.array(self, copy=True).view(np.ndarray)


HostArray.__module__ = "cupy_on_host"


def _on_device(result):
    return result.view(HostArray) if isinstance(result, np.ndarray) and not isinstance(result, HostArray) else result


class HostCupy(types.ModuleType):
    """numpy under CuPy's name: array results come back as HostArray."""

    ndarray = HostArray

    def __getattr__(self, name: str):
        attribute = getattr(np, name)
        if callable(attribute) and not isinstance(attribute, type):
            return lambda *args, **kwargs: _on_device(attribute(*args, **kwargs))
        return attribute


class HostRawKernel:
    """Called like a ``cupy.RawKernel``: ``kernel(grid, block, args)``."""

    def __init__(self, host, name: str) -> None:
        self.host, self.name = host, name

    def __call__(self, grid, block, args) -> None:
        plain = [arg.view(np.ndarray) if isinstance(arg, np.ndarray) else arg for arg in args]
        threads = 1 if self.name.startswith("petlink") else block[0]  # no warp shuffles on the host
        self.host.launch(self.name, grid, threads, *plain)


@pytest.fixture(scope="module")
def fake_device(tmp_path_factory):
    host = compile_for_host(["joseph_lors.cu", "joseph_sinogram.cu", "histogram.cu"], tmp_path_factory.mktemp("host"))
    fake = HostCupy("cupy_on_host")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backend, "_cupy_or_none", lambda: fake)
        ndimage = types.SimpleNamespace(
            gaussian_filter=lambda *args, **kwargs: _on_device(scipy.ndimage.gaussian_filter(*args, **kwargs)))
        patch.setattr(petrecon.operators, "ndimage_module", lambda array: ndimage)
        for module in (petrecon.cuda.joseph, petrecon.cuda.sinogram, petrecon.cuda.histogram):
            patch.setattr(module, "get_kernel", lambda source, name: HostRawKernel(host, name))
        yield fake
    backend.default_backend.cache_clear()


def relative_difference(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_lor_wrappers_match_numba(fake_device):
    cuda = petrecon.cuda.joseph
    rng = np.random.default_rng(0)
    shape, voxel_mm = (30, 26, 14), (2.0, 2.5, 3.0)
    origin_mm = -(np.array(shape) - 1) / 2 * np.array(voxel_mm)
    d = rng.normal(size=(20, 30, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    centres = rng.uniform(-20, 20, (20, 30, 3))
    xs, xe = (centres - 100 * d).astype(np.float32), (centres + 100 * d).astype(np.float32)
    image = rng.random(shape, dtype=np.float32)
    forward = cuda.forward_lors_cuda(image, xs, xe, origin_mm, voxel_mm)
    assert isinstance(forward, HostArray) and forward.shape == (20, 30)
    assert relative_difference(forward, forward_lors(image, xs, xe, origin_mm, voxel_mm)) < RELATIVE_TOLERANCE
    edges_mm, fwhm_mm, offsets_mm = np.linspace(-90, 90, 8), 25.0, rng.uniform(-5, 5, (20, 30))
    tof = cuda.forward_lors_tof_cuda(image, xs, xe, origin_mm, voxel_mm, edges_mm, fwhm_mm, offsets_mm)
    cpu_tof = forward_lors_tof(image, xs, xe, origin_mm, voxel_mm, edges_mm, fwhm_mm, offsets_mm)
    assert tof.shape == (20, 30, 7) and relative_difference(tof, cpu_tof) < RELATIVE_TOLERANCE
    values = rng.random((20, 30, 7)).astype(np.float32)
    back = cuda.adjoint_lors_tof_cuda(values, xs, xe, shape, origin_mm, voxel_mm, edges_mm, fwhm_mm, 2.0)
    cpu_back = adjoint_lors_tof(values, xs, xe, shape, origin_mm, voxel_mm, edges_mm, fwhm_mm, 2.0)
    assert relative_difference(back, cpu_back) < RELATIVE_TOLERANCE


def test_projector_functions_dispatch_cupy_arrays_to_the_gpu(fake_device):
    rng = np.random.default_rng(4)
    shape, voxel_mm = (12, 10, 8), (3.0, 3.0, 3.0)
    origin_mm = -(np.array(shape) - 1) / 2 * np.array(voxel_mm)
    xs = rng.uniform(-60, 60, (50, 3)).astype(np.float32)
    xe = -xs
    image = rng.random(shape, dtype=np.float32)
    on_device = forward_lors(image.view(HostArray), xs, xe, origin_mm, voxel_mm)
    assert isinstance(on_device, HostArray)  # CuPy in, CuPy out
    np.testing.assert_allclose(on_device, forward_lors(image, xs, xe, origin_mm, voxel_mm), rtol=1e-5)
    values = rng.random((50, 3)).astype(np.float32)
    back = adjoint_lors_tof(values, xs.view(HostArray), xe, shape, origin_mm, voxel_mm, [-50, -10, 10, 50], 30.0)
    assert isinstance(back, HostArray)


def _layouts() -> dict[str, SinogramLayout]:
    plain = default_layout("test")
    scanner = dataclasses.replace(get_scanner("test"), tof=TofSpec(n_bins=9, bin_width_ps=312.0, fwhm_ps=555.0))
    return {"test": plain,
            "test-mashed": SinogramLayout(plain.scanner, 3, plain.max_ring_difference, plain.n_radial_bins, 2),
            "test-tof": SinogramLayout(scanner, 3, plain.max_ring_difference, plain.n_radial_bins, 1, use_tof=True)}


@pytest.mark.parametrize("name", sorted(_layouts()))
def test_sinogram_projector_on_cuda_matches_cpu(fake_device, name):
    layout = _layouts()[name]
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    views = np.arange(2, layout.n_views, 3)
    cpu = SinogramProjector(layout, grid, backend="cpu").subset_operator(views)
    gpu = SinogramProjector(layout, grid, backend="cuda").subset_operator(views)
    assert gpu.backend == "cuda"
    rng = np.random.default_rng(1)
    image = rng.random(grid.shape, dtype=np.float32)
    sinogram = rng.random(cpu.out_shape, dtype=np.float32)
    forward = gpu.forward(image)
    assert type(forward) is np.ndarray  # numpy in, numpy out
    assert isinstance(gpu.forward(image.view(HostArray)), HostArray)  # device in, device out
    assert relative_difference(forward, cpu.forward(image)) < RELATIVE_TOLERANCE
    assert relative_difference(gpu.adjoint(sinogram), cpu.adjoint(sinogram)) < RELATIVE_TOLERANCE


def test_aw_osem_on_the_cuda_backend_matches_cpu(fake_device, monkeypatch):
    layout = default_layout("test")
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    cpu = SinogramProjector(layout, grid, backend="cpu")
    rng = np.random.default_rng(2)
    x, y, _ = np.meshgrid(*[grid.voxel_centres_mm(a) for a in range(3)], indexing="ij")
    truth = ((np.hypot(x, y) < 60) * 1.0 + (np.hypot(x - 25, y) < 12) * 3.0).astype(np.float32)
    multiplicative = (0.3 + 0.7 * rng.random(cpu.out_shape)).astype(np.float32)
    additive = np.full(cpu.out_shape, 0.2, np.float32)
    prompts = rng.poisson(multiplicative * cpu.forward(truth) + additive).astype(np.float32)
    protocol = OsemProtocol(2, 4, 5.0)
    on_cpu = osem(prompts, cpu, multiplicative=multiplicative, additive=additive, protocol=protocol)
    copies_to_host = []
    monkeypatch.setattr(HostArray, "get", lambda self: copies_to_host.append(self.shape) or np.asarray(self))
    on_device = osem(prompts.view(HostArray), SinogramProjector(layout, grid, backend="cuda"),
                     multiplicative=multiplicative, additive=additive, protocol=protocol)
    assert isinstance(on_device, HostArray) and copies_to_host == []  # no host round trip in any subset
    # Projector differences of ~1e-6 per pass through 8 multiplicative EM updates: 1e-4.
    assert relative_difference(on_device, on_cpu) < 1e-4


def test_histogram_wrapper_matches_the_numpy_reference(fake_device, monkeypatch):
    from petrecon.io.petlink import encode_event_words, interleave_time_tags

    monkeypatch.setattr(petrecon.cuda.histogram, "CHUNK_WORDS", 1000)  # many chunks, most without a tag
    layout = _layouts()["test-mashed"]
    rng = np.random.default_rng(3)
    size = petrecon.cuda.histogram.span1_size(layout)
    addresses = rng.integers(0, size + size // 50, 20000)
    words = interleave_time_tags(encode_event_words(addresses, rng.random(20000) < 0.7),
                                 rng.integers(0, 12, 20000), 12)
    got = petrecon.cuda.histogram.histogram_words_cuda(words, layout, 2, 9)
    expected = petrecon.cuda.histogram.histogram_words_numpy(words, layout, 2, 9)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2] > 0
    # The same stream in two pieces, the second starting mid-millisecond (between a tag and its events).
    middle = int(np.flatnonzero((words >> np.uint32(29)) == 0b100)[6]) + 3
    first = petrecon.cuda.histogram.histogram_words_cuda(words[:middle], layout, 2, 9)
    second = petrecon.cuda.histogram.histogram_words_cuda(words[middle:], layout, 2, 9, initial_ms=6,
                                                          out=first[:2])
    np.testing.assert_array_equal(second[0], expected[0])
    np.testing.assert_array_equal(second[1], expected[1])
    assert first[2] + second[2] == expected[2]
