"""The documentation stays true: the README and docs/ document every config key and loss with the registry's own
tables, every link resolves (files and #anchors), and CI runs the README's test command."""

import re

import pytest

from boxloss import options, registry

from helpers import REPO

README = (REPO / "README.md").read_text()
CONFIG_DOC = (REPO / "docs" / "config.md").read_text()
PAGES = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "results").glob("*/README.md")])


def test_the_docs_document_every_config_key_and_loss():
    for key in options.all_options():
        assert f"`{key}`" in CONFIG_DOC, f"config key {key} missing from docs/config.md"
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


def test_the_generated_tables_are_the_registrys():
    """The loss and key tables are generated (python -m boxloss.docs_tables): formula, paper, defaults as registered;
    the loss tables live in the README, the key table in docs/config.md."""
    from boxloss import docs_tables

    for name, table, page, text in (("box loss", docs_tables.loss_table("box", boxes="xyxy"), "README.md", README),
                                    ("rotated box loss", docs_tables.loss_table("box", boxes="xywhr"), "README.md",
                                     README),
                                    ("classification loss", docs_tables.loss_table("cls"), "README.md", README),
                                    ("config key", docs_tables.key_table(), "docs/config.md", CONFIG_DOC)):
        assert table in text, f"the {name} table of {page} is not `python -m boxloss.docs_tables`'s; paste it again"


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped except '-' and '_', spaces to '-'."""
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def links(text: str) -> list[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # commands are not links
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves(page):
    """Relative links point at files (or folders) that exist, and their #anchors at headings there."""
    broken = []
    for target in links(page.read_text()):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no {file.relative_to(REPO) if REPO in file.parents else file})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{target} (no heading #{anchor} in {file.name})")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_the_readme_is_a_front_door():
    """The README gets a newcomer from the set-up to a loss comparison; the rest lives in docs/."""
    assert len(README.splitlines()) <= 260
    for page in ("losses", "config", "models", "iou-aware", "nms", "evaluation", "datasets", "benchmarks", "results",
                 "reliability", "development"):
        assert f"(docs/{page}.md)" in README, f"docs/{page}.md is not reachable from the README"
