"""awsiam/: the IAM documents eventrelay needs, derived from its configuration (DESIGN.md section 8).

- ``arns``: function references (name, partial ARN, full ARN, qualified) to the ARNs IAM checks;
- ``policy``: the permission policy (``lambda:InvokeFunction`` on each function);
- ``trust``: the role's trust relationship (trusted principal, ``sts:ExternalId``);
- ``cloudformation``: a template creating the role and its policy;
- ``render``: JSON and YAML output.
"""
