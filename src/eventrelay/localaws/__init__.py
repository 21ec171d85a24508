"""Local AWS: Lambda Invoke and STS AssumeRole on loopback, running handlers in awslambdaric processes.

server.py        the endpoint (aiohttp): routes Invoke and STS; start_from_config()
invoke_api.py    Lambda Invoke (rest-json)        sts.py     STS AssumeRole (query, XML)
auth.py          who is calling (SigV4, issued sessions)     sigv4.py   signature verification
iam.py           roles: trust policy and permission          functions.py  function registry
runtime_api.py   the Lambda Runtime API workers poll         pool.py    awslambdaric worker processes
invocation.py    one invocation: payload, log, result
"""
