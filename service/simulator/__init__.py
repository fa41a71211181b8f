"""A provider simulator implementing the adapter contract for every electronic provider.

Local runs, tests and fault drills talk to it instead of the real banks and wallets. Each
provider's behaviour is set at run time through `PUT /_control/{provider}`.
"""
