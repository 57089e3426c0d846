"""The `charrnn` command, a module per group of commands: `main` parses and dispatches (main.py), each
command module adds its parsers and runs them, `reported` turns every mistake into one line (report.py).

Nothing is imported here, so that `charrnn prepare` (prepare.py) runs without loading torch.
"""
