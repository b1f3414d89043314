"""The mMR's own mu-maps: its mu-map series (mu x 10000), hardware mu-maps placed by the bed position, CSA headers.

The placement reference below is written from NiftyPET/NIPET (``img/mmrimg.py``
``hmu_origin``, ``hmu_offset``, ``get_hmupos``: ``vpos = -org*vs + off + gto - tpo``
in (z, y, x) cm with the z entries of the origin and offset negated;
``mmraux.hmu_resample0``: source z ``-vpos_z + k vs_z`` against output z
``-hbed + ...``); it uses nothing of petrecon's placement.
"""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.attenuation.mumap import add_hardware_mu_maps
from petrecon.errors import FormatError, ParameterError
from petrecon.io.dicom import read_scanner_mu_map_series
from petrecon.io.hardware_mumap import TablePlacement, read_hardware_mu_map, write_hardware_mu_map
from petrecon.io.siemens_csa import read_csa, write_csa
from petrecon.simulate.siemens_export import write_mu_map_series
from petrecon.volume import ImageGrid, Volume

PLACEMENT = TablePlacement(-812.5, (1.5, -2.0, -1260.0), (0.5, 3.0, 1250.0))
HEADER = """!INTERFILE :=
!name of data file := umap_PT_1.v
number format := float
number of bytes per pixel := 4
matrix size [1] := 5
matrix size [2] := 4
matrix size [3] := 3
scale factor (mm/pixel) [1] := 2.5
scale factor (mm/pixel) [2] := 2.0
scale factor (mm/pixel) [3] := 4.0
$umap origin (pixels) [1] := 2.0
$umap origin (pixels) [2] := -30.5
$umap origin (pixels) [3] := 100.25
$origin offset (mm) [1] := 0.7
$origin offset (mm) [2] := -1.1
$origin offset (mm) [3] := 12.0
!END OF INTERFILE :=
"""


def _niftypet_centres_mm(header_values, placement: TablePlacement, index):
    """Gantry centre (mm) of file voxel ``index`` (i, j, k) by NiftyPET's arithmetic, in its cm and (z, y, x) order."""
    (o1, o2, o3), (f1, f2, f3), (v1, v2, v3) = header_values
    org = np.array([-o3, o2, o1])                       # hmu_origin
    off = 0.1 * np.array([-f3, f2, f1])                 # hmu_offset (cm)
    vs = 0.1 * np.array([v3, v2, v1])                   # hmu_voxsize (cm)
    gto = 0.1 * np.array(placement.gantry_table_home_offset_mm)[::-1]
    tpo = 0.1 * np.array(placement.table_position_origin_mm)[::-1]
    hbed = 0.1 * placement.bed_position_mm
    vpos = -org * vs + off + gto - tpo                  # get_hmupos: corner voxel position
    i, j, k = index
    # hmu_resample0: OFFOx = vpos_x, OFFOy = vpos_y, OFFOz = -vpos_z, output z offset -hbed (without NiftyPET's
    # half-voxel grid offset, which petrecon does not copy)
    return 10 * np.array([vpos[2] + i * vs[2], vpos[1] + j * vs[1], -vpos[0] + k * vs[0] + hbed])


@pytest.fixture
def hardware_file(tmp_path):
    data = np.arange(60, dtype="<f4").reshape(3, 4, 5) / 600.0  # (z, y, x) in the file: x fastest
    (tmp_path / "umap_PT_1.v").write_bytes(data.tobytes())
    (tmp_path / "umap_PT_1.v.hdr").write_text(HEADER)
    return tmp_path / "umap_PT_1.v.hdr", data


def test_hardware_voxels_land_where_niftypets_arithmetic_puts_them(hardware_file):
    path, data = hardware_file
    part = read_hardware_mu_map(path)
    volume = part.in_gantry(PLACEMENT)
    values = ((2.0, -30.5, 100.25), (0.7, -1.1, 12.0), (2.5, 2.0, 4.0))
    for index in [(0, 0, 0), (4, 3, 2), (1, 2, 1)]:
        centre = np.asarray(volume.grid.origin_mm) + np.asarray(index) * np.asarray(volume.grid.voxel_size_mm)
        assert centre == pytest.approx(_niftypet_centres_mm(values, PLACEMENT, index), abs=1e-9)
        assert volume.data[index] == data[index[2], index[1], index[0]]
    moved = part.in_gantry(TablePlacement(-612.5, PLACEMENT.table_position_origin_mm,
                                          PLACEMENT.gantry_table_home_offset_mm))
    assert moved.grid.origin_mm[2] - volume.grid.origin_mm[2] == pytest.approx(200.0)  # rides with the bed


@pytest.mark.parametrize("old, new, key", [
    ("$umap origin (pixels) [2] := -30.5\n", "", "$umap origin (pixels)[2]"),
    ("$umap origin (pixels) [3] := 100.25", "$umap origin (pixels) [3] := top", "$umap origin (pixels)[3]"),
    ("$origin offset (mm) [2] := -1.1\n", "", "$origin offset (mm)"),
    ("matrix size [3] := 3", "matrix size [3] := 4", "size"),
    ("number format := float", "number format := ascii", "number format"),
])
def test_bad_hardware_headers_are_one_line_errors_naming_file_and_key(hardware_file, old, new, key):
    path, _ = hardware_file
    path.write_text(HEADER.replace(old, new))
    with pytest.raises(FormatError) as error:
        read_hardware_mu_map(path)
    assert key in str(error.value) and "umap_PT_1.v" in str(error.value) and "\n" not in str(error.value)


def test_hardware_values_that_are_not_mu_are_refused(hardware_file):
    path, data = hardware_file
    (path.parent / "umap_PT_1.v").write_bytes((data * 100).tobytes())  # 9.8 "cm^-1": not mu
    with pytest.raises(FormatError, match="not mu in cm"):
        read_hardware_mu_map(path)


def test_written_hardware_file_reads_back_onto_its_grid(tmp_path):
    grid = ImageGrid((6, 3, 4), (2.0, 2.0, 4.0), (-5.0, 66.0, -70.0))
    volume = Volume(np.random.default_rng(1).random(grid.shape, np.float32) * 0.1, grid)
    path = write_hardware_mu_map(tmp_path / "umap_SPMC_1.v.hdr", volume, PLACEMENT, origin_offset_mm=(1.0, 2.0, 3.0))
    back = read_hardware_mu_map(path).in_gantry(PLACEMENT)
    assert back.grid == grid and np.array_equal(back.data, volume.data)


def test_scanner_mu_map_series_is_mu_times_ten_thousand_placed_by_the_bed_position(tmp_path):
    grid = ImageGrid((8, 6, 5), (3.0, 3.0, 4.0), (-10.5, -7.5, -8.0))
    mu = Volume(np.round(np.random.default_rng(2).random(grid.shape) * 0.1, 4).astype(np.float32), grid)
    write_mu_map_series(tmp_path / "umap", mu, "HFS", -812.5, (0.0, 0.0, 1250.0))
    back = read_scanner_mu_map_series(tmp_path / "umap", bed_position_mm=-812.5)
    assert back.grid == grid
    assert np.allclose(back.data, mu.data, atol=0.5e-4)  # int16 of mu x 1e4: half a step
    assert back.metadata["gantry_table_home_offset_mm"] == [0.0, 0.0, 1250.0]
    elsewhere = read_scanner_mu_map_series(tmp_path / "umap", bed_position_mm=-612.5)
    assert elsewhere.grid.origin_mm[2] == pytest.approx(grid.origin_mm[2] + 200.0)  # z = h - S for HFS


def test_an_mr_image_given_as_the_scanner_mu_map_is_refused(write_dicom_series, tmp_path):
    planes = np.full((3, 4, 4), 31000, np.int16)  # MR signal: 3.1 "cm^-1" after / 10000, beyond lead
    write_dicom_series(tmp_path / "mr", "MR", planes, [(0.0, 0.0, 4.0 * k) for k in range(3)], (1, 0, 0, 0, 1, 0),
                       (2.0, 2.0))
    with pytest.raises(FormatError, match="PixelData.*not the scanner's mu-map"):
        read_scanner_mu_map_series(tmp_path / "mr")


def test_csa_headers_round_trip_and_truncation_is_named():
    blob = write_csa({"GantryTableHomeOffset": ["0.000000", "-3.5", "1250.0"], "Empty": []})
    assert read_csa(blob, "mu.dcm") == {"GantryTableHomeOffset": ["0.000000", "-3.5", "1250.0"], "Empty": []}
    with pytest.raises(FormatError, match=r"mu\.dcm.*\(0029,1020\)"):
        read_csa(blob[:120], "mu.dcm")
    with pytest.raises(FormatError, match="CSA1"):
        read_csa(b"\x01\x00\x00\x00" + blob[4:], "mu.dcm")


def test_hardware_is_not_added_to_a_ct_mu_map_nor_twice(hardware_file):
    path, _ = hardware_file
    grid = ImageGrid.centred((4, 4, 4), (50.0, 50.0, 50.0))
    with pytest.raises(ParameterError, match="CT"):
        add_hardware_mu_maps(Volume(np.zeros(grid.shape, np.float32), grid, {"source": "ct"}), [path], PLACEMENT)
    once = add_hardware_mu_maps(Volume(np.zeros(grid.shape, np.float32), grid, {"source": "scanner"}), [path],
                                PLACEMENT)
    with pytest.raises(ParameterError, match="already holds"):
        add_hardware_mu_maps(once, [path], PLACEMENT)


def test_simulated_mmr_export_with_hardware_mu_map_reconstructs_the_true_activity(tmp_path):
    """List-mode, component norm, the scanner's mu-map series and a hardware table in an export folder, no
    --calibration: a uniform cylinder on an 18 mm PMMA table reads the true concentration within 2 % with the
    hardware mu-map (measured +0.23 %) and is measurably wrong without it (measured -10.5 %): test scanner, bed
    position -812.5 mm, 20 s, 4 x 8 OSEM, no scatter."""
    from petrecon.cli import main
    from petrecon.io import read_container
    from petrecon.recon.corrections.calibration import central_cylinder_mean
    from petrecon.simulate import simulate_study
    from petrecon.simulate.phantom import phantom_from_dict
    from petrecon.simulate.siemens_export import write_simulated_export

    bed = -812.5
    phantom = phantom_from_dict({"regions": [
        {"name": "cylinder", "activity": 5000.0, "material": "water", "shapes": [
            {"type": "cylinder", "centre_mm": [0.0, 0.0, bed], "radius_mm": 60.0, "length_mm": 200.0}]},
        {"name": "table", "activity": 0.0, "material": "pmma", "shapes": [  # under the cylinder: +P for HFS
            {"type": "box", "centre_mm": [0.0, 75.0, bed], "size_mm": [160.0, 18.0, 600.0]}]}]})
    grid = ImageGrid.centred((32, 32, 15), (6.0, 6.0, 2.0))
    study = simulate_study(phantom, scanner="test", isotope="F18", duration_s=20.0, seed=3, injected_activity_bq=2e7,
                           listmode=True, grid=grid, supersampling=1, progress=False, scatter=False,
                           bed_position_mm=bed)
    export = write_simulated_export(study, phantom, tmp_path / "export", hardware_regions=("table",),
                                    mu_grid=ImageGrid.centred((64, 64, 40), (3.0, 3.0, 4.0)))
    (tmp_path / "p.toml").write_text("[osem]\nn_iterations = 4\nn_subsets = 8\n[image]\nshape = [32, 32, 15]\n"
                                     "voxel_size_mm = [6.0, 6.0, 2.0]\n")
    truth = central_cylinder_mean(study.container.volumes["activity_bq_per_ml"], 60.0, 200.0)
    errors = {}
    for name, hardware in (("with", ["--hardware-mumap", str(export.hardware[0])]), ("without", [])):
        assert main(["recon", str(export.folder), "--protocol", str(tmp_path / "p.toml"), "--mumap-scanner",
                     str(export.mu_map_series), *hardware, "--no", "scatter", "--quiet",
                     "--out", str(tmp_path / f"{name}.h5")]) == 0
        volume = read_container(tmp_path / f"{name}.h5").volumes["activity_bq_per_ml"]
        errors[name] = central_cylinder_mean(volume, 60.0, 30.0) / truth - 1.0
    assert abs(errors["with"]) < 0.02  # central 80 % of the radius, axial centre: away from partial volume
    assert errors["without"] < -0.05  # the table's attenuation, uncorrected (-10.5 % measured)


def test_mumap_command_adds_the_hardware_to_the_scanner_mu_map(tmp_path, capsys):
    from petrecon.cli import main
    from petrecon.io import read_container

    grid = ImageGrid.centred((20, 20, 6), (6.0, 6.0, 6.0))
    patient = np.where(np.hypot(*np.meshgrid(*(np.arange(20) - 9.5,) * 2, indexing="ij")) < 6, 0.096, 0.0)
    write_mu_map_series(tmp_path / "umap", Volume(np.repeat(patient[:, :, None], 6, 2).astype(np.float32), grid),
                        "HFS", -812.5, PLACEMENT.gantry_table_home_offset_mm)
    table_grid = ImageGrid((30, 3, 20), (4.0, 4.0, 4.0), (-58.0, 70.0, -38.0))
    table = write_hardware_mu_map(tmp_path / "umap_PT_1.v.hdr",
                                  Volume(np.full(table_grid.shape, 0.1, np.float32), table_grid), PLACEMENT)
    command = ["mumap", "--scanner-mumap", str(tmp_path / "umap"), "--scanner", "test", "--bed-position-mm",
               "-812.5", "--hardware-mumap", str(table), "--out", str(tmp_path / "mu.h5")]
    assert main(command) == 2  # the series records the gantry table offset, but nothing gives the table origin
    assert "--table-origin-mm" in capsys.readouterr().err
    assert main([*command, "--table-origin-mm", *map(str, PLACEMENT.table_position_origin_mm)]) == 0
    mu = read_container(tmp_path / "mu.h5").volumes["mu_per_cm"]
    assert mu.metadata["hardware_mu_maps"] == [str(table)]
    centre = np.array(mu.grid.shape) // 2
    assert mu.data[tuple(centre)] == pytest.approx(0.096, abs=1e-4)  # the patient, from mu x 10000
    row = int(round((76.0 - mu.grid.origin_mm[1]) / mu.grid.voxel_size_mm[1]))  # inside the table (y 68 .. 80 mm)
    assert mu.data[centre[0], row, centre[2]] == pytest.approx(0.1, abs=1e-3)
