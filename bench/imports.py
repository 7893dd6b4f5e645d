"""Importing a million readers from a Mailchimp audience export, side by side with the same
readers as a bare ``email,name`` file, each into an empty SQLite database.

Target: the Mailchimp file (23 columns, quoted, three dates and an IP per row) in under 60 s
with flat memory: peak RSS of the ``import`` process does not grow with the file (the
``--readers`` 100,000 run prints the same figure for comparison).

    uv run python bench/imports.py [--readers 1000000] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import (
    BenchError,
    Workspace,
    child_env,
    db_url,
    log,
    machine,
    machine_line,
    run_subscribe,
    save_results,
    write_subscribers,
)

TARGET_S = 60.0
MAILCHIMP_HEADER = (
    '"Email Address","First Name","Last Name",Address,"Phone Number",Birthday,MEMBER_RATING,'
    "OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,"
    "CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS\n"
)


def write_mailchimp(path: Path, count: int) -> Path:
    """Rows shaped as Mailchimp's subscribed_members file writes them."""
    with path.open("w", newline="") as out:
        out.write(MAILCHIMP_HEADER)
        rows = []
        for i in range(count):
            day = 1 + i % 28
            second = i % 60
            optin = f'"2019-03-{day:02d} 17:22:{second:02d}"'
            confirm = f'"2019-03-{day:02d} 17:25:{second:02d}"'
            ip = f"203.0.{i % 250}.{i % 200}"
            rows.append(
                f"reader.{i}@mail{i % 997}.example.org,Reader,{i},,,,{1 + i % 5},{optin},{ip},"
                f'{confirm},{ip},,,,,,,,{confirm},{100000000 + i},e{i:09x},,"""blog"""\n'
            )
            if len(rows) >= 50_000:
                out.writelines(rows)
                rows.clear()
        out.writelines(rows)
    return path


def one_import(ws: Workspace, name: str, csv: Path) -> dict[str, object]:
    db = ws.path(f"{name}.db")
    env = child_env(database_url=db_url(db), secret_key="bench-secret-key-0123456789")
    result = run_subscribe(["import", str(csv), "--confirmed"], env, ws.dir, timeout=1800)
    result.check(f"import {name}")
    log(f"{name}: {result.stdout.strip().splitlines()[-1]}")
    return {
        "wall_s": result.wall,
        "cpu_s": result.cpu_seconds,
        "maxrss_mb": result.maxrss_mb,
        "file_mb": csv.stat().st_size / 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="a tiny size that runs in seconds")
    parser.add_argument("--keep", action="store_true", help="keep the workspace")
    args = parser.parse_args()
    count = 2_000 if args.smoke else args.readers
    info = machine()
    print(machine_line(info))
    results: dict[str, object] = {"machine": info, "readers": count}
    with Workspace("imports", keep=args.keep) as ws:
        log(f"writing {count} rows twice")
        plain = write_subscribers(ws.path("plain.csv"), count)
        mailchimp = write_mailchimp(ws.path("mailchimp.csv"), count)
        small = write_mailchimp(ws.path("mailchimp-small.csv"), max(count // 10, 1))
        try:
            runs = {
                "plain email,name": one_import(ws, "plain", plain),
                "mailchimp": one_import(ws, "mailchimp", mailchimp),
                "mailchimp, a tenth": one_import(ws, "small", small),
            }
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    results["runs"] = runs
    for label, data in runs.items():
        print(
            f"{label:>20}: {data['wall_s']:6.1f} s wall, {data['cpu_s']:6.1f} s CPU, "
            f"peak RSS {data['maxrss_mb']:6.1f} MB, file {data['file_mb']:6.1f} MB"
        )
    wall = float(runs["mailchimp"]["wall_s"])  # type: ignore[index]
    verdict = "met" if wall < TARGET_S else "NOT met"
    print(f"mailchimp import of {count} rows: {wall:.1f} s (target < {TARGET_S:g} s) [{verdict}]")
    save_results("imports", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
