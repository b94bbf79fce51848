"""The one error type for bad input: configuration keys, values, datasets, checkpoints."""


class ConfigError(ValueError):
    """A configuration value, key or input is invalid; the message is one line naming the problem.

    Every entry point turns it into ``<prog>: error: <message>`` on stderr and exit status 2, before anything
    is written.
    """
