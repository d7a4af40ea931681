"""`manage.py check --deploy` with the environment docker-compose.yml gives the app.

The environment is read from docker-compose.yml (``x-app.environment``), its ``${VAR:-x}``
and ``${VAR:?}`` references filled from the ``.env`` the README's "Production" section
tells an operator to write. Each run is a fresh process with only that environment, as a
container has. The broker check (brainai.W001) is silenced: there is no Redis named
``redis`` here, and it is a warning about reachability, not configuration.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TLS_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}


def _readme_env() -> dict[str, str]:
    """The variables of the README's ``cat > .env <<'EOF'`` block."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"cat > \.env <<'EOF'\n(.*?)\nEOF", text, re.S)
    assert block, "the README's Production section writes a .env"
    pairs = (line.split("#")[0].strip().split("=", 1) for line in block.group(1).splitlines())
    return {k: v for k, v in (p for p in pairs if len(p) == 2)}


def _compose_env(dotenv: dict[str, str]) -> dict[str, str]:
    """The app's environment in docker-compose.yml, with ``dotenv`` substituted as compose does."""
    app = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-app"]["environment"]

    def fill(value: str) -> str:
        def one(m):
            name, op, default = m.group(1), m.group(2), m.group(3) or ""
            if name in dotenv and (dotenv[name] or op == "-"):
                return dotenv[name]
            assert op != ":?", f"compose requires {name}; the README's .env must set it"
            return default
        return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, str(value))

    return {k: fill(v) for k, v in app.items()}


def _check_deploy(env: dict[str, str]) -> tuple[int, set[str], str]:
    run = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                         env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env,
                              "DJANGO_SETTINGS_MODULE": "brainai_site.settings",
                              "DJANGO_SILENCED_CHECKS": "brainai.W001"},
                         capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    return run.returncode, set(re.findall(r"\((\w+\.[EW]\d+)\)", output)), output


def test_check_deploy_is_clean_with_the_compose_environment_and_the_readme_env():
    dotenv = _readme_env()
    assert dotenv["DJANGO_SECRET_KEY"] and dotenv["ALLOWED_HOSTS"]
    code, issues, output = _check_deploy(_compose_env(dotenv))
    assert code == 0 and issues == set(), output


def test_without_the_tls_lines_only_the_tls_warnings_remain():
    """The compose defaults serve plain HTTP (TLS is the operator's proxy); check --deploy says so."""
    dotenv = {k: v for k, v in _readme_env().items() if not k.startswith(("DJANGO_SECURE", "DJANGO_BEHIND",
                                                                            "DJANGO_SSL", "DJANGO_HSTS"))}
    code, issues, output = _check_deploy(_compose_env(dotenv))
    assert code != 0 and issues == TLS_WARNINGS, output
