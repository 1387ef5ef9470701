"""The three spellings of a render request, and the token a request may carry (issue 11).

Producers that already exist send the production backend's format verbatim; it must mean
exactly what today's spelling means, within the same allow-list and bounds, and its token
must never be shown back: not in a repr, an error message or a dead letter.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from processor.contract import REDACTED, parse_request, without_token
from processor.errors import InvalidRequest

TOKEN = "gho_16C7e42F292c6912E7710c838347Ae178B4a"

# The message, verbatim but for the token.
PRODUCTION: dict[str, Any] = {
    "renderType": "GOURCE",
    "repoURL": "https://github.com/owner/repo.git",
    "videoId": "5f1d7c0e9b1e8a3f4c2d6e01",
    "token": TOKEN,
    "renderOptions": {
        "start": 0.2,
        "stop": 0.9,
        "key": True,
        "elasticity": 1.5,
        "bloomMultiplier": 1.2,
        "bloomIntensity": 0.8,
        "title": "My project",
    },
}
TODAY = {
    "type": "gource",
    "repoURL": "https://github.com/owner/repo.git",
    "videoId": "5f1d7c0e9b1e8a3f4c2d6e01",
    "gource": {
        "--start-position": 0.2,
        "--stop-position": 0.9,
        "--key": True,
        "--elasticity": 1.5,
        "--bloom-multiplier": 1.2,
        "--bloom-intensity": 0.8,
        "--title": "My project",
    },
}


def production(**changes: Any) -> dict[str, Any]:
    return {**PRODUCTION, **changes}


def test_the_production_message_is_accepted_verbatim_and_means_what_todays_spelling_means() -> None:
    request = parse_request(json.dumps(PRODUCTION).encode())

    assert request.gource == parse_request(TODAY).gource
    assert (request.type, request.repo_url, request.video_id) == (
        "gource",
        "https://github.com/owner/repo.git",
        "5f1d7c0e9b1e8a3f4c2d6e01",
    )
    assert request.token is not None
    assert request.token.get_secret_value() == TOKEN


def test_the_snake_case_spelling_still_means_the_same() -> None:
    snake = {
        "type": "gource",
        "repo_url": "https://github.com/owner/repo.git",
        "video_id": "5f1d7c0e9b1e8a3f4c2d6e01",
        "gource": {"start_position": 0.2, "stop_position": 0.9, "key": True, "elasticity": 1.5,
                   "bloom_multiplier": 1.2, "bloom_intensity": 0.8, "title": "My project"},
    }  # fmt: skip
    assert parse_request(snake) == parse_request(TODAY)


@pytest.mark.parametrize("render_type", ["GOURCE", "Gource", "gource"])
def test_render_type_is_gource_in_any_case(render_type: str) -> None:
    assert parse_request(production(renderType=render_type)).type == "gource"


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"renderType": "BLENDER"}, "renderType: Input should be"),
        ({"renderOptions": {"start": 1.2}}, "renderOptions.start: Input should be less than 1"),
        ({"renderOptions": {"stop": 0}}, "renderOptions.stop: Input should be greater than 0"),
        ({"renderOptions": {"start": 0.9, "stop": 0.2}}, "must be below --stop-position"),
        ({"renderOptions": {"start": 0.5, "stop": 0.5}}, "must be below --stop-position"),
        ({"renderOptions": {"elasticity": 11}}, "renderOptions.elasticity: Input should be less than"),
        ({"renderOptions": {"bloomIntensity": -1}}, "renderOptions.bloomIntensity: Input should be"),
        ({"renderOptions": {"key": "yes"}}, "renderOptions.key: Input should be a valid boolean"),
        ({"renderOptions": {"title": "a\nb"}}, "renderOptions.title: title must not contain control"),
        ({"renderOptions": {"loadConfig": "/etc/passwd"}}, "renderOptions.loadConfig: Extra inputs"),
        ({"renderOptions": {"start": 0.1, "--start-position": 0.2}}, "renderOptions.start: Extra inputs"),
        ({"type": "gource"}, "renderType: Extra inputs are not permitted"),
        ({"gource": {}}, "renderOptions: Extra inputs are not permitted"),
        ({"callbackURL": "https://example.com/hook"}, "callbackURL: Extra inputs are not permitted"),
    ],
)
def test_the_production_format_keeps_the_allow_list_and_bounds(
    changes: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_request(production(**changes))
    assert complaint in str(refused.value)


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        ("http://git.example.com/owner/repo.git", "http"),
        ("file:///srv/git/repo.git", "file"),
        ("/srv/git/repo.git", "file"),
        ("ssh://git@git.example.com/owner/repo.git", "ssh"),
        ("git@github.com:owner/repo.git", "ssh"),
        ("git://git.example.com/repo.git", "git"),
    ],
)
def test_a_token_is_refused_for_any_transport_but_https_without_being_echoed(
    url: str, transport: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_request(production(repoURL=url))
    assert f"a token is sent over https only, and repoURL uses {transport!r}" in str(refused.value)
    assert TOKEN not in str(refused.value)


def test_a_token_beside_credentials_in_the_url_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="a token and credentials in repoURL"):
        parse_request(production(repoURL="https://me:other@github.com/owner/repo.git"))


@pytest.mark.parametrize(
    ("second", "complaint"),
    [
        ("http://git.example.com/web.git", "a token is sent over https only, and repoURLs.1 uses 'http'"),
        ("git@github.com:acme/web.git", "a token is sent over https only, and repoURLs.1 uses 'ssh'"),
        ("https://me:other@github.com/acme/web.git", "a token and credentials in repoURLs.1"),
    ],
)
def test_a_token_for_a_repository_list_is_refused_if_any_url_would_carry_it_astray_naming_which(
    second: str, complaint: str
) -> None:
    organisation = {k: v for k, v in PRODUCTION.items() if k != "repoURL"}
    organisation["repoURLs"] = ["https://github.com/acme/api.git", second]
    with pytest.raises(InvalidRequest) as refused:
        parse_request(json.dumps(organisation).encode())
    assert refused.value.reason == "invalid-request"
    assert complaint in str(refused.value)
    assert TOKEN not in str(refused.value)
    assert TOKEN not in repr(refused.value)


@pytest.mark.parametrize("token", ["", None])
def test_an_empty_token_means_a_public_repository_on_any_transport(token: str | None) -> None:
    request = parse_request(production(token=token, repoURL="http://git.example.com/r.git"))
    assert request.token is None


def test_a_token_never_shows_in_a_repr_an_error_or_a_dump_but_travels_on_the_wire() -> None:
    request = parse_request(production())
    for shown in (repr(request), str(request), request.model_dump_json(), repr(request.model_dump())):
        assert TOKEN not in shown
    # the loader republishes what it validated: the token must reach the processor
    assert parse_request(request.to_wire()) == request
    with pytest.raises(InvalidRequest) as refused:
        parse_request(production(token=TOKEN + "\n", renderOptions={"start": 2}))
    assert TOKEN not in str(refused.value)
    assert "token: the token must be printable text" in str(refused.value)


def test_a_dead_letter_body_keeps_everything_but_the_token() -> None:
    body = json.dumps(PRODUCTION).encode()

    kept = json.loads(without_token(body))

    assert kept == {**PRODUCTION, "token": REDACTED}


@pytest.mark.parametrize(
    "body",
    [
        b'{"renderType": "GOURCE", "token": "' + TOKEN.encode() + b'", "renderOptions": {"start": 2',
        b'{"renderType": "GOURCE", "\\u0074oken": "' + TOKEN.encode() + b'"}',
        b'{"token": "' + TOKEN.encode() + b'\\" still the token", "repoURL": 42}',
        b'{"nested": {"token": "' + TOKEN.encode() + b'"}}',
    ],
)
def test_a_token_leaves_even_a_body_that_is_not_a_request(body: bytes) -> None:
    kept = without_token(body)
    assert TOKEN.encode() not in kept
    assert REDACTED.encode() in kept


@pytest.mark.parametrize(
    "body",
    [b"not json at all", json.dumps(TODAY).encode(), b'{"token": "", "repoURL": "https://e.example/r"}'],
)
def test_a_body_without_a_token_is_dead_lettered_byte_for_byte(body: bytes) -> None:
    assert without_token(body) == body


def test_the_production_example_in_the_readme_is_the_one_accepted_here() -> None:
    from support import ROOT

    readme = (ROOT / "README.md").read_text()
    examples = re.findall(r"```json\n(\{[^`]*?\"renderType\"[^`]*?)```", readme)
    assert examples, "README shows the production format"
    for example in examples:
        assert parse_request(example).type == "gource"


PRESENTATION_SPELLINGS = [
    # The draft's gource flag names, the snake_case twin, the production backend's camelCase.
    {"gource": {"--hide": "filenames,usernames", "--max-files": 500, "--file-idle-time": 30,
                "--filename-time": 2.5, "--user-scale": 0.5, "--camera-mode": "track",
                "--file-extensions": True}},
    {"gource": {"hide": ["usernames", "filenames"], "max_files": 500, "file_idle_time": 30,
                "filename_time": 2.5, "user_scale": 0.5, "camera_mode": "track", "file_extensions": True}},
    {"renderOptions": {"hide": "Filenames, usernames", "maxFiles": 500, "fileIdleTime": 30,
                       "filenameTime": 2.5, "userScale": 0.5, "cameraMode": "track", "fileExtensions": True}},
]  # fmt: skip


@pytest.mark.parametrize("spelling", PRESENTATION_SPELLINGS)
def test_the_presentation_options_mean_the_same_in_all_three_spellings(spelling: dict[str, Any]) -> None:
    options = parse_request({"repoURL": "https://example.com/r.git", **spelling}).gource

    assert options.hide == ("filenames", "usernames")
    assert (options.max_files, options.file_idle_time, options.filename_time) == (500, 30, 2.5)
    assert (options.user_scale, options.camera_mode, options.file_extensions) == (0.5, "track", True)


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"hide": "mouse"}, "cannot hide mouse"),
        ({"hide": "filenames,--load-config"}, "cannot hide --load-config"),
        ({"maxFiles": 0}, "greater than or equal to 1"),
        ({"maxFiles": 10**9}, "less than or equal to 100000"),
        ({"filenameTime": 1}, "greater than or equal to 2"),  # gource refuses less
        ({"cameraMode": "/etc/passwd"}, "'overview' or 'track'"),
        ({"userScale": 1000}, "less than or equal to 10"),
        ({"fileFilter": ".*"}, "Extra inputs are not permitted"),  # no regular expression gource would run
        ({"userImageDir": "/etc"}, "Extra inputs are not permitted"),
    ],
)
def test_presentation_options_are_bounded_and_none_names_a_file_or_a_pattern(
    options: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(complaint)):
        parse_request({"repoURL": "https://example.com/r.git", "renderOptions": options})


def test_exclusions_are_a_bounded_list_of_printable_path_patterns() -> None:
    request = parse_request({"repoURL": "https://example.com/r.git", "exclude": ["vendor/**", "*.min.js"]})
    assert request.exclude == ("vendor/**", "*.min.js")
    assert parse_request({"repoURL": "https://example.com/r.git", "exclude": []}).exclude == ()

    for bad, complaint in (
        (["a\nb"], "not a path pattern"),
        (["/"], "not a path pattern"),
        (["x" * 201], "not a path pattern"),
        ([f"d{n}/**" for n in range(51)], "at most 50 items"),
        ("vendor/**", "valid tuple"),
    ):
        with pytest.raises(InvalidRequest, match=re.escape(complaint)):
            parse_request({"repoURL": "https://example.com/r.git", "exclude": bad})
