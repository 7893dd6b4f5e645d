"""The package layout keeps the data flow one-way: a package imports only those below it.

    errors < config, content, refusals, devmail < db < readers < mail < sending
           < posts, bounces, doctor < web < cli

``posts``, ``bounces`` and ``doctor`` are peers: none imports another. Read from the source with
``ast``, lazy imports inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "subscribe"
RANK = {
    "errors": 0,
    "config": 1,
    "content": 1,
    "refusals": 1,
    "devmail": 1,
    "db": 2,
    "readers": 3,
    "mail": 4,
    "sending": 5,
    "posts": 6,
    "bounces": 6,
    "doctor": 6,
    "web": 7,
    "cli": 8,
    "__init__": 9,
    "__main__": 9,
}


def _imported_parts(path: Path) -> list[tuple[int, str]]:
    """(line, top-level part of subscribe) for every import of ours in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "subscribe":
                continue
            if len(parts) > 1:
                found.append((node.lineno, parts[1]))
            else:
                found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "subscribe" and len(parts) > 1:
                    found.append((node.lineno, parts[1]))
    return found


def _modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.relative_to(PACKAGE).parts
    )


def test_every_top_level_entry_has_a_rank() -> None:
    entries = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if path.name != "__pycache__" and (path.suffix == ".py" or path.is_dir())
    }
    assert entries == set(RANK)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    upward = [
        f"line {line}: {here} imports {target}"
        for line, target in _imported_parts(path)
        if target != here and RANK[target] >= RANK[here]
    ]
    assert not upward


def test_relative_imports_stay_inside_their_package() -> None:
    beyond = []
    for path in _modules():
        top_level_module = len(path.relative_to(PACKAGE).parts) == 1
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (
                node.level > 1 or (node.level == 1 and top_level_module)
            ):
                beyond.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not beyond


def test_use_cases_import_no_web_or_terminal_library() -> None:
    """Web and CLI adapters call the use cases; the use cases never import FastAPI or Typer."""
    adapters = ("fastapi", "starlette", "typer", "click", "rich", "uvicorn")
    offenders = []
    for path in _modules():
        if path.relative_to(PACKAGE).parts[0] in ("web", "cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.relative_to(PACKAGE)}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0] in adapters
            ]
    assert not offenders


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in _modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long
