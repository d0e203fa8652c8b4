"""The documentation holds together: every relative link in README.md and docs/ leads to a file that exists
(and, for a link into a Markdown page, to a heading that exists), the README stays a short front page, and it
shows the test command CI runs."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
README_LIMIT_BYTES = 25_000
# drafts that other branches write for new features; they are checked once folded into docs/
PENDING = ROOT / "docs" / "pending"

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def documentation_pages(root: Path = ROOT) -> list[Path]:
    pages = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [page for page in pages if page.exists() and PENDING not in page.parents]


def _prose(text: str) -> str:
    """The text with fenced code blocks and inline code removed: a link shown as code is not a link."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: its visible text, lower-cased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's visible text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors_of(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        anchor = github_anchor(heading)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    """Each relative link of the page that leads nowhere, as 'page: target (why)'."""
    problems = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # http:, https:, mailto:: not ours to check
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            problems.append(f"{page.name}: {target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in anchors_of(destination):
            problems.append(f"{page.name}: {target} (no heading #{anchor} in {destination.name})")
    return problems


def test_every_relative_link_in_the_documentation_resolves():
    pages = documentation_pages()
    assert len(pages) > 5, "README.md and docs/ not found"
    problems = [problem for page in pages for problem in broken_links(page)]
    assert not problems, "\n".join(problems)


def test_the_link_check_catches_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "target.md").write_text("# Target\n\n## Real heading: `code`, too\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/target.md#real-heading-code-too) [gone](docs/missing.md) [bad](docs/target.md#nowhere)\n"
        "`[shown as code](docs/missing.md)` [web](https://example.com/x.md)\n"
        "```\n[in a code block](docs/missing.md)\n```\n")
    problems = broken_links(tmp_path / "README.md")
    assert problems == ["README.md: docs/missing.md (no such file)",
                        "README.md: docs/target.md#nowhere (no heading #nowhere in target.md)"]


def test_the_readme_is_a_short_front_page():
    size = (ROOT / "README.md").stat().st_size
    assert size < README_LIMIT_BYTES, f"README.md is {size} bytes; move reference text into docs/"


def test_the_readme_shows_the_test_command_ci_runs():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    install_and_test = ci_command[ci_command.index("pip install -e '.[test]'"):]
    assert install_and_test == "pip install -e '.[test]' && pytest -n 2 --dist loadgroup"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Running the tests"):]
    assert install_and_test in section.split("\n## ")[0]
