"""The user guide keeps up with the code: every experiment has a page, every config key a
kind accepts is documented on it (and nothing it does not accept), and every relative link
in the docs resolves."""

import re
import tomllib
from pathlib import Path

import pytest

from cryograd._run import KINDS, runner, typed

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GUIDE = DOCS / "experiments"
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.toml"))


def schema_keys(schema, prefix=""):
    for key, value in schema.items():
        if isinstance(value, dict) and value:
            yield from schema_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def key_rows(text):
    """The documented keys of a page: for each row of a `| key | ... |` table, the backticked
    tokens of its first cell, with `.end`-style shorthands expanded against the first."""
    keys, rows, in_table = set(), [], False
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2:
            in_table = False
            continue
        if cells[0] == "key":  # the header of a key table
            in_table = True
        if not in_table:
            continue
        tokens = re.findall(r"`([^`]+)`", cells[0])
        if not tokens or not re.fullmatch(r"[a-z_]+(\.[a-z_*]+)+", tokens[0]):
            continue
        parent = tokens[0].rsplit(".", 1)[0]
        expanded = [parent + t if t.startswith(".") else t for t in tokens]
        keys.update(expanded)
        rows.append((expanded, line))
    return keys, rows


def documented(key, keys, rows):
    if key in keys:
        return True
    parent, last = key.rsplit(".", 1) if "." in key else ("", key)
    # `model.*` rows list the accepted names in their text
    return any(f"{parent}.*" in expanded and f"`{last}`" in line for expanded, line in rows)


def test_every_experiment_has_a_page():
    assert EXPERIMENTS
    missing = [p.stem for p in EXPERIMENTS if not (GUIDE / f"{p.stem}.md").is_file()]
    assert not missing, f"no docs/experiments page for: {', '.join(missing)}"
    index = (GUIDE / "README.md").read_text()
    assert all(f"({p.stem}.md)" in index for p in EXPERIMENTS), "docs/experiments/README.md must link every page"


def page_of(kind):
    """The page holding the kind's key table: docs/experiments/KIND.md where it exists, else
    of its experiments' pages the one with a '## Config keys' section (others of the kind
    link to it)."""
    if (GUIDE / f"{kind}.md").is_file():
        return GUIDE / f"{kind}.md"
    pages = [p for p in EXPERIMENTS if tomllib.loads(p.read_text())["experiment"]["kind"] == kind]
    assert pages, f"no experiment of kind {kind}"
    keyed = [GUIDE / f"{p.stem}.md" for p in pages if "## Config keys" in (GUIDE / f"{p.stem}.md").read_text()]
    assert len(keyed) == 1, f"{kind}: one page of its experiments must hold its key table, found {keyed}"
    return keyed[0]


@pytest.mark.parametrize("kind", KINDS)
def test_config_keys_documented(kind):
    """Every key the kind's schema accepts is on its page or among the shared keys, and
    every key the page documents is one the schema accepts."""
    shared_keys, shared_rows = key_rows((GUIDE / "README.md").read_text())
    page_keys, page_rows = key_rows(page_of(kind).read_text())
    keys, rows = shared_keys | page_keys, shared_rows + page_rows
    schema = kind_keys(kind)
    undocumented = sorted(k for k in schema if k != "parameters" and not documented(k, keys, rows))
    assert not undocumented, f"{kind}: keys without documentation: {', '.join(undocumented)}"
    # the page's own keys (not the shared table, which serves every kind) must exist
    unknown = sorted(
        k for k in page_keys if not k.startswith("parameters.") and not k.endswith(".*") and k not in schema
    )
    assert not unknown, f"{page_of(kind).name} documents keys {kind} does not accept: {', '.join(unknown)}"


def kind_keys(kind):
    """The keys a kind accepts: from its typed config (`MODEL`) or its schema dict."""
    module = runner(kind)
    if hasattr(module, "MODEL"):
        return {key for key, *_ in typed.key_table(module.MODEL)}
    return set(schema_keys(module.SCHEMA))


def default_cell(text):
    """A key table's default cell as a number, None for '(required)', else the text."""
    text = text.strip().strip("`")
    if text == "(required)":
        return None
    try:
        return float(text)
    except ValueError:
        return text


@pytest.mark.parametrize("kind", [k for k in KINDS if hasattr(runner(k), "MODEL")])
def test_typed_kind_s_page_gives_the_model_s_defaults(kind):
    """Each single-key row of a typed kind's page states its model's default: the number, or
    '(required)' for a key without one."""
    model = {key: default for key, _, default, _ in typed.key_table(runner(kind).MODEL)}
    _, rows = key_rows(page_of(kind).read_text())
    checked = 0
    for keys, line in rows:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(keys) != 1 or keys[0] not in model:
            continue
        stated, default = default_cell(cells[2]), model[keys[0]]
        if stated is None or isinstance(stated, float):
            assert stated == (None if default is None else float(default)), (keys[0], cells[2], default)
            checked += 1
    assert checked >= 5, checked  # the check itself is not empty


def test_key_check_can_fail():
    table = "| key | type |\n|---|---|\n| `data.dem`, `.outline` | path |\n| `model.*` | `melt_factor`, `lapse_rate` |"
    keys, rows = key_rows(table)
    assert documented("data.outline", keys, rows) and documented("model.lapse_rate", keys, rows)
    assert not documented("data.climate", keys, rows) and not documented("model.phase", keys, rows)


def slug(heading):
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_relative_links_resolve():
    broken = []
    for page in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)
                if anchor not in {slug(h) for h in headings}:
                    broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)
