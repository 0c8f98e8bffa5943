"""Development tools: ``bijli run``'s launcher, the embedded Redis, the fake Twilio, the console.

Production code never imports this package (an import-linter contract in pyproject.toml says so);
``create_app()`` registers the console only while Twilio's development credentials are in use.
"""
