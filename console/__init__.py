"""The operator console: a Textual app over the same domain API as the command line."""
