"""Siemens raw-data DICOM wrappers: header in (0029,1010)/(0029,1110), payload in the sibling .bf."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from petrecon.errors import FormatError
from petrecon.geometry import default_layout
from petrecon.io import petlink
from petrecon.io.interfile import write_interfile_sinograms
from petrecon.io.listmode import histogram_listmode
from petrecon.io.siemens import open_export, read_wrapper

RAW_DATA_STORAGE = "1.2.840.10008.5.1.4.1.1.66"


def _wrap(path, header_text, payload, *, tag=0x1010, pad=b"\x00\x00  ", software="syngo MR E11"):
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = RAW_DATA_STORAGE
    ds.SOPClassUID, ds.SOPInstanceUID = RAW_DATA_STORAGE, generate_uid()
    ds.Modality, ds.SoftwareVersions = "PT", software
    ds.add_new((0x0029, tag >> 8), "LO", "SIEMENS CSA NON-IMAGE")  # private creator of block 0x10 / 0x11
    ds.add_new((0x0029, tag), "OB", header_text.encode("latin-1") + pad)
    ds.save_as(path, enforce_file_format=True)
    path.with_suffix(".bf").write_bytes(payload)
    return path


def _export(tmp_path):
    layout = default_layout("test")
    rng = np.random.default_rng(5)
    prompts = rng.poisson(2.0, layout.shape).astype(np.int16)
    norm = rng.random(layout.shape, dtype=np.float32) + 0.5
    staging = tmp_path / "staging"
    staging.mkdir()
    for name, data in (("sino", {"prompts": prompts}), ("norm", {"normalisation": norm})):
        write_interfile_sinograms(staging / f"{name}.s.hdr", data, layout)
    export = tmp_path / "export"
    export.mkdir()
    sino_header = (staging / "sino.s.hdr").read_text()
    norm_header = (staging / "norm.s.hdr").read_text().replace("name of data file := norm.s",
                                                               "name of data file := norm.n")
    _wrap(export / "sino.dcm", sino_header, (staging / "sino.s").read_bytes())
    _wrap(export / "norm.dcm", norm_header, (staging / "norm.s").read_bytes(), tag=0x1110, software="syngo MR B18P")
    span1 = layout.listmode_layout()
    address = rng.integers(0, span1.n_sinograms * span1.n_views * span1.n_radial_bins, 500)
    words = petlink.interleave_time_tags(petlink.encode_event_words(address, np.ones(500, bool)),
                                         rng.integers(0, 10, 500), 10)
    _wrap(export / "lm.dcm", "!INTERFILE:=\n%SMS-MI header name space:=image subheader\n"
          "name of data file:=C:\\Siemens\\scan.l\n%LM event and tag words format:=32\n", words.tobytes())
    (export / "readme.txt").write_text("not DICOM")
    return layout, prompts, norm, words


def test_export_folder_is_classified_and_read(tmp_path):
    layout, prompts, norm, words = _export(tmp_path)
    export = open_export(tmp_path / "export")
    assert [item.dicom_path.name for item in export.listmode] == ["lm.dcm"]
    assert [item.dicom_path.name for item in export.sinogram] == ["sino.dcm"]
    assert [item.dicom_path.name for item in export.norm] == ["norm.dcm"]
    assert export.norm[0].header_tag == (0x0029, 0x1110) and export.norm[0].software_version == "syngo MR B18P"
    np.testing.assert_array_equal(export.sinogram[0].read_sinograms().data["prompts"], prompts)
    np.testing.assert_array_equal(export.norm[0].read_sinograms().data["normalisation"], norm)
    histogram = histogram_listmode(export.listmode[0].payload_path, layout, progress=False)
    assert histogram.n_prompts == 500
    assert len(export.summary_lines()) == 3


def test_broken_wrappers_name_the_file(tmp_path):
    _export(tmp_path)
    folder = tmp_path / "export"
    (folder / "sino.bf").unlink()
    with pytest.raises(FormatError, match="sino.dcm: payload"):
        open_export(folder)
    _wrap(folder / "empty.dcm", "no interfile here", b"")
    with pytest.raises(FormatError, match="0029,1010"):
        read_wrapper(folder / "empty.dcm")
    norm = read_wrapper(folder / "norm.dcm")
    norm.payload_path.write_bytes(norm.payload_path.read_bytes()[:-4])
    with pytest.raises(FormatError, match="norm.bf: size"):
        norm.read_sinograms()
    with pytest.raises(FormatError, match="not a sinogram"):
        read_wrapper(folder / "lm.dcm").read_sinograms()
    with pytest.raises(FormatError, match="not a readable DICOM"):
        read_wrapper(folder / "readme.txt")


def test_histogram_command_takes_the_export_folder(tmp_path, capsys):
    from petrecon.cli import main
    from petrecon.io import read_container

    _export(tmp_path)
    out = tmp_path / "sino.h5"
    assert main(["histogram", str(tmp_path / "export"), "--scanner", "test", "--out", str(out), "--quiet"]) == 0
    assert int(read_container(out).sinograms["prompts"].sum()) == 500
    assert main(["histogram", str(tmp_path / "export" / "sino.dcm"), "--scanner", "test", "--out",
                 str(tmp_path / "x.h5"), "--quiet"]) == 2
    assert "not list-mode" in capsys.readouterr().err
