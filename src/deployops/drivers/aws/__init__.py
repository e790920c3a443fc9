"""Drivers for the ``aws`` platform (boto3): one module per AWS service."""
