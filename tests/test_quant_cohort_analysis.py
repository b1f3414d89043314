"""``petrecon cohort`` on a synthetic PET/CT + PET/MR quantification table whose answers are set by construction."""

import csv
import json
from pathlib import Path

import pytest

from petrecon.cli import EXIT_BAD_INPUT, main
from petrecon.quant.cohort_analysis import CohortOptions, analyse_table
from petrecon.quant.cohort_table import QUANTIFICATION_COLUMNS, read_table, read_truth

PATIENTS = ["P1", "P2", "P3", "P4", "P5", "P6"]
TREATED = dict(zip(PATIENTS, ["yes", "yes", "yes", "no", "no", "no"]))
UPTAKE_MIN = dict(zip(PATIENTS, [60, 62, 65, 70, 75, 80]))
# VOI -> (kind, tissue, true SUV)
TRUTH = {"liver": ("organ", "soft tissue", 2.0), "spleen": ("organ", "soft tissue", 3.0),
         "bone-marrow": ("organ", "bone", 2.5), "lung_nodule": ("lesion", "lung", 6.0)}
# per-patient recovery on the PET/CT (mean 1.0) and the PET/MR factor per tissue: the Dixon mu-map has no bone
B64_RECOVERY = dict(zip(PATIENTS, [1.00, 0.98, 1.02, 0.99, 1.01, 1.00]))
MMR_FACTOR = {"soft tissue": 1.0, "bone": 0.85, "lung": 1.05}


def _row(patient, scanner, protocol, voi, value, status="ok"):
    kind, _, _ = TRUTH[voi]
    cells = {c: "" for c in QUANTIFICATION_COLUMNS}
    cells |= {"study": f"{patient}-{scanner}", "patient": patient, "scanner": scanner, "protocol": protocol,
              "voi": voi, "kind": kind, "units": "SUVbw", "status": status,
              "suv_max": "" if value is None else f"{value:.6f}", "reference": "liver"}
    return cells | {"treated": TREATED[patient], "uptake_min": UPTAKE_MIN[patient]}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    rows = []
    for patient in PATIENTS:
        for voi, (_, tissue, true_suv) in TRUTH.items():
            b64 = true_suv * B64_RECOVERY[patient]
            rows.append(_row(patient, "b64", "clinical", voi, b64))
            if (patient, voi) == ("P6", "lung_nodule"):
                rows.append(_row(patient, "mmr", "clinical", voi, None, "too-small"))
            else:
                rows.append(_row(patient, "mmr", "clinical", voi, b64 * MMR_FACTOR[tissue]))
            rows.append(_row(patient, "b64", "earl1", voi, 0.9 * b64))
    rows.append(_row("P6", "mmr", "clinical", "liver", None, "failed") | {"study": "P6-mmr-repeat"})
    table = folder / "quantification.csv"
    with table.open("w", newline="") as f:
        writer = csv.DictWriter(f, [*QUANTIFICATION_COLUMNS, "treated", "uptake_min"])
        writer.writeheader()
        writer.writerows(rows)
    truth = folder / "truth.csv"
    with truth.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["patient", "voi", "kind", "true_suv", "diameter_mm", "tissue"])
        writer.writerows([p, voi, kind, suv, 20, tissue]
                         for p in PATIENTS for voi, (kind, tissue, suv) in TRUTH.items())
    return table, truth


@pytest.fixture(scope="module")
def analysed(study):
    table, truth = study
    options = CohortOptions(protocols=("clinical",), pair="scanner", group="treated",
                            correlate=("uptake_min:suv_max",))
    return analyse_table(read_table(table), options, read_truth(truth))


def _tests(result, test, voi, estimate=None):
    return [r for r in result.tests if r["test"] == test and r.get("voi") == voi
            and (estimate is None or r["estimate"] == estimate)]


def test_excluded_rows_are_counted_not_dropped(analysed):
    # the too-small nodule and the failed study of the clinical protocol; earl1 rows are deselected
    assert sum(r["n"] for r in analysed.excluded) == 2
    assert any("2 row(s) excluded (status not ok): 1 too-small, 1 failed" in n for n in analysed.notes)
    assert analysed.rows_used == 6 * 4 * 2 - 1


def test_summary_per_scanner_protocol_and_voi_with_truth(analysed):
    liver = next(r for r in analysed.summary if r["voi"] == "liver" and r["scanner"] == "b64")
    assert liver["n"] == 6 and liver["protocol"] == "clinical"
    # b64 values are 2.0 x the recoveries: mean recovery exactly 1.0
    assert liver["mean"] == pytest.approx(2.0) and liver["measured_over_true"] == pytest.approx(1.0)
    assert liver["min"] == pytest.approx(2.0 * 0.98) and liver["max"] == pytest.approx(2.0 * 1.02)


def test_pet_mr_bone_is_fifteen_percent_low_against_the_truth(analysed):
    by_tissue = {r["tissue"]: r for r in analysed.truth_differences}
    # by construction: mmr = b64 x 0.85 in bone, x 1.05 in the lung nodule, equal in soft tissue
    assert by_tissue["bone"]["percent_mmr_vs_b64"] == pytest.approx(-15.0)
    assert by_tissue["bone"]["mmr_over_true"] == pytest.approx(0.85)
    assert by_tissue["lung"]["percent_mmr_vs_b64"] == pytest.approx(5.0) and by_tissue["lung"]["n"] == 5
    assert by_tissue["soft tissue"]["percent_mmr_vs_b64"] == pytest.approx(0.0, abs=1e-9)
    assert by_tissue["soft tissue"]["n"] == 12  # liver and spleen of 6 patients
    bone = [r for r in analysed.truth if r["tissue"] == "bone"]
    assert {r["scanner"]: round(r["measured_over_true"], 9) for r in bone} == {"b64": 1.0, "mmr": 0.85}


def test_paired_scanner_comparison_per_voi(analysed):
    (marrow,) = _tests(analysed, "mean % difference", "bone-marrow")
    assert marrow["value"] == pytest.approx(-15.0) and marrow["n"] == "6"
    (wilcoxon,) = _tests(analysed, "Wilcoxon signed-rank", "bone-marrow")
    # six negative differences of distinct size: exact p = 2 / 2^6
    assert wilcoxon["p_value"] == pytest.approx(2 / 64)
    (nodule,) = _tests(analysed, "mean % difference", "lung_nodule")
    assert nodule["n"] == "5" and "1 unpaired" in nodule["note"]
    (bias,) = _tests(analysed, "Bland-Altman", "lung_nodule", "bias")
    # mmr - b64 = 0.05 x 6.0 x recovery over P1..P5: mean 0.3 x 1.0 = 0.3
    assert bias["value"] == pytest.approx(0.3)


def test_group_and_correlation_rows_carry_n_and_say_what_n_allows(analysed):
    (liver,) = [r for r in _tests(analysed, "Mann-Whitney U", "liver") if r["scanner"] == "b64"]
    assert liver["n"] == "3 vs 3" and "n = 3 vs 3: no result can reach p < 0.05" in liver["note"]
    correlations = [r for r in _tests(analysed, "Spearman", "liver") if r["comparison"] == "suv_max vs uptake_min"]
    assert {r["n"] for r in correlations} == {"6"} and {r["method"] for r in correlations} == {"exact permutation"}


def test_cohort_command_writes_tables_figures_and_index(study, tmp_path, capsys):
    table, truth = study
    out = tmp_path / "stats"
    argv = ["cohort", str(table), "--truth", str(truth), "--protocol", "clinical", "--voi", "liver,bone-marrow",
            "--pair", "scanner",
            "--group", "treated", "--correlate", "uptake_min:suv_max", "--out", str(out)]
    assert main(argv) == 0
    assert "no result can reach p < 0.05" in capsys.readouterr().out
    for name in ("pairs.png", "groups.png", "correlations.png", "truth.png"):
        data = (out / name).read_bytes()
        # a PNG with several panels of points, lines and text is tens of kB; a blank figure a few
        assert data.startswith(b"\x89PNG") and len(data) > 15_000, name
    assert {"summary.csv", "tests.csv", "truth.csv", "truth_differences.csv", "excluded.csv"} <= {
        p.name for p in out.iterdir()}
    page = (out / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "Bland-Altman" in page
    assert main(argv) == EXIT_BAD_INPUT  # outputs exist: refused without --overwrite
    assert "exists" in capsys.readouterr().err
    assert main([*argv[:-2], "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows_used"] == 6 * 2 * 2  # 6 patients x 2 VOIs x 2 scanners; the failed repeat set apart
    assert result["excluded"] == [{"status": "failed", "scanner": "mmr", "protocol": "clinical", "voi": "liver",
                                   "n": 1}]


def test_lesion_table_extra_columns_can_be_grouped(tmp_path, capsys):
    source = Path(__file__).parent / "data" / "pentixafor_lesions.csv"
    lines = source.read_text().splitlines()
    table = tmp_path / "lesions.csv"
    table.write_text("\n".join([lines[0] + ",treated"] + [f"{line},{k % 2}" for k, line in enumerate(lines[1:])]))
    assert main(["cohort", str(table), "--group", "treated", "--json"]) == 0
    tests = json.loads(capsys.readouterr().out)["tests"]
    assert {(r["tracer"], r["test"]) for r in tests} == {("FDG", "Mann-Whitney U"),
                                                         ("Ga68-pentixafor", "Mann-Whitney U")}


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("edit, argv, expected", [
    (lambda text: text.replace("voi,", "region,", 1), [], "lacks the column(s) voi"),
    (lambda text: text, ["--pair", "site"], "has no column 'site' for --pair"),
    (lambda text: text, ["--pair", "treated:yes,maybe"], "column treated: has no value 'maybe'"),
    (lambda text: text.replace("2.000000", "high", 1), ["--kind", "organ"], "row 2, column suv_max: 'high' is not"),
    (lambda text: text, ["--correlate", "uptake_min"], "X:Y"),
])
def test_bad_input_is_one_line_naming_the_file_and_column(study, tmp_path, capsys, edit, argv, expected):
    table = tmp_path / "quantification.csv"
    table.write_text(edit(study[0].read_text()))
    assert main(["cohort", str(table), *argv]) == EXIT_BAD_INPUT
    line = _one_line(capsys)
    assert expected in line
    if "X:Y" not in expected:
        assert str(table) in line
