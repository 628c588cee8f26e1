"Package-level checks: README in step with index.ipynb, the CLI entry point, CI runs the README's test command."
import re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_readme_in_sync():
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

def _readme_commands():
    return re.findall(r'^python3 -m venv .*$', (ROOT/'README.md').read_text(), re.M)

def test_readme_starts_with_two_commands():
    cmds = _readme_commands()
    assert len(cmds) >= 2
    assert 'cellseg demo' in cmds[0]
    assert 'nbdev-test' in cmds[1]

def test_ci_runs_readme_test_command():
    test_part = _readme_commands()[1].split('pip install -e ".[dev]" && ')[1]   # e.g. nbdev-test && pytest -q tests
    ci = (ROOT/'.ci'/'run').read_text()
    for cmd in test_part.split(' && '):
        assert cmd.split()[0] in ci and ' '.join(cmd.split()[1:]) in ci, f'.ci/run does not run `{cmd}`'

def test_cli_help():
    out = subprocess.run(['cellseg', '--help'], capture_output=True, text=True)
    assert out.returncode == 0 and 'demo' in out.stdout

def test_cli_unknown_command():
    out = subprocess.run(['cellseg', 'frobnicate'], capture_output=True, text=True)
    assert out.returncode == 2 and 'expected one of' in out.stderr
