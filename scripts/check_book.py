#!/usr/bin/env python3
"""Checks that the book's links and images resolve (standard library only; CI runs it).

For every chapter under book/src: each relative link or image target exists (relative to the
chapter), each `#anchor` names a heading of its chapter (mdBook's slugs), every chapter is
listed in SUMMARY.md, and no chapter names a path of the machine that built it (/tmp/, /work/,
/home/, /root/). Links to other sites are not fetched (CI has no internet).

Usage: python3 scripts/check_book.py [book/src]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:tmp|work|home|root)/[\w.-]")


def slug(heading: str) -> str:
    """mdBook's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"`|\*|_(?=\w)|(?<=\w)_", "", heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return "".join(c if c.isalnum() or c in "-_" else "-" if c == " " else "" for c in text)


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def anchors(path: Path) -> set[str]:
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            found.add(slug(match.group(2)))
    return found


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "book" / "src"
    chapters = sorted(src.rglob("*.md"))
    problems: list[str] = []
    summary = (src / "SUMMARY.md").read_text(encoding="utf-8")
    listed = {m.split("#")[0] for m in LINK.findall(summary)}
    for chapter in chapters:
        name = chapter.relative_to(src).as_posix()
        if name != "SUMMARY.md" and name not in listed:
            problems.append(f"{name}: not listed in SUMMARY.md")
        text = chapter.read_text(encoding="utf-8")
        for number, line in prose_lines(text):
            where = f"{name}:{number}"
            if MACHINE_PATH.search(line):
                problems.append(f"{where}: names a path of the machine that built it: {line.strip()}")
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
                    continue
                file, _, anchor = target.partition("#")
                linked = (chapter.parent / file).resolve() if file else chapter
                if not linked.exists():
                    problems.append(f"{where}: `{target}` does not exist")
                elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                    problems.append(f"{where}: `{target}`: no heading `#{anchor}` there")
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"book: {len(chapters)} chapters checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
