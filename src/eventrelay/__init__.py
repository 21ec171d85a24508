"""eventrelay: a self-hosted, Segment-compatible event router delivering to AWS Lambda.

Data flow (one folder per stage; imports point down it, ``tests/test_layers.py`` checks):

    ingest/ -> queue/ -> delivery/ -> destinations/      deliverylog/ beside delivery
    core/ (spec, records, errors) under all; storage/ under queue/ and deliverylog/
    config/  localaws/  awsiam/  admin/  runtime/ (composition)  cli/
"""

__version__ = "0.1.0"
