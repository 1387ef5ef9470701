"""gource-batch loader: validates render requests and publishes them, confirmed, to RabbitMQ.

It imports the processor's contract, topology and settings (never boto3 or the renderer),
so both sides always agree on the wire format and the queue names.
"""
