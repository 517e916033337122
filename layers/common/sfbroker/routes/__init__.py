"""Routes of the API, one router per capability; each Lambda function includes its own.

They live in the layer (not in `functions/`) so that `GET /openapi.json` can describe
every route of the API from one resolver.
"""
