"""destinations/: where events go. One folder per destination type (``aws_lambda/``), each
implementing ``base.Destination`` and declared by a ``kind.DestinationType`` registered with one
line in ``registry.py``; ``tests/contract/test_destination_contract.py`` is the shared suite.
``http_client/`` is not a type: it is the HTTP transport the types share (``HttpTransport``)."""
