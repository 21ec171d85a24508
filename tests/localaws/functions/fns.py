"""Handlers the local AWS tests run in real awslambdaric processes."""

import os
import time


def echo(event, context):
    cc = context.client_context
    client_context = None
    if cc is not None:
        client = cc.client
        client_context = {
            "custom": cc.custom,
            "env": cc.env,
            "client": None
            if client is None
            else {"installation_id": client.installation_id, "app_title": client.app_title},
        }
    return {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "aws_request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "client_context": client_context,
        "pid": os.getpid(),
    }


def printer(event, context):
    print(f"hello from the handler: {event.get('say')}")
    return {"ok": True}


def raiser(event, context):
    raise ValueError("something went wrong in the handler")


def sleeper(event, context):
    time.sleep(float(event.get("seconds", 30)))
    return {"slept": True, "pid": os.getpid()}


def exiter(event, context):
    if event.get("exit"):
        os._exit(3)
    return {"pid": os.getpid()}


def chatty(event, context):
    for i in range(2000):
        print(f"line {i:05d} " + "x" * 20)
    print("LAST LINE")
    return {"ok": True}


def big(event, context):
    return "x" * (6 * 1024 * 1024 + 100)


def trivial(event, context):
    return event
