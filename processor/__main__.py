"""`python -m processor`: drain the render queues (the default), or an operator tool."""

from __future__ import annotations

import argparse
import logging
import sys

from processor import settings as settings_module
from processor.logs import configure
from processor.settings import ProcessorSettings

log = logging.getLogger("processor")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m processor",
        description="Render queued repositories into Gource videos; exit 0 once the queues are drained.",
    )
    settings_module.add_flags(parser, ProcessorSettings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings_module.load(ProcessorSettings, args)
    configure(settings.log_format, settings.log_level)

    from processor.worker import Processor, install_signal_handlers

    processor = Processor(settings)
    install_signal_handlers(processor)
    return processor.run()


if __name__ == "__main__":
    sys.exit(main())
