#!/usr/bin/env python3
"""Fails if a tracked file refers to a path outside the repository.

A clone on its own must build and pass its tests, so nothing tracked may read a sibling folder of the checkout
(such as a `shared/` directory next to it). Every relative path that climbs with `../` is resolved from the file's
own folder and from each folder above it up to the repository root (a crate's `CARGO_MANIFEST_DIR`, a script's
`cd`), and it passes if one of those lands inside the repository. A path that only makes sense outside fails, and so
does any mention of a `shared` folder beside the checkout.

Usage: scripts/check-self-contained.py   (from anywhere inside the repository; exit status 1 lists the offenders)
"""

import pathlib
import re
import subprocess
import sys

# `../` one or more times, then a path of ordinary characters.
CLIMBING_PATH = re.compile(r"(?:\.\./)+[A-Za-z0-9_.\-/]*")
SIBLING_SHARED = re.compile(r"\.\./(?:\.\./)*shared\b")


def tracked_files(root: pathlib.Path) -> list[pathlib.Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True).stdout
    return [root / name for name in out.decode().split("\0") if name]


def stays_inside(root: pathlib.Path, file: pathlib.Path, reference: str) -> bool:
    folder = file.parent
    while True:
        target = (folder / reference).resolve()
        if target == root or root in target.parents:
            return True
        if folder == root:
            return False
        folder = folder.parent


def main() -> int:
    root = pathlib.Path(
        subprocess.run(["git", "rev-parse", "--show-toplevel"], check=True, capture_output=True, text=True).stdout.strip()
    ).resolve()
    this = pathlib.Path(__file__).resolve()
    problems = []
    for file in tracked_files(root):
        if file.resolve() == this or not file.is_file():
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary: no paths to follow
        for number, line in enumerate(text.splitlines(), start=1):
            where = f"{file.relative_to(root)}:{number}"
            if SIBLING_SHARED.search(line):
                problems.append(f"{where}: refers to a shared/ folder beside the checkout: {line.strip()}")
                continue
            for match in CLIMBING_PATH.finditer(line):
                if not stays_inside(root, file, match.group(0)):
                    problems.append(f"{where}: {match.group(0)} points outside the repository")
    if problems:
        print("Tracked files refer to paths outside the repository (a clone on its own would not have them):")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    print("self-contained: no tracked file refers outside the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main())
