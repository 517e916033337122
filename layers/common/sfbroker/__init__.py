"""sfbroker: a serverless Salesforce credential broker for CI pipelines."""

__version__ = "0.1.0"
