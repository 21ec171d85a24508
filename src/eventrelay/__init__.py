"""eventrelay: a self-hosted, Segment-compatible event router delivering to AWS Lambda.

Data flow (one folder per stage):

    ingest/ -> queue/ -> delivery/ -> destinations/      deliverylog/ beside delivery
    config/  admin/  awsiam/  localaws/  cli/
"""

__version__ = "0.1.0"
