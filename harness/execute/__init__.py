"""Stage 4, which process measures which case: the session, the worker and its client, rounds, the interleaved
A/B, several devices, shards and resume.

Imports the stages below it."""
