//! One module per subcommand. They print to stdout and never touch the terminal UI.
