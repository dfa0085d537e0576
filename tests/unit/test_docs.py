"""The documentation stays true.

- Every ``antiphon ...`` line in a ``sh`` block of docs/*.md and README.md names a real
  command, with options and arguments that command takes (checked against the click
  tree itself). The ones that are safe and quick offline are run, in document order,
  in a workspace that holds the files the docs refer to.
- Every ``toml`` block loads as a config without a warning; a block whose first line
  is ``# NAME.toml ...`` is also written to NAME in that workspace.
- Every ``make`` target, pip extra and deploy/ script option the docs name exists, and
  every relative link and anchor resolves.
- docs/config.md lists exactly the keys of the config schema, with their defaults.

Commands that need a running peer (run, web, remote) or take minutes (train, bench)
are only checked, not run: tests/integration and the training tests run them.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
import shutil
import tomllib
import types
import typing
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from antiphon import config as config_schema
from antiphon.cli import cli
from antiphon.model import loader
from antiphon.model.mdrnn import Weights

ROOT = Path(__file__).resolve().parents[2]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
CONFIG_DOC = ROOT / "docs" / "config.md"

RUNNABLE = {
    ("init",),
    ("config", "check"),
    ("data", "synth"),
    ("data", "info"),
    ("dataset",),
    ("model", "info"),
    ("model", "import"),
    ("generate",),
    ("test-model",),
    ("test-mdrnn",),
}
"""Commands quick and safe to run offline (everything else is checked, not run)."""

HELP = ("-h", "--help")
SEPARATORS = {"&&", "||", ";", "|", "&"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
NAMED_TOML = re.compile(r"^#\s*([\w.-]+\.toml)\b")


# -- reading the docs -------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    info: str  # the fence's language: sh, toml, text...
    line: int  # line number of the block's first line in the file
    text: str


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    argv: tuple[str, ...]  # what follows `antiphon`
    here: bool  # typed on this computer in a workspace (not with sudo, not on a Pi's paths)

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: antiphon {shlex.join(self.argv)}"


def blocks(path: Path) -> list[Block]:
    found, fence, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if fence is None and line.startswith("```"):
            fence, start, lines = line[3:].strip(), number + 1, []
        elif fence is not None and line.startswith("```"):
            found.append(Block(fence, start, "\n".join(lines)))
            fence = None
        elif fence is not None:
            lines.append(line)
    assert fence is None, f"{path.name}: a code block is never closed"
    return found


def prose(path: Path) -> str:
    """The file without its code blocks (their lines kept as empty lines)."""
    out, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
            out.append("")
        else:
            out.append("" if inside else line)
    return "\n".join(out)


def shell_lines(block: Block) -> list[tuple[int, list[str]]]:
    """(line number, words) of each command line, continuations joined, comments gone."""
    out, pending, first = [], "", 0
    for offset, line in enumerate(block.text.splitlines()):
        if not pending:
            first = block.line + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = shlex.split(pending + line, comments=True)
        pending = ""
        if words:
            out.append((first, words))
    return out


def segments(words: list[str]) -> list[list[str]]:
    """`a && b; c | d &` -> [a], [b], [c], [d]."""
    parts: list[list[str]] = [[]]
    for word in words:
        if word in SEPARATORS:
            parts.append([])
        else:
            parts[-1].append(word)
    return [p for p in parts if p]


def antiphon_words(words: list[str]) -> tuple[list[str], bool] | None:
    """The words after `antiphon` in one simple command, and whether it runs here."""
    words = list(words)
    while words and ASSIGNMENT.match(words[0]):
        words.pop(0)
    here = True
    if words[:1] == ["sudo"]:
        words.pop(0)
        here = False
        while words and words[0].startswith("-"):
            if words.pop(0) in ("-u", "-g"):
                words.pop(0)
    if not words:
        return None
    if Path(words[0]).name == "antiphon":
        argv = words[1:]
        return argv, here and not any(Path(word).is_absolute() for word in argv)
    if words[0] == "docker":  # docker compose exec SERVICE antiphon ..., docker run IMAGE antiphon
        for i, word in enumerate(words[:-1]):
            if word == "antiphon" and (words[i + 1] in cli.commands or words[i + 1] in HELP):
                return words[i + 1 :], True
    return None


def simple_commands(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, words) of every simple command in the file's sh blocks."""
    return [
        (line, segment)
        for block in blocks(path)
        if block.info == "sh"
        for line, words in shell_lines(block)
        for segment in segments(words)
    ]


def commands(path: Path) -> list[Command]:
    return [
        Command(path.name, line, tuple(parsed[0]), parsed[1])
        for line, words in simple_commands(path)
        if (parsed := antiphon_words(words)) is not None
    ]


# -- checking a command against the click tree -----------------------------------------


def _option(command: click.Command, name: str) -> click.Option | None:
    for param in command.params:
        if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def _convert(param: click.Parameter, value: str, where: str) -> None:
    """Check a value with the parameter's own type; files need not exist where the docs
    are checked, so paths are taken as they are."""
    if isinstance(param.type, click.Path | click.File):
        return
    try:
        param.type.convert(value, param, None)
    except click.BadParameter as exc:
        pytest.fail(f"{where}: {param.name} = {value!r} is refused: {exc.format_message()}")


def resolve(command: Command) -> tuple[tuple[str, ...], bool]:
    """The command path (e.g. ("remote", "push-model")) and whether help was asked for;
    fails the test naming the line if a command, option or argument does not exist."""
    where = str(command)
    current: click.Command = cli
    path: list[str] = []
    positionals: list[str] = []
    helped = False
    args = list(command.argv)
    while args:
        word = args.pop(0)
        if word.startswith("-") and len(word) > 1:
            name, has_value, value = word.partition("=")
            if name in HELP:
                helped = True
                continue
            param = _option(current, name)
            if param is None:
                known = sorted(o for p in current.params for o in getattr(p, "opts", ()))
                pytest.fail(
                    f"{where}: `antiphon {' '.join(path)}` has no option {name} "
                    f"(it has {', '.join(o for o in known if o.startswith('-'))})"
                )
            if not (param.is_flag or param.count):
                if not has_value:
                    if not args:
                        pytest.fail(f"{where}: {name} needs a value")
                    value = args.pop(0)
                _convert(param, value, where)
            continue
        if isinstance(current, click.Group) and not positionals:
            sub = current.commands.get(word)
            if sub is None:
                pytest.fail(
                    f"{where}: `antiphon {' '.join(path)}` has no command {word!r} "
                    f"(it has {', '.join(sorted(current.commands))})"
                )
            current, path = sub, [*path, word]
            continue
        positionals.append(word)
    if isinstance(current, click.Group) and not helped and path:
        pytest.fail(f"{where}: `antiphon {' '.join(path)}` needs a command")
    arguments = [p for p in current.params if isinstance(p, click.Argument)]
    most = sum(math.inf if p.nargs < 0 else p.nargs for p in arguments)
    least = sum(max(p.nargs, 0) for p in arguments if p.required)
    if not helped and not least <= len(positionals) <= most:
        pytest.fail(
            f"{where}: `antiphon {' '.join(path)}` takes {least} to {most} arguments, "
            f"not {len(positionals)} ({positionals})"
        )
    for argument, value in zip(arguments, positionals, strict=False):
        _convert(argument, value, where)
    return tuple(path), helped


# -- the workspace the runnable commands play in ------------------------------------------

IMPSY_H5 = "models/musicMDRNN-dim9-layers2-units64-mixtures5-scale10.h5"
MY_MODEL = "models/my-model.safetensors"


def write_impsy_h5(path: Path, weights: Weights) -> None:
    """A Keras-2 weights-only file as IMPSY's legacy models are laid out (layout A)."""
    import h5py

    with h5py.File(path, "w") as f:
        layers = [f"lstm{i}" for i in range(len(weights.lstm))]
        f.attrs["layer_names"] = [name.encode() for name in [*layers, "td_mdn"]]
        for name, layer in zip(layers, weights.lstm, strict=True):
            group = f.create_group(name)
            arrays = {
                "kernel:0": layer.kernel,
                "recurrent_kernel:0": layer.recurrent_kernel,
                "bias:0": layer.bias,
            }
            for key, array in arrays.items():
                group.create_dataset(f"{name}/{key}", data=array)
            group.attrs["weight_names"] = [f"{name}/{key}".encode() for key in arrays]
        group = f.create_group("td_mdn")
        names = []
        for head in ("mus", "sigmas", "pis"):
            dense = getattr(weights, head)
            for key, array in (("kernel:0", dense.kernel), ("bias:0", dense.bias)):
                group.create_dataset(f"td_mdn/{head}/{key}", data=array)
                names.append(f"td_mdn/{head}/{key}".encode())
        group.attrs["weight_names"] = names


def invoke(args: list[str], where: str = "") -> None:
    """Run antiphon in this process (no interpreter start-up), failing on any error."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, (
        f"{where or 'antiphon ' + shlex.join(args)} failed:\n{result.output}{result.exception!r}"
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with logs, datasets and models of dimensions 4 and 9, the example
    configs, and the model files the docs use as examples."""
    root = tmp_path_factory.mktemp("docs") / "workspace"
    invoke(["init", str(root)])
    logs, datasets = str(root / "logs"), str(root / "datasets")
    for dimension in ("4", "9"):
        invoke(["data", "synth", "-D", dimension, "-n", "2", "-m", "0.5", "--destination", logs])
        invoke(["dataset", "-D", dimension, "-S", logs, "--destination", datasets, "--synthetic"])
    for log in (root / "logs").glob("*-synthetic-*.log"):  # as if played: the docs' commands
        log.rename(log.with_name(log.name.replace("-synthetic-", "-osc-")))  # collect those
    shutil.copy(loader.bundled_model(4), root / MY_MODEL)
    write_impsy_h5(root / IMPSY_H5, loader.read_model(loader.bundled_model(9)).weights)
    shutil.copytree(ROOT / "examples", root / "examples")
    return root


# -- the tests ---------------------------------------------------------------------------


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_every_command_exists_with_its_options(doc: Path) -> None:
    for command in commands(doc):
        resolve(command)


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_safe_commands_run(
    doc: Path, prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(prepared, workspace)
    for block in blocks(doc):
        named = NAMED_TOML.match(block.text)
        if block.info == "toml" and named:
            (workspace / named[1]).write_text(block.text, encoding="utf-8")
    monkeypatch.chdir(workspace)
    for command in commands(doc):
        path, helped = resolve(command)
        if command.here and (helped or path in RUNNABLE):
            invoke(list(command.argv), str(command))


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_config_examples_load_without_warnings(doc: Path) -> None:
    for block in blocks(doc):
        if block.info == "toml":
            where = Path(f"{doc.name}:{block.line}")
            loaded = config_schema.parse(block.text, where)  # raises ConfigError if invalid
            assert loaded.warnings == [], f"{where}: {loaded.warnings}"


def test_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w.-]*):", makefile, re.MULTILINE))
    for doc in DOCS:
        for line, words in simple_commands(doc):
            if words[0] != "make":
                continue
            for target in (w for w in words[1:] if not w.startswith("-") and "=" not in w):
                assert target in targets, f"{doc.name}:{line}: no make target {target!r}"


def test_pip_extras_exist() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = set(pyproject["project"]["optional-dependencies"])
    for doc in DOCS:
        for line, words in simple_commands(doc):
            if Path(words[0]).name != "pip":
                continue
            for word in words:
                if match := re.fullmatch(r"\.\[([\w,-]+)\]", word):
                    unknown = set(match[1].split(",")) - extras
                    assert not unknown, f"{doc.name}:{line}: no extra {unknown} in pyproject.toml"


def test_deploy_script_options_exist() -> None:
    """Options given to deploy/ scripts are ones the script's argument parser handles."""
    checked = 0
    for doc in DOCS:
        for line, words in simple_commands(doc):
            words = words[1:] if words[0] == "sudo" else words
            if not words[0].startswith("deploy/"):
                continue
            script = ROOT / words[0]
            assert script.is_file(), f"{doc.name}:{line}: no script {words[0]}"
            text = script.read_text(encoding="utf-8")
            for word in words[1:]:
                if word.startswith("--"):
                    assert re.search(rf"^\s*{re.escape(word)}\)", text, re.MULTILINE), (
                        f"{doc.name}:{line}: {words[0]} has no option {word}"
                    )
                    checked += 1
    assert checked >= 2  # the Raspberry Pi install is documented with its options


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: Counter[str] = Counter()
    found = set()
    for line in prose(path).splitlines():
        if match := re.match(r"^#{1,6}\s+(.*)$", line):
            base = slug(match[1])
            found.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return found


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_relative_links_resolve(doc: Path) -> None:
    text = re.sub(r"`[^`\n]*`", "", prose(doc))
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        assert path.exists(), f"{doc.name}: the link {target} points to nothing"
        if anchor:
            assert path.suffix == ".md", f"{doc.name}: {target}: anchors only in markdown"
            assert anchor in anchors(path), f"{doc.name}: {target}: no such heading"


# -- docs/config.md covers the schema --------------------------------------------------------


def _section_class(hint: object) -> type | None:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def _default(f: dataclasses.Field) -> object:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def schema_keys() -> dict[tuple[str, str], object]:
    """{(section, key): default} for every key config.toml may hold ("" = top level)."""
    keys = {}
    hints = typing.get_type_hints(config_schema.Config)
    for f in dataclasses.fields(config_schema.Config):
        if f.metadata.get("internal"):
            continue
        section = _section_class(hints[f.name])
        if section is None:
            keys[("", f.name)] = _default(f)
            continue
        for inner in dataclasses.fields(section):
            keys[(f.name, inner.name)] = _default(inner)
    return keys


def documented_keys() -> dict[tuple[str, str], str]:
    """{(section, key): default cell} from the key tables of docs/config.md."""
    keys, section = {}, None
    for line in prose(CONFIG_DOC).splitlines():
        if heading := re.match(r"^##\s+(.*)$", line):
            name = re.search(r"\[(\w+)\]", heading[1])
            section = "" if heading[1] == "Top level" else name[1] if name else None
        elif section is not None and (row := re.match(r"^\| `(\w+)` \| ([^|]*) \|", line)):
            assert (section, row[1]) not in keys, f"config.md lists {section}.{row[1]} twice"
            keys[(section, row[1])] = row[2].strip()
    return keys


def test_config_reference_lists_every_key_and_no_other() -> None:
    schema, documented = set(schema_keys()), set(documented_keys())
    assert not schema - documented, f"missing from docs/config.md: {_dotted(schema - documented)}"
    assert not documented - schema, f"not in the schema: {_dotted(documented - schema)}"


def _dotted(keys: set[tuple[str, str]]) -> list[str]:
    return sorted(f"{section}.{key}" if section else key for section, key in keys)


def test_config_reference_gives_the_real_defaults() -> None:
    documented = documented_keys()
    for key, default in schema_keys().items():
        cell = documented.get(key)
        if cell is None:
            continue  # reported by the test above
        name = ".".join(k for k in key if k)
        if default is None:
            assert cell.startswith("none"), f"config.md: {name} has no default; says {cell!r}"
            continue
        value = re.match(r"^`([^`]+)`", cell)
        assert value, f"config.md: the default of {name} should be `{default!r}`, not {cell!r}"
        assert tomllib.loads(f"v = {value[1]}")["v"] == default, (
            f"config.md: {name} defaults to {default!r}, the docs say {value[1]}"
        )


def test_config_reference_has_an_example_of_every_section() -> None:
    shown: set[str] = set()
    for block in blocks(CONFIG_DOC):
        if block.info == "toml":
            data = tomllib.loads(block.text)
            shown |= {k for k, v in data.items() if isinstance(v, dict)}
            shown |= {"" for v in data.values() if not isinstance(v, dict)}
    sections = {section for section, _ in schema_keys()}
    assert sections <= shown, f"no toml example for: {sorted(sections - shown)}"


# -- the checker itself ------------------------------------------------------------------------


def _check_one(line: str) -> tuple[str, ...]:
    doc = Path("example.md")
    block = Block("sh", 1, line)
    found = [
        Command(doc.name, n, tuple(parsed[0]), parsed[1])
        for n, words in shell_lines(block)
        for segment in segments(words)
        if (parsed := antiphon_words(segment)) is not None
    ]
    assert len(found) == 1
    return resolve(found[0])[0]


def test_the_checker_finds_commands_in_every_form() -> None:
    assert _check_one("cd ws && antiphon config check  # a comment") == ("config", "check")
    assert _check_one("docker compose exec antiphon antiphon dataset -D 4") == ("dataset",)
    assert _check_one("ANTIPHON_PASSWORD=x antiphon remote --url a:1 status") == (
        "remote",
        "status",
    )
    assert _check_one("sudo -u antiphon /opt/antiphon/venv/bin/antiphon config check /x") == (
        "config",
        "check",
    )
    assert _check_one("antiphon remote --url a:1 \\\n  push-model m.safetensors --use") == (
        "remote",
        "push-model",
    )
    every = [c for doc in DOCS for c in commands(doc)]
    assert len(every) > 40
    assert any(c.argv[:2] == ("remote", "--url") and "--use" in c.argv for c in every)


@pytest.mark.parametrize(
    "line",
    [
        "antiphon remote --url a:1 push-model m.safetensors --usee",  # no such option
        "antiphon modle info m.safetensors",  # no such command
        "antiphon run --mode duet",  # not a mode
        "antiphon train --lr",  # an option without its value
        "antiphon model info a.safetensors b.safetensors",  # one argument too many
        "antiphon remote status --url a:1",  # a group's option after its command
        "antiphon data",  # a group without a command
    ],
)
def test_the_checker_refuses_what_the_cli_refuses(line: str) -> None:
    with pytest.raises(pytest.fail.Exception):
        _check_one(line)


def test_imported_example_model_is_an_impsy_file(prepared: Path) -> None:
    """The stand-in for an IMPSY file really goes through the IMPSY reader."""
    loaded = loader.read_model(prepared / IMPSY_H5)
    assert loaded.metadata["impsy_layout"].startswith("A")
    assert loaded.architecture.dimension == 9
