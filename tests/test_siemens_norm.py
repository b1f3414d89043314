"""Siemens component normalisation: the reader's validation, and the expansion against NiftyPET's arithmetic.

The reference below is written directly from NiftyPET/NIPET (``mmraux.axial_lut``
for ``sn1_rno``/``sn1_sn11``/``sn1_sn11no``, ``resources.py`` for ``minrd``/``maxrd``,
``s2cF`` of ``transaxial_lut``, and the kernel ``dev_norm`` of ``src/norm.cu``),
indexed by Siemens (sinogram, view, bin); it uses nothing of petrecon's geometry.
"""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.errors import FormatError, ParameterError
from petrecon.geometry import default_layout, get_scanner
from petrecon.io.siemens_norm import expected_shapes, read_component_normalisation, write_component_normalisation
from petrecon.recon.corrections.component_norm import bin_efficiencies, mean_pair_efficiencies

MMR = get_scanner("mmr")
VIEWS = np.array([0, 1, 8, 125, 251])  # views 0 and 1 hit different interference columns; 251 wraps crystals
#: float32 products of six factors, summed over up to 6 ring pairs (float64 on both sides): ~1e-6 relative.
RTOL = 1e-4


# ------------------------------------------------------------------------------ NiftyPET reference
def _niftypet_axial_lut(n_rings=64, max_rd=60):
    """``sn1_rno``, ``sn1_sn11``, ``sn1_sn11no`` as NiftyPET's ``axial_lut`` builds them (span 11)."""
    minrd = [-5, -16, 6, -27, 17, -38, 28, -49, 39, -60, 50]
    maxrd = [5, -6, 16, -17, 27, -28, 38, -39, 49, -50, 60]
    segment = -np.ones((n_rings, n_rings), int)   # indexed [r1, r0], ring difference r1 - r0
    ssrb = -np.ones((n_rings, n_rings), int)
    for r1 in range(n_rings):
        for r0 in range(n_rings):
            if abs(r1 - r0) <= max_rd:
                segment[r1, r0] = next(i for i in range(11) if minrd[i] <= r1 - r0 <= maxrd[i])
                ssrb[r1, r0] = r0 + r1
    msn, mnos, index = -np.ones_like(segment), -np.ones_like(segment), 0
    for iseg in range(11):
        mask = segment == iseg
        for value in np.unique(ssrb[mask]):
            chosen = mask & (ssrb == value)
            msn[chosen], mnos[chosen] = index, chosen.sum()
            index += 1
    rno, sn11, sn11no = [], [], []
    for ro in range(n_rings):
        for m in range(1 if ro == 0 else 2):
            for li in range(n_rings * ro, n_rings * n_rings, n_rings + 1):
                if m == 0:
                    r1 = li // n_rings
                    r0 = li - r1 * n_rings
                else:
                    r0 = li // n_rings
                    r1 = li - r0 * n_rings
                if msn[r1, r0] < 0:
                    continue
                rno.append((r0, r1))
                sn11.append(msn[r0, r1])
                sn11no.append(mnos[r0, r1])
    return np.array(rno), np.array(sn11), np.array(sn11no)


def _niftypet_norm(components, views, span, singles=None, axf1=None):
    """``dev_norm`` of ``norm.cu`` (and ``pgaps``: gap bins 0) for the selected views; shape (sinos, views, 344)."""
    rno, sn11, sn11no = _niftypet_axial_lut()
    n_crs, w = 504, 344
    ia = views[:, None].astype(np.float64)
    wi = np.arange(w)[None, :]
    c1 = np.floor(np.fmod(ia + 0.5 * (n_crs - 2 + w // 2 - wi), n_crs)).astype(int)
    c2 = np.floor(np.fmod(ia + 0.5 * (2 * n_crs - 2 - w // 2 + wi), n_crs)).astype(int)
    gap = (c1 % 9 == 8) | (c2 % 9 == 8)
    geo, cinf, ceff = components["geometric_effects"], components["crystal_interference"], \
        components["crystal_efficiencies"]
    bckts = np.zeros(224) if singles is None else singles
    dtp, dtnp = components["paralysable_dead_time"], components["non_paralysable_dead_time"]
    out = np.zeros((4084 if span == 1 else 837, views.size, w))
    for si, (r0, r1) in enumerate(rno):
        b1 = c1 // 18 + 28 * (r0 // 8)
        b2 = c2 // 18 + 28 * (r1 // 8)
        dt1 = np.exp(0.5 * bckts[b1] * dtp[r0] / (1 + 0.5 * bckts[b1] * dtnp[r0])) / (1 + 0.5 * bckts[b1] * dtnp[r0])
        dt2 = np.exp(0.5 * bckts[b2] * dtp[r1] / (1 + 0.5 * bckts[b2] * dtnp[r1])) / (1 + 0.5 * bckts[b2] * dtnp[r1])
        factor = geo[0][wi] * cinf[wi, views[:, None] % 9] * ceff[r0, c1] * ceff[r1, c2] * dt1 * dt2
        if span == 1:
            out[si] = factor * axf1[si] / components["axial_effects"][sn11[si]]
        else:
            out[sn11[si]] += factor / (components["axial_effects"][sn11[si]] * sn11no[si])
    out[:, gap] = 0.0
    return out


# ------------------------------------------------------------------------------ fixtures
def _random_components(rng, scanner=MMR, n_bins=344, span=11, max_rd=60):
    shapes = expected_shapes(scanner, n_bins, span, max_rd)
    components = {name: rng.uniform(0.5, 1.5, shape).astype(np.float32) for name, shape in shapes.items()}
    components["paralysable_dead_time"] = rng.uniform(-2e-6, 2e-6, shapes["paralysable_dead_time"]).astype(np.float32)
    components["non_paralysable_dead_time"] = rng.uniform(0, 4e-6, shapes["paralysable_dead_time"]).astype(np.float32)
    return components


@pytest.fixture(scope="module")
def mmr_file(tmp_path_factory):
    rng = np.random.default_rng(17)
    components = _random_components(rng)
    header = write_component_normalisation(tmp_path_factory.mktemp("norm") / "mmr.n.hdr", components, MMR,
                                           native_span=11, native_max_ring_difference=60,
                                           quantification_factor=0.0123)
    return header, components


def test_reader_returns_the_components_written_in_the_scanners_layout(mmr_file):
    header, components = mmr_file
    norm = read_component_normalisation(header)
    assert norm.scanner.name == "mmr" and norm.native_layout().n_sinograms == 837
    assert norm.quantification_factor == pytest.approx(0.0123, rel=1e-9)
    for name, array in components.items():
        np.testing.assert_array_equal(norm[name], array)
    # the scanner's byte offsets (a real mMR header: 0, 174752, 187136, 316160, 319508, 319764, 320020, 320056)
    offsets = [norm.header.integer("data offset in bytes", i) for i in range(1, 9)]
    assert offsets == [0, 174752, 187136, 316160, 319508, 319764, 320020, 320056]


def test_span11_expansion_equals_niftypet_bin_for_bin_gaps_included(mmr_file):
    header, components = mmr_file
    norm = read_component_normalisation(header)
    singles = np.random.default_rng(3).uniform(1e4, 1e5, 224)
    ours = mean_pair_efficiencies(norm, default_layout("mmr"), views=VIEWS,
                                  bucket_singles_per_s=dict(enumerate(singles)))
    reference = _niftypet_norm(components, VIEWS, 11, singles=singles)
    assert (reference == 0).sum() > 0 and np.array_equal(ours == 0, reference == 0)  # gap bins where NiftyPET's are
    np.testing.assert_allclose(ours, reference, rtol=RTOL, atol=0)


def test_span1_expansion_with_span1_axial_factors_equals_niftypet(mmr_file):
    header, components = mmr_file
    norm = read_component_normalisation(header)
    axf1 = np.random.default_rng(5).uniform(0.8, 1.2, 4084)
    layout = default_layout("mmr", span=1)
    ours = bin_efficiencies(norm, layout, views=VIEWS, span1_axial_factors=axf1)
    np.testing.assert_allclose(ours, _niftypet_norm(components, VIEWS, 1, axf1=axf1), rtol=RTOL, atol=0)


def test_span1_without_span1_axial_factors_is_refused(mmr_file):
    norm = read_component_normalisation(mmr_file[0])
    with pytest.raises(ParameterError, match="span-1 axial factors"):
        bin_efficiencies(norm, default_layout("mmr", span=1), views=[0])


def test_bin_efficiency_is_mean_pair_efficiency_times_crystal_pairs_and_mashing_sums_views(mmr_file):
    norm = read_component_normalisation(mmr_file[0])
    layout = default_layout("mmr")
    mean = mean_pair_efficiencies(norm, layout, views=[0])
    pairs = np.array([len(p) for p in layout.ring_pairs()])
    np.testing.assert_allclose(bin_efficiencies(norm, layout, views=[0]), mean * pairs[:, None, None], rtol=1e-6)
    import dataclasses

    mashed = dataclasses.replace(layout, view_mashing=2)
    np.testing.assert_allclose(bin_efficiencies(norm, mashed, views=[0])[:, 0],
                               bin_efficiencies(norm, layout, views=[0, 1]).sum(axis=1), rtol=1e-6)


# ------------------------------------------------------------------------------ bad files
def _edit(header, old, new):
    text = header.read_text()
    assert old in text, old
    header.write_text(text.replace(old, new))


@pytest.fixture()
def small_file(tmp_path):
    layout = default_layout("test")
    components = _random_components(np.random.default_rng(1), layout.scanner, 64, 3, 7)
    return write_component_normalisation(tmp_path / "t.n.hdr", components, layout.scanner, native_span=3,
                                         native_max_ring_difference=7)


@pytest.mark.parametrize("old, new, key", [
    ("%matrix size [1] := {64,15}", "%matrix size [1] := {63,15}", "matrix size[1]"),
    ("%number of normalization components := 8", "%number of normalization components := 3",
     "normalization component"),
    ("%normalization component [3] := crystal efficiencies", "%normalization component [3] := flux capacitor",
     "normalization component[3]"),
    ("data offset in bytes [2] := 3840", "data offset in bytes [2] := 3000", "data offset in bytes[2]"),
    ("number format := float", "number format := signed integer", "number format"),
    ("%axial compression := 3", "%axial compression := 4", "axial compression"),
    ("number of dimensions [1] := 2", "number of dimensions [1] := 3", "number of dimensions[1]"),
])
def test_bad_headers_give_one_line_errors_naming_file_and_key(small_file, old, new, key):
    _edit(small_file, old, new)
    with pytest.raises(FormatError) as caught:
        read_component_normalisation(small_file)
    assert caught.value.field == key and str(small_file) in str(caught.value) and "\n" not in str(caught.value)


def test_truncated_data_and_wrong_scanner_are_named(small_file):
    data = small_file.with_name("t.n")
    data.write_bytes(data.read_bytes()[:-4])
    with pytest.raises(FormatError, match="t.n.hdr: data offset in bytes"):
        read_component_normalisation(small_file)
    data.write_bytes(data.read_bytes() + b"\0\0\0\0\0\0\0\0")
    with pytest.raises(FormatError, match="t.n: size"):
        read_component_normalisation(small_file)


def test_a_file_of_another_scanner_is_refused(mmr_file):
    with pytest.raises(FormatError, match="wrong scanner"):
        read_component_normalisation(mmr_file[0], scanner="mct")


def test_norm_command_expands_a_component_file_for_inspection(small_file, tmp_path, capsys):
    from petrecon.cli import main
    from petrecon.io import read_container

    norm = read_component_normalisation(small_file)
    assert main(["norm", str(small_file), "--out", str(tmp_path / "n3.h5")]) == 0
    stored = read_container(tmp_path / "n3.h5")
    np.testing.assert_array_equal(stored.sinograms["normalisation"], bin_efficiencies(norm, default_layout("test")))
    assert stored.provenance["inputs"][0]["path"] == str(small_file)
    factors = np.random.default_rng(2).uniform(0.9, 1.1, default_layout("test", span=1).n_sinograms)
    np.save(tmp_path / "axf1.npy", factors)
    assert main(["norm", str(small_file), "--span", "1", "--span1-axial-factors", str(tmp_path / "axf1.npy"),
                 "--out", str(tmp_path / "n1.h5")]) == 0
    span1 = read_container(tmp_path / "n1.h5")
    assert span1.layout.span == 1 and "gap bins" in capsys.readouterr().out
    assert main(["norm", str(small_file), "--span", "1", "--out", str(tmp_path / "bad.h5")]) == 2
    assert "span-1 axial factors" in capsys.readouterr().err


def test_simulated_export_reconstructs_the_true_activity_without_calibration(tmp_path):
    """List-mode and the scanner's component normalisation in an export folder, no --calibration: the central
    mean of a uniform cylinder is the true concentration within 2 % (measured +0.03 %; without the
    normalisation, -7.5 %: test scanner, 20 s, 4 x 8 OSEM, no scatter)."""
    import importlib.util
    from pathlib import Path

    from petrecon.cli import main
    from petrecon.io import read_container, write_container
    from petrecon.recon.corrections.calibration import central_cylinder_mean
    from petrecon.simulate import simulate_study
    from petrecon.simulate.phantom import phantom_from_dict
    from petrecon.simulate.siemens_export import write_simulated_component_norm
    from petrecon.volume import ImageGrid

    spec = importlib.util.spec_from_file_location("petrecon_tests_io_siemens", Path(__file__).with_name("test_io_siemens.py"))
    wrappers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wrappers)
    cylinder = {"regions": [{"activity": 5000.0, "material": "water", "shapes": [
        {"type": "cylinder", "centre_mm": [0.0, 0.0, 0.0], "radius_mm": 60.0, "length_mm": 200.0}]}]}
    grid = ImageGrid.centred((32, 32, 15), (6.0, 6.0, 2.0))
    study = simulate_study(phantom_from_dict(cylinder), scanner="test", isotope="F18", duration_s=20.0, seed=3,
                           injected_activity_bq=2e7, listmode=True, grid=grid, supersampling=1, progress=False,
                           scatter=False)
    write_container(tmp_path / "study.h5", study.container)
    header = write_simulated_component_norm(study.container, tmp_path / "scan.n.hdr")
    export = tmp_path / "export"
    export.mkdir()
    wrappers._wrap(export / "lm.dcm", "!INTERFILE:=\nname of data file:=scan.l\n", study.listmode_words.tobytes())
    wrappers._wrap(export / "norm.dcm", header.read_text(), (tmp_path / "scan.n").read_bytes())
    (tmp_path / "p.toml").write_text("[osem]\nn_iterations = 4\nn_subsets = 8\n[image]\nshape = [32, 32, 15]\n"
                                     "voxel_size_mm = [6.0, 6.0, 2.0]\n")
    assert main(["recon", str(export), "--scanner", "test", "--protocol", str(tmp_path / "p.toml"), "--isotope", "F18",
                 "--mumap", str(tmp_path / "study.h5"), "--no", "scatter", "--quiet", "--out",
                 str(tmp_path / "r.h5")]) == 0
    volume = read_container(tmp_path / "r.h5").volumes["activity_bq_per_ml"]
    truth = central_cylinder_mean(study.container.volumes["activity_bq_per_ml"], 60.0, 200.0)
    # central 80 % of the radius, the axial centre (15 planes of 2 mm): away from the partial-volume edges
    assert central_cylinder_mean(volume, 60.0, 30.0) == pytest.approx(truth, rel=0.02)
