"""Everything that speaks AMQP, one module for each kind of caller.

connection.py       a connection with the topology declared, reconnecting with back-off; the
                    boundary (`translated`) where pika's errors become ours; queue counts
messages.py         what a delivery is, and the headers this project keeps on requests it moves
work.py             the processor's: take a request, keep the connection alive while it renders,
                    settle it (and `WorkBroker`, what the processor needs of any broker)
progress_events.py  the processor's progress events, on a channel of their own
dead_letters.py     the operator tools': read, requeue and purge the dead-letter queue
batches.py          a batch's own queue: prepared and filled by the loader, read by followers
loading.py          the loader's: requests published in transactions

Only this package imports pika, and processor/migrate.py, which moves messages between queues
for `setup-broker --migrate`.
"""
