"""Siemens Interfile: header quirks, sinogram/image round trips, geometry checks, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.errors import FormatError, PetreconError
from petrecon.geometry import default_layout
from petrecon.io.interfile import (layout_from_header, parse_interfile, read_header, read_interfile_image,
                                   read_interfile_sinograms, read_main_header, write_interfile_image,
                                   write_interfile_sinograms, write_main_header)
from petrecon.volume import ImageGrid, Volume

MMR_SPAN11_HEADER = """!INTERFILE:=\r
%comment:=SMS-MI sinogram common attributes\r
!originating system:=2008\r
%SMS-MI header name space:=sinogram subheader\r
!name of data file:=scan.s\r
number format := signed integer\r
!number of bytes per pixel := 2\r
image data byte order := LITTLEENDIAN\r
number of dimensions:=3\r
matrix size[1]:=344\r
matrix size[2]:=252\r
matrix size[3]:=837\r
%axial compression:=11\r
%maximum ring difference:=60\r
%number of segments:=11\r
%segment table:={127,115,115,93,93,71,71,49,49,27,27}\r
%total number of sinograms:=837\r
number of scan data types:=2\r
scan data type description[1]:=prompts\r
scan data type description[2]:=randoms\r
data offset in bytes[1]:=0\r
data offset in bytes[2]:=145115712\r
!END OF INTERFILE:=\r
"""


def test_siemens_header_quirks_are_parsed_and_the_mmr_is_recognised():
    header = parse_interfile(MMR_SPAN11_HEADER, "scan.s.hdr")
    assert header.text("imagedata byte order") == "LITTLEENDIAN"     # the other spelling
    assert header.integer("data offset in bytes", 2) == 344 * 252 * 837 * 2
    layout = layout_from_header(header)                                # inferred from the registry
    assert layout == default_layout("mmr")
    # the same header with the registry scanner named explicitly, and a wrong one
    assert layout_from_header(header, "mmr") == layout
    with pytest.raises(FormatError, match="scan.s.hdr"):
        layout_from_header(header, "mct")


@pytest.mark.parametrize("edit, field", [
    (("{127,115,115,93,93,71,71,49,49,27,27}", "{127,115,115,93,93,71,71,49,49,27,25}"), "segment table"),
    (("%number of segments:=11", "%number of segments:=9"), "number of segments"),
    (("matrix size[1]:=344", "matrix size[1]:=340"), "geometry"),
    (("%axial compression:=11", "%axial compression:=abc"), "axial compression"),
    (("number of dimensions:=3", "number of dimensions:=3\r\nnumber of dimensions:=4"), "contradictory"),
    (("number of dimensions:=3", "number of dimensions 3"), "line"),
    (("!INTERFILE:=", "INTERFILES:="), "INTERFILE"),
])
def test_inconsistent_headers_name_the_file_and_the_key(edit, field):
    text = MMR_SPAN11_HEADER.replace(*edit)
    with pytest.raises(FormatError, match=field) as info:
        layout_from_header(parse_interfile(text, "scan.s.hdr"))
    assert info.value.path == "scan.s.hdr"


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_sinograms_round_trip_exactly(tmp_path, dtype):
    layout = default_layout("test")
    rng = np.random.default_rng(2)
    sinograms = {"prompts": rng.poisson(4.0, layout.shape).astype(dtype),
                 "randoms": rng.poisson(1.0, layout.shape).astype(dtype)}
    path = write_interfile_sinograms(tmp_path / "scan.s.hdr", sinograms, layout, duration_s=180.0)
    back = read_interfile_sinograms(path)
    assert back.layout == layout and set(back.data) == {"prompts", "randoms"}
    for name, data in sinograms.items():
        assert back.data[name].dtype == dtype
        np.testing.assert_array_equal(back.data[name], data)
    assert back.header.number("image duration (sec)") == 180.0


def test_big_endian_tof_sinogram_with_crlf_header_is_read(tmp_path):
    layout = default_layout("mct-tof")
    header = MMR_SPAN11_HEADER.replace("matrix size[1]:=344", "matrix size[1]:=400").replace(
        "matrix size[2]:=252", "matrix size[2]:=168").replace("matrix size[3]:=837", "matrix size[3]:=621")
    header = header.replace("{127,115,115,93,93,71,71,49,49,27,27}", "{109,97,97,75,75,53,53,31,31}").replace(
        "%number of segments:=11", "%number of segments:=9").replace("%maximum ring difference:=60",
                                                                     "%maximum ring difference:=49")
    header = header.replace("%total number of sinograms:=837", "%total number of sinograms:=621\r\n"
                            "%number of TOF time bins:=13")
    layout_read = layout_from_header(parse_interfile(header, "tof.s.hdr"))
    assert layout_read == layout


def test_a_sinogram_through_interfile_reconstructs_to_the_same_volume(tmp_path):
    from petrecon.projectors.sinogram import SinogramProjector
    from petrecon.recon import OsemProtocol, osem

    layout = default_layout("test")
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    projector = SinogramProjector(layout, grid)
    truth = np.zeros(grid.shape, np.float32)
    truth[20:40, 25:45, 3:12] = 1.0
    prompts = np.random.default_rng(0).poisson(projector.forward(truth)).astype(np.int16)
    path = write_interfile_sinograms(tmp_path / "p.s.hdr", {"prompts": prompts}, layout)
    back = read_interfile_sinograms(path).data["prompts"]
    protocol = OsemProtocol(n_iterations=1, n_subsets=4, post_filter_fwhm_mm=0.0)
    direct = osem(prompts.astype(np.float32), projector, protocol=protocol)
    through_file = osem(back.astype(np.float32), projector, protocol=protocol)
    np.testing.assert_array_equal(through_file, direct)


def test_image_round_trip_keeps_grid_and_values(tmp_path):
    grid = ImageGrid((5, 4, 3), (2.0, 2.5, 3.0), (-4.0, 1.0, 2.5))
    volume = Volume(np.random.default_rng(1).random(grid.shape, dtype=np.float32), grid, {"units": "Bq/ml"})
    back = read_interfile_image(write_interfile_image(tmp_path / "img.v.hdr", volume))
    assert back.grid == grid and back.metadata["units"] == "Bq/ml"
    np.testing.assert_array_equal(back.data, volume.data)
    # the file is x fastest: the first values are voxels (0..4, 0, 0)
    raw = np.fromfile(tmp_path / "img.v", "<f4")
    np.testing.assert_array_equal(raw[:5], volume.data[:, 0, 0])


def test_main_header_lists_data_sets_inside_its_folder(tmp_path):
    layout = default_layout("test")
    write_interfile_sinograms(tmp_path / "s.s.hdr", {"prompts": np.zeros(layout.shape, np.float32)}, layout)
    main = write_main_header(tmp_path / "study.mhdr", [("sinogram", "s.s.hdr")])
    ((kind, header),) = read_main_header(main)
    assert kind == "sinogram" and header == (tmp_path / "s.s.hdr").resolve()
    main.write_text(main.read_text().replace("s.s.hdr", "../elsewhere/s.s.hdr"))
    with pytest.raises(FormatError, match="leaves"):
        read_main_header(main)


def test_wrong_sizes_and_escaping_data_files_are_refused(tmp_path):
    layout = default_layout("test")
    path = write_interfile_sinograms(tmp_path / "s.s.hdr", {"prompts": np.zeros(layout.shape, np.int16)}, layout)
    data = tmp_path / "s.s"
    data.write_bytes(data.read_bytes()[:-2])
    with pytest.raises(FormatError, match="s.s: size"):
        read_interfile_sinograms(path)
    for name in ("../outside.s", "/etc/passwd", "C:\\data\\s.s"):
        (tmp_path / "bad.s.hdr").write_text(path.read_text().replace("name of data file := s.s",
                                                                     f"name of data file := {name}"))
        with pytest.raises(FormatError, match="name of data file"):
            read_interfile_sinograms(tmp_path / "bad.s.hdr")
    with pytest.raises(FormatError, match="does not exist"):
        read_header(tmp_path / "nothing.hdr")
    (tmp_path / "packed.s.hdr").write_text(path.read_text().replace("!END OF INTERFILE", "%compression := on\n!END"))
    with pytest.raises(FormatError, match="compression"):
        read_interfile_sinograms(tmp_path / "packed.s.hdr")
    with pytest.raises(PetreconError, match="exists"):
        write_interfile_sinograms(path, {"prompts": np.zeros(layout.shape, np.int16)}, layout)
