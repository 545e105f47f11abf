"""The ``scalerd`` subcommands, one module each; ``scalerd.cli`` only dispatches to them."""
