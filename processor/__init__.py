"""gource-batch processor: drains the render queues and turns repositories into videos.

This package also owns the contract shared with the loader (`contract`, `topology`,
`settings`, `errors`); those modules import neither boto3 nor the renderer, so the
loader can use them without pulling in the processing side.
"""
