"""Helpers shared by several test areas (plain functions and context managers, no fixtures).

- ``process``: free loopback ports; stopping a child process politely, then firmly.
- ``awsenv``: botocore in a test sees none of the machine's AWS configuration.
- ``localaws``: the local AWS endpoint (STS, Lambda) started in the test's event loop.
- ``cli``: ``eventrelay ...`` run in-process, as a user runs it, with its output captured.
- ``serve``: ``eventrelay ...`` run as a subprocess, waited on until it answers.
"""
