"""The image can be built from the context .dockerignore leaves, and holds what the
application reads at run time.

- Every COPY source (from the build context, not from another stage) survives .dockerignore:
  a source the ignore file drops fails `docker build` (gunicorn.conf.py did).
- Every folder the application needs is copied: the packages of INSTALLED_APPS that live in
  the repository, and every folder of settings.LOCALE_PATHS (without it the English pages
  silently fall back to Japanese). Read from settings.py with `ast`: no Django needed here.

.dockerignore is matched the way Docker does (moby/patternmatcher): patterns in order, the
last match wins, `!` re-includes, a pattern matching a folder matches what is inside it,
`*` stays within one path segment and `**` crosses them.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SETTINGS = ROOT / "platform" / "sesshu" / "settings.py"
SKIP_PARTS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    result, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def copy_sources(text: str) -> list[str]:
    """Sources of every COPY/ADD that reads the build context."""
    sources = []
    for keyword, arguments in _instructions(text):
        if keyword not in ("COPY", "ADD"):
            continue
        words = shlex.split(arguments)
        if any(w.startswith("--from=") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        sources.extend(words[:-1])
    return sources


def copy_targets(text: str) -> dict[str, str]:
    """Context source -> destination, for the runtime stage's COPYs."""
    targets = {}
    for keyword, arguments in _instructions(text):
        if keyword != "COPY":
            continue
        words = [w for w in shlex.split(arguments) if not w.startswith("--")]
        if any(w.startswith("--from=") for w in shlex.split(arguments)):
            continue
        for source in words[:-1]:
            targets[source.rstrip("/")] = words[-1]
    return targets


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:].strip() if negated else line
        pattern = pattern.strip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether `path` (relative, '/'-separated) reaches the build context."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return not excluded


def _files(source: Path) -> list[str]:
    if source.is_file():
        return [source.relative_to(ROOT).as_posix()]
    return [
        p.relative_to(ROOT).as_posix()
        for p in sorted(source.rglob("*"))
        if p.is_file() and not SKIP_PARTS.intersection(p.parts)
    ]


def _settings_list(name: str) -> ast.expr:
    tree = ast.parse(SETTINGS.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node.value
    raise AssertionError(f"{name} not found in {SETTINGS}")


def locale_folders() -> list[str]:
    """LOCALE_PATHS entries of the form BASE_DIR / "a" / "b", as "a/b"."""
    value = _settings_list("LOCALE_PATHS")
    assert isinstance(value, ast.List | ast.Tuple)
    folders = []
    for element in value.elts:
        parts = []
        while isinstance(element, ast.BinOp) and isinstance(element.op, ast.Div):
            assert isinstance(element.right, ast.Constant), ast.dump(element)
            parts.insert(0, str(element.right.value))
            element = element.left
        assert isinstance(element, ast.Name) and element.id == "BASE_DIR", ast.dump(element)
        folders.append("/".join(parts))
    return folders


def app_folders() -> set[str]:
    """Folders (relative to the repository) of the INSTALLED_APPS that live in it."""
    folders = set()
    for name in ("SHARED_APPS", "TENANT_APPS"):
        value = _settings_list(name)
        assert isinstance(value, ast.List)
        for element in value.elts:
            assert isinstance(element, ast.Constant)
            top = str(element.value).split(".")[0]
            for base in ("", "platform/"):
                if (ROOT / base / top / "__init__.py").is_file():
                    folders.add(f"{base}{top}")
    return folders


RULES = ignore_rules(DOCKERIGNORE.read_text(encoding="utf-8"))
SOURCES = copy_sources(DOCKERFILE.read_text(encoding="utf-8"))


def test_the_dockerfile_copies_from_the_context() -> None:
    assert {"pyproject.toml", "constraints.txt", "manage.py", "gunicorn.conf.py"} <= set(SOURCES)


@pytest.mark.parametrize("source", SOURCES)
def test_every_copy_source_reaches_the_build_context(source: str) -> None:
    path = ROOT / source
    assert path.exists(), f"COPY {source}: no such file or folder"
    files = _files(path)
    shipped = [f for f in files if in_context(f, RULES)]
    assert shipped, f"COPY {source}: .dockerignore leaves nothing of it in the build context"
    if path.is_dir():
        # Python modules, templates, translations and data files all arrive.
        missing = [
            f for f in files if f.endswith((".py", ".html", ".mo", ".po")) and f not in shipped
        ]
        assert missing == [], f"COPY {source}: .dockerignore drops {missing[:5]}"


def test_every_application_folder_is_copied() -> None:
    copied = {s.rstrip("/") for s in SOURCES}
    needed = {f.split("/")[0] for f in app_folders()} | {"manage.py", "gunicorn.conf.py"}
    assert needed <= copied, f"not in the image: {sorted(needed - copied)}"


def test_every_locale_path_is_copied_to_where_settings_look() -> None:
    targets = copy_targets(DOCKERFILE.read_text(encoding="utf-8"))
    folders = locale_folders()
    assert folders, "LOCALE_PATHS is empty"
    for folder in folders:
        assert (ROOT / folder).is_dir(), folder
        assert any(p.suffix == ".mo" for p in (ROOT / folder).rglob("*")), (
            f"{folder}: no compiled catalogue (.mo) to ship"
        )
        copied = [s for s in targets if folder == s or folder.startswith(s + "/")]
        assert copied, f"LOCALE_PATHS folder {folder}/ is not copied into the image"
        # WORKDIR /app is BASE_DIR in the image: the folder must land at the same place.
        source = copied[0]
        assert targets[source].rstrip("/") in (f"./{source}", f"/app/{source}"), targets[source]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("booking/models/__init__.py", True),
        ("booking/__pycache__/x.cpython-311.pyc", False),
        ("tests/conftest.py", False),
        ("terraform/s3.tf", False),
        ("platform/sesshu/settings.py", True),
        ("platform/.env", False),
        ("locale/en/LC_MESSAGES/django.mo", True),
        ("var/media/x", False),
        (".venv/bin/python", False),
    ],
)
def test_the_ignore_matcher_reads_dockerignore_as_docker_does(path: str, expected: bool) -> None:
    assert in_context(path, RULES) is expected
