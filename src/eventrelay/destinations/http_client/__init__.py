"""http_client/: eventrelay's HTTP/1.1 client, the default transport of HTTP-speaking destinations.

transport.py   HttpTransport (one method: request in, answer out), HttpRequest, HttpResponse
client.py      HttpClient: pooled keep-alive connections to one origin (the default transport)
connection.py  one connection: writes a request, parses its answer with httptools
proxy.py       HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as botocore reads them
"""

from eventrelay.destinations.http_client.client import HttpClient
from eventrelay.destinations.http_client.proxy import Proxy, proxy_from_environment
from eventrelay.destinations.http_client.transport import (
    HttpRequest,
    HttpResponse,
    HttpTransport,
    header_value,
    host_header,
    origin_of,
)

__all__ = [
    "HttpClient",
    "HttpRequest",
    "HttpResponse",
    "HttpTransport",
    "Proxy",
    "header_value",
    "host_header",
    "origin_of",
    "proxy_from_environment",
]
