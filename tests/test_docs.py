"""README stays true to the code: every setting documented, with its real default."""

from __future__ import annotations

import importlib.util
import re

from support import ROOT


def _tables() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("settings_table", ROOT / "scripts" / "settings_table.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tables: dict[str, str] = module.tables()
    return tables


def test_readme_documents_every_setting_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, table in _tables().items():
        assert table in readme, (
            f"README's {name} settings table is stale: run python scripts/settings_table.py"
        )


def test_readme_lists_every_exit_code_of_every_command_in_one_table() -> None:
    from processor.exit_codes import ExitCode

    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Exit codes\n", 1)[1].split("\n#", 1)[0]
    listed = [int(code) for code in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)]
    assert listed == sorted({int(code) for code in ExitCode})


def test_the_producer_snippet_in_the_readme_sends_a_request_the_processor_accepts(amqp_url: str) -> None:
    import uuid

    import pika

    from processor.contract import parse_request

    readme = (ROOT / "README.md").read_text()
    (snippet,) = [s for s in re.findall(r"```python\n(.*?)```", readme, re.S) if "basic_publish" in s]
    queue = f"t{uuid.uuid4().hex[:10]}-producer"
    code = snippet.replace('"amqp://user:password@rabbitmq:5672/%2F"', repr(amqp_url))
    code = code.replace('"render"', repr(queue))
    assert repr(queue) in code
    assert repr(amqp_url) in code
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example, run as written

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        channel.queue_delete(queue)
    finally:
        connection.close()
    assert method is not None
    assert properties.delivery_mode == 2
    request = parse_request(body)
    assert (request.video_id, request.gource.start_position, request.token) == (
        "5f1d7c0e9b1e8a3f4c2d6e01",
        0.2,
        None,
    )
