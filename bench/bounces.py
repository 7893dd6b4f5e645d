"""Issue 12's five figures for the bounce rules, on the project's own corpus.

    uv run python bench/bounces.py [--flufl DIR]

Figures (targets from issue 12):

- address recall: bounced recipients found, of those expected (>= 95 %);
- removal precision: of the readers removed at once, the share really gone (>= 98 %);
- removal recall: of the really gone, the share removed at once (>= 90 %);
- sender-side refusals held against a reader: counted or removed (<= 5 %);
- non-bounces counted: auto-replies, delivery reports, complaints read as bounces (0).

"Really gone" and "about the sender" come from the corpus table
(``tests/bounces/corpus_reasons.py``), written by hand for each message. ``--flufl DIR``
also runs over the test data of a flufl.bounce source tree (``DIR`` holds
``test_detectors.py`` and ``data/``): it measures address recall and delay warnings
counted only, since that corpus labels addresses, not reasons.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "bounces"))

from corpus_reasons import COMPLAINT, CORPUS, EXPECTED_REASONS  # noqa: E402

from subscribe.bounces.classify import classify  # noqa: E402
from subscribe.refusals import ACTIONS, Action  # noqa: E402


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} = {100 * part / whole:.1f} %" if whole else "0/0"


def own_corpus() -> None:
    names = sorted(EXPECTED_REASONS)
    verdicts = {v.file: v for v in classify((n, (CORPUS / n).read_bytes()) for n in names)}
    expected_total = found = 0
    removed = removed_gone = gone = gone_removed = sender = sender_held = 0
    non_bounces = non_bounces_counted = 0
    for name in names:
        expected, verdict = EXPECTED_REASONS[name], verdicts[name]
        got = {row.address.lower(): row for row in verdict.rows}
        if expected is None or expected == COMPLAINT:
            non_bounces += 1
            non_bounces_counted += any(row.action != Action.IGNORE for row in verdict.rows)
            continue
        assert not isinstance(expected, str)
        truth = {address.lower(): reason for address, reason in expected}
        expected_total += len(truth)
        found += len(truth.keys() & got.keys())
        for address, row in got.items():
            really_gone = ACTIONS.get(truth.get(address)) == Action.REMOVE  # type: ignore[arg-type]
            if row.action == Action.REMOVE:
                removed += 1
                removed_gone += really_gone
        for address, reason in truth.items():
            row = got.get(address)
            if ACTIONS[reason] == Action.REMOVE:
                gone += 1
                gone_removed += row is not None and row.action == Action.REMOVE
            elif ACTIONS[reason] == Action.IGNORE:
                sender += 1
                sender_held += row is not None and row.action != Action.IGNORE
    print(f"corpus: {len(names)} messages in {CORPUS.relative_to(ROOT)}")
    print(f"address recall: {_share(found, expected_total)} (target >= 95 %)")
    print(f"removed at once and really gone: {_share(removed_gone, removed)} (target >= 98 %)")
    print(f"really gone and removed at once: {_share(gone_removed, gone)} (target >= 90 %)")
    print(
        f"sender-side refusals held against a reader: {_share(sender_held, sender)} (target <= 5 %)"
    )
    print(f"non-bounces counted: {non_bounces_counted} of {non_bounces} (target 0)")


def flufl_corpus(tests: Path) -> None:
    tree = ast.parse((tests / "test_detectors.py").read_text())
    table = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DETECTORS"
    )
    expected: dict[str, tuple[set[str], bool]] = {}
    for module, name, addresses, temporary in table:
        if module == "groupwise" and name == "groupwise_02.txt":
            continue  # listed twice: Exchange's own reading of it is the one kept
        expected[name] = ({a.decode().lower() for a in addresses}, temporary)
    messages = ((name, (tests / "data" / name).read_bytes()) for name in sorted(expected))
    total = found = warnings = warnings_counted = 0
    for verdict in classify(messages):
        addresses, temporary = expected[verdict.file]
        got = {row.address.lower() for row in verdict.rows}
        if temporary:
            warnings += 1
            warnings_counted += bool(got)
            continue
        total += len(addresses)
        found += len(addresses & got)
    print(f"flufl.bounce corpus: {len(expected)} messages in {tests}")
    print(f"flufl address recall: {_share(found, total)}")
    print(f"flufl delay warnings counted: {warnings_counted} of {warnings}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flufl", type=Path, help="flufl.bounce's tests/ folder")
    parser.add_argument("--smoke", action="store_true", help="the same run (it is quick)")
    args = parser.parse_args()
    own_corpus()
    if args.flufl:
        flufl_corpus(args.flufl)


if __name__ == "__main__":
    main()
