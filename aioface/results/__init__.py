"""Where results go: destinations and their checks, streaming bodies to files, memory or sinks; image size."""
