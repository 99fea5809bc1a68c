"""The documentation runs: every code block of docs/ and the README is checked against the
code, so that the site cannot drift from the package.

- ``python`` blocks are executed, page by page, in order and in one namespace per page (a
  page is one session of a reader who types its examples in turn), in a temporary folder
  that holds a link to ``configs/``. The examples are written at small sizes, so this costs
  seconds, not the minutes of the runs they stand for.
- ``toml`` blocks are parsed and validated as configs (``config_from_dict``: a fragment
  is completed with the defaults); one marked ``<!-- same-as: configs/NAME.toml -->``
  must hold the settings of that file.
- ``bash`` lines that call ``hmmjax`` are parsed by the command's own parser (up to a
  pipe: ``| tee log`` is left out), and the configs, scripts and test files they name must
  exist. Other commands (``pip``, ``pytest``, ``mkdocs``) are not run. A synopsis line
  (``[--dt DT]`` or ``...`` outside quotes) is not parsed; their number is checked.

A block that cannot run here (a GPU, several hosts, a file a reader must bring) is marked
by a comment on the line just before its fence, with the reason:
``<!-- skip-example: needs a GPU -->``. ``text`` blocks and fences without a language
(program output, error messages, synopses) are not checked at all. Every other block is
checked or explicitly skipped: a fence in a language that is not in ``LANGUAGES`` fails the
test (a ```` ```py ```` typo would otherwise never run), every skip needs its reason, and
the number of executed python blocks is checked.

The site itself (``mkdocs build --strict``: links, references, docstrings) is built by
``.ci/run``.
"""

from __future__ import annotations

import argparse
import importlib.util
import pkgutil
import re
import shlex
import sys
import tomllib
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

EXECUTED = ("python",)
"""Fence languages whose blocks are executed."""
LANGUAGES = {"python", "toml", "bash", "text", ""}
"""Every language a fence may name; anything else is an error."""
SKIP = re.compile(r"^<!--\s*skip-example:(?P<reason>.*?)-->\s*$")
SAME_AS = re.compile(r"^<!--\s*same-as:\s*(?P<path>\S+)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<info>[^`]*?)\s*$")
MIN_EXECUTED = 22
"""At least this many python blocks run: the number that runs now, a guard against a
parser that quietly stops finding them. Adding blocks is fine; removing one (or marking it
skip-example) needs this number lowered, deliberately, in the same change."""


@dataclass(frozen=True)
class Block:
    """One fenced code block of a markdown file."""

    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skip: str | None  # the reason of a skip-example marker, "" for a marker without one
    same_as: str | None = None  # a repository file the block copies (same-as marker)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    """The README and every markdown page of docs/."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def blocks_of(path: Path) -> list[Block]:
    """The fenced code blocks of ``path``, in order (fences may be indented, e.g. inside a
    list item: the body is dedented by the fence's indent)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        language = m["info"].split()[0].strip("{}.").lower() if m["info"] else ""
        previous = next((s.strip() for s in reversed(lines[:i]) if s.strip()), "")
        marker = SKIP.match(previous)
        copy = SAME_AS.match(previous)
        body, j = [], i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence) and set(lines[j].strip()) <= set(fence[0])
        ):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        if j == len(lines):
            raise ValueError(f"{path}:{i + 1}: a code fence that is never closed")
        reason = marker["reason"].strip() if marker else None
        code = "\n".join(body) + "\n"
        blocks.append(Block(path, i + 1, language, code, reason, copy and copy["path"]))
        i = j + 1
    return blocks


ALL_BLOCKS = [b for path in doc_files() for b in blocks_of(path)]
PAGES_WITH_PYTHON = sorted(
    {b.path for b in ALL_BLOCKS if b.language in EXECUTED and b.skip is None},
    key=lambda p: str(p),
)
"""The pages with at least one python block to run (a page whose blocks are all skipped,
e.g. the GPU guide, would only be a test that passes having run nothing; its skips are
checked by ``test_blocks_are_known_and_skips_are_explicit``)."""


def test_blocks_are_known_and_skips_are_explicit():
    """Every fence names a known language; every skip gives its reason; enough run."""
    unknown = [f"{b.where}: ```{b.language}" for b in ALL_BLOCKS if b.language not in LANGUAGES]
    assert not unknown, "fences in a language the docs test does not know:\n" + "\n".join(unknown)
    no_reason = [b.where for b in ALL_BLOCKS if b.skip == ""]
    assert not no_reason, "skip-example markers without a reason: " + ", ".join(no_reason)
    python = [b for b in ALL_BLOCKS if b.language in EXECUTED]
    executed = [b for b in python if b.skip is None]
    skipped = [b for b in python if b.skip is not None]
    print(f"python blocks: {len(executed)} executed, {len(skipped)} skipped")
    for b in skipped:
        print(f"  skipped {b.where}: {b.skip}")
    assert len(executed) >= MIN_EXECUTED
    assert any(b.path == README for b in executed), "the README's examples must run too"


@pytest.fixture
def registries():
    """Restore the registries of data models and trainers (and the config choices they
    extend) after a page that registers its own, as the extending guide does."""
    from hmmjax.config import schema
    from hmmjax.data import base as data_base
    from hmmjax.train import base as train_base

    saved = (dict(data_base._REGISTRY), dict(train_base._REGISTRY),
             {s: dict(options) for s, options in schema.SCHEMA.items()})  # fmt: skip
    yield
    data_base._REGISTRY.clear()
    data_base._REGISTRY.update(saved[0])
    train_base._REGISTRY.clear()
    train_base._REGISTRY.update(saved[1])
    for section, options in saved[2].items():
        schema.SCHEMA[section].clear()
        schema.SCHEMA[section].update(options)


@pytest.mark.parametrize(
    "page", PAGES_WITH_PYTHON, ids=[str(p.relative_to(ROOT)) for p in PAGES_WITH_PYTHON]
)
def test_python_examples_run(page, tmp_path, monkeypatch, registries):
    """The python blocks of ``page`` run, in order, in one namespace, without error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (tmp_path / "configs").symlink_to(ROOT / "configs", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    # a module of its own, as a reader's script would be: classes defined by an example
    # (equinox modules are dataclasses) look their module up in sys.modules
    module = types.ModuleType(f"docs_example_{page.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    try:
        for block in blocks_of(page):
            if block.language not in EXECUTED or block.skip is not None:
                continue
            code = compile("\n" * (block.line) + block.code, str(block.path), "exec")
            try:
                exec(code, namespace)
            except Exception as err:
                raise AssertionError(
                    f"the example at {block.where} fails: {type(err).__name__}: {err}"
                ) from err
    finally:
        plt.close("all")


def test_toml_examples_are_valid_configs():
    """Each toml block is a config, or part of one, that validates; a block marked
    ``<!-- same-as: configs/NAME.toml -->`` holds the same settings as that file."""
    from hmmjax.config import ConfigError, config_from_dict

    checked = 0
    for block in ALL_BLOCKS:
        if block.language != "toml" or block.skip is not None:
            continue
        try:
            settings = tomllib.loads(block.code)
            config_from_dict(settings)
        except (tomllib.TOMLDecodeError, ConfigError) as err:
            raise AssertionError(f"the config at {block.where} is not valid: {err}") from err
        if block.same_as is not None:
            with open(ROOT / block.same_as, "rb") as fh:
                assert settings == tomllib.load(fh), f"{block.where} differs from {block.same_as}"
        checked += 1
    assert checked > 0


def _commands(block: Block) -> list[str]:
    """The shell commands of a bash block (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n\s*", " ", block.code)
    commands = []
    for line in text.splitlines():
        line = line.split(" #")[0].strip()
        if line and not line.startswith("#"):
            commands += [c.strip() for c in line.split("&&")]
    return commands


QUOTED = re.compile(r"'[^']*'|\"(?:[^\"\\\\]|\\\\.)*\"")
"""A quoted word of a shell command (its brackets, pipes and dots are the argument's)."""
SYNOPSIS = re.compile(r"\[-|\.\.\.")
"""Outside quotes, the mark of a synopsis rather than a command: ``[--dt DT]``, ``...``."""
SYNOPSES = 1
"""The number of synopsis lines in the docs' bash blocks (docs/guides/ode.md): exact, so
that a command is not quietly taken for a synopsis and left unchecked."""


def _command_words(command: str) -> list[str] | None:
    """The words of the shell command ``command`` up to a pipe (``| tee log`` is not the
    command's), or None for a synopsis (``SYNOPSIS`` outside quotes)."""
    outside = QUOTED.sub(lambda m: " " * len(m[0]), command)
    if SYNOPSIS.search(outside):
        return None
    pipe = outside.find("|")
    return shlex.split(command if pipe < 0 else command[:pipe])


def test_command_words():
    """Quoted brackets and a pipe suffix leave a command a command; a synopsis is one."""
    words = _command_words("hmmjax run c.toml --set 'grid.lr=[0.1,0.2]' | tee run.log")
    assert words == ["hmmjax", "run", "c.toml", "--set", "grid.lr=[0.1,0.2]"]
    assert _command_words('hmmjax run c.toml --set "output.out=a|b.nc"')[-1] == "output.out=a|b.nc"
    assert _command_words("hmmjax ode S.npz --lr LR [--dt DT] --out F.nc") is None
    assert _command_words("hmmjax config [CONFIG.toml ...]") is None


def test_shell_examples_match_the_cli():
    """``hmmjax ...`` lines parse with the real parser; the files they name exist."""
    from hmmjax.cli import build_parser

    parser = build_parser()
    checked, synopses = 0, []
    for block in ALL_BLOCKS:
        if block.language != "bash" or block.skip is not None:
            continue
        for command in _commands(block):
            for word in shlex.split(command):  # configs, scripts and tests of this repository
                if re.match(r"^(configs|benchmarks|tests)/[\w./-]+\.(toml|py)$", word):
                    assert (ROOT / word).is_file(), f"{block.where}: {word} does not exist"
            words = _command_words(command)
            if words is None:
                synopses.append(f"{block.where}: {command}")
                continue
            at = next((i for i, w in enumerate(words) if w.split("/")[-1] == "hmmjax"), None)
            if at is None:
                continue
            args = words[at + 1 :]
            try:
                parser.parse_args(args)
            except SystemExit as err:
                raise AssertionError(f"{block.where}: `{command}` is not a valid command") from err
            checked += 1
    assert checked > 0
    assert len(synopses) == SYNOPSES, "synopsis lines (not parsed):\n" + "\n".join(synopses)


TWO_COMMANDS = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e . && "
    ".venv/bin/hmmjax run configs/quickstart.toml",
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && "
    ".venv/bin/python -m pytest -n 2",
)


def test_readme_keeps_the_two_commands_and_its_links_work():
    """The README's install-and-run and install-and-test commands are unchanged (users and
    CI rely on them), and its relative links point to files of the repository."""
    text = README.read_text(encoding="utf-8")
    for command in TWO_COMMANDS:
        assert command in text, f"the README lost the command: {command}"
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert local, "the README links into the documentation"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


def _hooks():
    """docs/hooks.py, the generators of the site's reference pages (no mkdocs needed)."""
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(src_path: str):
    """A stand-in for the mkdocs page the hooks are given (only its path is read)."""
    return type("Page", (), {"file": type("File", (), {"src_path": src_path})()})()


def _generated(name: str) -> str:
    """The markdown of docs/NAME after the hook's markers are replaced."""
    return _hooks().on_page_markdown((DOCS / name).read_text(encoding="utf-8"), _page(name),
                                     None, None)  # fmt: skip


def test_config_reference_page_lists_every_key():
    """The config reference page, as the hook generates it, has a row for every key of the
    schema (``section.key``) and names every grid axis."""
    from hmmjax.config.grid import AXES
    from hmmjax.config.schema import SCHEMA

    text = _generated("reference/config.md")
    missing = [f"{s}.{k}" for s, options in SCHEMA.items() for k in options
               if f"| `{s}.{k}` |" not in text]  # fmt: skip
    assert not missing, f"the config reference lacks the keys {missing}"
    assert not [name for name in AXES if f"`{name}`" not in text]


def test_cli_reference_page_holds_every_option():
    """The CLI reference page, as the hook generates it, has a section per subcommand
    holding its usage and every one of its options."""
    from hmmjax.cli import COMMANDS, build_parser

    text = _generated("reference/cli.md")
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subcommands.choices) == set(COMMANDS)
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    for name, sub in subcommands.choices.items():
        section = next((s for s in sections if s.startswith(f"`hmmjax {name}`")), None)
        assert section is not None, f"no section for hmmjax {name}"
        assert f"usage: hmmjax {name}" in section
        options = [o for action in sub._actions for o in action.option_strings]
        assert options
        missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])",
                                                        section)]  # fmt: skip
        assert not missing, f"hmmjax {name}: the page lacks the options {missing}"


def test_hook_markers():
    """Every marker in the pages is one the hook knows (and each is used); an unknown or
    mistyped marker stops the build; one inside a code block is left as it is."""
    hooks = _hooks()
    markers = [
        (path, m[1]) for path in DOCS.rglob("*.md") for m in hooks.MARKER.finditer(path.read_text())
    ]
    assert {kind for _, kind in markers} == set(hooks.GENERATORS)
    page = _page("x.md")
    with pytest.raises(ValueError, match="unknown marker"):
        hooks.on_page_markdown("<!-- generated: nothing -->\n", page, None, None)
    typos = ("<!--generated: cli-reference -->", "<!-- generated: cli-reference --> x",
             "<!-- Generated: cli-reference -->", "<!-- generated:cli-reference -->")  # fmt: skip
    for typo in typos:
        with pytest.raises(ValueError, match="mistyped marker"):
            hooks.on_page_markdown(f"text\n{typo}\n", page, None, None)
    shown = "```text\n<!-- generated: nothing -->\n<!--generated-->\n```\n"
    assert hooks.on_page_markdown(shown, page, None, None) == shown


def test_api_summaries_end_at_a_sentence():
    """The API index's one-line summaries do not stop at an abbreviation or a colon."""
    hooks = _hooks()

    def summary(doc: str) -> str:
        return hooks._summary(type("X", (), {"__doc__": doc}))

    assert summary("The i.i.d. ODE (e.g. this, i.e. that, etc. too): it. More.") == (
        "The i.i.d. ODE (e.g. this, i.e. that, etc. too): it."
    )
    assert summary("B samples: x (B, N); y (B,).\n\nMore.") == "B samples: x (B, N); y (B,)."
    assert summary("Steps start .. stop - 1 of it. More.") == "Steps start .. stop - 1 of it."
    assert summary("What it holds:\n\n- a list") == "What it holds"
    assert summary("A | B.") == "A \\| B."


def test_api_pages_cover_every_module():
    """Each package of ``hmmjax`` has its page in docs/reference/api/, which renders every
    module of the package (a new module cannot be left out of the API reference)."""
    src = ROOT / "src" / "hmmjax"
    packages = sorted(p for p in src.iterdir() if (p / "__init__.py").is_file())
    assert packages
    for package in packages:
        page = DOCS / "reference" / "api" / f"{package.name}.md"
        assert page.is_file(), f"no API page for hmmjax.{package.name}"
        text = page.read_text(encoding="utf-8")
        for module in pkgutil.iter_modules([str(package)]):
            assert f"::: hmmjax.{package.name}.{module.name}\n" in text, (
                f"{page.relative_to(ROOT)} does not render hmmjax.{package.name}.{module.name}"
            )


def test_run_help_stands_alone():
    """``hmmjax run --help`` names every kind of run and points to the config reference."""
    from hmmjax.cli import build_parser

    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run = subcommands.choices["run"]
    text = run.format_help()
    for kind in ("online SGD", "finite.P > 0", 'run.mode = "ode"', 'run.mode = "both"',
                 "[grid]", "[invariant]", "hmmjax config", "docs/reference/config.md"):  # fmt: skip
        assert kind in text, f"hmmjax run --help does not mention {kind}"


def test_hook_leaves_no_raw_math():
    """The hook turns arithmatex's math into MathML; math in a form it does not convert
    stops the build rather than leaving raw TeX on the page."""
    hooks = _hooks()
    page = type("Page", (), {"file": _page("x.md").file, "toc": []})()
    html = hooks.on_page_content(r'<span class="arithmatex">\(x^2\)</span>', page, None, None)
    assert html.startswith("<math") and "arithmatex" not in html
    with pytest.raises(ValueError, match="math left unconverted"):
        hooks.on_page_content('<span class="arithmatex">$x^2$</span>', page, None, None)
