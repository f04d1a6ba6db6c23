"""From a config to AWS: the CloudFormation stack generated from it, and what the stack gives back.

Everything here is pure (config in, template or config dict out); `ebbtide aws` does the I/O.
"""
