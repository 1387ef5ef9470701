"""What a request leaves behind and how a web page links to it: poster, public and presigned URLs."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
from support import Pipeline, probe

from processor.outputs import Outputs
from processor.storage import FINGERPRINT, FileStorage

pytestmark = pytest.mark.slow


def request(repo: Path, video_id: str) -> str:
    options = {"resolution": "320x240", "--stop-at-time": 3, "--output-framerate": 25}
    return json.dumps({"type": "gource", "repoURL": repo.as_uri(), "videoId": video_id, "gource": options})


def test_every_video_has_a_poster_beside_it_and_a_private_bucket_gets_presigned_links(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    assert pipeline.load("--file", "-", stdin=request(sample_repo, "pic")).returncode == 0

    assert pipeline.process(PRESIGN_SECONDS=600) == [0]

    [event] = pipeline.results()
    assert event["posterUrl"] == f"s3://{pipeline.bucket}/videos/pic.jpg"
    video = pipeline.s3.head_object(Bucket=pipeline.bucket, Key="videos/pic.mp4")
    poster = pipeline.s3.head_object(Bucket=pipeline.bucket, Key="videos/pic.jpg")
    assert poster["ContentType"] == "image/jpeg"
    assert poster["Metadata"] == video["Metadata"]  # the same fingerprint, video id and batch
    image = probe(pipeline.download("videos/pic.jpg"))["streams"][0]
    assert (image["codec_name"], image["width"], image["height"]) == ("mjpeg", 320, 240)
    for link, key in ((event["httpUrl"], "videos/pic.mp4"), (event["posterHttpUrl"], "videos/pic.jpg")):
        assert "Signature=" in link
        with urllib.request.urlopen(link, timeout=30) as response:  # what a browser would do
            assert response.read() == pipeline.download(key).read_bytes()


def test_a_local_directory_gets_poster_playlist_and_public_links_too(
    pipeline: Pipeline, sample_repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    assert pipeline.load("--file", "-", stdin=request(sample_repo, "local")).returncode == 0

    assert pipeline.process(
        OUTPUT_URL=out.as_uri(), PUBLIC_URL_BASE="https://cdn.example.com/gource/", OUTPUT_FORMAT="both"
    ) == [0]

    [event] = pipeline.results()
    assert event["httpUrl"] == "https://cdn.example.com/gource/local.mp4"
    assert event["posterHttpUrl"] == "https://cdn.example.com/gource/local.jpg"
    assert event["posterUrl"] == (out / "local.jpg").as_uri()
    assert probe(out / "local.jpg")["streams"][0]["codec_name"] == "mjpeg"
    assert event["playlistHttpUrl"] == "https://cdn.example.com/gource/local/index.m3u8"
    assert probe(out / "local" / "index.m3u8")["streams"][0]["codec_name"] == "h264"


def test_hls_comes_from_the_same_encode_plays_and_replaces_an_earlier_rendition(
    pipeline: Pipeline, sample_repo: Path
) -> None:
    # A public-read bucket: what PUBLIC_URL_BASE points at (or a CDN in front of one).
    readable = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{pipeline.bucket}/*"}  # fmt: skip
    policy = json.dumps({"Version": "2012-10-17", "Statement": [readable]})
    pipeline.s3.put_bucket_policy(Bucket=pipeline.bucket, Policy=policy)
    public = f"{pipeline.s3_endpoint}/{pipeline.bucket}"
    settings = {"OUTPUT_FORMAT": "both", "PUBLIC_URL_BASE": public}
    options = {"resolution": "320x240", "--stop-at-time": 9, "--output-framerate": 25}
    nine = json.dumps(
        {"type": "gource", "repoURL": sample_repo.as_uri(), "videoId": "stream", "gource": options}
    )
    assert pipeline.load("--file", "-", stdin=nine + "\n" + nine).returncode == 0

    assert pipeline.process(**settings) == [0]

    first, again = pipeline.results()
    assert first["playlistUrl"] == f"s3://{pipeline.bucket}/videos/stream/index.m3u8"
    assert first["playlistHttpUrl"] == f"{public}/videos/stream/index.m3u8"
    assert again["playlistHttpUrl"] == first["playlistHttpUrl"]
    assert any("not rendering again" in line["message"] for line in pipeline.processor_log())
    objects = pipeline.objects()
    segments = sorted(key for key in objects if key.endswith(".ts"))
    assert len(segments) >= 2
    heads = {key: pipeline.s3.head_object(Bucket=pipeline.bucket, Key=key) for key in objects}
    assert heads["videos/stream/index.m3u8"]["ContentType"] == "application/vnd.apple.mpegurl"
    assert {heads[key]["ContentType"] for key in segments} == {"video/mp2t"}
    assert (
        len({head["Metadata"]["fingerprint"] for head in heads.values()}) == 1
    )  # one request wrote them all
    # A player streams it over HTTP: ffmpeg reads the playlist, then every segment it names.
    played = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name,width",
         "-of", "json", first["playlistHttpUrl"]],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    stream = json.loads(played.stdout)
    assert stream["streams"][0]["codec_name"] == "h264"
    assert (
        abs(
            float(stream["format"]["duration"])
            - float(probe(pipeline.download("videos/stream.mp4"))["format"]["duration"])
        )
        < 0.5
    )

    short = nine.replace('"--stop-at-time": 9', '"--stop-at-time": 3')
    assert pipeline.load("--file", "-", stdin=short).returncode == 0
    assert pipeline.process(**settings) == [0]

    left = sorted(key for key in pipeline.objects() if key.startswith("videos/stream/"))
    assert left == ["videos/stream/index.m3u8", "videos/stream/segment000.ts"]  # the old segments are gone


def test_hls_alone_stores_no_mp4_and_names_the_playlist_as_the_video(tmp_path: Path) -> None:
    work, site = tmp_path / "work", FileStorage(tmp_path / "site")
    (work / "hls").mkdir(parents=True)
    for name in ("video.mp4", "poster.jpg", "hls/segment000.ts", "hls/segment001.ts"):
        (work / name).write_bytes(name.encode())
    (work / "hls" / "index.m3u8").write_text("#EXTM3U\nsegment000.ts\nsegment001.ts\n")
    outputs = Outputs.of(site, "solo", "hls")

    stored = outputs.store(site, work / "video.mp4", work / "poster.jpg", {FINGERPRINT: "f1"})

    assert stored.key == outputs.main == "solo/index.m3u8"
    files = site.root.rglob("*")
    assert sorted(p.relative_to(site.root).as_posix() for p in files if p.is_file() and p.name[0] != ".") == [
        "solo.jpg", "solo/index.m3u8", "solo/segment000.ts", "solo/segment001.ts",
    ]  # fmt: skip
    assert outputs.already_stored(site, "f1")
    assert not outputs.already_stored(site, "f2")
