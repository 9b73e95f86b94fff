"""Waiting for work: polling policy and learned durations, the many-task scheduler, fan-out."""
