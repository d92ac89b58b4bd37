"""The ``buttress`` command line: one module per command group, loaded only when its group is used."""
