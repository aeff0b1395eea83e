"""Fakes of cloud APIs for tests: local servers of the documented REST paths, named as fakes.

The real client libraries (boto3, google-cloud-billing, httpx) call them over HTTP on
127.0.0.1, so tests exercise the same request building, paging and error mapping that
production does; only the far end is fake.
"""
