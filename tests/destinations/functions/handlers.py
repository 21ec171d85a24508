"""Handlers the aws_lambda destination tests run in the local AWS endpoint (real awslambdaric)."""

import time


def echo(event, context):
    cc = context.client_context
    print(f"got {event.get('type')} {event.get('messageId')}")
    return {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "custom": None if cc is None else cc.custom,
        "env": None if cc is None else cc.env,
    }


def raiser(event, context):
    print("about to fail")
    raise ValueError("the handler failed on purpose")


def sleeper(event, context):
    time.sleep(5)
    return {"slept": True}
