"""The only code that speaks to Salesforce: `client` (and its `hosts` policy), `pools`.

The package imports nothing itself: `client` imports requests, which a function loads
only when it first calls Salesforce (`runtime.salesforce`), while `pools`' constants
are needed at import by the pools services.
"""
