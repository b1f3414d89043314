"""Whole-body studies on disk: HDF5 round trip, bed offsets from Interfile and list-mode headers, bad input."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from petrecon.errors import FormatError
from petrecon.geometry import default_layout
from petrecon.io import Container, petlink, read_container
from petrecon.io.interfile import bed_position_mm, read_header, read_interfile_sinograms, write_interfile_sinograms
from petrecon.io.listmode import histogram_listmode_to_container
from petrecon.io.multibed import WholeBodyStudy, is_whole_body, read_whole_body, write_whole_body
from petrecon.volume import ImageGrid, Volume

LAYOUT = default_layout("test")


def _bed(offset_mm, start_s, seed):
    rng = np.random.default_rng(seed)
    return Container({"prompts": rng.poisson(3.0, LAYOUT.shape).astype(np.uint32),
                      "normalisation": rng.random(LAYOUT.shape, dtype=np.float32)}, layout=LAYOUT,
                     attributes={"bed_offset_mm": offset_mm, "frame_start_s": start_s, "duration_s": 180.0,
                                 "isotope": "Ga68"})


def _study():
    grid = ImageGrid((4, 4, 6), (5.0, 5.0, 4.0), (-7.5, -7.5, -30.0))
    mu = Volume(np.full(grid.shape, 0.096, np.float32), grid, {"units": "cm^-1"})
    return WholeBodyStudy([_bed(24.0, 3720.0, 1), _bed(0.0, 3905.0, 2)], {"mu_per_cm": mu}, {"patient": "x"},
                          {"software": "petrecon"})


def test_whole_body_study_round_trips_through_hdf5_exactly(tmp_path):
    study = _study()
    paths = write_whole_body(tmp_path / "wb.h5", study)
    assert [p.name for p in paths] == ["wb.h5", "wb.bed0.h5", "wb.bed1.h5"]
    assert is_whole_body(paths[0]) and not is_whole_body(paths[1]) and not is_whole_body(tmp_path / "none.h5")
    back = read_whole_body(paths[0])
    assert back.bed_offsets_mm().tolist() == [24.0, 0.0]
    assert back.frame_starts_s().tolist() == [3720.0, 3905.0]
    assert back.durations_s().tolist() == [180.0, 180.0]
    assert back.attributes == {"patient": "x"} and back.provenance == {"software": "petrecon"}
    for bed, original in zip(back.beds, study.beds):
        assert bed.layout == LAYOUT
        for name, data in original.sinograms.items():
            assert bed.sinograms[name].dtype == data.dtype and np.array_equal(bed.sinograms[name], data)
    assert back.volumes["mu_per_cm"].grid == study.volumes["mu_per_cm"].grid
    # 32 mm axial field of view, beds 24 mm apart: 8 mm overlap
    assert back.overlaps_mm().tolist() == [8.0]
    # every bed file stays an ordinary single-bed container
    assert read_container(paths[2]).attributes["bed_offset_mm"] == 0.0


def test_existing_outputs_missing_or_altered_bed_files_are_refused(tmp_path):
    paths = write_whole_body(tmp_path / "wb.h5", _study())
    with pytest.raises(FormatError, match="exists"):
        write_whole_body(tmp_path / "wb.h5", _study())
    with paths[2].open("ab") as f:
        f.write(b"x")
    with pytest.raises(FormatError, match=r"wb.bed1.h5: size: .* recorded"):
        read_whole_body(paths[0])
    paths[2].unlink()
    with pytest.raises(FormatError, match=r"whole_body.beds\[1\].file: wb.bed1.h5 does not exist"):
        read_whole_body(paths[0])
    with pytest.raises(FormatError, match="not a whole-body study"):
        read_whole_body(paths[1])


def test_a_bed_without_its_offset_is_refused_naming_the_bed_and_field(tmp_path):
    study = _study()
    del study.beds[1].attributes["bed_offset_mm"]
    with pytest.raises(FormatError, match="bed 1: bed_offset_mm: must be a number"):
        write_whole_body(tmp_path / "wb.h5", study)
    with pytest.raises(FormatError, match="bed 1: bed_offset_mm"):
        study.bed_offsets_mm()


def test_interfile_sinogram_header_carries_the_table_position(tmp_path):
    path = write_interfile_sinograms(tmp_path / "bed2.s.hdr", {"prompts": np.ones(LAYOUT.shape, np.int16)}, LAYOUT,
                                     bed_position_mm=-412.5)
    assert bed_position_mm(read_interfile_sinograms(path).header) == -412.5
    assert "%start horizontal bed position (mm) := -412.5" in path.read_text()
    plain = write_interfile_sinograms(tmp_path / "plain.s.hdr", {"prompts": np.ones(LAYOUT.shape, np.int16)}, LAYOUT)
    assert bed_position_mm(read_header(plain)) is None
    bad = path.read_text().replace("-412.5", "far")
    (tmp_path / "bad.s.hdr").write_text(bad)
    with pytest.raises(FormatError, match="start horizontal bed position"):
        bed_position_mm(read_header(tmp_path / "bad.s.hdr"))


def _listmode_words(seed=0):
    rng = np.random.default_rng(seed)
    span1 = LAYOUT.listmode_layout()
    address = rng.integers(0, span1.n_sinograms * span1.n_views * span1.n_radial_bins, 300)
    return petlink.interleave_time_tags(petlink.encode_event_words(address, np.ones(300, bool)),
                                        rng.integers(0, 10, 300), 10)


LM_HEADER = ("!INTERFILE:=\nname of data file:=scan.l\n%LM event and tag words format:=32\n"
             "%start horizontal bed position (mm):=1234.5\n")


def test_histogrammed_listmode_carries_the_bed_position_of_its_header(tmp_path):
    """The key's value is the bed position; a whole-body bed's offset is its negative (petrecon.geometry.patient)."""
    # a raw .l with its .l.hdr next to it
    words = _listmode_words()
    (tmp_path / "scan.l").write_bytes(words.tobytes())
    (tmp_path / "scan.l.hdr").write_text(LM_HEADER)
    histogram_listmode_to_container(tmp_path / "scan.l", LAYOUT, tmp_path / "raw.h5", progress=False)
    attributes = read_container(tmp_path / "raw.h5").attributes
    assert (attributes["bed_position_mm"], attributes["bed_offset_mm"]) == (1234.5, -1234.5)
    # a Siemens DICOM wrapper (header in (0029,1010), payload in the sibling .bf)
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66"
    ds.SOPInstanceUID, ds.Modality = generate_uid(), "PT"
    ds.add_new((0x0029, 0x0010), "LO", "SIEMENS CSA NON-IMAGE")
    ds.add_new((0x0029, 0x1010), "OB", LM_HEADER.replace("1234.5", "-80").encode("latin-1"))
    ds.save_as(tmp_path / "lm.dcm", enforce_file_format=True)
    (tmp_path / "lm.bf").write_bytes(words.tobytes())
    histogram_listmode_to_container(tmp_path / "lm.dcm", LAYOUT, tmp_path / "wrapped.h5", progress=False)
    assert read_container(tmp_path / "wrapped.h5").attributes["bed_position_mm"] == -80.0
    # no header: no offset (a whole-body study then refuses the bed, test above)
    (tmp_path / "scan.l.hdr").unlink()
    histogram_listmode_to_container(tmp_path / "scan.l", LAYOUT, tmp_path / "bare.h5", progress=False)
    assert "bed_offset_mm" not in read_container(tmp_path / "bare.h5").attributes
