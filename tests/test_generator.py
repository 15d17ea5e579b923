"""The generator: a clean baseline, every code in the truth, valid identifiers, determinism."""

import hashlib
import json

import pandas as pd
import pytest

from include import identifiers as ids
from include import periods as P
from include.generator import oracle
from include.generator.generate import generate
from include.generator.problems import CODES
from include.generator.world import WorldParams



def _read_cbry(data, period):
    return pd.read_csv(data / "hr" / f"cbry_{P.to_ffyf(period)}.csv", encoding="gb18030", dtype=str, keep_default_na=False)


def test_clean_baseline_raises_no_finding(tmp_path):
    m = generate(WorldParams(persons=1500, periods=3, findings_per_code=0, seed=5), tmp_path / "d", progress=lambda s: None)
    for period, summary in m["summary"].items():
        assert sum(summary["findings"].values()) == 0, (period, summary)
        assert summary["quarantined"] == 0
        assert summary["roster"] > 1000


def test_every_code_appears_in_every_period(small_world):
    manifest = json.loads((small_world / "manifest.json").read_text())
    for period in manifest["periods"]:
        found = manifest["summary"][period]["findings"]
        missing = [c for c in CODES if found[c] < 1]
        assert not missing, (period, missing)


def test_truth_files_match_the_oracle_rerun(small_world):
    period = "2026-10"
    truth = oracle.load(small_world, period)
    again = oracle.compute(small_world, period)
    assert len(truth["findings"]) == len(again["findings"])
    assert truth["roster"] == again["roster"]


def test_ids_and_credit_codes_pass_their_checks(small_world):
    period = "2026-10"
    base = small_world / "periods" / period
    invalid = set(oracle.load(small_world, period)["findings"].query("code == 'INVALID_ID'").raw_value)
    assert invalid, "the injected INVALID_ID problems must be in the truth"
    raw = pd.concat([
        pd.read_parquet(base / "staffing" / "persons.parquet").id_number,
        pd.read_parquet(base / "org" / "gbxx.parquet").sfzh,
        pd.read_parquet(base / "finance" / "gz_ff.parquet").sfzh,
        _read_cbry(small_world, period)["公民身份号码"],
    ])
    end = P.last_day(period)
    for value in raw.unique():
        cleaned = ids.clean_id(value)
        if value.strip() in invalid:
            assert not ids.is_valid_id(cleaned, not_after=end), ids.mask_id(value)
        else:
            assert ids.is_valid_id(cleaned, not_after=end), ids.mask_id(value)
    units = pd.read_parquet(base / "staffing" / "units.parquet")
    assert units.unit_code.map(ids.is_valid_credit_code).all()
    ys = pd.read_parquet(base / "finance" / "ys_dw.parquet")
    coded = ys.tyshxydm.fillna("").str.strip() != ""
    assert ys.loc[coded, "tyshxydm"].map(ids.is_valid_credit_code).all()
    assert (~coded).sum() >= 2, "a few budget units have no credit code"


def test_ids_agree_with_birth_date_and_sex(small_world):
    """Except where IDENTITY_CONFLICT is injected: those, and only those, are in the truth."""
    persons = pd.read_parquet(small_world / "periods" / "2026-10" / "staffing" / "persons.parquet")
    clean = persons.id_number.map(ids.clean_id)
    ok = clean.map(ids.is_valid_id)
    odd = clean[ok].str[16].astype(int) % 2 == 1
    agree = (clean[ok].str[6:14] == persons.birth_date[ok].str.replace("-", "")) & (odd == (persons.sex[ok] == "M"))
    truth = oracle.load(small_world, "2026-10")["findings"]
    conflicts = set(truth[truth.code == "IDENTITY_CONFLICT"].id_number)
    assert (~agree).sum() >= 1 and set(clean[ok][~agree]) <= conflicts
    assert agree.sum() > 0.99 * len(agree)


def test_harmless_dirt_is_present(small_world):
    base = small_world / "periods" / "2026-10"
    staffing = pd.read_parquet(base / "staffing" / "persons.parquet")
    payroll = pd.read_parquet(base / "finance" / "gz_ff.parquet")
    hr = _read_cbry(small_world, "2026-10")
    assert staffing.id_number.str.endswith("x").any()
    assert payroll.sfzh.str.contains("\u3000").any()
    assert (hr["公民身份号码"].str.len() == 15).any()
    assert payroll.xm.str.contains(".", regex=False).any() or hr["姓名"].str.contains("・").any()


def test_same_seed_gives_byte_identical_output(tmp_path):
    params = WorldParams(persons=600, periods=2, findings_per_code=1, seed=3)

    def digest(root):
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    generate(params, tmp_path / "a", progress=lambda s: None)
    generate(params, tmp_path / "b", progress=lambda s: None)
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert a == b
    generate(WorldParams(persons=600, periods=2, findings_per_code=1, seed=4), tmp_path / "c", progress=lambda s: None)
    assert digest(tmp_path / "c") != a


def test_consecutive_periods_are_one_evolving_world(small_world):
    p1, p2 = "2026-10", "2026-11"
    a = pd.read_parquet(small_world / "periods" / p1 / "staffing" / "persons.parquet").set_index("record_id")
    b = pd.read_parquet(small_world / "periods" / p2 / "staffing" / "persons.parquet").set_index("record_id")
    assert set(a.index) <= set(b.index), "items are never deleted: leavers come back as tombstones"
    watermark = P.snapshot_at(p1).isoformat()
    common = a.index.intersection(b.index)
    changed = (a.loc[common].drop(columns="updated_at").fillna("~") != b.loc[common].drop(columns="updated_at").fillna("~")).any(axis=1)
    moved = b.loc[common, "updated_at"] > watermark
    assert (changed == moved).all(), "updated_at moves exactly when an item changes"
    assert changed.sum() > 0
    new = b.index.difference(a.index)
    assert len(new) > 0 and (b.loc[new, "updated_at"] > watermark).all()
    left = b.loc[common][(a.loc[common, "status"] == "active") & (b.loc[common, "status"] == "left")]
    assert len(left) > 0 and left.left_on.notna().all()
    # payroll accumulates months; the newest one is the period
    months = sorted(pd.read_parquet(small_world / "periods" / p2 / "finance" / "gz_ff.parquet").ffyf.unique())
    assert months == ["202609", "202610", "202611"]
    # some problems fixed, others persisting, new ones injected
    problems = json.loads((small_world / "periods" / p2 / "problems.json").read_text())
    assert any(p["fixed_in"] == p2 for p in problems)
    assert any(p["fixed_in"] is None and p["start"] == p1 for p in problems)
    assert any(p["start"] == p2 for p in problems)


@pytest.mark.parametrize("kwargs, message", [
    ({"persons": 10}, "at least 300"),
    ({"persons": 1000, "findings_per_code": 50}, "too many"),
    ({"first_period": "2026-13"}, "YYYY-MM"),
    ({"periods": 0}, "between 1 and 24"),
])
def test_impossible_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WorldParams(**kwargs).validate()


def test_cli_refuses_to_overwrite(tmp_path, capsys):
    from include.generator.cli import main
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    assert main(["--out", str(tmp_path / "x"), "--persons", "600", "--findings-per-code", "1"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "x" / "keep.txt").exists()
