#!/usr/bin/env python3
"""Build ``dist/pgcall.pyz``: pgcall, its dependencies and its frontends in one executable zip.

Owns: building the Svelte frontend (when its sources and node/npm are present), staging a clean
copy of the sources, running shiv on it, and checking that the result carries the migrations and
the frontends. Does not own: what the package contains (``pyproject.toml``'s package data).

The build runs on a temporary copy of the tree: pip builds a local project in place, and
setuptools would otherwise leave ``build/`` and ``*.egg-info`` in the working tree. The copy
keeps the package's symlinks (``pgcall/sql -> ../sql``, ``pgcall/frontends -> ../frontends``)
next to their targets, so setuptools' package data follows them into the wheel shiv installs.

Usage: ``python3 build.py [--skip-frontends] [--out DIR]``; needs shiv (``pip install
'.[build]'``) and network access to PyPI (or a pip cache) for the dependencies.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
SVELTE = REPO / "frontends" / "svelte"
PYZ_NAME = "pgcall.pyz"
SHEBANG = "/usr/bin/env python3"

# Top-level entries that make up the Python project; everything else (tests, docs, benchmarks,
# CI) stays out of the pyz.
PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE")
PROJECT_DIRS = ("pgcall", "sql")
# What is served from frontends/: the no-build vanilla app and the Svelte app's static output.
FRONTEND_DIRS = ("vanilla", "svelte/build")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "node_modules", ".*",
                                "tests")
# Files the pyz must hold, relative to its site-packages; a build without them is broken.
REQUIRED = ("pgcall/__main__.py", "pgcall/sql/0001_initial.sql",
            "pgcall/frontends/vanilla/index.html")


def log(message: str) -> None:
    print(f"build.py: {message}", flush=True)


def run(argv: list[str], cwd: Path) -> None:
    log(f"$ {' '.join(argv)}  (in {cwd})")
    subprocess.run(argv, cwd=cwd, check=True)


def build_svelte() -> None:
    """``npm ci && npm run build`` in frontends/svelte, when there is something to build."""
    if not (SVELTE / "package.json").is_file():
        log("no frontends/svelte/package.json: skipping the Svelte build")
        return
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        log("node/npm not found: skipping the Svelte build (the pyz ships what is built)")
        return
    run([npm, "ci", "--no-audit", "--no-fund"], SVELTE)
    run([npm, "run", "build"], SVELTE)


def stage(dest: Path) -> Path:
    """Copy the project's sources into ``dest``; returns the project directory."""
    project = dest / "pgcall-src"
    project.mkdir()
    for name in PROJECT_FILES:
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, project / name)
    if not (project / "README.md").exists():
        # pyproject names README.md as the long description, which setuptools must read.
        (project / "README.md").write_text("pgcall\n", encoding="utf-8")
    for name in PROJECT_DIRS:
        shutil.copytree(REPO / name, project / name, symlinks=True, ignore=IGNORE)
    for name in FRONTEND_DIRS:
        src = REPO / "frontends" / name
        if src.is_dir():
            shutil.copytree(src, project / "frontends" / name, ignore=IGNORE)
        else:
            log(f"frontends/{name} does not exist: the pyz will not serve it")
    return project


def shiv_supports(option: str) -> bool:
    out = subprocess.run([sys.executable, "-m", "shiv", "--help"], capture_output=True,
                         text=True, check=False).stdout
    return option in out


def run_shiv(project: Path, pyz: Path) -> None:
    argv = [sys.executable, "-m", "shiv", "--compile-pyc", "-c", "pgcall", "-o", str(pyz),
            "--python", SHEBANG]
    # --reproducible pins the timestamps inside the zip, so equal sources give an equal pyz.
    if shiv_supports("--reproducible"):
        argv.append("--reproducible")
    # pip's own chatter is noise here; its errors still reach stderr.
    argv += [str(project), "--quiet"]
    run(argv, project)


def check_contents(pyz: Path) -> list[str]:
    """The required files missing from ``pyz`` (shiv installs into site-packages/)."""
    with zipfile.ZipFile(pyz) as zf:
        names = set(zf.namelist())
    return [f for f in REQUIRED if f"site-packages/{f}" not in names]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build pgcall.pyz with shiv.")
    parser.add_argument("--skip-frontends", action="store_true",
                        help="do not run npm for the Svelte frontend; ship what is built")
    parser.add_argument("--out", type=Path, default=REPO / "dist",
                        help="directory for pgcall.pyz (default: dist/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not shiv_supports("--console-script"):
        log("shiv is not installed: pip install '.[build]'")
        return 1
    if args.skip_frontends:
        log("--skip-frontends: not building the Svelte frontend")
    else:
        build_svelte()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    pyz = out / PYZ_NAME
    with tempfile.TemporaryDirectory(prefix="pgcall-build-") as tmp:
        project = stage(Path(tmp))
        # Build next to the target and rename: a failed build never leaves a half-written pyz.
        partial = out / f".{PYZ_NAME}.partial"
        try:
            run_shiv(project, partial)
            missing = check_contents(partial)
            if missing:
                log(f"the pyz lacks {', '.join(missing)}: check pyproject's package data")
                return 1
            partial.replace(pyz)
        finally:
            partial.unlink(missing_ok=True)
    size = pyz.stat().st_size
    log(f"built {pyz} ({size / 1e6:.1f} MB, {size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
