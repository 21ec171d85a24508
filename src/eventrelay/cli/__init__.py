"""cli/: the ``eventrelay`` command. One module per subcommand, each exporting ``add_parser``."""
