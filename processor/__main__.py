"""`python -m processor`: drain the render queues (the default), or run an operator tool.

python -m processor                 drain the queues, exit 0 when they are empty
python -m processor stats           ready / in-flight counts per queue, processors connected
python -m processor dead list       what was dead-lettered, and why
python -m processor dead requeue    send dead requests back to their work queue
python -m processor dead purge      drop every dead request
python -m processor watch --batch ID   follow a batch to its end, then list every result
python -m processor setup-broker       declare the queues, apply their policies (management API)
python -m processor setup-broker --migrate        recreate 0.1.0's work queues plain, losing nothing
python -m processor setup-broker --definitions F  write the policies as a definitions file instead
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from processor import settings as settings_module
from processor.logs import configure
from processor.settings import ProcessorSettings, SharedSettings


def _run(args: argparse.Namespace) -> int:
    settings = settings_module.load(ProcessorSettings, args)
    configure(settings.log_format, settings.log_level)
    from processor import metrics
    from processor.worker import Processor, install_signal_handlers

    processor = Processor(settings)
    install_signal_handlers(processor)
    with metrics.exposed(settings.metrics_port, settings.pushgateway_url):
        return processor.run()


def _watch(args: argparse.Namespace) -> int:
    settings = settings_module.load(SharedSettings, args)
    configure(settings.log_format, settings.log_level)
    from processor.broker.connection import Connection
    from processor.progress import follow

    return follow(
        lambda: Connection(settings, "watch"),
        args.batch,
        timeout=args.timeout,
        out=sys.stdout,
        err=sys.stderr,
        interactive=sys.stderr.isatty(),
    )


def _setup_broker(args: argparse.Namespace) -> int:
    settings = settings_module.load(SharedSettings, args)
    configure("text" if sys.stderr.isatty() else "json", "WARNING")  # what it did goes to stdout
    from processor.setup import setup_broker

    return setup_broker(settings, definitions=args.definitions, include_user=args.include_user,
                        migrate=args.migrate)  # fmt: skip


def _batch_id(text: str) -> str:
    from processor.contract import VIDEO_ID

    if not VIDEO_ID.match(text):
        raise argparse.ArgumentTypeError("not a batch id (letters, digits, '-' and '_')")
    return text


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _operator(
    action: Callable[[SharedSettings, argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        settings = settings_module.load(SharedSettings, args)
        configure("text" if sys.stderr.isatty() else "json", "WARNING")
        return action(settings, args)

    return command


def _parser() -> argparse.ArgumentParser:
    from processor import ops

    parser = argparse.ArgumentParser(
        prog="python -m processor",
        description="Render queued repositories into Gource videos; exit 0 once the queues are drained.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    settings_module.add_flags(parser, ProcessorSettings)
    parser.set_defaults(command=_run)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser("run", help="drain the queues (the default)")
    settings_module.add_flags(run, ProcessorSettings)
    run.set_defaults(command=_run)

    watch = commands.add_parser(
        "watch",
        help="follow a batch (e.g. loaded by the CronJob) until every request finished",
        description="Progress of one batch, from its first result on, then a table of every request. "
        "Exit 0: all succeeded; 3: some failed; 4: --timeout ran out; 5: no such batch.",
    )
    watch.add_argument(
        "--batch", required=True, type=_batch_id, metavar="ID", help="the batch id the loader printed"
    )
    watch.add_argument(
        "--timeout", type=_positive, default=None, metavar="SECONDS", help="give up after this long"
    )
    settings_module.add_flags(watch, SharedSettings)
    watch.set_defaults(command=_watch)

    stats = commands.add_parser("stats", help="queue depths and processors connected")
    settings_module.add_flags(stats, SharedSettings)
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.set_defaults(command=_operator(ops.stats))

    dead = commands.add_parser("dead", help="inspect, requeue or purge dead-lettered requests")
    dead_commands = dead.add_subparsers(title="dead-letter commands", metavar="ACTION", required=True)
    dead_list = dead_commands.add_parser("list", help="reason, attempts, repo and videoId of each")
    dead_list.add_argument("--json", action="store_true", help="one JSON object per line")
    dead_list.set_defaults(command=_operator(ops.dead_list))
    requeue = dead_commands.add_parser("requeue", help="back to the work queue with a fresh attempt count")
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead request")
    which.add_argument("video_ids", nargs="*", default=[], metavar="VIDEO_ID", help="these requests only")
    requeue.set_defaults(command=_operator(ops.dead_requeue))
    purge = dead_commands.add_parser("purge", help="drop every dead request")
    purge.set_defaults(command=_operator(ops.dead_purge))
    for sub in (dead_list, requeue, purge):
        settings_module.add_flags(sub, SharedSettings)

    setup = commands.add_parser(
        "setup-broker",
        help="declare the queues and apply the work queues' policies (management API)",
        description="Declare the queues and apply the work queues' policy (dead-lettering and "
        "delivery limit as a broker-side backstop) through the management API at MANAGEMENT_URL. "
        "Exit 0: done; 75: no management API answered; 78: refused (credentials, processors running).",
    )
    setup.add_argument(
        "--definitions", type=Path, default=None, metavar="FILE",
        help="write the policies as a RabbitMQ definitions file (load_definitions) instead; no broker needed",
    )  # fmt: skip
    setup.add_argument(
        "--include-user", action="store_true",
        help="with --definitions: add AMQP_URL's user, for a broker that loads the file at first boot",
    )  # fmt: skip
    setup.add_argument(
        "--migrate", action="store_true",
        help="first recreate work queues made with arguments (0.1.0) plain, moving their requests",
    )  # fmt: skip
    settings_module.add_flags(setup, SharedSettings)
    setup.set_defaults(command=_setup_broker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    code: int = args.command(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
