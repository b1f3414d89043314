"""Cohort statistics: the clinical study's per-patient table (reference/clinical-protocol.md) from a lesion CSV."""

from pathlib import Path

import numpy as np
import pytest

from petrecon.errors import FormatError, ParameterError
from petrecon.quant.cohort import (
    Lesion,
    analyse_cohort,
    compare_tracers,
    format_table,
    mann_whitney,
    read_lesions,
    summarise,
    write_tables,
)

DATA = Path(__file__).parent / "data" / "pentixafor_lesions.csv"
GA, FDG = "Ga68-pentixafor", "FDG"

# reference/clinical-protocol.md, per-patient table: entity, lesions, 68Ga SUVmax, T/B, VD, FDG SUVmax, T/B, VD
# (the ">5" sarcoma row is 5 here: at most the 5 hottest metastases are quantified)
STUDY_TABLE = [
    ("NSCLC", 3, 5.2, 2.6, "1/4", 29.3, 11.6, "4/4"),
    ("melanoma", 3, 4.5, 2.2, "3/3", 17.7, 10.2, "3/3"),
    ("melanoma", 1, 3.9, 1.8, "1/1", 11.1, 5.5, "1/1"),
    ("breast", 1, 5.5, 3.2, "1/1", 7.8, 4.3, "1/1"),
    ("breast", 5, 3.5, 1.5, "3/6", 9.2, 4.6, "6/6"),
    ("sarcoma", 1, 2.1, 2.6, "1/1", 2.4, 3.0, "1/1"),
    ("sarcoma", 5, 5.3, 5.0, "5/5", 6.7, 4.0, "5/5"),
    ("sarcoma", 1, 5.0, 3.2, "1/1", 6.3, 3.3, "1/1"),
    ("sarcoma", 3, 3.2, 1.5, "1/3", 11.1, 5.3, "3/3"),
    ("CUP", 2, 13.8, 8.1, "2/2", 26.9, 14.2, "2/2"),
]


def test_per_patient_summary_reproduces_the_study_table():
    rows = summarise(read_lesions(DATA), "patient")
    by_patient = {}
    for row in rows:
        by_patient.setdefault(row["patient"], {})[row["tracer"]] = row
    assert len(by_patient) == len(STUDY_TABLE)
    for (entity, lesions, ga_suv, ga_tb, ga_vd, fdg_suv, fdg_tb, fdg_vd), patient in zip(STUDY_TABLE, by_patient.values()):
        ga, fdg = patient[GA], patient[FDG]
        assert ga["entity"] == entity and ga["lesions_quantified"] == lesions
        # the study reports one decimal
        assert round(ga["suv_max_mean"], 1) == ga_suv and round(ga["tb_mean"], 1) == ga_tb
        assert round(fdg["suv_max_mean"], 1) == fdg_suv and round(fdg["tb_mean"], 1) == fdg_tb
        assert f"{ga['detected']}/{ga['total']}" == ga_vd and f"{fdg['detected']}/{fdg['total']}" == fdg_vd


def test_entity_summary_counts_detections_and_ranges():
    entities = {(r["entity"], r["tracer"]): r for r in summarise(read_lesions(DATA), "entity")}
    sarcoma = entities[("sarcoma", GA)]
    assert (sarcoma["detected"], sarcoma["total"]) == (8, 10)
    assert (sarcoma["suv_max_min"], sarcoma["suv_max_max"]) == (2.1, 6.3)
    assert entities[("breast", FDG)]["lesions_quantified"] == 6


def test_fdg_lesions_are_hotter_than_pentixafor_and_correlated():
    comparison = compare_tracers(read_lesions(DATA), GA, FDG)
    assert comparison["lesions"] == 25
    # the study: FDG lesions hotter (13.8 vs 5.0 over 27 lesions); in this table every lesion is
    # hotter with FDG, so the signed-rank test must be significant
    assert comparison["mean_suv_max_b"] > 2 * comparison["mean_suv_max_a"]
    assert comparison["wilcoxon_p"] < 0.001


def test_mann_whitney_and_spearman_known_answers():
    lesions = [Lesion("p", "e", f"L{i}", "primary" if i < 3 else "metastasis", "T", v, 1.0, True)
               for i, v in enumerate([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]
    test = mann_whitney(lesions, "T")
    # all primaries below all metastases: U = 0; exact two-sided p = 2 / C(6, 3) = 0.1
    assert test.statistic == 0.0 and test.p_value == pytest.approx(0.1)
    paired = [Lesion("p", "e", f"L{i}", "primary", t, v, 1.0, True)
              for i in range(5) for t, v in (("A", float(i)), ("B", float(i * i)))]
    comparison = compare_tracers(paired, "A", "B")
    assert comparison["spearman_rho"] == pytest.approx(1.0)  # monotone: rank correlation 1


def test_report_tables_are_written_and_printable(tmp_path):
    report = analyse_cohort(read_lesions(DATA))
    written = write_tables(report, tmp_path)
    assert {p.name for p in written} == {"patients.csv", "entities.csv", "sites.csv", "tests.csv", "comparison.csv"}
    assert len((tmp_path / "patients.csv").read_text().splitlines()) == 1 + 2 * len(STUDY_TABLE)
    assert "NSCLC" in format_table(report.patients)
    assert {t.test for t in report.tests} == {"Mann-Whitney U", "Spearman", "Wilcoxon signed-rank"}
    assert all(0.0 <= t.p_value <= 1.0 for t in report.tests)


@pytest.mark.parametrize("text, field", [
    ("patient,entity\nP1,x\n", "header"),
    ("patient,entity,lesion,site,tracer,suv_max,tb_ratio,detected\nP1,x,L1,bone,FDG,1,1,1\n", "row 2, column site"),
    ("patient,entity,lesion,site,tracer,suv_max,tb_ratio,detected\nP1,x,L1,primary,FDG,high,1,1\n", "column suv_max"),
    ("patient,entity,lesion,site,tracer,suv_max,tb_ratio,detected\nP1,x,L1,primary,FDG,1,1,yes\n", "column detected"),
    ("patient,entity,lesion,site,tracer,suv_max,tb_ratio,detected\n", "rows"),
])
def test_bad_tables_name_the_row_and_column(tmp_path, text, field):
    path = tmp_path / "lesions.csv"
    path.write_text(text)
    with pytest.raises(FormatError, match=field):
        read_lesions(path)


def test_json_of_unquantified_lesions_has_no_nan():
    import json

    lesions = [Lesion("p", "e", "L1", "primary", "A", None, None, False)]
    text = json.dumps(analyse_cohort(lesions).to_dict(), allow_nan=False)
    assert json.loads(text)["patients"][0]["suv_max_mean"] is None


def test_too_few_paired_lesions_is_a_parameter_error():
    with pytest.raises(ParameterError, match="both"):
        compare_tracers([Lesion("p", "e", "L1", "primary", "A", 1.0, 1.0, True)], "A", "B")
    assert np.isnan(summarise([Lesion("p", "e", "L1", "primary", "A", None, None, False)], "site")[0]["suv_max_mean"])


def test_cohort_command_prints_and_writes_the_tables(tmp_path, capsys):
    from petrecon.cli import main

    assert main(["cohort", str(DATA), "--out", str(tmp_path / "tables")]) == 0
    out = capsys.readouterr().out
    assert "per patient" in out and "Wilcoxon signed-rank" in out
    assert (tmp_path / "tables" / "entities.csv").is_file()
    assert main(["cohort", str(DATA), "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["comparison"]["lesions"] == 25
    assert main(["cohort", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_lesion_count_correlation_of_four_patients_has_the_exact_p():
    from petrecon.quant.cohort import spearman_with_lesion_count

    # patients with 1, 2, 3, 4 lesions whose mean SUVmax falls as the count rises: rho = -1; the exact
    # permutation p is 2/4! = 0.083 (scipy's t approximation printed p = 0)
    lesions = [Lesion(f"P{k}", "e", f"L{j}", "metastasis", "T", 10.0 - k, 1.0, True)
               for k in range(1, 5) for j in range(k)]
    test = spearman_with_lesion_count(lesions, "T")
    assert test.statistic == -1.0 and test.p_value == pytest.approx(2 / 24)
