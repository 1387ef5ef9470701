"""Paths left out of a history: vendored code, dependencies, generated files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import Pipeline, git

from processor.exclusions import Exclusions


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        ("vendor/rails/activerecord/base.rb", True),  # vendor/** is anchored at the root
        ("app/vendor/x.rb", False),
        ("web/node_modules/react/index.js", True),  # node_modules/ at any depth
        ("public/assets/app.min.js", True),  # *.min.js at any depth
        ("app.min.js.map", False),
        ("docs/generated/api.html", True),
        ("docs/generated/deep/api.html", False),  # * stays within one segment
        ("src/Tmp/cache", True),  # [Tt]mp: a set
        ("src/main.py", False),
    ],
)
def test_patterns_match_as_they_do_in_gitignore(path: str, left_out: bool) -> None:
    patterns = Exclusions(["vendor/**", "node_modules/", "*.min.js", "docs/generated/*.html", "[Tt]mp"])

    assert patterns.excludes(path) is left_out


def test_a_pattern_cannot_make_matching_slow() -> None:
    # A regular expression built from this would backtrack for ages on a long name.
    patterns = Exclusions(["*a*a*a*a*a*a*a*a*a*a*a*b", "**/**/**/**/**/x"])

    assert not patterns.excludes("a" * 4000)
    assert not patterns.excludes("/".join(["d"] * 200))


def repository_with_vendored_code(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "uploadpack.allowFilter", "true")
    for day in range(1, 9):
        for folder in ("src", "vendor/lib", "assets"):
            (path / folder).mkdir(parents=True, exist_ok=True)
            (path / folder / f"f{day}.txt").write_text(f"{day}\n")
        (path / "assets" / f"app{day}.min.js").write_text("x\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", f"day {day}", date=f"2024-01-{day:02d}T12:00:00+00:00")
    return path


@pytest.mark.slow
def test_excluded_paths_never_reach_the_video_and_the_event_counts_them(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    repo = repository_with_vendored_code(tmp_path / "app")
    requests = [
        {"repoURL": repo.as_uri(), "videoId": "without-vendor", "exclude": ["vendor/**", "*.min.js"]},
        {"repoURL": repo.as_uri(), "videoId": "operator-default"},
        {"repoURL": repo.as_uri(), "videoId": "nothing-left", "exclude": ["**"]},
    ]
    lines = "".join(json.dumps({"type": "gource", **r}) + "\n" for r in requests)
    assert pipeline.load("--file", "-", stdin=lines).returncode == 0

    assert pipeline.process(EXCLUDE="vendor/") == [0]

    events = {e["videoId"]: e for e in pipeline.results()}
    assert events["without-vendor"]["state"] == "succeeded"
    assert events["without-vendor"]["excluded"] == {"patterns": ["vendor/**", "*.min.js"], "changes": 16}
    assert events["operator-default"]["excluded"] == {"patterns": ["vendor/"], "changes": 8}
    # Beside the pace, what was drawn and what it cost (predicted before, measured after).
    shown, spent = events["without-vendor"]["presentation"], events["without-vendor"]["cost"]
    assert (shown["namedAuthors"], shown["authors"], shown["fileIdleTime"]) == (1, 1, 0)  # a small history
    assert isinstance(shown["fileNames"], bool)
    assert spent["predictedSeconds"] > 0
    assert spent["measuredSeconds"] > 0
    left = events["nothing-left"]
    assert (left["state"], left["reason"], left["attempts"]) == ("failed", "excluded-everything", 1)
    assert "leave none of the 32 changed files" in left["error"]
    [(_, body)] = pipeline.dead()
    assert body["videoId"] == "nothing-left"
