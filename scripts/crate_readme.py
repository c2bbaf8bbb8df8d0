#!/usr/bin/env python3
"""Writes the crates.io README of each published crate from its crate docs.

`core/src/lib.md` and `sdk-rust/src/lib.md` are the crate-level docs
(`#![doc = include_str!("lib.md")]`): their examples are doctests, with
setup lines hidden the rustdoc way (`# ` in a Rust code block), and their
links to items are intra-doc links (`` [`Validator`] ``). crates.io shows a
crate's `readme` as plain Markdown, where hidden lines show and intra-doc
links go nowhere. So each crate's README.md is generated from its lib.md:

- in Rust code blocks, the lines rustdoc hides are dropped (`##` is a
  literal `#`, as rustdoc reads it);
- every intra-doc link gets a definition pointing at the item's search on
  docs.rs (valid for any item path, whatever its kind).

    python3 scripts/crate_readme.py           # writes the READMEs
    python3 scripts/crate_readme.py --check   # fails if one is out of date (CI)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = {"core": "keyseal_core", "sdk-rust": "keyseal"}
HEADER = "<!-- Generated from src/lib.md by scripts/crate_readme.py: edit that file. -->\n\n"

FENCE = re.compile(r"^(\s*)(```+|~~~+)(.*)$")
# [`path`] not followed by ( or [ (an inline or reference link of its own).
INTRA = re.compile(r"\[`([A-Za-z_][A-Za-z0-9_:]*(?:\(\))?)`\](?![(\[])")
DEFINED = re.compile(r"^\[`([^`]+)`\]:", re.M)


def is_rust(info: str) -> bool:
    """Whether rustdoc reads a fenced block with this info string as Rust,
    as rustdoc's `LangString::parse` decides it, word by word: a Rust block
    unless a word it does not know came, and no Rust word came after it
    (`rust` always counts; `should_panic`, `no_run`, `ignore` and
    `ignore-<target>` only before any unknown word; `test_harness`,
    `compile_fail`, `standalone_crate` and error codes such as `E0308`
    keep what was seen; `edition20xx` and `{...}` attributes count for
    neither)."""
    seen_rust = seen_other = False
    for word in re.split(r"[,\s]+", re.sub(r"\{[^}]*\}", " ", info).strip()):
        if not word or word.startswith("edition"):
            continue
        if word == "rust":
            seen_rust = True
        elif word in {"should_panic", "no_run", "ignore"} or word.startswith("ignore-"):
            seen_rust = not seen_other
        elif word in {"test_harness", "compile_fail", "standalone_crate"} or re.fullmatch(r"E\d{4}", word):
            seen_rust = not seen_other or seen_rust
        else:
            seen_other = True
    return not seen_other or seen_rust


def readme(lib_md: str, crate: str) -> str:
    out: list[str] = []
    fence: str | None = None
    rust = False
    for line in lib_md.splitlines():
        m = FENCE.match(line)
        if fence is None and m:
            fence, rust = m.group(2), is_rust(m.group(3))
            out.append(line)
            continue
        if fence is not None and m and m.group(2).startswith(fence) and not m.group(3).strip():
            fence = None
            out.append(line)
            continue
        if fence is not None and rust:
            stripped = line.lstrip()
            if stripped == "#" or stripped.startswith("# "):
                continue
            if stripped.startswith("##"):
                line = line.replace("##", "#", 1)
        out.append(line)
    text = "\n".join(out).rstrip("\n") + "\n"
    # Intra-doc links, outside code blocks.
    names: list[str] = []
    in_code = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            names += [n for n in INTRA.findall(line) if n not in names]
    defined = set(DEFINED.findall(text))
    defs = [
        f"[`{n}`]: https://docs.rs/{crate.replace('_', '-')}/latest/{crate}/?search={n.removesuffix('()')}"
        for n in names
        if n not in defined
    ]
    if defs:
        text += "\n" + "\n".join(defs) + "\n"
    return HEADER + text


def self_test() -> None:
    """rustdoc's reading of info strings, and hidden lines dropped from Rust
    blocks only (run by --check)."""
    for info, rust in [("", True), ("rust", True), ("no_run", True), ("rust,ignore", True),
                       ("ignore-wasm32", True), ("test_harness", True), ("edition2024", True),
                       ("compile_fail,E0308", True), ("{.example}", True), ("text", False),
                       ("toml", False), ("sh", False), ("text,ignore", False), ("ignore,text", True),
                       ("text,edition2021", False), ("text,rust", True), ("{ .class }", True),
                       ("text,test_harness", False)]:
        assert is_rust(info) == rust, f"is_rust({info!r}) should be {rust}"
    sample = "```ignore-wasm32\n# use x;\nlet a = 1;\n```\n\n```text\n# a heading\n```\n"
    got = readme(sample, "x")
    assert "# use x;" not in got and "let a = 1;" in got and "# a heading" in got, got


def main() -> int:
    check = "--check" in sys.argv[1:]
    if check:
        self_test()
    stale = []
    for directory, crate in CRATES.items():
        lib_md = (ROOT / directory / "src" / "lib.md").read_text()
        want = readme(lib_md, crate)
        path = ROOT / directory / "README.md"
        have = path.read_text() if path.exists() else ""
        if have != want:
            if check:
                stale.append(str(path.relative_to(ROOT)))
            else:
                path.write_text(want)
                print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date (run python3 scripts/crate_readme.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    if check:
        print("crate READMEs: up to date with their src/lib.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
