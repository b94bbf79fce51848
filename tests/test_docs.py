"""README stays true: it documents every config key and loss, and CI runs the README's test command."""

import re

import boxloss
from boxloss import options

from conftest import REPO

README = (REPO / "README.md").read_text()


def test_readme_documents_every_config_key_and_loss():
    for key in options.all_options():
        assert f"`{key}`" in README, f"config key {key} missing from README"
    for name in boxloss.list_losses():
        assert f"`{name}`" in README, f"loss {name} missing from README"


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"^(bash scripts/\S+\.sh)$", README, flags=re.M)
    assert "bash scripts/test.sh" in commands
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def test_readme_main_command_names_an_existing_config():
    match = re.search(r"^bash scripts/setup.sh && \.venv/bin/python train.py cfg=(\S+)$", README, flags=re.M)
    assert match and (REPO / "cfg" / match.group(1)).is_file()
