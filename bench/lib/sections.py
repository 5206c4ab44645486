#!/usr/bin/env python3
"""Sections of bench/RESULTS.md that other benchmarks than bench/run write (`## TITLE` to the next
`## ` heading or the end of the file).

    sections.py carry OLD NEW TITLE...   copy each titled section of OLD to the end of NEW, unless
                                          NEW has it already (bench/run keeps bench/fleet's section)

bench/fleet imports replace_section() to write its own section in place.
"""
import os
import sys


def _split(text, title):
    """(before, section, after) of `## title`; section is "" when absent."""
    lines = text.splitlines(keepends=True)
    start = None
    for i, ln in enumerate(lines):
        if start is None and ln.rstrip("\n") == f"## {title}":
            start = i
        elif start is not None and ln.startswith("## "):
            return "".join(lines[:start]), "".join(lines[start:i]), "".join(lines[i:])
    if start is None:
        return text, "", ""
    return "".join(lines[:start]), "".join(lines[start:]), ""


def get_section(text, title):
    return _split(text, title)[1]


def replace_section(text, title, section):
    """text with `## title` replaced by section (which starts with that heading), or section
    appended at the end when text has none."""
    section = section.rstrip("\n") + "\n"
    before, old, after = _split(text, title)
    if old:
        return before + section + ("\n" + after if after else "")
    return text.rstrip("\n") + "\n\n" + section if text.strip() else section


def main():
    if len(sys.argv) < 5 or sys.argv[1] != "carry":
        sys.exit(__doc__)
    old_path, new_path, titles = sys.argv[2], sys.argv[3], sys.argv[4:]
    if not os.path.exists(old_path):
        return
    old = open(old_path, encoding="utf-8").read()
    new = open(new_path, encoding="utf-8").read()
    for title in titles:
        sec = get_section(old, title)
        if sec and not get_section(new, title):
            new = replace_section(new, title, sec)
    open(new_path, "w", encoding="utf-8").write(new)


if __name__ == "__main__":
    main()
