"""Client for sfbroker, the serverless Salesforce credential broker (CLI: `sfbroker`)."""

__version__ = "0.1.0"
