"""The README starts with the two commands of a fresh machine, and CI runs the second verbatim."""

from conftest import REPO_ROOT


def _readme_commands() -> list[str]:
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    commands = []
    for line in lines:
        if not line.startswith("    "):
            break
        commands.append(line.strip())
    return commands


def test_readme_starts_with_demo_and_test_commands():
    demo, tests = _readme_commands()
    assert demo.endswith("megfmri-fusion-demo demo") and "pip install" in demo
    assert tests.endswith("python -m pytest -n 2") and '".[test]"' in tests


def test_ci_runs_the_readme_test_command():
    ci = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in [line.strip() for line in ci]


def test_demo_command_exists():
    """The demo's console script is declared in pyproject.toml."""
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert 'megfmri-fusion-demo = "bids_app.cli.simulate:main_demo"' in pyproject
