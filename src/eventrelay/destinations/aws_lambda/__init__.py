"""aws_lambda/: the AWS Lambda destination.

settings.py       the public contract, validated field by field
function_name.py  FunctionName parsing (name, name:alias, full/partial ARN) -> name + qualifier
credentials.py    STS AssumeRole with the External ID, session credentials cached per role
invoke.py         the signed Invoke request and its response
classify.py       AWS error code -> category and verdict (DESIGN.md section 5)
destination.py    the Destination implementation tying them together
entry.py          the registry entry: settings model, catalog names, build, IAM needs
"""
