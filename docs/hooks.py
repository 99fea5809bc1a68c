"""MkDocs hooks of the hmmjax site (``hooks:`` in mkdocs.yml): the reference pages that are
generated from the code at build time, so that they cannot drift from it.

A page asks for a generated part with a marker comment on a line of its own:

    <!-- generated: config-reference -->   every config key: what ``hmmjax config`` prints
    <!-- generated: cli-reference -->      ``--help`` of ``hmmjax`` and of each subcommand
    <!-- generated: public-names -->       the names re-exported by ``hmmjax``, with links
    <!-- generated: benchmark-results -->  benchmarks/RESULTS.md, less its title

An unknown marker stops the build (a typo must not leave an empty page), and so does a
mistyped one: a line outside code blocks that holds ``<!--`` then ``generated`` (spaces
between them allowed, any case) but is not exactly of the form above. Markers inside
fenced code blocks (```` ``` ```` or ``~~~``) are left as they are, so a page can show one.

The math of the pages (``$...$`` and ``$$...$$``, kept apart from markdown by
pymdownx.arithmatex) is turned into MathML here, at build time, so that the site needs no
script and no network to show it: browsers draw MathML themselves. A formula that
latex2mathml cannot convert stops the build, naming the page and the formula, and so does
any math that arithmatex marked and this hook did not convert (raw TeX left in the page).
"""

from __future__ import annotations

import argparse
import html
import importlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import hmmjax
from hmmjax.cli import build_parser
from hmmjax.config.settings import config_reference_markdown

ROOT = Path(__file__).resolve().parents[1]  # the repository, where mkdocs.yml is
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
LOOSE_MARKER = re.compile(r"<!--\s*generated", re.IGNORECASE)  # what a typo still matches
FENCE = re.compile(r"^ *(```+|~~~+)")  # the opening or closing line of a fenced code block
HELP_COLUMNS = "92"  # the width argparse wraps --help to (it reads $COLUMNS)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# what pymdownx.arithmatex (generic mode) writes for inline and display math
INLINE_MATH = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.DOTALL)
DISPLAY_MATH = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.DOTALL)
ROW_SPACING = re.compile(r"\\\\\[[^\]]*\]")  # "\\[4pt]": latex2mathml has no row spacing
# latex2mathml has no "aligned": the same rows as an array of right- and left-aligned
# columns (the alignment is set by the columnalign of each cell, see extra.css)
ALIGNED = re.compile(r"\\(begin|end)\{aligned\}")
ALIGNED_AS_ARRAY = {"begin": r"\begin{array}{rlrlrl}", "end": r"\end{array}"}
TOC_MATH = re.compile(r"\\\((.*?)\\\)")  # a heading's math, as the toc extension leaves it
LEFT_MATH = 'class="arithmatex"'  # arithmatex's math that the hook has not converted
# words ending in a period that do not end a sentence (summaries of the API index)
ABBREVIATIONS = ("i.e.", "e.g.", "i.i.d.", "etc.", "cf.", "vs.")


def config_reference(root: Path) -> str:
    """The table of every config key and the [grid] paragraph (``hmmjax config``)."""
    return config_reference_markdown()


def _help(parser: argparse.ArgumentParser) -> str:
    """``parser.format_help()`` at a fixed width, without terminal colours."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        text = parser.format_help()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return ANSI.sub("", text).rstrip()


def cli_reference(root: Path) -> str:
    """``hmmjax --help``, then one section per subcommand with its ``--help``."""
    parser = build_parser()
    parts = ["## `hmmjax`", "", "```text", _help(parser), "```", ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                parts += [f"## `hmmjax {name}`", "", "```text", _help(sub), "```", ""]
    return "\n".join(parts)


def _summary(obj: object) -> str:
    """The first sentence of ``obj``'s docstring, on one line: up to the first period that
    is followed by a space (or ends the paragraph) and ends neither an abbreviation
    (``ABBREVIATIONS``: "i.i.d.", "e.g.", ...) nor a run of periods ("start .. stop");
    the whole first paragraph if there is none."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    paragraph = " ".join(doc.split("\n\n")[0].split())
    sentence = paragraph
    for end in re.finditer(r"(?<!\.)\.(?=\s|$)", paragraph):
        word = paragraph[: end.end()].split()[-1].lstrip("(\"'`").lower()
        if word not in ABBREVIATIONS:
            sentence = paragraph[: end.end()]
            break
    return sentence.rstrip(":;").replace("|", "\\|")


def public_names(root: Path) -> str:
    """A table of ``hmmjax``'s re-exported names, each linked to where the API reference
    renders it (its package's page; for the lazily exported packages, the module that
    defines it)."""
    rows = ["| name | from | what it is |", "| --- | --- | --- |"]
    for name, package in hmmjax._PUBLIC.items():
        face = importlib.import_module(package)
        lazy = getattr(face, "_PUBLIC", None)
        target = f"{lazy[name]}.{name}" if lazy else f"{package}.{name}"
        summary = _summary(getattr(hmmjax, name))
        rows.append(f"| [`{name}`][{target}] | `{package}` | {summary} |")
    return "\n".join(rows)


def benchmark_results(root: Path) -> str:
    """The tables of benchmarks/RESULTS.md (its own ``# title`` left out: the page has
    one), as they are in the repository when the site is built."""
    text = (root / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    return re.sub(r"\A# [^\n]*\n", "", text).strip() + "\n"


GENERATORS: dict[str, Callable[[Path], str]] = {
    "config-reference": config_reference,
    "cli-reference": cli_reference,
    "public-names": public_names,
    "benchmark-results": benchmark_results,
}


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replace each marker of the page by what its generator writes (not in fenced code
    blocks); an unknown or mistyped marker is an error."""
    root = Path(config.config_file_path).parent if config is not None else ROOT
    lines, fence = markdown.split("\n"), None
    for i, line in enumerate(lines):
        if fence is not None:  # inside a code block, until its closing fence
            closing = line.strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                fence = None
            continue
        opening = FENCE.match(line)
        if opening:
            fence = opening.group(1)
            continue
        match = MARKER.fullmatch(line)
        if match is None:
            if LOOSE_MARKER.search(line):
                raise ValueError(
                    f"{page.file.src_path}:{i + 1}: a mistyped marker {line.strip()!r} "
                    "(a marker is a line of its own: <!-- generated: NAME -->)"
                )
            continue
        kind = match.group(1)
        if kind not in GENERATORS:
            raise ValueError(
                f"{page.file.src_path}:{i + 1}: unknown marker 'generated: {kind}' "
                f"(known: {', '.join(GENERATORS)})"
            )
        lines[i] = GENERATORS[kind](root)
    return "\n".join(lines)


def on_page_content(content: str, page, config, files) -> str:
    """The page's math as MathML (inline, and display blocks)."""
    # only the site build needs it (the [docs] extra): the tests import the generators
    from latex2mathml.converter import convert as latex_to_mathml  # noqa: PLC0415

    def mathml(display: str) -> Callable[[re.Match], str]:
        def convert(match: re.Match) -> str:
            tex = ROW_SPACING.sub(r"\\\\", html.unescape(match.group(1)).strip())
            tex = ALIGNED.sub(lambda m: ALIGNED_AS_ARRAY[m.group(1)], tex)
            try:
                math = latex_to_mathml(tex, display=display)
            except Exception as err:  # latex2mathml raises its own exception types
                raise ValueError(
                    f"{page.file.src_path}: cannot render the formula {tex!r}: {err}"
                ) from err
            return f'<div class="math-block">{math}</div>' if display == "block" else math

        return convert

    content = DISPLAY_MATH.sub(mathml("block"), content)
    content = INLINE_MATH.sub(mathml("inline"), content)
    if LEFT_MATH in content:  # a form of arithmatex's output the patterns above missed
        at = content.index(LEFT_MATH)
        raise ValueError(
            f"{page.file.src_path}: math left unconverted (raw TeX in the page): "
            f"{content[at : at + 120]!r}"
        )
    items = list(page.toc)  # headings with math: the table of contents shows them too
    while items:
        item = items.pop()
        item.title = TOC_MATH.sub(mathml("inline"), item.title)
        items.extend(item.children)
    return content
