"""The scale-out benchmark of pgcall: ``docs/benchmarks-scale.json``, written up as sections of
``docs/benchmarks.md``.

One run starts a throw-away PostgreSQL (pgcall's own embedded code, in a temporary directory)
and, section by section, pgcall relays on it, and measures with ``pgcall bench``

1. ``rooms``: one room of 16 and four rooms of 4 against the rooms targets, the capacity in
   rooms of 8 (1, 2, 3, ... rooms until a step breaks, and one step more) and the WAL written
   per room frame at room sizes 2, 4, 8 and 16;
2. ``recording``: the same 10 calls with and without ``--record``, in interleaved rounds;
3. ``workers``: the capacity in calls (5, 10, 15, ...) of ``pgcall serve --workers 1`` and
   ``--workers 2``;
4. ``relays``: 1, 2 and 4 separate relays on the one database at the same load, the clients
   spread over them, with the bytes each relay's walsender sent it and each relay's CPU.

Run from the repository root on an otherwise idle machine: ``python3 benchmarks/scale.py``
(about half an hour, depending on where the capacity sweeps stop). ``--sections rooms,relays``
runs only those (the others stay as they are in the JSON); ``--quick`` checks the script in a
few minutes with tiny loads (not figures: write it elsewhere with ``--json``). After a run into
the default ``docs/benchmarks-scale.json``, ``docs/benchmarks.md`` is rendered again from
``docs/benchmarks.json`` and the new figures; ``--render-only`` does only that, and
``--md PATH`` renders to another file.

Owns: the command line and the run's temporary working directory. Does not own: the
measurement and the write-up (``benchreport.scale``) or the rest of ``benchmarks.md``
(``benchreport.render``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import trio
from benchreport.render import render_markdown
from benchreport.scale.document import ScaleDoc
from benchreport.scale.plan import FULL, QUICK, SECTIONS, parse_sections
from benchreport.scale.run import run_scale
from benchreport.settings import REPO, log

DOCS = REPO / "docs"
DEFAULT_JSON = DOCS / "benchmarks-scale.json"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Bad input: one line on stderr, exit 2."""
        self.exit(2, f"scale.py: {message}\n")


def build_parser() -> Parser:
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny loads and fixed steps: checks the script in a few minutes; "
                        "not figures")
    p.add_argument("--sections", default=",".join(SECTIONS), metavar="LIST",
                   help="the sections to run, comma-separated (default: %(default)s)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="PATH",
                   help="the figures (default docs/benchmarks-scale.json); a section run "
                        "replaces its own object only")
    p.add_argument("--workdir", type=Path, metavar="DIR",
                   help="work here (the database, the relays' logs) and keep it; default: a "
                        "temporary directory, removed at the end")
    p.add_argument("--md", type=Path, metavar="PATH",
                   help="render benchmarks.md here from docs/benchmarks.json and --json "
                        "(default: docs/benchmarks.md after a full run into the default JSON)")
    p.add_argument("--render-only", action="store_true",
                   help="run nothing: render benchmarks.md from the JSON documents")
    return p


UNRECORDED = ("--json", "--workdir", "--md")  # local paths that do not change the figures


def recorded_command(argv: list[str]) -> str:
    """The command line as the document records it, without ``UNRECORDED`` options."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in UNRECORDED:
            skip = True
        elif not a.startswith(tuple(f"{o}=" for o in UNRECORDED)):
            out.append(a)
    return shlex.join(["python3", "benchmarks/scale.py", *out])


def read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def render_md(scale_json: Path, out: Path) -> None:
    """``benchmarks.md`` from ``docs/benchmarks.json`` and the scale document, to ``out``."""
    out.write_text(render_markdown(read_json(DOCS / "benchmarks.json"), read_json(scale_json)))
    log(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    try:
        sections = parse_sections(args.sections)
    except ValueError as exc:
        parser.error(str(exc))
    md = args.md
    if md is None and not args.quick and args.json.resolve() == DEFAULT_JSON.resolve():
        md = DOCS / "benchmarks.md"
    if args.render_only:
        if md is None:
            parser.error("--render-only renders the default JSON only to docs/benchmarks.md; "
                         "with --quick or another --json, give --md")
        for path in (args.json, DOCS / "benchmarks.json"):
            if not path.is_file():
                parser.error(f"no {path} to render from")
    if md is not None and not md.parent.is_dir():
        parser.error(f"no directory {md.parent} for {md}")
    if not args.json.parent.is_dir():
        parser.error(f"no directory {args.json.parent} for {args.json}")
    try:
        doc = ScaleDoc(args.json)
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read {args.json}: {exc}")
    if args.render_only:
        render_md(args.json, md)
        return 0
    if args.workdir is not None and args.workdir.exists() and not args.workdir.is_dir():
        parser.error(f"--workdir {args.workdir} is not a directory")
    plan = QUICK if args.quick else FULL
    if args.workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="pgcs-"))  # short: Unix socket paths < 107 B
    else:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o711)  # run as root, the server runs as another user and must get in
    log(f"pgcall scale ({'quick' if plan.quick else 'full'}): {', '.join(sections)}, working "
        f"in {workdir}")
    try:
        trio.run(run_scale, plan, sections, doc, workdir, recorded_command(argv))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    log(f"wrote {args.json}")
    if md is not None:
        if (DOCS / "benchmarks.json").is_file():
            render_md(args.json, md)
        else:
            log("no docs/benchmarks.json: benchmarks.md not rendered (run benchmarks/report.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
