"""Property-based tests: random and mutated inputs give results or petrecon errors, never anything else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from petrecon.errors import PetreconError
from petrecon.geometry import default_layout
from petrecon.io import Container, write_container
from petrecon.io.interfile import parse_interfile, read_interfile_image, read_interfile_sinograms, \
    write_interfile_image, write_interfile_sinograms
from petrecon.io.listmode import histogram_listmode
from petrecon.volume import ImageGrid, Volume

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LAYOUT = default_layout("test")


@pytest.fixture(scope="module")
def valid_sinogram(tmp_path_factory):
    folder = tmp_path_factory.mktemp("valid")
    header = write_interfile_sinograms(folder / "s.s.hdr", {"prompts": np.ones(LAYOUT.shape, np.int16),
                                                            "randoms": np.zeros(LAYOUT.shape, np.int16)}, LAYOUT)
    return header.read_text(), (folder / "s.s").read_bytes()


@st.composite
def mutated_header(draw, text):
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "value", "duplicate", "insert", "case", "crlf", "key"]))
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "delete" and len(lines) > 1:
            del lines[i]
        elif kind == "value" and ":=" in lines[i]:
            key = lines[i].split(":=")[0]
            lines[i] = key + ":= " + draw(st.one_of(st.text(max_size=12), st.integers(-10**6, 10**9).map(str),
                                                   st.sampled_from(["{1,2}", "{}", "nan", "inf", "-1", "1e300"])))
        elif kind == "duplicate" and ":=" in lines[i]:
            lines.insert(i, lines[i].split(":=")[0] + ":= " + draw(st.integers(0, 999).map(str)))
        elif kind == "insert":
            lines.insert(i, draw(st.text(max_size=30)))
        elif kind == "case":
            lines[i] = lines[i].upper()
        elif kind == "crlf":
            lines[i] = lines[i] + "\r"
        elif kind == "key" and ":=" in lines[i]:
            lines[i] = "%" + lines[i].replace(" ", "  ")
    return "\n".join(lines)


@FAST
@given(data=st.data())
def test_mutated_sinogram_headers_give_data_or_petrecon_errors(tmp_path_factory, valid_sinogram, data):
    text, payload = valid_sinogram
    folder = tmp_path_factory.mktemp("mutated")
    (folder / "s.s.hdr").write_text(data.draw(mutated_header(text)), encoding="latin-1", errors="replace")
    cut = data.draw(st.sampled_from([None, 0, 1, len(payload) // 2, len(payload) - 1]))
    (folder / "s.s").write_bytes(payload if cut is None else payload[:cut])
    try:
        result = read_interfile_sinograms(folder / "s.s.hdr")
    except PetreconError:
        return
    for array in result.data.values():
        assert array.shape == result.layout.shape


@FAST
@given(text=st.text(max_size=300))
def test_random_header_text_gives_a_header_or_a_format_error(text):
    try:
        parse_interfile(text, "random.hdr")
    except PetreconError:
        pass


@FAST
@given(words=st.lists(st.integers(0, 2**32 - 1), max_size=400),
       frame=st.tuples(st.integers(0, 2**29), st.integers(1, 2**29)))
def test_random_word_streams_are_histogrammed_consistently(words, frame):
    layout = default_layout("test", span=1)
    stream = np.array(words, dtype=np.uint32)
    start_ms, length_ms = frame
    result = histogram_listmode(stream, layout, start_s=start_ms / 1000, end_s=(start_ms + length_ms) / 1000,
                                progress=False, chunk_words=64)
    assert result.n_prompts + result.n_delays + result.n_dropped + result.n_unmapped == result.n_events_in_frame
    assert result.n_events_in_frame <= np.count_nonzero(stream < 2**31)


@FAST
@given(n_bytes=st.integers(0, 64))
def test_truncated_listmode_files_are_refused_or_read(tmp_path_factory, n_bytes):
    path = tmp_path_factory.mktemp("lm") / "x.l"
    path.write_bytes(bytes(range(n_bytes)))
    try:
        result = histogram_listmode(path, default_layout("test", span=1), progress=False)
    except PetreconError as error:
        assert n_bytes % 4 and "x.l" in str(error)
    else:
        assert n_bytes % 4 == 0 and result.n_words == n_bytes // 4


@FAST
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
       cut=st.integers(0, 300))
def test_truncated_images_are_refused(tmp_path_factory, shape, cut):
    folder = tmp_path_factory.mktemp("img")
    volume = Volume(np.ones(shape, np.float32), ImageGrid.centred(shape, (1.0, 1.0, 1.0)))
    header = write_interfile_image(folder / "v.v.hdr", volume)
    data = (folder / "v.v").read_bytes()
    (folder / "v.v").write_bytes(data[:cut])
    try:
        read_interfile_image(header)
    except PetreconError:
        assert cut < len(data) or cut > len(data)
    else:
        assert cut >= len(data)


@FAST
@given(bad=st.sampled_from(["shape", "dtype"]))
def test_failed_writes_leave_no_files(tmp_path_factory, bad):
    folder = tmp_path_factory.mktemp("writes")
    good = np.zeros(LAYOUT.shape, np.int16)
    wrong = good[:-1] if bad == "shape" else good.astype(np.complex64)
    with pytest.raises(PetreconError):
        write_interfile_sinograms(folder / "s.s.hdr", {"prompts": good, "randoms": wrong}, LAYOUT)
    with pytest.raises(PetreconError):
        write_container(folder / "c.h5", Container({"prompts": wrong}, layout=LAYOUT))
    with pytest.raises(PetreconError, match="attributes"):
        write_container(folder / "d.h5", Container({"prompts": good}, layout=LAYOUT, attributes={"t": {1j}}))
    assert list(folder.iterdir()) == []


PET_TAGS = ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "RescaleSlope", "Rows", "Columns",
            "PixelData", "Modality", "SeriesInstanceUID", "PatientPosition", "BitsAllocated"]


@pytest.fixture(scope="module")
def pet_series(tmp_path_factory):
    import datetime as dt

    from petrecon.io.dicom import write_pet_series

    folder = tmp_path_factory.mktemp("pet") / "series"
    grid = ImageGrid.centred((4, 3, 3), (2.0, 2.0, 2.0))
    scan = dt.datetime(2026, 1, 1, 12, 0)
    write_pet_series(Volume(np.ones(grid.shape, np.float32), grid), folder, injected_dose_bq=1e8,
                     injection_datetime=scan, series_datetime=scan, frame_duration_s=60.0)
    return folder


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slice_index=st.integers(0, 2), tag=st.sampled_from(PET_TAGS),
       value=st.one_of(st.none(), st.text(max_size=8), st.lists(st.floats(allow_nan=True), max_size=7)))
def test_mutated_dicom_tags_give_a_volume_or_a_petrecon_error(tmp_path_factory, pet_series, slice_index, tag, value):
    import shutil

    import pydicom

    from petrecon.io.dicom import read_pet_series

    folder = tmp_path_factory.mktemp("mutated") / "series"
    shutil.copytree(pet_series, folder)
    path = sorted(folder.iterdir())[slice_index]
    dataset = pydicom.dcmread(path)
    try:
        if value is None:
            delattr(dataset, tag) if tag in dataset else None
        else:
            setattr(dataset, tag, value)
        dataset.save_as(path)
    except Exception:  # pydicom refuses the value itself: nothing to read back
        return
    try:
        read_pet_series(folder)
    except PetreconError:
        pass


@FAST
@given(header=st.binary(max_size=200))
def test_random_wrapper_headers_give_a_raw_object_or_a_format_error(tmp_path_factory, header):
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from petrecon.io.siemens import read_wrapper

    folder = tmp_path_factory.mktemp("wrap")
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = "1.2.3.4"
    ds.add_new((0x0029, 0x0010), "LO", "SIEMENS CSA NON-IMAGE")
    ds.add_new((0x0029, 0x1010), "OB", b"!INTERFILE:=\n" + header)
    ds.save_as(folder / "x.dcm", enforce_file_format=True)
    (folder / "x.bf").write_bytes(b"")
    try:
        item = read_wrapper(folder / "x.dcm")
        if item.kind in ("sinogram", "norm"):
            item.read_sinograms()
    except PetreconError:
        pass


def _write_mutated_pair(data_path, text, payload, data):
    """Write a mutated Interfile header (``<data_path>.hdr``) and its payload, whole or cut short; return the folder."""
    data_path.with_name(data_path.name + ".hdr").write_text(data.draw(mutated_header(text)), encoding="latin-1",
                                                            errors="replace")
    cut = data.draw(st.sampled_from([len(payload), len(payload) - 4, len(payload) // 2, 0]))
    data_path.write_bytes(payload[:cut])
    return data_path.parent


@pytest.fixture(scope="module")
def valid_component_norm(tmp_path_factory):
    from petrecon.io.siemens_norm import expected_shapes, write_component_normalisation

    folder = tmp_path_factory.mktemp("component")
    shapes = expected_shapes(LAYOUT.scanner, LAYOUT.n_radial_bins, LAYOUT.span, LAYOUT.max_ring_difference)
    header = write_component_normalisation(folder / "n.n.hdr", {name: np.ones(shape, np.float32)
                                                                 for name, shape in shapes.items()},
                                           LAYOUT.scanner, native_span=LAYOUT.span,
                                           native_max_ring_difference=LAYOUT.max_ring_difference)
    return header.read_text(), (folder / "n.n").read_bytes()


@FAST
@given(data=st.data())
def test_mutated_component_norm_files_give_components_or_petrecon_errors(tmp_path_factory, valid_component_norm,
                                                                         data):
    from petrecon.io.siemens_norm import read_component_normalisation
    from petrecon.recon.corrections.component_norm import bin_efficiencies

    text, payload = valid_component_norm
    folder = _write_mutated_pair(tmp_path_factory.mktemp("mutated_norm") / "n.n", text, payload, data)
    try:
        norm = read_component_normalisation(folder / "n.n.hdr")
        bin_efficiencies(norm, LAYOUT, views=[0])
    except PetreconError:
        pass


@pytest.fixture(scope="module")
def valid_hardware_mu_map(tmp_path_factory):
    from petrecon.io.hardware_mumap import TablePlacement, write_hardware_mu_map

    folder = tmp_path_factory.mktemp("hardware")
    grid = ImageGrid((5, 4, 3), (2.0, 2.0, 4.0), (-4.0, 66.0, -4.0))
    header = write_hardware_mu_map(folder / "umap_PT_1.v.hdr", Volume(np.full(grid.shape, 0.1, np.float32), grid),
                                   TablePlacement(-812.5, (0.0, 0.0, -1260.0), (0.0, 0.0, 1250.0)))
    return header.read_text(), (folder / "umap_PT_1.v").read_bytes()


@FAST
@given(data=st.data())
def test_mutated_hardware_mu_maps_give_a_placed_part_or_petrecon_errors(tmp_path_factory, valid_hardware_mu_map,
                                                                        data):
    from petrecon.io.hardware_mumap import TablePlacement, read_hardware_mu_map

    text, payload = valid_hardware_mu_map
    folder = _write_mutated_pair(tmp_path_factory.mktemp("mutated_hardware") / "umap_PT_1.v", text, payload, data)
    try:
        volume = read_hardware_mu_map(folder / "umap_PT_1.v.hdr").in_gantry(TablePlacement(0.0, (0, 0, 0), (0, 0, 0)))
        assert np.all(np.isfinite(volume.data)) and float(volume.data.min()) >= 0.0
    except PetreconError:
        pass


@FAST
@given(cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 399), st.integers(0, 255)), max_size=4))
def test_mutated_csa_headers_give_elements_or_a_format_error(cut, flips):
    from petrecon.errors import FormatError
    from petrecon.io.siemens_csa import read_csa, write_csa

    blob = bytearray(write_csa({"TablePositionOrigin": ["0.0", "0.0", "-1260.0"], "GantryTableHomeOffset": ["1"]}))
    for position, value in flips:
        if position < len(blob):
            blob[position] = value
    try:
        elements = read_csa(bytes(blob[:cut]), "x.dcm")
        assert all(isinstance(items, list) for items in elements.values())
    except FormatError:
        pass
