"""The README and docs/: every relative link reaches a file (and a heading, where it names one), every page
of docs/ is one click from the README, and the README stays short."""

import re
import urllib.parse

import pytest

from helpers import REPO

README = REPO / "README.md"
PAGES = sorted((REPO / "docs").glob("*.md"))
README_LIMIT = 12 * 1024  # bytes
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def links(text: str) -> list[str]:
    return [match.group(1) for line in prose(text) for match in LINK.finditer(INLINE_CODE.sub("", line))]


def anchors(text: str) -> set[str]:
    """The ids GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens,
    a repeated id numbered -1, -2, ..."""
    found, seen = set(), {}
    for line in prose(text):
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative(target: str) -> bool:
    return not re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda path: str(path.relative_to(REPO)))
def test_every_relative_link_reaches_a_file_and_its_heading(page):
    broken = []
    for target in filter(relative, links(page.read_text())):
        path, _, anchor = target.partition("#")
        file = (page.parent / urllib.parse.unquote(path)).resolve() if path else page
        if not file.is_file():
            broken.append(f"{target}: no file {file.relative_to(REPO) if file.is_relative_to(REPO) else file}")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file.read_text())):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(REPO / target.partition("#")[0]).resolve() for target in links(README.read_text()) if relative(target)}
    assert PAGES, "docs/ has no pages"
    missing = [str(page.relative_to(REPO)) for page in PAGES if page.resolve() not in linked]
    assert not missing, f"the README links no {missing}"


def test_every_docs_page_links_back_to_the_readme():
    missing = [str(page.relative_to(REPO)) for page in PAGES if "../README.md" not in links(page.read_text())]
    assert not missing, f"no link back to the README in {missing}"


def test_the_readme_stays_short():
    size = len(README.read_bytes())
    assert size < README_LIMIT, f"README.md is {size} bytes: move detail into docs/ (limit {README_LIMIT})"
