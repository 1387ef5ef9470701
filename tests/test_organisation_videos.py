"""Organisation videos (issue 12): several repositories in one video, release tags as captions.

What a user checks is read back from the video itself: tesseract reads the frames, so a
repository took part when its authors' names (or its directory label) are on screen, and
a tag was shown when its caption is. The result event says, per repository, what it
brought; a failure names the repository that caused it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support import ROOT, Pipeline, git, make_repo, require

from processor.captions import MAX_CAPTION_CHARS, clean, spread, write_caption_file
from processor.contract import MAX_REPO_URLS, Subject, parse_request
from processor.errors import InvalidRequest, RepositoryRejected
from processor.history import directory_names, fetch_history
from processor.job import fingerprint
from processor.render import plan
from processor.settings import ProcessorSettings

# What git carries in a tag name; control characters and `../x` it refuses to fetch at all
# (tested on the caption text itself above).
HOSTILE_TAGS = ["--help", "x" * 10_000, "$(touch${IFS}pwned-tag)", "rel\u202eease"]


def assert_nothing_ran(*places: Path) -> None:
    """A shell would have made `pwned-tag` in the working directory of the process."""
    assert not (Path.cwd() / "pwned-tag").exists()
    assert not (ROOT / "pwned-tag").exists()
    for place in places:
        assert not list(place.rglob("pwned*")), place


def add_raw_tags(repo: Path, names: list[str], at: str = "HEAD") -> None:
    """Tags `git tag` would refuse to create but a remote can still send (packed-refs)."""
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", at],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    with (repo / ".git" / "packed-refs").open("a", encoding="utf-8") as refs:
        for name in names:
            refs.write(f"{head} refs/tags/{name}\n")


def january(*days: int) -> list[str]:
    return [f"2024-01-{d:02d}" for d in days]


def read_frames(video: Path, times: list[float], work: Path) -> str:
    """What tesseract reads on the frames at `times`: white text on gource's dark scene,
    enlarged and thresholded to black on white, the way OCR reads best."""
    require(shutil.which("tesseract") is not None, "tesseract-ocr is not installed")
    texts = []
    for n, at in enumerate(times):
        frame = work / f"frame-{n}.png"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-ss", f"{at:g}", "-i", str(video), "-frames:v", "1",
             "-vf", "format=gray,scale=iw*3:ih*3:flags=bicubic,lut=y='if(gt(val,170),0,255)'", str(frame)],
            check=True,
        )  # fmt: skip
        for mode in ("11", "6"):
            out = subprocess.run(["tesseract", str(frame), "-", "--psm", mode],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            texts.append(out.stdout)
    return " ".join(" ".join(texts).split())


def several(urls: list[str], video_id: str, **extra: Any) -> str:
    return json.dumps({"type": "gource", "repoURLs": urls, "videoId": video_id, **extra})


# the request, no broker -------------------------------------------------------------------------
def test_a_request_names_one_repository_or_a_list_never_both_nor_neither() -> None:
    both = {"repoURL": "https://example.com/a.git", "repoURLs": ["https://example.com/b.git"]}
    with pytest.raises(InvalidRequest, match=r"give either repoURL .* or repoURLs .*, not both"):
        parse_request(both)
    with pytest.raises(InvalidRequest, match=re.escape("repoURL: Field required (or repoURLs")):
        parse_request({"videoId": "v"})
    snake = parse_request({"repo_urls": ["https://example.com/a.git", "https://example.com/b.git"]})
    assert snake.repos == ("https://example.com/a.git", "https://example.com/b.git")
    assert parse_request({"repoURL": "https://example.com/a.git"}).repos == ("https://example.com/a.git",)


@pytest.mark.parametrize(
    ("urls", "complaint"),
    [
        ([], "repoURLs: List should have at least 1 item"),
        (["https://example.com/r.git"] * (MAX_REPO_URLS + 1), f"at most {MAX_REPO_URLS} items"),
        (["https://example.com/" + "x" * 2048], "repoURLs.0: String should have at most 2048"),
        (["https://example.com/a.git", ""], "repoURLs.1: String should have at least 1"),
        (["https://example.com/a.git", 7], "repoURLs.1: Input should be a valid string"),
        ("https://example.com/a.git", "repoURLs: Input should be a valid list"),
    ],
)
def test_a_repository_list_is_bounded_and_each_url_checked_like_a_single_one(
    urls: Any, complaint: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_request({"repoURLs": urls})
    assert complaint in str(refused.value)


def test_a_refused_repository_list_is_still_named_without_its_credentials() -> None:
    urls = [f"https://bot:s3cret@example.com/{n}.git" for n in range(MAX_REPO_URLS + 1)]
    body = json.dumps({"videoId": "too-many", "repoURLs": urls}).encode()
    with pytest.raises(InvalidRequest):
        parse_request(body)
    assert Subject.guessed_from(body).repo_url == f"https://***@example.com/0.git and {MAX_REPO_URLS} more"


def test_captions_are_tags_or_off_and_nothing_names_a_caption_file() -> None:
    assert parse_request({"repoURL": "https://e.example/r.git", "captions": "tags"}).captions == "tags"
    with pytest.raises(InvalidRequest, match="captions: Input should be 'tags' or 'off'"):
        parse_request({"repoURL": "https://e.example/r.git", "captions": "/etc/passwd"})


def test_the_fingerprint_covers_every_repository_and_its_order() -> None:
    a, b, c = (f"https://example.com/{n}.git" for n in "abc")
    args = plan(parse_request({"repoURL": a}).gource, ProcessorSettings()).gource_args
    marks = {
        fingerprint(parse_request({"repoURLs": urls, "videoId": "v"}), args)
        for urls in ([a, b], [b, a], [a, b, c], [a])
    }
    assert len(marks) == 4
    assert fingerprint(parse_request({"repoURL": a}), args) not in marks


def test_captions_change_the_render_and_so_the_fingerprint() -> None:
    request = parse_request({"repoURL": "https://example.com/a.git"})
    settings = ProcessorSettings()
    plain, captioned = plan(request.gource, settings), plan(request.gource, settings, captions=True)
    assert fingerprint(request, plain.gource_args) != fingerprint(request, captioned.gource_args)


def test_each_repository_gets_its_own_safe_top_level_directory() -> None:
    urls = [
        "https://github.com/acme/app.git",
        "https://gitlab.com/other/app",
        "git@github.com:acme/App.git",
        "https://github.com/acme/tools/",
        "file:///srv/git/../../etc/passwd",
        "https://example.com/a%2F..%2Fb.git?x=1",
        "https://example.com/.git",
        "https://example.com/-rf.git",
    ]
    assert directory_names(urls) == ["app", "app-2", "App-3", "tools", "passwd", "a-2F..-2Fb", "repo", "rf"]


# captions, no broker ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("v1.0", "v1.0"),
        ("--help", "--help"),
        ("../x", "../x"),  # text on screen; it never names a file
        ("red\x1b[31mtext\x07", "red [31mtext"),
        ("two\nlines\r\ttab", "two lines tab"),
        ("rel\u202eease", "rel ease"),
        ("\x00\x01\x02", ""),
        ("x" * 10_000, "x" * (MAX_CAPTION_CHARS - 1) + "…"),
    ],
)
def test_a_tag_name_is_shown_as_one_bounded_line_of_printable_text(name: str, shown: str) -> None:
    assert clean(name) == shown


def test_at_most_two_hundred_captions_spread_over_the_whole_history(tmp_path: Path) -> None:
    captions = [(1_700_000_000 + n * 3600, f"v{n}") for n in range(1000)]
    chosen = spread(captions)
    assert len(chosen) == 200
    assert chosen[0] == captions[0]
    assert chosen[-1] == captions[-1]

    path = tmp_path / "captions.txt"
    written = write_caption_file(path, [*captions, (1_700_000_000, "\x00"), (1_700_000_001, "x" * 10_000)])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert written == len(lines) == 200
    assert all(re.fullmatch(r"\d+\|[^\x00-\x1f]{1,80}", line) for line in lines)


# fetching and merging, real git, no broker ------------------------------------------------------
def test_histories_merge_in_time_order_each_under_its_repository_with_its_tags(tmp_path: Path) -> None:
    first = make_repo(tmp_path / "a" / "app", ["Ada Lovelace"], january(1, 3, 5), {"v1.0": 0, "a:v2.0": 2})
    second = make_repo(tmp_path / "b" / "app", ["Grace Hopper"], january(2, 4))
    add_raw_tags(first, HOSTILE_TAGS)
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    request = parse_request({"repoURLs": [first.as_uri(), second.as_uri(), empty.as_uri()]})
    work = tmp_path / "work"
    work.mkdir()

    history = fetch_history(request, work, ProcessorSettings(git_allowed_protocols="file"), tags=True)

    lines = history.log.read_text(encoding="utf-8").splitlines()
    stamps = [int(line.split("|")[0]) for line in lines]
    assert stamps == sorted(stamps)
    assert len(lines) == 5
    assert {line.split("|")[3].split("/")[1] for line in lines} == {"app", "app-2"}
    assert [line.split("|")[1] for line in lines][:2] == ["Ada Lovelace", "Grace Hopper"]
    assert history.repositories is not None
    counts = [(r.name, r.commits, r.changes) for r in history.repositories]
    assert counts == [("app", 3, 3), ("app-2", 2, 2), ("empty", 0, 0)]
    captions = {text: stamp for stamp, text in history.tags}
    assert captions["app: v2.0"] - captions["app: v1.0"] == 4 * 86400 + 6 * 3600  # tagger date, commit date
    assert {f"app: {name}" for name in HOSTILE_TAGS} <= set(captions)
    assert sorted(p.name for p in work.iterdir()) == ["merged.log"]  # no clone is left behind
    assert_nothing_ran(tmp_path)


def test_a_repository_that_cannot_be_fetched_is_named_before_anything_is_cloned(tmp_path: Path) -> None:
    good = make_repo(tmp_path / "good", ["Ada Lovelace"], january(1))
    settings = ProcessorSettings(git_allowed_protocols="file")
    request = parse_request({"repoURLs": [good.as_uri(), "ext::sh -c id", str(tmp_path / "missing")]})

    with pytest.raises(RepositoryRejected) as refused:
        fetch_history(request, tmp_path, settings)

    assert str(refused.value).startswith("repository 2 of 3 (sh--c-id, ext::sh -c id): the 'ext' transport")
    assert not (tmp_path / "repo-1").exists()


# through the pipeline ---------------------------------------------------------------------------
OCR = {"RESOLUTION": "640x480", "MAX_VIDEO_SECONDS": 8}


@pytest.mark.slow
def test_three_repositories_one_out_of_range_and_two_of_one_name_make_one_video(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    web = make_repo(tmp_path / "acme" / "web", ["Ada Lovelace"], january(*range(1, 11)))
    clash = make_repo(tmp_path / "other" / "web", ["Grace Hopper"], january(*range(2, 12)))
    legacy = make_repo(tmp_path / "acme" / "legacy", ["Ken Thompson"], ["2019-05-01", "2019-05-02"])
    urls = [web.as_uri(), clash.as_uri(), legacy.as_uri()]
    options = {"resolution": "640x480", "--stop-at-time": 8, "--seconds-per-day": 0.6,
               "--start-date": "2024-01-01", "--title": "acme 2024"}  # fmt: skip
    assert pipeline.load("--file", "-", stdin=several(urls, "acme-2024", gource=options)).returncode == 0

    assert pipeline.process(**OCR) == [0]

    [event] = pipeline.results()
    assert event["state"] == "succeeded", event
    assert event["repoURLs"] == urls
    assert [(r["name"], r["commits"]) for r in event["repositories"]] == [
        ("web", 10), ("web-2", 10), ("legacy", 2),
    ]  # fmt: skip
    video = pipeline.download("videos/acme-2024.mp4")
    seen = read_frames(video, [1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7], tmp_path)
    assert "Ada Lovelace" in seen, seen
    assert "Grace Hopper" in seen, seen
    assert "Ken Thompson" not in seen  # its history is before --start-date: in the event, not the video
    # The second "web" has a directory of its own (tesseract sometimes loses the w in the glow).
    assert re.search(r"\bw?eb-2\b", seen), seen


@pytest.mark.slow
def test_the_loader_sends_a_repository_list_as_one_video_with_its_release_tags_as_captions(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    api = make_repo(tmp_path / "api", ["Ada Lovelace"], january(*range(1, 9)), {"v1.0": 2, "a:v2.0": 5})
    add_raw_tags(api, HOSTILE_TAGS, at="HEAD~4")  # 2024-01-04, with v1.0 still on screen
    docs = make_repo(tmp_path / "docs", ["Grace Hopper"], january(*range(1, 9)))
    repos = tmp_path / "repos.txt"
    repos.write_text(f"# the acme organisation\n{api.as_uri()}\n\n{docs.as_uri()}\n")

    loaded = pipeline.load("--repos-file", str(repos), "--together", "--captions", "tags",
                           "--video-id", "acme-releases")  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 1, skipped 0, failed 0" in loaded.stdout

    assert pipeline.process(VIDEO_SECONDS=6, SECONDS_PER_DAY=0.6, **OCR) == [0]

    [event] = pipeline.results()
    assert event["state"] == "succeeded", event
    assert [(r["name"], r["tags"]) for r in event["repositories"]] == [("api", 6), ("docs", 0)]
    seen = read_frames(pipeline.download("videos/acme-releases.mp4"), [1.7, 2.0, 2.3, 3.4, 3.7], tmp_path)
    assert "api: v1.0" in seen, seen
    assert "api: v2.0" in seen, seen
    assert "api: --help" in seen, seen  # a caption, not an option
    assert re.search(r"[xXkK]{20}", seen), seen  # the 10 kB name: text, cut to 80 (wider than a frame)
    assert_nothing_ran(tmp_path)
    assert list((pipeline.workdir / "work").iterdir()) == []


@pytest.mark.slow
def test_a_release_tagged_on_the_last_commit_stays_on_screen_for_its_whole_caption_time(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    days = [f"2024-{m:02d}-{d:02d}" for m in range(1, 13) for d in (3, 17)]
    repo = make_repo(tmp_path / "app", ["Ada Lovelace", "Grace Hopper"], days, {"v9.9": len(days) - 1})
    request = {"type": "gource", "repoURL": repo.as_uri(), "videoId": "release", "captions": "tags",
               "gource": {"resolution": "640x480", "--stop-at-time": 20}}  # fmt: skip
    assert pipeline.load("--file", "-", stdin=json.dumps(request)).returncode == 0

    assert pipeline.process(MAX_VIDEO_SECONDS=20) == [0]

    [event] = pipeline.results()
    assert event["state"] == "succeeded", event
    # A 20 s video shows a caption for 2 s (fading in and out over 0.67 s each): the history
    # ends 2.5 s before the video does, so the latest release gets its whole time on screen
    # instead of a frame or two of its fade-in before the end.
    released = event["pace"]["playSeconds"]
    assert 17 <= released <= 17.6
    assert event["video"]["duration"] >= released + 2
    video = pipeline.download("videos/release.mp4")
    for at in (released + 0.8, released + 1.2):  # fully drawn in the middle of its time
        assert "v9.9" in read_frames(video, [at], tmp_path), at


@pytest.mark.slow
def test_a_repository_that_fails_fails_the_video_and_names_itself(pipeline: Pipeline, tmp_path: Path) -> None:
    small = make_repo(tmp_path / "small", ["Ada Lovelace"], january(1, 2))
    big = make_repo(tmp_path / "big", ["Grace Hopper"], january(*range(1, 29)))
    missing = tmp_path / "gone"
    bodies = [
        several([small.as_uri(), missing.as_uri()], "missing"),
        several([small.as_uri(), "https://example.com/r.git"], "transport"),
        several([small.as_uri()] * 4, "too-many"),
        several([small.as_uri(), big.as_uri()], "too-long"),
        several([small.as_uri(), small.as_uri()], "control"),
    ]
    assert pipeline.load("--file", "-", stdin="\n".join(bodies)).returncode == 0

    assert pipeline.process(MAX_REPOS_PER_VIDEO=3, MAX_HISTORY_CHANGES=20) == [0]

    events = {e["videoId"]: e for e in pipeline.results()}
    assert events["control"]["state"] == "succeeded"
    assert [r["name"] for r in events["control"]["repositories"]] == ["small", "small-2"]
    expected = {
        "missing": f"repository 2 of 2 (gone, {missing.as_uri()}): repository not found",
        "transport": "repository 2 of 2 (r, https://example.com/r.git): the 'https' transport is not allowed",
        "too-many": "4 repositories in one video; MAX_REPOS_PER_VIDEO=3",
        "too-long": "repository 2 of 2 (big, ",
    }
    for video_id, error in expected.items():
        event = events[video_id]
        assert (event["state"], event["reason"]) == ("failed", "repository-rejected"), event
        assert error in event["error"], event["error"]
        assert len(event["repoURLs"]) >= 2
    assert "MAX_HISTORY_CHANGES=20" in events["too-long"]["error"]
    assert pipeline.videos() == ["videos/control.mp4"]  # no partial video


def test_a_repos_file_loads_a_request_per_repository_or_with_together_one_for_all(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    listed = tmp_path / "repos.txt"
    listed.write_text("# acme\nhttps://github.com/acme/api.git\n\n  https://github.com/acme/web.git\n")

    separate = pipeline.load("--repos-file", str(listed))
    together = pipeline.load("--repo", "https://github.com/acme/docs.git", "--repos-file", str(listed),
                             "--together", "--video-id", "acme-2024", "--captions", "tags")  # fmt: skip
    misused = pipeline.load("--repos-file", str(listed), "--video-id", "acme-2024")

    assert "loaded 2, skipped 0, failed 0" in separate.stdout
    assert "loaded 1, skipped 0, failed 0" in together.stdout
    assert misused.returncode == 2
    assert "--video-id names the one video of --together" in misused.stderr
    bodies = [body for _, body in pipeline.drain(pipeline.base)]
    assert [b.get("repoURL") for b in bodies[:2]] == [
        "https://github.com/acme/api.git", "https://github.com/acme/web.git",
    ]  # fmt: skip
    assert bodies[2]["videoId"] == "acme-2024"
    assert bodies[2]["captions"] == "tags"
    assert bodies[2]["repoURLs"] == [
        "https://github.com/acme/docs.git", "https://github.com/acme/api.git", "https://github.com/acme/web.git",
    ]  # fmt: skip
    assert "repoURL" not in bodies[2]
