"""docs/reliability.md covers every public entry point, names only tests that exist, and is current."""

from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("reliability_table", os.path.join(ROOT, "scripts",
                                                                                   "reliability_table.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_export_has_a_row_and_every_named_test_exists(table) -> None:
    record, results = table.load_record(), table.load_results()
    assert table.problems(record, results, table.r_exports(), table.python_exports()) == []
    counts = table.counts(record, results)
    assert counts["entries"] == len(table.r_exports()) + len(table.python_exports())
    assert counts["bad"] >= counts["with_inputs"] > 200


def test_every_fault_test_named_exists(table) -> None:
    import tomllib

    with open(os.path.join(ROOT, "tests", "faults.toml"), "rb") as f:
        faults = tomllib.load(f)["fault"]
    assert len(faults) >= 15
    assert [x["test"] for x in faults if not table.test_exists(x["test"])] == []


def test_the_page_is_generated_from_the_current_record(table) -> None:
    page = open(os.path.join(ROOT, "docs", "reliability.md"), encoding="utf-8").read()
    assert page == table.render(table.load_record(), table.load_results()), \
        "docs/reliability.md is stale: run python scripts/reliability_table.py"


def test_a_new_export_without_a_row_or_a_missing_test_is_reported(table) -> None:
    record = table.load_record()
    record["R"] = dict(record["R"])
    record["R"].pop("layer_dense")
    record["Python"] = dict(record["Python"])
    record["Python"]["pydlr.utils.to_categorical"] = [
        {"input": "x", "error": "InputError", "message": "", "test": "tests/test_bad_inputs.py::test_nothing"}]
    found = table.problems(record, {"tests": {}}, table.r_exports(), table.python_exports())
    assert "R export `layer_dense` has no row in tests/bad_inputs.toml" in found
    assert any("test_nothing` does not exist" in line for line in found)
    assert table.test_exists("tests/test_bad_inputs.py::test_entry_point_refuses_bad_input[pydlr.Input]")
    assert not table.test_exists("tests/test_bad_inputs.py::test_entry_point_refuses_bad_input[pydlr.Nope]")
    assert table.test_exists("r-package/tests/testthat/test-bad-inputs.R::data verbs refuse data they cannot convert")
