"""The top-level DESCRIPTION (the project's R dependency manifest) agrees with r-package/DESCRIPTION."""

import os
import re
import subprocess

from conftest import ROOT


def _fields(path: str) -> dict[str, set[str]]:
    text = open(path, encoding="utf-8").read()
    fields: dict[str, set[str]] = {}
    for name in ("Depends", "Imports", "Suggests"):
        match = re.search(rf"^{name}:(.*?)(?=^\S|\Z)", text, flags=re.M | re.S)
        items = match.group(1).split(",") if match else []
        fields[name] = {re.sub(r"\(.*\)", "", item).strip() for item in items if item.strip()}
    return fields


def test_project_manifest_matches_r_package():
    top = _fields(os.path.join(ROOT, "DESCRIPTION"))
    pkg = _fields(os.path.join(ROOT, "r-package", "DESCRIPTION"))
    assert top == pkg
    assert "reticulate" in top["Imports"]
    assert "testthat" in top["Suggests"]


def test_setup_installs_every_manifest_package():
    # scripts/setup.sh maps each manifest entry to a Debian r-cran-* package; base packages are skipped.
    out = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "setup.sh"), "--print-debian-packages"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    base = {"utils", "stats", "graphics", "grDevices", "tools", "R"}
    wanted = set().union(*_fields(os.path.join(ROOT, "DESCRIPTION")).values()) - base
    assert {f"r-cran-{name.lower()}" for name in wanted} <= set(out)
    assert "r-base-core" in out and "dataset-fashion-mnist" in out
