"""docs/reliability.md, generated from the exports and from tests/bad_inputs.toml.

The record (tests/bad_inputs.toml) lists, for every public entry point of the R package (NAMESPACE exports and
S3 methods) and of the Python package (``pydlr.__all__``, the public submodules' ``__all__`` and the data-taking
methods of ``pydlr.Model``), the bad inputs tried: what was passed, the error class, the message pattern and the
test that checks it (``tests/test_x.py::test_name`` or ``r-package/tests/testthat/test-x.R::description``).
An entry point that takes no user input (a constant, a module, a re-exported operator, a print method) has one
row with ``kind`` and ``note`` instead.

    python scripts/reliability_table.py            # write docs/reliability.md
    python scripts/reliability_table.py --check    # exit 1 when an export has no row, a named test does not
                                                   # exist, a row's test failed, or the page is stale
    python scripts/reliability_table.py --run      # run the named tests, record their results, write the page
    python scripts/reliability_table.py --suggest  # draft rows (TOML) for exports without one, from the tests

The passing count comes from the results of the last ``--run`` (or ``--results ... --write`` after a full
run): tests/bad_inputs_results.json maps each named test to passed/failed. scripts/test.sh passes its run's
results with ``--check``: it fails when a named test failed, and leaves the tree as it was.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORD = os.path.join(ROOT, "tests", "bad_inputs.toml")
RESULTS = os.path.join(ROOT, "tests", "bad_inputs_results.json")
PAGE = os.path.join(ROOT, "docs", "reliability.md")
R_TESTS = "r-package/tests/testthat"

# pydlr.Model's methods that take the user's data, files or settings: entry points as much as the exports.
MODEL_METHODS = ("compile", "fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "predict_on_batch",
                 "save", "save_weights", "load_weights", "set_weights", "get_layer")


def r_exports(root: str = ROOT) -> list[str]:
    """The R package's entry points: export() names and S3 methods (as generic.class)."""
    text = open(os.path.join(root, "r-package", "NAMESPACE"), encoding="utf-8").read()
    names = [m.strip('"') for m in re.findall(r"^export\((.+)\)$", text, re.M)]
    names += [f"{g.strip(chr(34))}.{c}" for g, c in re.findall(r"^S3method\(([^,]+),([^)]+)\)$", text, re.M)]
    return sorted(names)


def python_exports() -> list[str]:
    """``pydlr.__all__``, the ``__all__`` of the public submodules it names, and pydlr.Model's methods."""
    sys.path.insert(0, ROOT)
    import pydlr

    names = []
    for name in pydlr.__all__:
        names.append(f"pydlr.{name}")
        value = getattr(pydlr, name)
        if type(value).__name__ == "module":
            names += [f"pydlr.{name}.{sub}" for sub in getattr(value, "__all__", ())]
    names += [f"pydlr.Model.{m}" for m in MODEL_METHODS]
    return sorted(set(names))


def load_record(path: str = RECORD) -> dict[str, dict[str, list[dict]]]:
    with open(path, "rb") as f:
        record = tomllib.load(f)
    return {"R": record.get("R", {}), "Python": record.get("Python", {})}


def load_results(path: str = RESULTS) -> dict:
    if not os.path.exists(path):
        return {"date": None, "tests": {}}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------------------
# Does a named test exist?

def _python_test_names(path: str) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name.startswith("test")}


def _r_test_names(path: str) -> set[str]:
    text = open(path, encoding="utf-8").read()
    return {bytes(m, "utf-8").decode("unicode_escape")
            for m in re.findall(r'test_that\(\s*"((?:[^"\\]|\\.)*)"', text)}


def test_exists(test: str, cache: dict | None = None) -> bool:
    """``file::name``: the file exists under ROOT and defines that test function / test_that description;
    ``file::name[id]`` (a parametrized case) also needs the id written as a string in the file."""
    cache = {} if cache is None else cache
    path, _, name = test.partition("::")
    name, _, case = name.partition("[")
    full = os.path.join(ROOT, path)
    if not name or not os.path.isfile(full):
        return False
    if full not in cache:
        cache[full] = _python_test_names(full) if full.endswith(".py") else _r_test_names(full)
    if case and f'"{case.rstrip("]")}"' not in open(full, encoding="utf-8").read():
        return False
    return name in cache[full]


def _base(test: str) -> str:
    """The test function a (parametrized) test id belongs to: results are kept per function."""
    return test.split("[")[0]


# ---------------------------------------------------------------------------------------------------------
# Checks

def problems(record: dict, results: dict, r_names: list[str], py_names: list[str]) -> list[str]:
    """Everything that makes the table wrong: missing rows, rows for no export, unknown or failing tests."""
    out = []
    for api, names in (("R", r_names), ("Python", py_names)):
        rows = record[api]
        out += [f"{api} export `{n}` has no row in tests/bad_inputs.toml" for n in names if n not in rows]
        out += [f"{api} row `{n}` names no export" for n in rows if n not in names]
        cache: dict = {}
        for name, bads in rows.items():
            for bad in bads:
                if "kind" in bad:
                    continue
                missing = [k for k in ("input", "error", "message", "test") if k not in bad]
                if missing:
                    out.append(f"{api} `{name}`: a row lacks {', '.join(missing)}")
                elif not test_exists(bad["test"], cache):
                    out.append(f"{api} `{name}`: test `{bad['test']}` does not exist")
                elif results["tests"].get(_base(bad["test"])) == "failed":
                    out.append(f"{api} `{name}`: test `{bad['test']}` failed in the last run")
    return out


# ---------------------------------------------------------------------------------------------------------
# The page

def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """A Markdown code span that may itself hold backticks (R and pydlr messages quote argument names so)."""
    text = _cell(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _pattern(message: str) -> str:
    return _code(message) if message else "(the class is checked)"


def _status(test: str, results: dict) -> str:
    return {"passed": "passes", "failed": "FAILS"}.get(results["tests"].get(_base(test), ""), "not run")


def counts(record: dict, results: dict) -> dict[str, int]:
    entries = sum(len(record[a]) for a in record)
    bad = [b for a in record for rows in record[a].values() for b in rows if "kind" not in b]
    tested = sum(1 for rows in (r for a in record for r in record[a].values()) if any("kind" not in b for b in rows))
    passing = sum(1 for b in bad if results["tests"].get(_base(b["test"])) == "passed")
    return {"entries": entries, "with_inputs": tested, "bad": len(bad), "passing": passing}


def render(record: dict, results: dict) -> str:
    c = counts(record, results)
    run = results.get("date") or "never"
    lines = [
        "# Reliability: bad inputs for every entry point",
        "",
        "<!-- Generated by scripts/reliability_table.py from the exports and tests/bad_inputs.toml; do not edit. -->",
        "",
        f"- Entry points: **{c['entries']}** ({len(record['R'])} R, {len(record['Python'])} Python); "
        f"{c['with_inputs']} take user input and have bad inputs tried, the others take none (kind shown).",
        f"- Bad inputs tried: **{c['bad']}**; passing: **{c['passing']}** (test results of {run}).",
        "",
        "A bad input gets an error before any work starts, naming the argument, what was expected and what came:",
        "`pydlr.errors.InputError` in Python (a `ValueError`), the classed condition `pydlr_input_error` in R",
        "(both under `pydlr_error`; R's messages use R syntax and never show a Python traceback). Features outside",
        "pydlr's subset raise `NotSupportedError` / `pydlr_not_supported_error`. The fault and security tests",
        "(interrupted fit and save, full disk, tampered files, pickles posing as weights, paths escaping the",
        "cache) are listed at the end.",
        "",
    ]
    for api in ("R", "Python"):
        lines += [f"## {api}", "", "| Entry point | Bad input | Error | Message matches | Test | Result |",
                  "|---|---|---|---|---|---|"]
        for name in sorted(record[api]):
            for bad in record[api][name]:
                if "kind" in bad:
                    lines.append(f"| {_code(name)} | ({_cell(bad['kind'])}) {_cell(bad.get('note', ''))} "
                                 "| | | | |")
                else:
                    lines.append(
                        f"| {_code(name)} | {_code(bad['input'])} | {_code(bad['error'])} "
                        f"| {_pattern(bad['message'])} | {_code(bad['test'])} | {_status(bad['test'], results)} |")
        lines.append("")
    lines += _faults_section()
    return "\n".join(lines).rstrip() + "\n"


def _faults_section() -> list[str]:
    """The fault and security tests, listed from tests/faults.toml (kept with the bad-input record)."""
    path = os.path.join(ROOT, "tests", "faults.toml")
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        faults = tomllib.load(f).get("fault", [])
    lines = ["## Faults and security", "", "| Fault | What the test proves | Test |", "|---|---|---|"]
    lines += [f"| {_cell(x['fault'])} | {_cell(x['proves'])} | {_code(x['test'])} |" for x in faults]
    return lines + [""]


# ---------------------------------------------------------------------------------------------------------
# Running the named tests

def _pytest_results(xml_path: str) -> dict[str, str]:
    """tests/test_x.py::test_name -> passed/failed from a pytest JUnit XML (parametrized cases folded)."""
    out: dict[str, str] = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")
        key = f"{'/'.join(module[:2])}.py::{case.get('name', '').split('[')[0]}"
        failed = any(child.tag in ("failure", "error") for child in case)
        skipped = any(child.tag == "skipped" for child in case)
        state = "failed" if failed else ("skipped" if skipped else "passed")
        if out.get(key) != "failed" and not (state == "skipped" and out.get(key) == "passed"):
            out[key] = state
    return out


def _r_results(json_path: str) -> dict[str, str]:
    """file::description -> passed/failed from scripts/run_r_tests.R's --results JSON."""
    with open(json_path, encoding="utf-8") as f:
        rows = json.load(f)
    out: dict[str, str] = {}
    for row in rows:
        key = f"{R_TESTS}/{os.path.basename(row['file'])}::{row['test']}"
        state = "failed" if row["failed"] else ("skipped" if row["skipped"] else "passed")
        if out.get(key) != "failed":
            out[key] = state
    return out


def run_named_tests(record: dict) -> dict[str, str]:
    """Run each named Python test function and each named R test file once; results by test name."""
    tests = sorted({_base(b["test"]) for a in record for rows in record[a].values() for b in rows if "test" in b})
    py = sorted({t for t in tests if ".py::" in t})
    r_files = sorted({t.partition("::")[0] for t in tests if ".R::" in t})
    results: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if py:
            xml = os.path.join(tmp, "py.xml")
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
                            *py], cwd=ROOT, check=False)
            results.update(_pytest_results(xml))
        if r_files:
            out = os.path.join(tmp, "r.json")
            subprocess.run(["Rscript", "scripts/run_r_tests.R", "--results", out, *r_files], cwd=ROOT, check=False)
            results.update(_r_results(out))
    return results


def save_results(tests: dict[str, str], record: dict) -> dict:
    """Keep the results of the tests the record names, dated, for the page's passing count."""
    named = {_base(b["test"]) for a in record for rows in record[a].values() for b in rows if "test" in b}
    results = {"date": datetime.date.today().isoformat(),
               "tests": {k: v for k, v in sorted(tests.items()) if k in named}}
    with open(RESULTS, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    return results


# ---------------------------------------------------------------------------------------------------------
# Suggestions: draft rows from the expected errors the tests already check

def _python_expectations() -> list[dict]:
    """One record per ``with pytest.raises(...)`` in tests/: the test, the names called, class and pattern."""
    found = []
    for file in sorted(os.listdir(os.path.join(ROOT, "tests"))):
        if not (file.startswith("test_") and file.endswith(".py")):
            continue
        tree = ast.parse(open(os.path.join(ROOT, "tests", file), encoding="utf-8").read())
        for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test")):
            found += _raises_in(fn, f"tests/{file}::{fn.name}")
    return _table_cases() + found


def _table_cases() -> list[dict]:
    """The rows of tests/test_bad_inputs.py's CASES table: (entry, call, error, pattern) tuples."""
    path = os.path.join(ROOT, "tests", "test_bad_inputs.py")
    tree = ast.parse(open(path, encoding="utf-8").read())
    table = next(n.value for n in tree.body if isinstance(n, ast.Assign) and _dotted(n.targets[0]) == "CASES")
    test = "tests/test_bad_inputs.py::test_entry_point_refuses_bad_input"
    out = []
    for case in table.elts:
        entry, call, error, pattern = case.elts
        body = call.body if isinstance(call, ast.Lambda) else call
        out.append({"test": f"{test}[{entry.value}]", "error": ast.unparse(error), "message": pattern.value,
                    "input": ast.unparse(body), "calls": [entry.value]})
    return out


def _raises_in(fn: ast.FunctionDef, test: str) -> list[dict]:
    out = []
    params = {a.arg for a in fn.args.args}
    decorated = [_dotted(c.func) for d in fn.decorator_list for c in ast.walk(d) if isinstance(c, ast.Call)]
    for node in ast.walk(fn):
        if not isinstance(node, ast.With):
            continue
        for item in node.items:
            call = item.context_expr
            if not (isinstance(call, ast.Call) and _dotted(call.func).endswith("raises") and call.args):
                continue
            match = next((k.value for k in call.keywords if k.arg == "match"), None)
            message = match.value if isinstance(match, ast.Constant) else (ast.unparse(match) if match else "")
            calls = [_outer_call(s) for s in node.body]
            calls += decorated if params & set(calls) else []  # a parametrized test's cases are its decorator's
            out.append({"test": test, "error": ast.unparse(call.args[0]), "message": message,
                        "input": ast.unparse(node.body[0])[:120], "calls": calls})
    return out


def _outer_call(statement: ast.AST) -> str:
    """The name of the call a statement makes (``layers.Dense(2)(x)``: ``layers.Dense``), not its arguments'."""
    call = next((c for c in ast.walk(statement) if isinstance(c, ast.Call)), None)
    while call is not None and isinstance(call.func, ast.Call):
        call = call.func
    return _dotted(call.func) if call is not None else ""


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _r_expectations() -> list[dict]:
    proc = subprocess.run(["Rscript", "scripts/reliability_r_tests.R", R_TESTS], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    rows = json.loads(proc.stdout)
    for row in rows:
        row["calls"] = [row["calls"]] if isinstance(row["calls"], str) else row["calls"]
        row["test"] = f"{R_TESTS}/{os.path.basename(row['file'])}::{row['test']}"
        row["error"], row["message"] = row["class"] or "error", row["regexp"]
    return rows


def _matches_python(call: str, export: str) -> bool:
    """Whether a test's call (``layers.Dense``, ``keras.Sequential``, ``model.fit``, ``Dense``) is ``export``."""
    if call == export:
        return True
    parts, want = call.split("."), export.split(".")
    if parts[-1] != want[-1]:
        return False
    if len(parts) == 1:
        return True
    qualifier = "pydlr" if parts[-2] in ("keras", "pydlr", "io") else parts[-2]
    if want[-2] == "Model":  # a method called on a model instance (tests name them m, model, ...)
        return qualifier in ("m", "net", "seq") or "model" in qualifier.lower()
    return qualifier == want[-2]


def _generic(name: str) -> str:
    """predict.pydlr_model -> predict (an S3 method is reached through its generic)."""
    return re.sub(r"\.pydlr_[a-z_]+$", "", name)


def _no_input_kind(api: str, name: str) -> tuple[str, str] | None:
    """(kind, note) for an entry point that takes no user input, else None."""
    if api == "R":
        method = name.split(".")[0]
        notes = {"print": "prints the object it is called on", "r_to_py": "reticulate's conversion to Python",
                 "py_to_r": "reticulate's conversion to R", "length": "the number of batches"}
        return ("method", notes[method]) if method in notes else None
    value = importlib.import_module("pydlr")
    for part in name.split(".")[1:]:
        value = getattr(value, part)
    if type(value).__name__ == "module":
        return ("module", "a namespace; its entry points have their own rows")
    if not callable(value):
        return ("constant", f"a {type(value).__name__}")
    return None


def suggest(record: dict, r_names: list[str], py_names: list[str]) -> str:
    """TOML rows for the exports that have none, from the tests' expected errors (to be checked by hand)."""
    out = []
    for api, names, found in (("R", r_names, _r_expectations()), ("Python", py_names, _python_expectations())):
        for name in (n for n in names if n not in record[api]):
            key = f'"{name}"' if not re.fullmatch(r"[A-Za-z0-9_-]+", name) else name
            kind = _no_input_kind(api, name)
            if kind:
                out.append(f'[[{api}.{key}]]\nkind = "{kind[0]}"\nnote = "{kind[1]}"\n')
                continue
            if api == "R":  # the failing call itself, not the calls that build its arguments
                hits = [x for x in found if x["calls"] and x["calls"][0] in (name, _generic(name))]
            else:
                hits = [x for x in found if any(_matches_python(c, name) for c in x["calls"])]
            if not hits:
                out.append(f"# {api} {name}: no test found\n")
            for x in hits[:4]:
                out.append(f"[[{api}.{key}]]\ninput = {json.dumps(x['input'])}\nerror = {json.dumps(x['error'])}\n"
                           f"message = {json.dumps(x['message'])}\ntest = {json.dumps(x['test'])}\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail on missing rows, tests or a stale page")
    parser.add_argument("--run", action="store_true", help="run the named tests, then write the page")
    parser.add_argument("--results", nargs=2, metavar=("PYTEST_XML", "R_JSON"),
                        help="judge the named tests by a full run's results (scripts/test.sh); writes nothing "
                             "unless --write is also given")
    parser.add_argument("--write", action="store_true", help="with --results: record them and write the page")
    parser.add_argument("--suggest", action="store_true", help="print draft rows for exports without one")
    args = parser.parse_args(argv)
    record, r_names, py_names = load_record(), r_exports(), python_exports()
    if args.suggest:
        print(suggest(record, r_names, py_names))
        return 0
    results = load_results()
    write = not args.check and (not args.results or args.write)
    if args.run:
        results = save_results(run_named_tests(record), record)
    elif args.results:
        fresh = {**_pytest_results(args.results[0]), **_r_results(args.results[1])}
        results = save_results(fresh, record) if args.write else {"date": None, "tests": fresh}
    found = problems(record, results, r_names, py_names)
    if args.check:  # the committed page against the committed results
        stale = not os.path.exists(PAGE) or open(PAGE, encoding="utf-8").read() != render(record, load_results())
        found += ["docs/reliability.md is stale: run python scripts/reliability_table.py"] if stale else []
    if write:
        with open(PAGE, "w", encoding="utf-8") as f:
            f.write(render(record, results))
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
