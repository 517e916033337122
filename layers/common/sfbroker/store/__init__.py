"""The only code that speaks to DynamoDB: one module per aggregate."""
