"""Use cases. No boto3, requests or event shapes in here: collaborators are passed in."""
