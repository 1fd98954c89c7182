"""Each option is declared once (issue 22): its default lives in its options object only.

The test reads the package's source with the standard library's :mod:`ast` and fails on

- a function parameter, or a nipype input trait, named like an option and given a literal
  default (a second declaration of that default, free to drift: the DICS regularisation was 0.2
  in the configuration and 0.05 in the pure function before the options objects);
- a literal default equal to an option's own non-trivial default under a name sharing a word
  with the option's (an option renamed on its way down, ``gap_s=8.0`` for ``block_gap_s``),
  unless listed below with the reason it is another quantity.

Step options are the fields of the options objects; the run's own settings (folders,
selections, threads) are passed down as they are and not checked here.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import pytest

from bids_app.config import OPTION_SECTIONS, SECTIONS, Config
from bids_app.options import as_dict, from_dict

PACKAGE = Path(__file__).resolve().parents[1] / "bids_app"
#: Where options are declared (their one default), and the simulator, whose parameters describe
#: the simulated study rather than the analysis.
DECLARATIONS = {"options.py", "config.py"}
SKIPPED_DIRS = {"simulate"}

#: Literal defaults equal to an option's default that are another quantity, with the reason.
SAME_VALUE_ELSEWHERE: dict[tuple[str, str], str] = {}

#: Values too common to say anything (flags, counts of one, "none").
TRIVIAL = (None, True, False, 0, 1, "", "none", "auto")


def _options() -> dict[str, object]:
    """Every option of a processing step (the fields of the options objects) and its default;
    the run's own settings (folders, selections, threads) are not step options."""
    return {f.name: getattr(cls(), f.name) for cls in OPTION_SECTIONS
            for f in dataclasses.fields(cls)}


def _tokens(name: str) -> set[str]:
    """The words of a name that say what it is (units and counts say nothing)."""
    return set(name.split("_")) - {"s", "ms", "hz", "mm", "uv", "n", "per", "of", "to", "min",
                                   "max"}


def _literal(node: ast.AST):
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return _NOT_LITERAL


_NOT_LITERAL = object()


def _defaults(tree: ast.Module):
    """(name, literal default, line, what) of every function parameter and nipype trait."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            for arg, default in pairs:
                value = _literal(default)
                if value is not _NOT_LITERAL:
                    yield arg.arg, value, default.lineno, f"parameter of {node.name}()"
        elif isinstance(node, ast.ClassDef):
            for statement in node.body:
                if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                        and isinstance(statement.targets[0], ast.Name)
                        and isinstance(statement.value, ast.Call)):
                    continue
                call = statement.value
                func = call.func
                if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                        and func.value.id == "traits"):
                    continue
                keywords = {k.arg: k.value for k in call.keywords}
                candidates = ([keywords["default"]] if "default" in keywords else
                              call.args[:1] if "usedefault" in keywords else [])
                for default in candidates:
                    value = _literal(default)
                    if value is not _NOT_LITERAL:
                        yield (statement.targets[0].id, value, statement.lineno,
                               f"input trait of {node.name}")


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b)
    return a == b


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in DECLARATIONS or SKIPPED_DIRS & set(path.relative_to(PACKAGE).parts):
            continue
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_each_default_is_written_once():
    options = _options()
    found = []
    for path, tree in _sources():
        where = path.relative_to(PACKAGE.parent)
        for name, value, line, what in _defaults(tree):
            if name in options:
                if value is None and options[name] is not None:
                    continue  # "not given", not a copy of the default
                found.append(f"{where}:{line}: {what}: '{name}' repeats a default ({value!r}); "
                             f"take it from the options object")
                continue
            if any(value == t and type(value) is type(t) for t in TRIVIAL):
                continue
            same = [option for option, default in options.items()
                    if _same(value, default) and _tokens(option) & _tokens(name)]
            if same and (str(where), name) not in SAME_VALUE_ELSEWHERE:
                found.append(f"{where}:{line}: {what}: '{name}' = {value!r} is the default of "
                             f"{', '.join(same)} under another name (renamed on the way down?)")
    assert not found, "\n".join(found)


def test_the_check_finds_a_second_default():
    """The walker sees the two ways a default is repeated (the test above can fail)."""
    source = '''
def power(epochs, *, dics_reg=0.05, gap_s=8.0, seed=None):
    pass

class _Inputs:
    n_cycles = traits.Float(7.0, usedefault=True, desc="cycles")
    tmin_s = traits.Float(mandatory=True)
'''
    found = {(name, value) for name, value, _, _ in _defaults(ast.parse(source))}
    assert found == {("dics_reg", 0.05), ("gap_s", 8.0), ("seed", None), ("n_cycles", 7.0)}


@pytest.mark.parametrize("cls", list(OPTION_SECTIONS), ids=lambda c: c.__name__)
def test_options_objects_are_the_configuration(cls):
    """Every field of a step's options object is an option of its configuration section, with
    the same default, and an interface's plain data rebuild the same object."""
    section = SECTIONS[OPTION_SECTIONS[cls]]
    section_fields = {f.name: f for f in dataclasses.fields(section)}
    default = cls()
    for f in dataclasses.fields(cls):
        assert f.name in section_fields
        assert getattr(section(), f.name) == getattr(default, f.name)
        assert f.metadata["doc"] == section_fields[f.name].metadata["doc"]
    config = Config()
    assert config.options(cls) == default
    assert from_dict(cls, as_dict(default)) == default


def test_options_follow_the_configuration():
    """A value set in the configuration (TOML, command line) reaches the options object."""
    from bids_app.meg.options import DICSOptions

    config = Config.from_dict({"meg": {"dics_reg": 0.05, "bands": {"alpha": [8.0, 12.0]}}})
    options = config.options(DICSOptions)
    assert options.dics_reg == 0.05 and options.bands == {"alpha": [8.0, 12.0]}
    options.bands["alpha"][0] = 1.0  # the object holds its own copy
    assert config.meg.bands["alpha"] == [8.0, 12.0]


def test_a_configuration_saved_before_the_options_objects_loads(tmp_path):
    """The TOML names did not change: a configuration saved by an earlier release (every step
    section, values off the defaults) loads, and each step's object holds its values."""
    from bids_app.blocks import DesignOptions
    from bids_app.fmri.options import BlockOptions, RegistrationOptions
    from bids_app.meg.options import DICSOptions, EpochOptions, HeadModelOptions, MaxwellOptions
    from bids_app.parcels.options import ParcellationOptions
    from bids_app.stats.options import GroupStatsOptions

    saved = tmp_path / "config-20261201-120000.toml"
    saved.write_text("""
[workflow]
conditions = ["faces", "houses"]
block_gap_s = 6.0
unpaired_runs = "error"

[anatomy]
atlas = "desikan"
n_included_per_hemi = 40
meg_grid = "ico3"
bem_ico = 3

[fmri]
dummy_scans = 4
highpass_period_s = 128.0
projection_fraction = 0.4

[meg]
st_duration_s = 4.0
tfr_padding_s = 0.3
dics_reg = 0.05
pick_ori = "max-power"
bands = { alpha = [8.0, 12.0] }

[stats]
n_bootstrap = 500
ci_levels = [0.95]
""")
    config = Config.from_toml(saved)
    assert config.options(DesignOptions) == DesignOptions(["faces", "houses"], 6.0)
    assert config.options(ParcellationOptions).n_included_per_hemi == 40
    assert config.options(HeadModelOptions).bem_ico == 3
    assert config.options(BlockOptions).highpass_period_s == 128.0
    assert config.options(RegistrationOptions).projection_fraction == 0.4
    assert config.options(MaxwellOptions).st_duration_s == 4.0
    assert config.options(EpochOptions).tfr_padding_s == 0.3
    dics = config.options(DICSOptions)
    assert (dics.dics_reg, dics.pick_ori, dics.bands) == (0.05, "max-power",
                                                           {"alpha": [8.0, 12.0]})
    assert config.options(GroupStatsOptions).ci_levels == [0.95]
