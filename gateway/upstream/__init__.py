"""The upstream side: aiobotocore clients, proto <-> botocore mapping, AWS error mapping."""
