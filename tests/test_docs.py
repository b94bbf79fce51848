"""README stays true: it documents every config key and loss, and CI runs the README's test command."""

import re

from boxloss import options, registry

from conftest import REPO

README = (REPO / "README.md").read_text()


def test_readme_documents_every_config_key_and_loss():
    for key in options.all_options():
        assert f"`{key}`" in README, f"config key {key} missing from README"
    for kind in ("box", "cls"):
        table = registry.registry_of(kind)
        for name in table.names(wrapped=False):
            assert f"`{name}`" in README, f"{kind} loss {name} missing from README"
        for prefix in table.wrappers():
            assert f"`{prefix}_*`" in README, f"{kind} loss wrapper {prefix}_* missing from README"


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"^(bash scripts/\S+\.sh)$", README, flags=re.M)
    assert "bash scripts/test.sh" in commands
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def test_readme_main_command_names_an_existing_config():
    match = re.search(r"^bash scripts/setup.sh && \.venv/bin/python train.py cfg=(\S+)$", README, flags=re.M)
    assert match and (REPO / "cfg" / match.group(1)).is_file()


def test_readme_reference_tables_are_the_registrys():
    """The loss and key tables are generated (python -m boxloss.reference): formula, paper, defaults as registered."""
    from boxloss import reference

    for name, table in (("box loss", reference.loss_table("box")), ("classification loss", reference.loss_table("cls")),
                        ("config key", reference.key_table())):
        assert table in README, f"the README's {name} table is not `python -m boxloss.reference`'s; paste it again"
