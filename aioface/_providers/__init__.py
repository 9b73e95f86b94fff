"""Pure provider adapters: build request descriptions, turn answers into results or typed errors.

No module here does I/O, so each is tested with plain bytes and no event loop.
"""
